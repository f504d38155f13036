"""Shape inversion round-trips, GQA feasibility, and clear errors for impossible budgets."""

from __future__ import annotations

import pytest

from archsearch.arch import (
    ArchError,
    feasible_groups,
    gqa_variants,
    non_embedding_params,
    r_mlp_attn,
    shape_for,
)
from archsearch.arch.budget import steps_for, train_tokens_for


def test_llama_1b_round_trips_exactly() -> None:
    shape = shape_for(
        973_078_528,
        n_layers=16,
        head_dim=64,
        r_mlp_attn_target=4.8,
        gqa_group=4,
        vocab_size=128256,
        d_model=2048,
    )
    assert (shape.spec.n_heads, shape.spec.n_kv_heads, shape.spec.d_ff) == (32, 8, 8192)
    assert shape.n_params == 973_078_528
    assert shape.r_mlp_attn == pytest.approx(4.8)


@pytest.mark.parametrize("x", [0.05, 0.08, 0.12])
@pytest.mark.parametrize("r", [0.5, 1.0, 2.5, 5.0])
@pytest.mark.parametrize("g", [1, 4])
def test_inversion_hits_the_budget_and_reports_achieved_values(x: float, r: float, g: int) -> None:
    n = 300_000_000
    shape = shape_for(
        n,
        n_layers=16,
        head_dim=64,
        r_mlp_attn_target=r,
        gqa_group=g,
        vocab_size=32000,
        d_over_sqrt_n_target=x,
    )
    spec = shape.spec
    assert spec.gqa_group == g and spec.d_model % 64 == 0 and spec.d_ff % 64 == 0
    assert shape.n_params == non_embedding_params(spec)
    assert abs(shape.n_params / n - 1) <= 0.05
    assert shape.r_mlp_attn == pytest.approx(r_mlp_attn(spec))
    assert abs(shape.r_mlp_attn / r - 1) < 0.25  # whole heads limit how closely r can be hit
    assert shape.d_over_sqrt_n == pytest.approx(x, rel=0.1)
    # and back: re-inverting the achieved values gives the same shape
    again = shape_for(shape.n_params, 16, 64, shape.r_mlp_attn, g, 32000, d_model=spec.d_model)
    assert again.spec == spec


def test_feasible_groups_and_variants_keep_n() -> None:
    assert feasible_groups(40) == [1, 3, 4, 7, 9, 19, 39]
    llama = shape_for(973_078_528, 16, 64, 4.8, 4, 128256, d_model=2048).spec
    variants = gqa_variants(llama)
    assert [v.gqa_group for v in variants] == [1, 3, 4, 7, 9, 19, 39]
    assert {non_embedding_params(v) for v in variants} == {non_embedding_params(llama)}
    assert any(v == llama for v in variants)


def test_impossible_requests_say_what_would_work() -> None:
    with pytest.raises(ArchError, match="r_mlp_attn must be > 0"):
        shape_for(10**6, 4, 32, 0.0, 1, 100, d_model=128)
    with pytest.raises(ArchError, match=r"lower r_mlp_attn \(at most ~0.91\)"):
        shape_for(2_000_000, 4, 64, 20.0, 7, 100, d_model=512)
    # no r_mlp_attn can help: the message says how large N must be, never a negative r
    with pytest.raises(ArchError, match="raise budget.n_params to at least 1,048,576"):
        shape_for(200_000, 4, 64, 20.0, 7, 100, d_model=512)
    with pytest.raises(ArchError, match="off budget"):
        shape_for(100_000, 2, 32, 1.0, 1, 100, d_model=64, d_ff_multiple=96)
    with pytest.raises(ArchError, match="no room for an MLP"):
        shape_for(100_000, 2, 32, 1.0, 1, 100, d_model=64, d_ff_multiple=512)
    with pytest.raises(ArchError, match="exactly one of d_model and d_over_sqrt_n"):
        shape_for(10**6, 4, 32, 1.0, 1, 100)
    with pytest.raises(ArchError, match=r"r_mlp_attn=8 is not reachable .* r = 4.00"):
        shape_for(500_000, 4, 32, 8, 2, 4096, d_model=128, d_ff_multiple=16)
    with pytest.raises(ArchError, match="gqa_group must be >= 1"):
        shape_for(10**6, 4, 32, 1.0, 0, 100, d_model=128)


def test_budget_helpers() -> None:
    assert train_tokens_for(1_000_000, 20) == 20_000_000
    assert steps_for(10_000, 4096) == 3  # rounded up: D is never undershot
    with pytest.raises(ArchError, match="tokens_per_param"):
        train_tokens_for(10, 0)
    with pytest.raises(ArchError, match="gives 0 training tokens: set budget.train_tokens"):
        steps_for(0, 4096)
