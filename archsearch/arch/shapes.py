"""From a budget to a concrete shape, and GQA variants of a shape (DESIGN.md section 2). Pure.

At fixed ``d_model``, ``head_dim`` and ``r``, the per-layer budget ``P = N / n_layers`` splits into
attention ``P / (1 + r) = 2 d_model head_dim S`` (``S = n_heads + n_kv_heads``) and MLP
``3 d_model d_ff``. A GQA group g is feasible iff ``(g + 1)`` divides S.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from archsearch.arch.counting import d_over_sqrt_n, non_embedding_params, r_mlp_attn
from archsearch.arch.spec import ArchError, ArchSpec


@dataclass(frozen=True)
class Shape:
    """A concrete spec and how close it came to the request."""

    spec: ArchSpec
    n_params: int
    r_mlp_attn: float
    d_over_sqrt_n: float
    n_params_rel_error: float


def _round_to(value: float, multiple: int) -> int:
    return max(multiple, multiple * round(value / multiple))


def shape_for(
    n_params: int,
    n_layers: int,
    head_dim: int,
    r_mlp_attn_target: float,
    gqa_group: int,
    vocab_size: int,
    d_model: int | None = None,
    d_over_sqrt_n_target: float | None = None,
    tie_embeddings: bool = False,
    d_model_multiple: int = 64,
    d_ff_multiple: int = 64,
    n_params_tolerance: float = 0.05,
    r_mlp_attn_tolerance: float = 0.25,
    name: str = "",
) -> Shape:
    """Invert the accounting: the feasible shape nearest to (N, d_model or x, r, g).

    Head counts come from the attention share ``N / (n_layers (1 + r))``, rounded so that
    ``n_kv_heads = S / (g + 1)`` is whole; ``d_ff`` then fills the remaining budget, rounded to
    ``d_ff_multiple``. Of the two nearest head counts the one whose achieved r is closer (in log)
    to the target wins.

    Args:
        n_params: target non-embedding parameters N.
        d_model: hidden size; give exactly one of ``d_model`` and ``d_over_sqrt_n_target`` (x),
            from which ``d_model = x sqrt(N)`` rounded to ``d_model_multiple``.
        n_params_tolerance: largest accepted ``|N_achieved / N - 1|``.
        r_mlp_attn_tolerance: largest accepted ``|r_achieved / r - 1|`` (whole heads make r
            coarse at small N).

    Raises:
        ArchError: naming the field to change when no shape within tolerance exists.
    """
    if n_params <= 0:
        raise ArchError(f"budget n_params must be positive, got {n_params}")
    if r_mlp_attn_target <= 0:
        raise ArchError(f"r_mlp_attn must be > 0 (MLP/attention params), got {r_mlp_attn_target}")
    if gqa_group < 1:
        raise ArchError(f"gqa_group must be >= 1 (1 = multi-head attention), got {gqa_group}")
    if (d_model is None) == (d_over_sqrt_n_target is None):
        raise ArchError("give exactly one of d_model and d_over_sqrt_n")
    if d_model is None:
        assert d_over_sqrt_n_target is not None
        if d_over_sqrt_n_target <= 0:
            raise ArchError(f"d_over_sqrt_n must be > 0, got {d_over_sqrt_n_target}")
        d_model = _round_to(d_over_sqrt_n_target * math.sqrt(n_params), d_model_multiple)
    per_layer = n_params / n_layers
    heads_total = per_layer / (1 + r_mlp_attn_target) / (2 * d_model * head_dim)
    kv_exact = heads_total / (gqa_group + 1)
    if kv_exact < 0.5:
        max_r = per_layer / (2 * d_model * head_dim * (gqa_group + 1) * 0.5) - 1
        # r_mlp_attn -> 0 leaves all of N for attention: the smallest N that holds g+1 heads
        min_n_params = math.ceil(n_layers * d_model * head_dim * (gqa_group + 1))
        fix = (
            f"lower r_mlp_attn (at most ~{max_r:.2f}), d_model or gqa_group, or raise n_params"
            if max_r > 0
            else f"raise budget.n_params to at least {min_n_params:,} (even r_mlp_attn=0 needs "
            "it), or lower d_model, head_dim, n_layers or gqa_group"
        )
        raise ArchError(
            f"budget n_params={n_params:,} leaves attention room for {heads_total:.2f} heads at "
            f"d_model={d_model}, head_dim={head_dim}; gqa_group={gqa_group} needs at least "
            f"{gqa_group + 1}: {fix}"
        )
    candidates = []
    for n_kv in {max(1, math.floor(kv_exact)), max(1, math.ceil(kv_exact))}:
        spec = ArchSpec(
            d_model=d_model,
            n_layers=n_layers,
            n_heads=gqa_group * n_kv,
            n_kv_heads=n_kv,
            head_dim=head_dim,
            d_ff=1,
            vocab_size=vocab_size,
            tie_embeddings=tie_embeddings,
            name=name,
        )
        mlp_budget = per_layer - 2 * d_model * head_dim * (gqa_group + 1) * n_kv
        if mlp_budget < 3 * d_model * d_ff_multiple / 2:
            continue
        spec = replace(spec, d_ff=_round_to(mlp_budget / (3 * d_model), d_ff_multiple))
        candidates.append(spec)
    if not candidates:
        raise ArchError(
            f"no room for an MLP of d_ff >= {d_ff_multiple} at n_params={n_params:,}, "
            f"d_model={d_model}: raise r_mlp_attn (now {r_mlp_attn_target}) or n_params, or lower "
            "d_model or d_ff_multiple"
        )
    spec = min(candidates, key=lambda s: abs(math.log(r_mlp_attn(s) / r_mlp_attn_target)))
    if abs(r_mlp_attn(spec) / r_mlp_attn_target - 1) > r_mlp_attn_tolerance:
        reachable = sorted(f"{r_mlp_attn(s):.2f}" for s in candidates)
        raise ArchError(
            f"r_mlp_attn={r_mlp_attn_target} is not reachable with whole heads at "
            f"n_params={n_params:,}, d_model={d_model}, head_dim={head_dim}, gqa_group="
            f"{gqa_group}: the nearest shapes have r = {', '.join(reachable)}; choose one of "
            "those, a smaller head_dim or gqa_group, or a larger budget"
        )
    achieved = non_embedding_params(spec)
    rel_error = achieved / n_params - 1
    if abs(rel_error) > n_params_tolerance:
        raise ArchError(
            f"nearest shape has N={achieved:,}, {rel_error:+.1%} off budget n_params={n_params:,} "
            f"(tolerance {n_params_tolerance:.0%}): rounding to d_ff_multiple={d_ff_multiple} or "
            "whole heads is too coarse here; lower d_ff_multiple or head_dim, or raise n_params"
        )
    return Shape(spec, achieved, r_mlp_attn(spec), d_over_sqrt_n(spec), rel_error)


def feasible_groups(n_heads_plus_kv: int) -> list[int]:
    """GQA groups g with ``(g + 1) | S``, rising (g = S - 1 is multi-query attention)."""
    return [g for g in range(1, n_heads_plus_kv) if n_heads_plus_kv % (g + 1) == 0]


def gqa_variants(spec: ArchSpec) -> list[ArchSpec]:
    """The spec at every feasible group, keeping S, d_ff and d_model and therefore N fixed."""
    total = spec.n_heads + spec.n_kv_heads
    return [
        replace(spec, n_heads=total - total // (g + 1), n_kv_heads=total // (g + 1))
        for g in feasible_groups(total)
    ]
