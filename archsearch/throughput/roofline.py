"""Roofline model of batched decoding: predicted tokens/s for any ArchSpec. Pure: no torch.

One decode step at KV length T (the keys it attends over, the new token's included) costs
``max(bytes / bandwidth, FLOPs / peak) + step_overhead``, where

- bytes = weight bytes + ``batch * T * kv_cache_bytes_per_token``: every weight matrix is read
  once per step, the output projection (``d_model x vocab``, the embedding matrix when tied)
  included; the input-embedding gather reads only ``batch`` rows and is not counted;
- FLOPs = ``batch * inference_flops_per_token(spec, T, include_lm_head=True)`` (DESIGN.md
  section 2 plus the output projection).

Protocol (as in ``archsearch.throughput.decode``): the first ``T_in - 1`` prompt tokens are
prefilled; then T_out decode steps each produce one generated token, step j (0-based) feeding the
token at position ``T_in - 1 + j`` and attending over ``T = T_in + j`` keys. Both terms are linear
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
        memory_bound_steps: how many of the T_out steps are limited by bandwidth.
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


def step_time_s(
    spec: ArchSpec, profile: HardwareProfile, batch_size: int, kv_len: int, dtype: str = "bf16"
) -> float:
    """Roofline time of one decode step: ``max(bytes / bw, FLOPs / peak) + overhead``, seconds."""
    memory_s = step_bytes(spec, batch_size, kv_len, dtype) / profile.bandwidth_bytes_per_s
    compute_s = step_flops(spec, batch_size, kv_len) / profile.peak_for(dtype)
    return max(memory_s, compute_s) + profile.step_overhead_s


def _sum_max_of_lines(
    mem: tuple[float, float], comp: tuple[float, float], start: int, stop: int
) -> tuple[float, int]:
    """Sum of ``max(a_m + b_m T, a_c + b_c T)`` over integer T in [start, stop).

    Two lines cross at most once, so the range splits into two parts with one line on top each.

    Returns:
        (the sum, how many T have the memory line on top).
    """
    split = stop
    if mem[1] != comp[1]:
        crossing = (comp[0] - mem[0]) / (mem[1] - comp[1])
        split = min(max(math.ceil(crossing), start), stop)
    total, mem_steps = 0.0, 0
    for lo, hi in ((start, split), (split, stop)):
        if hi <= lo:
            continue
        middle = (lo + hi - 1) / 2
        mem_on_top = mem[0] + mem[1] * middle >= comp[0] + comp[1] * middle
        top = mem if mem_on_top else comp
        total += top[0] * (hi - lo) + top[1] * (lo + hi - 1) * (hi - lo) / 2
        mem_steps += (hi - lo) if mem_on_top else 0
    return total, mem_steps


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
    written. An optimistic bound: real prefill rarely exceeds ~0.6 of peak.

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
    kv = kv_cache_bytes_per_token(spec, _bytes_per_element(dtype))
    moved = weight_bytes(spec, dtype) + batch_size * prefill_tokens * kv
    compute_s = flops / profile.peak_for(dtype)
    return max(moved / profile.bandwidth_bytes_per_s, compute_s) + profile.step_overhead_s


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
    bandwidth, peak = profile.bandwidth_bytes_per_s, profile.peak_for(dtype)
    # bytes and FLOPs of a decode step are linear in the KV length: (at 0, per position)
    bytes_0 = step_bytes(spec, batch_size, 0, dtype)
    flops_0 = step_flops(spec, batch_size, 0)
    mem_line = (bytes_0 / bandwidth, (step_bytes(spec, batch_size, 1, dtype) - bytes_0) / bandwidth)
    comp_line = (flops_0 / peak, (step_flops(spec, batch_size, 1) - flops_0) / peak)
    stop = prompt_tokens + new_tokens
    roof_s, mem_steps = _sum_max_of_lines(mem_line, comp_line, prompt_tokens, stop)
    decode_s = roof_s + new_tokens * profile.step_overhead_s
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
        memory_bytes=memory,
        fits_memory=None if profile.memory_bytes is None else memory <= profile.memory_bytes,
    )
