"""Roofline model of batched decoding: predicted tokens/s for any ArchSpec. Pure: no torch.

One decode step at KV length T (the keys it attends over, the new token's included) costs
(``step_time_s``)

    fixed + max(latency_floor, memory (+) compute),
    memory = weight_bytes / bw_weights + B T kv_bytes / bw_kv,
    compute = dense_FLOPs / peak + attention_FLOPs(T) / attention_peak,

where ``(+)`` is ``max`` on a device whose memory and compute units overlap (the roofline bound;
GPUs) and ``+`` where one thread runs every op in turn (``HardwareProfile.overlap`` False: CPUs),

- weight_bytes: every weight matrix is read once per step, the output projection (``d_model x
  vocab``, the embedding matrix when tied) included; the input-embedding gather reads only
  ``batch`` rows and is not counted;
- kv_bytes = ``kv_cache_bytes_per_token`` (DESIGN.md section 2): each of the B rows reads T of them;
- FLOPs = ``batch * inference_flops_per_token(spec, T, include_lm_head=True)`` (DESIGN.md
  section 2 plus the output projection), split into the dense part (T = 0) and attention's part
  (``2 n_layers T n_heads head_dim`` per row): attention's small per-head matmuls run at their own
  effective peak, and they grow with the query heads, not the KV heads, so a GQA layout costs
  more than its KV bytes;
- fixed = ``step_overhead_s + n_layers * layer_overhead_s``: work that adds to the step (host
  Python and op dispatch on a synchronous CPU, sampling);
- latency_floor: the shortest a step can take on an asynchronous device (the kernel latencies of
  a CUDA graph), hidden once the step moves enough bytes.

A datasheet profile (no fixed costs, no floor, one bandwidth, one peak, overlapping) gives the
classic roofline bound ``max(bytes / bandwidth, FLOPs / peak)``; a measured profile has its terms
fitted to measured steps (``archsearch.throughput.calibration``).

Protocol (as in ``archsearch.throughput.decode``): the first ``T_in - 1`` prompt tokens are
prefilled; then T_out decode steps each produce one generated token, step j (0-based) feeding the
token at position ``T_in - 1 + j`` and attending over ``T = T_in + j`` keys. Every term is linear
in T, so sums over the T_out steps are taken in closed form.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from archsearch.arch import (
    ArchSpec,
    count_params,
    inference_flops_per_token,
    kv_cache_bytes_per_token,
)
from archsearch.throughput.hardware import BYTES_PER_ELEMENT, HardwareProfile


@dataclass(frozen=True)
class DecodeEstimate:
    """Roofline prediction for one batch size.

    Attributes:
        prefill_s: prefill time of the ``T_in - 1`` prompt tokens of all rows, seconds.
        decode_s: time of the T_out decode steps, seconds.
        tokens_per_s: generated tokens per second of decoding, ``B * T_out / decode_s``.
        end_to_end_tokens_per_s: ``B * T_out / (prefill_s + decode_s)``.
        memory_bound_steps: how many of the T_out steps move bytes longer than they compute.
        latency_bound_steps: how many sit on the profile's latency floor.
        memory_bytes: weights plus the KV cache of ``T_in + T_out - 1`` positions, bytes.
        fits_memory: whether ``memory_bytes`` fits the profile's memory (None: unknown).
    """

    profile: str
    dtype: str
    batch_size: int
    prompt_tokens: int
    new_tokens: int
    prefill_s: float
    decode_s: float
    tokens_per_s: float
    end_to_end_tokens_per_s: float
    memory_bound_steps: int
    latency_bound_steps: int
    memory_bytes: int
    fits_memory: bool | None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _bytes_per_element(dtype: str) -> int:
    if dtype not in BYTES_PER_ELEMENT:
        raise ValueError(f"unknown dtype {dtype!r}; known: {sorted(BYTES_PER_ELEMENT)}")
    return BYTES_PER_ELEMENT[dtype]


def weight_bytes(spec: ArchSpec, dtype: str = "bf16") -> int:
    """Weight bytes one decode step reads: N + norms + the ``d_model x vocab`` output matrix.

    Args:
        spec: the architecture.
        dtype: weight dtype name ("bf16", "fp8", "fp32", ...).

    Returns:
        Bytes. An untied input embedding is not counted (a step gathers only ``batch`` rows).
    """
    counts = count_params(spec)
    read = counts.non_embedding + counts.norms + spec.d_model * spec.vocab_size
    return read * _bytes_per_element(dtype)


def memory_bytes(spec: ArchSpec, batch_size: int, max_len: int, dtype: str = "bf16") -> int:
    """Memory a decode needs: every parameter plus ``batch_size`` KV caches of ``max_len`` tokens.

    Args:
        max_len: cached positions per row.

    Returns:
        Bytes (activations not counted).
    """
    elem = _bytes_per_element(dtype)
    kv = kv_cache_bytes_per_token(spec, elem)
    return count_params(spec).total * elem + batch_size * max_len * kv


def step_bytes(spec: ArchSpec, batch_size: int, kv_len: int, dtype: str = "bf16") -> int:
    """Bytes moved by one decode step: weights + ``batch_size`` KV caches of ``kv_len`` tokens.

    Args:
        kv_len: T, keys attended over (the new token's included).

    Returns:
        Bytes.
    """
    kv = kv_cache_bytes_per_token(spec, _bytes_per_element(dtype))
    return weight_bytes(spec, dtype) + batch_size * kv_len * kv


def step_flops(spec: ArchSpec, batch_size: int, kv_len: int) -> int:
    """FLOPs of one decode step: ``batch_size * inference_flops_per_token(spec, T, lm_head)``.

    Returns:
        FLOPs (multiply-adds count 2).
    """
    return batch_size * inference_flops_per_token(spec, kv_len, include_lm_head=True)


def fixed_cost_s(spec: ArchSpec, profile: HardwareProfile) -> float:
    """Per-step cost that adds to memory and compute time: step + ``n_layers`` x layer, seconds."""
    return profile.step_overhead_s + spec.n_layers * profile.layer_overhead_s


def step_time_s(
    spec: ArchSpec, profile: HardwareProfile, batch_size: int, kv_len: int, dtype: str = "bf16"
) -> float:
    """Time of one decode step at KV length ``kv_len`` (the module docstring's formula), seconds."""
    lines = _step_lines(spec, profile, batch_size, dtype)
    return fixed_cost_s(spec, profile) + max(a + b * kv_len for a, b in lines)


def _step_lines(
    spec: ArchSpec, profile: HardwareProfile, batch_size: int, dtype: str
) -> list[tuple[float, float]]:
    """Lines in T whose maximum is a step's time without fixed costs: memory and compute (or
    their sum when they do not overlap), then the latency floor."""
    memory = _memory_line(spec, profile, batch_size, dtype)
    compute = _compute_line(spec, profile, batch_size, dtype)
    floor = (profile.latency_floor_s, 0.0)
    if profile.overlap:
        return [memory, compute, floor]
    return [(memory[0] + compute[0], memory[1] + compute[1]), floor]


def _memory_line(
    spec: ArchSpec, profile: HardwareProfile, batch_size: int, dtype: str
) -> tuple[float, float]:
    """Memory time of a step as (seconds at T = 0, seconds per unit of T)."""
    kv = kv_cache_bytes_per_token(spec, _bytes_per_element(dtype))
    return (
        weight_bytes(spec, dtype) / profile.bandwidth_bytes_per_s,
        batch_size * kv / profile.kv_bandwidth,
    )


def _compute_line(
    spec: ArchSpec, profile: HardwareProfile, batch_size: int, dtype: str
) -> tuple[float, float]:
    """Compute time of a step as (seconds at T = 0, seconds per unit of T): dense FLOPs at the
    peak, attention's (linear in T) at the attention peak."""
    flops_0 = step_flops(spec, batch_size, 0)
    per_key = step_flops(spec, batch_size, 1) - flops_0
    return flops_0 / profile.peak_for(dtype), per_key / profile.attention_peak_for(dtype)


def _sum_max_of_lines(
    lines: list[tuple[float, float]], start: int, stop: int
) -> tuple[float, list[int]]:
    """Sum of ``max_i (a_i + b_i T)`` over integer T in [start, stop).

    The range splits at the lines' crossings into parts with one line on top each.

    Returns:
        (the sum, how many T have each line on top).
    """
    cuts = {start, stop}
    for i, (a_i, b_i) in enumerate(lines):
        for a_j, b_j in lines[i + 1 :]:
            if b_i != b_j:
                cuts.add(min(max(math.ceil((a_j - a_i) / (b_i - b_j)), start), stop))
    bounds = sorted(cuts)
    total, on_top = 0.0, [0] * len(lines)
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        middle = (lo + hi - 1) / 2
        top = max(range(len(lines)), key=lambda i: lines[i][0] + lines[i][1] * middle)
        a, b = lines[top]
        total += a * (hi - lo) + b * (lo + hi - 1) * (hi - lo) / 2
        on_top[top] += hi - lo
    return total, on_top


def estimate_prefill_s(
    spec: ArchSpec,
    profile: HardwareProfile,
    batch_size: int,
    prefill_tokens: int,
    dtype: str = "bf16",
) -> float:
    """Roofline time of prefilling ``prefill_tokens`` per row as one pass, seconds.

    FLOPs = ``batch * sum_{t=1..P} inference_flops_per_token(spec, t)`` (causal attention, no
    output projection: the decode loop computes the logits); bytes = weights once + the KV cache
    written; fixed costs and the floor as for a decode step. An optimistic bound: real prefill
    rarely exceeds ~0.6 of peak.

    Args:
        prefill_tokens: P, tokens per row (``T_in - 1`` under this package's protocol).
    """
    if prefill_tokens <= 0:
        return 0.0
    base = inference_flops_per_token(spec, 0)
    per_key = inference_flops_per_token(spec, 1) - base
    flops = batch_size * (
        prefill_tokens * base + per_key * prefill_tokens * (prefill_tokens + 1) / 2
    )
    memory = _memory_line(spec, profile, batch_size, dtype)
    memory_s = memory[0] + memory[1] * prefill_tokens
    compute_s = flops / profile.peak_for(dtype)
    roof = max(memory_s, compute_s) if profile.overlap else memory_s + compute_s
    return fixed_cost_s(spec, profile) + max(profile.latency_floor_s, roof)


def estimate_decode(
    spec: ArchSpec,
    profile: HardwareProfile,
    batch_size: int,
    prompt_tokens: int,
    new_tokens: int,
    dtype: str = "bf16",
) -> DecodeEstimate:
    """Predicted decode throughput of ``spec`` for B prompts of T_in tokens and T_out new tokens.

    Args:
        spec: the architecture.
        profile: the hardware.
        batch_size: B, prompts decoded together.
        prompt_tokens: T_in (>= 1).
        new_tokens: T_out (>= 1).
        dtype: weights, KV cache and matmul dtype ("bf16", "fp8", "fp32").

    Returns:
        A DecodeEstimate; ``tokens_per_s`` is the decode-phase throughput in tokens/s.
    """
    if batch_size < 1 or prompt_tokens < 1 or new_tokens < 1:
        raise ValueError(
            f"batch_size, prompt_tokens and new_tokens must be >= 1, got {batch_size}, "
            f"{prompt_tokens}, {new_tokens}"
        )
    stop = prompt_tokens + new_tokens
    lines = _step_lines(spec, profile, batch_size, dtype)
    roof_s, on_top = _sum_max_of_lines(lines, prompt_tokens, stop)
    decode_s = roof_s + new_tokens * fixed_cost_s(spec, profile)
    memory_vs_compute = [
        _memory_line(spec, profile, batch_size, dtype),
        _compute_line(spec, profile, batch_size, dtype),
    ]
    mem_steps = _sum_max_of_lines(memory_vs_compute, prompt_tokens, stop)[1][0]
    prefill_s = estimate_prefill_s(spec, profile, batch_size, prompt_tokens - 1, dtype)
    memory = memory_bytes(spec, batch_size, stop - 1, dtype)
    generated = batch_size * new_tokens
    return DecodeEstimate(
        profile=profile.name,
        dtype=dtype,
        batch_size=batch_size,
        prompt_tokens=prompt_tokens,
        new_tokens=new_tokens,
        prefill_s=prefill_s,
        decode_s=decode_s,
        tokens_per_s=generated / decode_s,
        end_to_end_tokens_per_s=generated / (prefill_s + decode_s),
        memory_bound_steps=mem_steps,
        latency_bound_steps=on_top[-1],
        memory_bytes=memory,
        fits_memory=None if profile.memory_bytes is None else memory <= profile.memory_bytes,
    )
