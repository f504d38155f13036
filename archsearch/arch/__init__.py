"""Architecture accounting: ArchSpec, counts, shapes from budgets. Pure: no torch or Hydra."""

from archsearch.arch.budget import steps_for, train_tokens_for
from archsearch.arch.counting import (
    FLOPS_CONVENTION,
    PARAMS_CONVENTION,
    ParamCounts,
    attention_params_per_layer,
    count_params,
    d_over_sqrt_n,
    describe,
    inference_flops_per_token,
    kv_cache_bytes_per_token,
    mlp_params_per_layer,
    non_embedding_params,
    r_mlp_attn,
    train_flops,
    train_flops_per_token,
)
from archsearch.arch.shapes import Shape, feasible_groups, gqa_variants, shape_for
from archsearch.arch.spec import ArchError, ArchSpec

__all__ = [
    "FLOPS_CONVENTION",
    "PARAMS_CONVENTION",
    "ArchError",
    "ArchSpec",
    "ParamCounts",
    "Shape",
    "attention_params_per_layer",
    "count_params",
    "d_over_sqrt_n",
    "describe",
    "feasible_groups",
    "gqa_variants",
    "inference_flops_per_token",
    "kv_cache_bytes_per_token",
    "mlp_params_per_layer",
    "non_embedding_params",
    "r_mlp_attn",
    "shape_for",
    "steps_for",
    "train_flops",
    "train_flops_per_token",
    "train_tokens_for",
]
