"""Parameter, FLOP and KV-cache accounting (DESIGN.md section 2). Pure: no torch.

Conventions are named and stored in every record: N is ``non_embedding`` (attention + MLP weights;
norms and both embedding matrices excluded), training compute is ``6ND``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from archsearch.arch.spec import ArchSpec

PARAMS_CONVENTION = "non_embedding"
FLOPS_CONVENTION = "6ND"


def attention_params_per_layer(spec: ArchSpec) -> int:
    """Q, K, V, O weights: ``2 * d_model * head_dim * (n_heads + n_kv_heads)``."""
    return 2 * spec.d_model * spec.head_dim * (spec.n_heads + spec.n_kv_heads)


def mlp_params_per_layer(spec: ArchSpec) -> int:
    """SwiGLU gate, up and down weights: ``3 * d_model * d_ff``."""
    return 3 * spec.d_model * spec.d_ff


def non_embedding_params(spec: ArchSpec) -> int:
    """N, the paper's parameter count: ``n_layers * (attention + MLP)``."""
    return spec.n_layers * (attention_params_per_layer(spec) + mlp_params_per_layer(spec))


@dataclass(frozen=True)
class ParamCounts:
    """Every parameter of the built model, by group; ``total`` equals ``sum(p.numel())``."""

    non_embedding: int
    norms: int
    embedding: int
    lm_head: int
    total: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def count_params(spec: ArchSpec) -> ParamCounts:
    """Count parameters by group (two RMSNorms per layer plus a final one; head absent if tied)."""
    n = non_embedding_params(spec)
    norms = (2 * spec.n_layers + 1) * spec.d_model
    embedding = spec.vocab_size * spec.d_model
    lm_head = 0 if spec.tie_embeddings else embedding
    return ParamCounts(n, norms, embedding, lm_head, n + norms + embedding + lm_head)


def r_mlp_attn(spec: ArchSpec) -> float:
    """r = MLP params / attention params = ``3 d_ff / (2 head_dim (n_heads + n_kv_heads))``."""
    return mlp_params_per_layer(spec) / attention_params_per_layer(spec)


def d_over_sqrt_n(spec: ArchSpec) -> float:
    """x = ``d_model / sqrt(N)`` (the paper's hidden-size ratio)."""
    return spec.d_model / math.sqrt(non_embedding_params(spec))


def train_flops(n_params: int, train_tokens: int) -> float:
    """Training compute C = 6 N D (the ``6ND`` convention)."""
    return 6.0 * n_params * train_tokens


def train_flops_per_token(spec: ArchSpec, seq_len: int) -> int:
    """Model FLOPs of one training token (forward + backward) at sequence length ``seq_len``.

    ``6 (N + d_model vocab_size)`` for the weight matmuls (the output head included, the input
    embedding being a lookup) plus the causal attention term ``6 n_layers seq_len n_heads
    head_dim`` (PaLM's MFU accounting with causal masking halving the score and value matmuls).
    """
    weights = non_embedding_params(spec) + spec.d_model * spec.vocab_size
    return 6 * weights + 6 * spec.n_layers * seq_len * spec.n_heads * spec.head_dim


def inference_flops_per_token(spec: ArchSpec, kv_len: int, include_lm_head: bool = False) -> int:
    """FLOPs to generate one token at KV length T: ``2 N + 2 n_layers T n_heads head_dim``.

    ``include_lm_head`` adds the output projection, ``2 d_model vocab_size``, which the paper's
    formula leaves out but a roofline must count.
    """
    flops = (
        2 * non_embedding_params(spec) + 2 * spec.n_layers * kv_len * spec.n_heads * spec.head_dim
    )
    if include_lm_head:
        flops += 2 * spec.d_model * spec.vocab_size
    return flops


def kv_cache_bytes_per_token(spec: ArchSpec, bytes_per_element: int = 2) -> int:
    """KV-cache bytes one token occupies: ``2 n_layers n_kv_heads head_dim bytes_per_element``."""
    return 2 * spec.n_layers * spec.n_kv_heads * spec.head_dim * bytes_per_element


def describe(spec: ArchSpec) -> dict[str, float | int]:
    """The derived quantities a record stores: counts, r, x and the GQA group."""
    counts = count_params(spec)
    return {
        **{f"{k}_params": v for k, v in counts.to_dict().items()},
        "r_mlp_attn": r_mlp_attn(spec),
        "d_over_sqrt_n": d_over_sqrt_n(spec),
        "gqa_group": spec.gqa_group,
    }
