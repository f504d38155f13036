"""The search space at a budget: every feasible rounded shape over grids of d_model, r and g. Pure.

Algorithm 1 of arXiv 2510.18245 searches over (d_model, r) with ``n_layers`` and ``head_dim`` fixed
at the budget N; the shape (``d_ff``, ``n_heads``, ``n_kv_heads``) follows from (N, d_model, r, g)
through ``archsearch.arch.shape_for``. Grid points that round to the same shape are kept once;
points with no shape within tolerance are counted, not kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from archsearch.arch import (
    ArchError,
    ArchSpec,
    Shape,
    d_over_sqrt_n,
    non_embedding_params,
    r_mlp_attn,
    shape_for,
)
from archsearch.search.config import SearchSpaceConfig


@dataclass(frozen=True)
class Candidate:
    """One feasible shape at the budget.

    Attributes:
        spec: the rounded architecture (its ``name`` is ``shape_name(spec)``).
        n_params: achieved non-embedding parameters N.
        x: ``d_model / sqrt(N)`` at the achieved N.
        r: achieved ``r_mlp_attn``.
        gqa_group: ``n_heads / n_kv_heads``.
        n_params_rel_error: ``N_achieved / N_budget - 1``.
    """

    spec: ArchSpec
    n_params: int
    x: float
    r: float
    gqa_group: int
    n_params_rel_error: float

    @property
    def name(self) -> str:
        return self.spec.name

    @classmethod
    def from_shape(cls, shape: Shape) -> Candidate:
        spec = replace(shape.spec, name=shape_name(shape.spec))
        return cls(
            spec=spec,
            n_params=shape.n_params,
            x=shape.d_over_sqrt_n,
            r=shape.r_mlp_attn,
            gqa_group=spec.gqa_group,
            n_params_rel_error=shape.n_params_rel_error,
        )


@dataclass(frozen=True)
class SearchSpace:
    """The enumerated candidates and how many grid points had no feasible shape."""

    candidates: list[Candidate]
    n_grid_points: int
    n_infeasible: int


def shape_name(spec: ArchSpec) -> str:
    """A file-safe name that identifies the shape, e.g. ``d2496_l16_h76_kv19_ff4096``."""
    return f"d{spec.d_model}_l{spec.n_layers}_h{spec.n_heads}_kv{spec.n_kv_heads}_ff{spec.d_ff}" + (
        "" if spec.head_dim == 64 else f"_hd{spec.head_dim}"
    )


def spec_key(spec: ArchSpec) -> tuple[int, int, int, int, int, int, int, bool]:
    """The fields that make two specs the same model for loss and throughput (name ignored)."""
    return (
        spec.d_model,
        spec.n_layers,
        spec.n_heads,
        spec.n_kv_heads,
        spec.head_dim,
        spec.d_ff,
        spec.vocab_size,
        spec.tie_embeddings,
    )


def d_model_grid(n_params: int, x_min: float, x_max: float, multiple: int = 64) -> list[int]:
    """Every multiple of ``multiple`` with ``x_min <= d_model / sqrt(N) <= x_max``, rising."""
    root = math.sqrt(n_params)
    low = max(1, math.ceil(x_min * root / multiple))
    high = math.floor(x_max * root / multiple)
    return [multiple * k for k in range(low, high + 1)]


def r_grid(r_min: float, r_max: float, n: int) -> list[float]:
    """``n`` geometrically spaced MLP-to-attention ratios in ``[r_min, r_max]``."""
    return [float(v) for v in np.geomspace(r_min, r_max, n)]


def enumerate_space(
    n_params: int,
    n_layers: int,
    head_dim: int,
    vocab_size: int,
    d_models: Sequence[int],
    r_values: Sequence[float],
    gqa_groups: Sequence[int],
    tie_embeddings: bool = False,
    d_ff_multiple: int = 64,
    n_params_tolerance: float = 0.05,
    r_mlp_attn_tolerance: float = 0.25,
) -> SearchSpace:
    """All feasible shapes over the grid ``d_models x r_values x gqa_groups`` at budget N.

    Args:
        n_params: budget N (non-embedding parameters).
        d_models: hidden sizes to try (e.g. ``d_model_grid``).
        r_values: target ``r_mlp_attn`` values; each is rounded to whole heads by ``shape_for``.
        gqa_groups: GQA groups g to try.
        n_params_tolerance: largest accepted ``|N_achieved / N - 1|``.
        r_mlp_attn_tolerance: largest accepted ``|r_achieved / r_target - 1|``.

    Returns:
        The distinct candidates, ordered by (g, d_model, r), and the count of infeasible points.
    """
    seen: dict[tuple[int, ...], Candidate] = {}
    infeasible = 0
    for g in gqa_groups:
        for d_model in d_models:
            for r in r_values:
                try:
                    shape = shape_for(
                        n_params,
                        n_layers,
                        head_dim,
                        r,
                        g,
                        vocab_size,
                        d_model=d_model,
                        tie_embeddings=tie_embeddings,
                        d_ff_multiple=d_ff_multiple,
                        n_params_tolerance=n_params_tolerance,
                        r_mlp_attn_tolerance=r_mlp_attn_tolerance,
                    )
                except ArchError:
                    infeasible += 1
                    continue
                seen.setdefault(spec_key(shape.spec), Candidate.from_shape(shape))
    candidates = sorted(seen.values(), key=lambda c: (c.gqa_group, c.spec.d_model, c.r))
    total = len(gqa_groups) * len(d_models) * len(r_values)
    return SearchSpace(candidates, total, infeasible)


def space_from_config(
    cfg: SearchSpaceConfig,
    n_params: int,
    n_layers: int,
    head_dim: int,
    vocab_size: int,
    gqa_group: int,
    *,
    tie_embeddings: bool,
    n_params_tolerance: float = 0.05,
) -> SearchSpace:
    """``enumerate_space`` over the grids of ``cfg``, keeping only shapes whose *achieved* x and
    r lie inside ``cfg``'s ranges (rounding to whole heads may not step past a bound); the
    others are counted as infeasible.

    Args:
        cfg: the search space.
        n_params: budget N.
        gqa_group: the group used when ``cfg.gqa_groups`` is null.
        tie_embeddings: as the runs that will train the picks (required: a shape's total
            parameters and the model trained depend on it).
    """
    space = enumerate_space(
        n_params,
        n_layers,
        head_dim,
        vocab_size,
        d_model_grid(n_params, cfg.x_min, cfg.x_max, cfg.d_model_multiple),
        r_grid(cfg.r_min, cfg.r_max, cfg.n_r),
        cfg.gqa_groups or [gqa_group],
        tie_embeddings=tie_embeddings,
        d_ff_multiple=cfg.d_ff_multiple,
        n_params_tolerance=n_params_tolerance,
        r_mlp_attn_tolerance=cfg.r_mlp_attn_tolerance,
    )
    inside = [
        c
        for c in space.candidates
        if cfg.x_min <= c.x <= cfg.x_max and cfg.r_min <= c.r <= cfg.r_max
    ]
    removed = len(space.candidates) - len(inside)
    return SearchSpace(inside, space.n_grid_points, space.n_infeasible + removed)


def candidate_for(spec: ArchSpec, n_params_budget: int) -> Candidate:
    """A Candidate for a given spec (e.g. a GQA variant or a reference shape) at budget N."""
    n = non_embedding_params(spec)
    shape = Shape(spec, n, r_mlp_attn(spec), d_over_sqrt_n(spec), n / n_params_budget - 1)
    return Candidate.from_shape(shape)


def model_fields(spec: ArchSpec) -> dict[str, Any]:
    """The ``conf/model`` fields (``archsearch.config.ModelConfig``) of an explicit shape.

    Derivation fields are nulled so that a base preset's ``r_mlp_attn``/``gqa_group`` cannot
    clash with the explicit heads and ``d_ff``.
    """
    return {
        "name": spec.name,
        "d_model": spec.d_model,
        "n_layers": spec.n_layers,
        "head_dim": spec.head_dim,
        "n_heads": spec.n_heads,
        "n_kv_heads": spec.n_kv_heads,
        "d_ff": spec.d_ff,
        "vocab_size": spec.vocab_size,
        "tie_embeddings": spec.tie_embeddings,
        "d_over_sqrt_n": None,
        "r_mlp_attn": None,
        "gqa_group": None,
    }
