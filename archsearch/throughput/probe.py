"""Calibrate a roofline profile on the current machine from timed decode steps. Torch.

The project's own decode loop (``decode.Decoder``, the lean step) is timed on probe shapes chosen
so that each term of ``roofline.step_time_s`` dominates somewhere: shallow and deep models with
almost no bytes (fixed costs per step and per layer), wide models (weight bandwidth), many KV heads
over long prompts at batch 2-8 (KV bandwidth, attention), batch 16 (dense compute). The terms are
then fitted to the steps (``calibration.fit_profile``). On a CPU, bandwidth depends on whether the
bytes stay in the caches, so the CPU probes move 1-70 MB a step, like the shapes the CPU study
and benchmarks decode; far larger shapes are extrapolations.

Robust to a shared machine: each probe is prefilled once and its T_out steps are timed many times,
the probes interleaved in rounds (round-robin, so a burst of load hits all of them alike), on CPU
in process CPU time (``time.process_time``: blind to time the process waits for a core, though not
to other processes sharing the caches and memory bus). Each probe's time is taken relative to its
round's geometric mean, so load that slows a whole round cancels (``round_normalized``), and the
median over rounds is fitted. The spread over rounds is recorded in the profile's ``fit``.
"""

from __future__ import annotations

import math
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from archsearch.arch import ArchSpec
from archsearch.throughput.calibration import MeasuredStep, ProfileFit, fit_profile
from archsearch.throughput.decode import Decoder, build_model, synchronize
from archsearch.throughput.hardware import HardwareProfile

CPU_FREE = (
    "bandwidth_bytes_per_s",
    "kv_bandwidth_bytes_per_s",
    "peak_flops_per_s",
    "attention_peak_flops_per_s",
    "step_overhead_s",
    "layer_overhead_s",
)
CUDA_FREE = ("bandwidth_bytes_per_s", "kv_bandwidth_bytes_per_s", "latency_floor_s")


@dataclass(frozen=True)
class Probe:
    """One timed decode: ``batch_size`` rows, ``prompt_tokens`` prefilled, ``new_tokens`` steps."""

    spec: ArchSpec
    batch_size: int
    prompt_tokens: int
    new_tokens: int = 8

    @property
    def kv_len(self) -> int:
        """Mean KV length of its steps (step j attends over ``T_in + j`` keys)."""
        return self.prompt_tokens + (self.new_tokens - 1) // 2

    @property
    def label(self) -> str:
        s = self.spec
        return (
            f"d{s.d_model} L{s.n_layers} h{s.n_heads}/{s.n_kv_heads} ff{s.d_ff} "
            f"B{self.batch_size} T{self.prompt_tokens}"
        )


def _spec(
    d_model: int, n_layers: int, heads: int, kv_heads: int, head_dim: int, d_ff: int
) -> ArchSpec:
    return ArchSpec(d_model, n_layers, heads, kv_heads, head_dim, d_ff, 1024, name="probe")


CPU_PROBES = (
    Probe(_spec(64, 2, 4, 2, 16, 128), 1, 16),  # fixed cost per step
    Probe(_spec(64, 8, 4, 2, 16, 128), 1, 16),  # ... and per layer
    Probe(_spec(384, 2, 12, 4, 32, 1536), 1, 16),  # weights
    Probe(_spec(256, 4, 8, 2, 32, 1024), 1, 16),
    Probe(_spec(512, 2, 8, 2, 64, 2048), 1, 16),
    Probe(_spec(768, 2, 12, 4, 64, 2048), 1, 16),
    Probe(_spec(128, 2, 8, 8, 32, 256), 8, 1024),  # KV cache and attention
    Probe(_spec(128, 2, 8, 8, 32, 256), 2, 1024),
    Probe(_spec(128, 4, 8, 1, 16, 512), 8, 1024),
    Probe(_spec(256, 4, 16, 16, 32, 512), 8, 512),
    Probe(_spec(256, 4, 16, 16, 32, 512), 4, 1024),
    Probe(_spec(128, 4, 24, 6, 16, 256), 1, 64),
    Probe(_spec(512, 2, 8, 2, 64, 2048), 16, 16),  # dense compute
    Probe(_spec(384, 4, 12, 2, 32, 512), 8, 64),
    Probe(_spec(256, 4, 8, 2, 32, 768), 4, 256),  # a bit of everything
    Probe(_spec(256, 4, 8, 8, 32, 768), 8, 512),
    Probe(_spec(192, 4, 8, 4, 32, 768), 8, 256),
)
CUDA_PROBES = (
    Probe(_spec(1024, 4, 16, 4, 64, 4096), 1, 64),
    Probe(_spec(2048, 4, 32, 8, 64, 8192), 1, 64),
    Probe(_spec(1024, 4, 16, 16, 64, 4096), 16, 2048),
    Probe(_spec(1024, 4, 16, 16, 64, 4096), 64, 2048),
    Probe(_spec(2048, 4, 32, 8, 64, 8192), 64, 1024),
    Probe(_spec(1024, 4, 16, 4, 64, 4096), 128, 2048),
)


