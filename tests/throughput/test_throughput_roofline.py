"""Roofline: hand-computed bytes and FLOPs for LLaMA-3.2-1B, the paper's Surefire-1B comparison."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest

from archsearch.arch import ArchSpec
from archsearch.throughput import (
    H100_MEASURED,
    HardwareProfile,
    estimate_decode,
    estimate_prefill_s,
    get_profile,
    step_bytes,
    step_flops,
    step_time_s,
    weight_bytes,
)

LLAMA_1B = ArchSpec(2048, 16, 32, 8, 64, 8192, 128256, tie_embeddings=True, name="llama3_2_1b")
SUREFIRE_1B = ArchSpec(2560, 16, 36, 4, 64, 6144, 128256, tie_embeddings=True, name="surefire_1b")
A100 = get_profile("a100_40gb")
# a CPU-like profile with every term: fixed costs, attention at its own peak, terms in turn
SERIAL = HardwareProfile(
    "serial",
    8e9,
    {"bf16": 2e10},
    step_overhead_s=1e-4,
    kv_bandwidth_bytes_per_s=5e9,
    layer_overhead_s=2e-5,
    attention_peak_flops_per_s={"bf16": 4e9},
    overlap=False,
)


def test_llama_1b_bytes_and_flops_by_hand() -> None:
    # Per layer: attention 2 * 2048 * 64 * (32 + 8) = 10,485,760; MLP 3 * 2048 * 8192 = 50,331,648.
    n = 16 * (10_485_760 + 50_331_648)
    assert n == 973_078_528
    norms = (2 * 16 + 1) * 2048  # 67,584
    lm_head = 2048 * 128_256  # the tied embedding matrix, read once as the output projection
    weights_bf16 = (n + norms + lm_head) * 2
    assert weights_bf16 == 2_471_628_800
    assert weight_bytes(LLAMA_1B, "bf16") == weights_bf16
    # KV cache per token: K and V, 16 layers x 8 KV heads x 64 dims x 2 bytes = 32,768 bytes.
    kv_per_token = 2 * 16 * 8 * 64 * 2
    assert step_bytes(LLAMA_1B, 1, 4096, "bf16") == weights_bf16 + 4096 * kv_per_token
    assert step_bytes(LLAMA_1B, 8, 4096, "bf16") == weights_bf16 + 8 * 4096 * 32_768
    # FLOPs per token at T = 4096: 2N + 2 * 16 * 4096 * 32 * 64 + 2 * 2048 * 128256 (output).
    flops = 2 * 973_078_528 + 2 * 16 * 4096 * 32 * 64 + 2 * 2048 * 128_256
    assert flops == 2_739_929_088
    assert step_flops(LLAMA_1B, 1, 4096) == flops
    assert step_flops(LLAMA_1B, 8, 4096) == 8 * flops
    # Batch 1 on A100-40GB is memory bound: 2.606 GB / 1.555 TB/s = 1.676 ms per step.
    expected_s = (weights_bf16 + 4096 * kv_per_token) / 1.555e12
    assert step_time_s(LLAMA_1B, A100, 1, 4096) == pytest.approx(expected_s)
    assert expected_s == pytest.approx(1.6758e-3, rel=1e-4)


@pytest.mark.parametrize("profile", [A100, H100_MEASURED, SERIAL], ids=lambda p: p.name)
@pytest.mark.parametrize("batch_size", [1, 64, 256, 4096])
def test_closed_form_sum_matches_step_by_step(batch_size: int, profile: HardwareProfile) -> None:
    estimate = estimate_decode(LLAMA_1B, profile, batch_size, 4096, 1024)
    loop_s = sum(step_time_s(LLAMA_1B, profile, batch_size, 4096 + j) for j in range(1024))
    assert estimate.decode_s == pytest.approx(loop_s, rel=1e-12)
    assert estimate.tokens_per_s == pytest.approx(batch_size * 1024 / loop_s)
    floor_steps = sum(
        step_time_s(LLAMA_1B, profile, batch_size, 4096 + j) == profile.latency_floor_s
        for j in range(1024)
    )
    assert estimate.latency_bound_steps == (floor_steps if profile.latency_floor_s else 0)


def test_closed_form_flags_steps_at_the_latency_floor() -> None:
    small = estimate_decode(LLAMA_1B, H100_MEASURED, 1, 4096, 1024)
    assert small.latency_bound_steps == 1024  # batch 1 sits on the CUDA graph's floor
    large = estimate_decode(LLAMA_1B, H100_MEASURED, 256, 4096, 1024)
    assert large.latency_bound_steps == 0 and large.memory_bound_steps == 1024


@pytest.mark.parametrize("batch_size", [1, 64, 256, 4096])
def test_memory_bound_steps_on_the_datasheet_bound(batch_size: int) -> None:
    estimate = estimate_decode(LLAMA_1B, A100, batch_size, 4096, 1024)
    flops_bound = [
        step_flops(LLAMA_1B, batch_size, 4096 + j) / 312e12
        > step_bytes(LLAMA_1B, batch_size, 4096 + j) / 1.555e12
        for j in range(1024)
    ]
    assert estimate.memory_bound_steps == 1024 - sum(flops_bound)


def test_compute_bound_at_huge_batch_short_context() -> None:
    estimate = estimate_decode(LLAMA_1B, A100, 4096, 1, 4)
    assert estimate.memory_bound_steps == 0


def test_surefire_beats_llama_on_a100_with_gap_growing_with_batch() -> None:
    gains = []
    for batch_size in (1, 4, 16, 64, 128, 256):
        llama = estimate_decode(LLAMA_1B, A100, batch_size, 4096, 1024)
        surefire = estimate_decode(SUREFIRE_1B, A100, batch_size, 4096, 1024)
        gains.append(surefire.tokens_per_s / llama.tokens_per_s - 1)
    assert gains == sorted(gains)
    # At batch 1 decoding reads weights only: Surefire's larger embedding costs it ~1.5%.
    assert gains[0] == pytest.approx(-0.015, abs=0.005)
    assert all(g > 0 for g in gains[1:])
    assert gains[-1] > 0.42  # the paper reports up to 42% (end to end, vLLM)


def test_memory_fit_and_fp8() -> None:
    assert estimate_decode(LLAMA_1B, A100, 256, 4096, 1024).fits_memory is False
    assert estimate_decode(SUREFIRE_1B, A100, 256, 4096, 1024).fits_memory is True
    with pytest.raises(ValueError, match="no fp8 peak"):
        estimate_decode(LLAMA_1B, A100, 1, 16, 16, dtype="fp8")
    h100 = get_profile("h100_sxm")
    fp8 = estimate_decode(LLAMA_1B, h100, 1, 4096, 1024, dtype="fp8")
    bf16 = estimate_decode(LLAMA_1B, h100, 1, 4096, 1024, dtype="bf16")
    assert fp8.tokens_per_s == pytest.approx(2 * bf16.tokens_per_s)  # half the bytes


def test_prefill_is_compute_bound_and_counts_causal_attention() -> None:
    prefill_s = estimate_prefill_s(LLAMA_1B, A100, 1, 4095)
    flops = 4095 * 2 * 973_078_528 + 2 * 16 * 32 * 64 * 4095 * 4096 / 2
    assert prefill_s == pytest.approx(flops / 312e12)
    assert estimate_prefill_s(LLAMA_1B, A100, 1, 0) == 0.0


def test_every_term_of_a_step_by_hand() -> None:
    kv_len, batch = 100, 4
    weights = weight_bytes(LLAMA_1B, "bf16")
    kv = batch * kv_len * 32_768  # bytes per token from the hand count above
    dense = 4 * (2 * 973_078_528 + 2 * 2048 * 128_256)
    attention = 4 * 2 * 16 * kv_len * 32 * 64
    fixed = 1e-4 + 16 * 2e-5
    in_turn = weights / 8e9 + kv / 5e9 + dense / 2e10 + attention / 4e9
    assert step_time_s(LLAMA_1B, SERIAL, batch, kv_len) == pytest.approx(fixed + in_turn)
    overlapping = replace(SERIAL, overlap=True, latency_floor_s=0.0)
    longer = max(weights / 8e9 + kv / 5e9, dense / 2e10 + attention / 4e9)
    assert step_time_s(LLAMA_1B, overlapping, batch, kv_len) == pytest.approx(fixed + longer)
    floored = replace(overlapping, latency_floor_s=10.0)
    assert step_time_s(LLAMA_1B, floored, batch, kv_len) == pytest.approx(fixed + 10.0)
    assert SERIAL.bound().to_dict() == {
        **HardwareProfile("serial_bound", 8e9, {"bf16": 2e10}).to_dict(),
    }


def test_profile_round_trips_through_a_dict() -> None:
    assert HardwareProfile.from_dict(SERIAL.to_dict()) == SERIAL
    assert HardwareProfile.from_dict(H100_MEASURED.to_dict()) == H100_MEASURED


def test_roofline_imports_no_torch() -> None:
    code = (
        "import sys, archsearch.throughput.roofline, archsearch.throughput; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
