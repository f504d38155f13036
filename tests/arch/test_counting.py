"""Accounting against hand-worked shapes and the paper's LLaMA-3.2-1B figures (DESIGN.md s.2)."""

from __future__ import annotations

import pytest

from archsearch.arch import (
    ArchError,
    ArchSpec,
    count_params,
    d_over_sqrt_n,
    inference_flops_per_token,
    kv_cache_bytes_per_token,
    non_embedding_params,
    r_mlp_attn,
    train_flops_per_token,
)

LLAMA_1B = ArchSpec(
    d_model=2048,
    n_layers=16,
    n_heads=32,
    n_kv_heads=8,
    head_dim=64,
    d_ff=8192,
    vocab_size=128256,
    tie_embeddings=True,
)


def test_llama_3_2_1b_matches_the_paper() -> None:
    assert non_embedding_params(LLAMA_1B) / 1e6 == pytest.approx(973.1, abs=0.05)
    assert r_mlp_attn(LLAMA_1B) == pytest.approx(4.80, abs=0.005)
    assert d_over_sqrt_n(LLAMA_1B) == pytest.approx(0.066, abs=0.0005)
    assert LLAMA_1B.gqa_group == 4


def test_hand_worked_small_shape() -> None:
    spec = ArchSpec(
        d_model=8, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=2, d_ff=12, vocab_size=10
    )
    # attention 2*8*2*(4+2) = 192, mlp 3*8*12 = 288 per layer
    counts = count_params(spec)
    assert counts.non_embedding == 2 * (192 + 288)
    assert counts.norms == (2 * 2 + 1) * 8
    assert counts.embedding == counts.lm_head == 80
    assert counts.total == 960 + 40 + 160
    tied = ArchSpec(**{**spec.to_dict(), "tie_embeddings": True})
    assert count_params(tied).total == 960 + 40 + 80
    assert r_mlp_attn(spec) == pytest.approx(288 / 192)


def test_inference_flops_and_kv_bytes() -> None:
    n = non_embedding_params(LLAMA_1B)
    assert inference_flops_per_token(LLAMA_1B, 0) == 2 * n
    assert inference_flops_per_token(LLAMA_1B, 4096) == 2 * n + 2 * 16 * 4096 * 32 * 64
    with_head = inference_flops_per_token(LLAMA_1B, 4096, include_lm_head=True)
    assert with_head - inference_flops_per_token(LLAMA_1B, 4096) == 2 * 2048 * 128256
    # K and V, 16 layers, 8 KV heads of 64, bf16: 32 KiB per token
    assert kv_cache_bytes_per_token(LLAMA_1B) == 2 * 16 * 8 * 64 * 2 == 32768


def test_train_flops_per_token_hand_worked() -> None:
    spec = ArchSpec(
        d_model=8,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        head_dim=2,
        d_ff=12,
        vocab_size=10,
        tie_embeddings=True,
    )
    # N = 960, head matmul 8 x 10 = 80 (tied or not), attention 6 * 2 layers * 32 * 4 * 2
    assert train_flops_per_token(spec, seq_len=32) == 6 * (960 + 80) + 6 * 2 * 32 * 4 * 2
    # LLaMA-3.2-1B at seq 2048: 6 * (973.1M + 262.7M) + 6 * 16 * 2048 * 2048 = 7.817 GFLOP
    assert train_flops_per_token(LLAMA_1B, 2048) / 1e9 == pytest.approx(7.8171, abs=1e-4)


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("n_kv_heads", 3, "choose n_kv_heads from [1, 2, 4, 8, 16, 32]"),
        ("d_model", 0, "d_model must be a positive integer"),
        ("head_dim", 63, "head_dim=63 must be even"),
    ],
)
def test_invalid_specs_name_the_field(field: str, value: int, needle: str) -> None:
    with pytest.raises(ArchError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        ArchSpec(**{**LLAMA_1B.to_dict(), field: value})