def time_steps(
    probes: Sequence[Probe],
    device: torch.device,
    dtype: str,
    mode: str,
    repeats: int = 9,
    seed: int = 0,
) -> list[list[float]]:
    """Per-step seconds of every probe over ``repeats`` interleaved timings (each the mean of its
    ``new_tokens`` steps), after one warm-up round; process CPU time on CPU, wall on CUDA."""
    clock = time.process_time if device.type == "cpu" else time.perf_counter
    runs = []
    for probe in probes:
        model = build_model(probe.spec, device, dtype, seed)
        decoder = Decoder(model, probe.batch_size, probe.prompt_tokens, probe.new_tokens, mode)
        prompts = torch.randint(
            probe.spec.vocab_size, (probe.batch_size, probe.prompt_tokens), device=device
        )
        with torch.inference_mode():
            decoder.prefill(prompts)
        synchronize(device)
        runs.append((decoder, prompts[:, -1:]))
    times: list[list[float]] = [[] for _ in probes]
    for round_ in range(repeats + 1):
        for i, (decoder, last) in enumerate(runs):
            seconds = decoder.generate(last, clock)[1] / decoder.new_tokens
            if round_:  # the first round warms up
                times[i].append(seconds)
    return times


def round_normalized(times: Sequence[Sequence[float]]) -> tuple[list[float], list[float]]:
    """Per probe, the median over rounds of its time relative to the round's geometric mean,
    scaled by the median round; and the spread of those ratios, ``(max - min) / median``.

    Args:
        times: per probe, one time per round (``time_steps``), all probes timed in each round.
    """
    rounds = list(zip(*times, strict=True))
    means = [math.exp(statistics.fmean(math.log(t) for t in r)) for r in rounds]
    scale = statistics.median(means)
    medians, spreads = [], []
    for probe_times in times:
        ratios = [t / m for t, m in zip(probe_times, means, strict=True)]
        middle = statistics.median(ratios)
        medians.append(middle * scale)
        spreads.append((max(ratios) - min(ratios)) / middle)
    return medians, spreads


def calibrate_profile(
    device: torch.device,
    dtype: str,
    mode: str = "none",
    probes: Sequence[Probe] | None = None,
    repeats: int = 9,
    base: HardwareProfile | None = None,
    name: str | None = None,
) -> ProfileFit:
    """A profile for ``device`` fitted to decode steps timed now (a few seconds on a CPU).

    Args:
        device: where to measure.
        dtype: a key of ``DTYPES``; the peak is stored under this name.
        mode: decode step mode (see ``decode.STEP_MODES``).
        probes: default ``CPU_PROBES`` or ``CUDA_PROBES``.
        repeats: timed rounds over all probes (the median is fitted).
        base: profile whose terms are kept where not fitted (on CUDA: the datasheet peak, which
            is fitted too when the base has none for ``dtype``).
        name: default ``"<device type>_calibrated"``.

    Returns:
        The fit; the profile's ``fit`` records the probes' spread, threads and machine.
    """
    probes = list(probes or (CPU_PROBES if device.type == "cpu" else CUDA_PROBES))
    times = time_steps(probes, device, dtype, mode, repeats)
    return fit_times(probes, times, device, dtype, mode, base, name)


def fit_times(
    probes: Sequence[Probe],
    times: Sequence[Sequence[float]],
    device: torch.device,
    dtype: str,
    mode: str,
    base: HardwareProfile | None = None,
    name: str | None = None,
) -> ProfileFit:
    """Fit a profile to each probe's round-normalized median step (``round_normalized`` of
    ``time_steps``); arguments as ``calibrate_profile``'s."""
    on_cpu = device.type == "cpu"
    repeats = len(times[0])
    medians, spreads = round_normalized(times)
    steps = [
        MeasuredStep(p.spec, p.batch_size, p.kv_len, t, p.label)
        for p, t in zip(probes, medians, strict=True)
    ]
    raw_spreads = [(max(t) - min(t)) / statistics.median(t) for t in times]
    start = base or HardwareProfile("start", 1e10)
    free = CPU_FREE if on_cpu else CUDA_FREE
    if on_cpu:  # one thread runs every op in turn
        start = replace(start, overlap=False)
    if dtype not in start.peak_flops_per_s:  # no datasheet peak to hold: fit it too
        peaks = {**start.peak_flops_per_s, dtype: 1e11 if on_cpu else 1e14}
        start = replace(start, peak_flops_per_s=peaks)
        free = tuple(dict.fromkeys([*free, "peak_flops_per_s"]))
    threads = torch.get_num_threads() if on_cpu else None
    where = platform.processor() or platform.machine() if on_cpu else torch.cuda.get_device_name()
    source = (
        f"{len(probes)} probe shapes x {repeats} interleaved repeats of the decode loop on "
        f"{platform.node()} ({where}, {dtype}, step mode {mode}"
        + (f", {threads} thread(s), process CPU time)" if on_cpu else ", wall time)")
    )
    fit = fit_profile(
        steps,
        start,
        name or f"{device.type}_calibrated",
        free,
        dtype,
        source,
    )
    record = {
        **fit.profile.fit,
        "median_spread_over_repeats": round(statistics.median(spreads), 4),
        "max_spread_over_repeats": round(max(spreads), 4),
        "median_raw_spread_over_repeats": round(statistics.median(raw_spreads), 4),
        "repeats": repeats,
        "calibrated_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    return replace(fit, profile=replace(fit.profile, fit=record))
