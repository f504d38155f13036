"""Fit a roofline profile's terms to measured decode steps. numpy and scipy; no torch.

``fit_profile`` takes a table of measured steps (shape, batch, KV length, seconds) and fits the
chosen terms of ``roofline.step_time_s`` (weight and KV bandwidth, peak, fixed costs, latency
floor) by least squares on the relative error, keeping the other terms of a base profile. The
shipped H100 table (``data/h100_decode.csv``) is one such table (``read_decode_table``); the
steps timed on the current machine by ``archsearch.throughput.probe`` are another.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

from archsearch.arch import ArchSpec
from archsearch.throughput.hardware import HardwareProfile
from archsearch.throughput.roofline import step_time_s

H100_TABLE = Path(__file__).with_name("data") / "h100_decode.csv"
H100_SHAPES = {
    "llama-3.2-1b": ArchSpec(
        2048, 16, 32, 8, 64, 8192, 128256, tie_embeddings=True, name="llama3_2_1b"
    ),
    "surefire-1b": ArchSpec(
        2560, 16, 36, 4, 64, 6144, 128256, tie_embeddings=True, name="surefire_1b"
    ),
}
H100_PEAK_BF16 = 8.04e14  # bf16 8192^3 matmul measured on the GPU of the table
# the terms a fit may free: profile field -> (how the fit parametrises it)
TERMS = (
    "bandwidth_bytes_per_s",
    "kv_bandwidth_bytes_per_s",
    "peak_flops_per_s",
    "step_overhead_s",
    "layer_overhead_s",
    "latency_floor_s",
    "attention_peak_flops_per_s",
)
_RATES = (
    "bandwidth_bytes_per_s",
    "kv_bandwidth_bytes_per_s",
    "peak_flops_per_s",
    "attention_peak_flops_per_s",
)
_PER_DTYPE = ("peak_flops_per_s", "attention_peak_flops_per_s")


@dataclass(frozen=True)
class MeasuredStep:
    """One measured decode step: ``batch_size`` rows attending over ``kv_len`` keys took
    ``step_s`` seconds (a median over repeats); ``label`` names the row in reports."""

    spec: ArchSpec
    batch_size: int
    kv_len: int
    step_s: float
    label: str = ""


@dataclass(frozen=True)
class ProfileFit:
    """A fitted profile and how well it reproduces the steps it was fitted to.

    Attributes:
        profile: the fitted profile; its ``fit`` records source, rows and the errors below.
        steps: the measured steps.
        predicted_s: the profile's step time for every measured step, in order.
        rel_errors: ``predicted / measured - 1`` per step.
    """

    profile: HardwareProfile
    steps: list[MeasuredStep]
    predicted_s: list[float]
    rel_errors: list[float]

    @property
    def max_abs_rel_error(self) -> float:
        return max(abs(e) for e in self.rel_errors)


def predict_steps(
    profile: HardwareProfile, steps: Sequence[MeasuredStep], dtype: str
) -> list[float]:
    """``step_time_s`` of ``profile`` for every step, seconds."""
    return [step_time_s(s.spec, profile, s.batch_size, s.kv_len, dtype) for s in steps]


def _with_terms(
    base: HardwareProfile, names: Sequence[str], values: Sequence[float], dtype: str
) -> HardwareProfile:
    changes: dict[str, object] = {}
    for name, value in zip(names, values, strict=True):
        if name in _PER_DTYPE:
            changes[name] = {**getattr(base, name), dtype: value}
        else:
            changes[name] = value
    return replace(base, **changes)


def _start(base: HardwareProfile, name: str, dtype: str, steps_s: Sequence[float]) -> float:
    """A starting value of a term: the base profile's, else from the measured step times (the
    floor at the shortest step, so that it starts where it matters; overheads at a tenth of the
    median step)."""
    if name == "peak_flops_per_s":
        return base.peak_for(dtype)
    if name == "attention_peak_flops_per_s":
        return base.attention_peak_for(dtype)
    if name == "kv_bandwidth_bytes_per_s":
        return base.kv_bandwidth
    value = getattr(base, name)
    if value > 0:
        return value
    return min(steps_s) if name == "latency_floor_s" else 0.1 * float(np.median(steps_s))


def evaluate_fit(
    profile: HardwareProfile, steps: Sequence[MeasuredStep], dtype: str, source: str
) -> ProfileFit:
    """``profile`` checked against ``steps``: its predictions, errors, and ``fit`` filled in."""
    predicted = predict_steps(profile, steps, dtype)
    errors = [float(p / s.step_s - 1) for p, s in zip(predicted, steps, strict=True)]
    summary = {
        **profile.fit,
        "source": source,
        "rows": len(steps),
        "max_abs_rel_error": round(float(max(abs(e) for e in errors)), 4),
        "rms_rel_error": round(math.sqrt(sum(e * e for e in errors) / len(errors)), 4),
    }
    return ProfileFit(replace(profile, fit=summary), list(steps), predicted, errors)


def fit_profile(
    steps: Sequence[MeasuredStep],
    base: HardwareProfile,
    name: str,
    free: Sequence[str],
    dtype: str,
    source: str,
) -> ProfileFit:
    """Fit the ``free`` terms of ``base`` to measured steps (least squares on relative error).

    Rates (bandwidths, peak) are fitted as their inverses (seconds per byte or FLOP) and every
    term is kept non-negative, so the fitted step time is a sum and max of non-negative lines.
    A term the steps cannot tell apart from another (e.g. the peak when every shape's FLOPs and
    KV bytes grow together with the batch) should be held at the base profile's value.

    Args:
        steps: measured steps (at least as many as free terms).
        base: the profile whose other terms are kept (e.g. a datasheet or probe profile).
        name: the fitted profile's name.
        free: names from ``TERMS`` to fit.
        dtype: the dtype the steps ran in (bytes per element, which peak).
        source: one line saying where the steps come from (kept in ``profile.fit``).

    Returns:
        A ProfileFit with the residuals of every step.

    Raises:
        ValueError: on an unknown term or fewer steps than free terms.
    """
    unknown = sorted(set(free) - set(TERMS))
    if unknown:
        raise ValueError(f"cannot fit {unknown}; terms are {TERMS}")
    if len(steps) < len(free):
        raise ValueError(f"{len(steps)} steps cannot fit {len(free)} terms")
    measured = np.array([s.step_s for s in steps])
    start = [_start(base, n, dtype, measured) for n in free]
    # parametrise by seconds (per byte / FLOP for rates) relative to the start: all O(1)
    seconds_0 = np.array([1 / v if n in _RATES else v for n, v in zip(free, start, strict=True)])

    def profile_at(x: np.ndarray) -> HardwareProfile:
        seconds = x * seconds_0
        values = [
            1 / max(t, 1e-300) if n in _RATES else t for n, t in zip(free, seconds, strict=True)
        ]
        return _with_terms(base, free, values, dtype)

    def residuals(x: np.ndarray) -> np.ndarray:
        return np.array(predict_steps(profile_at(x), steps, dtype)) / measured - 1

    lower = [1e-6 if n in _RATES else 0.0 for n in free]
    solution = least_squares(
        residuals, np.ones(len(free)), bounds=(lower, np.inf), x_scale="jac", method="trf"
    )
    profile = replace(profile_at(solution.x), name=name, fit={"fitted": list(free)})
    return evaluate_fit(profile, steps, dtype, source)


def read_decode_table(
    path: str | Path = H100_TABLE, step_mode: str = "cuda_graph"
) -> list[MeasuredStep]:
    """The measured steps of a decode table (the H100 table's columns) in one step mode.

    ``step_ms`` was timed at the mean context ``prompt_tokens + new_tokens / 2``, which is the
    step's KV length.
    """
    steps = []
    with Path(path).open() as handle:
        for row in csv.DictReader(handle):
            if row["step_mode"] != step_mode:
                continue
            spec = H100_SHAPES[row["shape"]]
            kv_len = int(row["prompt_tokens"]) + int(row["new_tokens"]) // 2
            steps.append(
                MeasuredStep(
                    spec,
                    int(row["batch"]),
                    kv_len,
                    float(row["step_ms"]) / 1e3,
                    f"{row['shape']} B={row['batch']}",
                )
            )
    return steps


H100_FREE = ("bandwidth_bytes_per_s", "kv_bandwidth_bytes_per_s", "latency_floor_s")


def fit_h100(steps: Sequence[MeasuredStep] | None = None) -> ProfileFit:
    """``h100_measured``: weight and KV bandwidth and the latency floor fitted to H100 steps.

    The peak is held at the matmul ceiling measured on that GPU: on one shape FLOPs and KV bytes
    both grow with the batch, so the steps alone cannot tell the two apart.

    Args:
        steps: default all ``cuda_graph`` rows of the shipped table.
    """
    base = HardwareProfile("h100_measured", 3.0e12, {"bf16": H100_PEAK_BF16}, memory_bytes=80e9)
    rows = read_decode_table() if steps is None else list(steps)
    source = (
        "LLaMA-3.2-1B and Surefire-1B decode on one H100 80GB HBM3, T_in 4096, T_out 1024, "
        "batch 1-256, one CUDA graph per step (2026-11-23)"
    )
    return fit_profile(rows, base, "h100_measured", H100_FREE, "bf16", source)
