"""The torch model: parameter count equals the accounting, causality, GQA without repeats."""

from __future__ import annotations

import pytest
import torch

from archsearch.arch import ArchSpec, count_params
from archsearch.model import Transformer


def _spec(**kw: object) -> ArchSpec:
    base = dict(
        d_model=48, n_layers=2, n_heads=6, n_kv_heads=2, head_dim=8, d_ff=80, vocab_size=101
    )
    return ArchSpec(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("kv", [1, 2, 3, 6])
def test_parameter_count_equals_accounting(tie: bool, kv: int) -> None:
    spec = _spec(n_kv_heads=kv, tie_embeddings=tie)
    model = Transformer(spec)
    assert sum(p.numel() for p in model.parameters()) == count_params(spec).total


def test_surefire_shape_builds_with_heads_not_matching_d_model() -> None:
    spec = _spec(d_model=40, n_heads=9, n_kv_heads=1, head_dim=8)  # 9 x 8 = 72 != 40
    model = Transformer(spec)
    assert model(torch.zeros(1, 5, dtype=torch.long)).shape == (1, 5, 101)


def test_causal_future_tokens_do_not_change_past_logits() -> None:
    torch.manual_seed(0)
    model = Transformer(_spec()).eval()
    tokens = torch.randint(0, 101, (2, 16))
    changed = tokens.clone()
    changed[:, 10:] = torch.randint(0, 101, (2, 6))
    with torch.no_grad():
        a, b = model(tokens), model(changed)
    torch.testing.assert_close(a[:, :10], b[:, :10])
    assert not torch.allclose(a[:, 10:], b[:, 10:])


def test_loss_at_init_is_near_uniform() -> None:
    torch.manual_seed(0)
    model = Transformer(_spec())
    tokens = torch.randint(0, 101, (4, 32))
    loss = model.loss(tokens[:, :-1], tokens[:, 1:])
    assert loss.item() == pytest.approx(torch.log(torch.tensor(101.0)).item(), abs=0.3)
