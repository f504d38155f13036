"""Calibrate a roofline profile on the current machine from three short probes. Torch.

Bandwidth: a matrix-vector product over a weight matrix much larger than the caches (the access
pattern of batch-1 decoding). Peak: a square matmul. Overhead: a decode step of a model too small
to move bytes or FLOPs, at the depth being predicted and in the same step mode.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from archsearch.arch import ArchSpec
from archsearch.throughput.decode import DTYPES, Decoder, build_model, synchronize
from archsearch.throughput.hardware import BYTES_PER_ELEMENT, HardwareProfile, calibrate


def _best_s(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Fastest of ``repeats`` timed calls: a bound should not absorb interference."""
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return min(times)


def measure_profile(
    device: torch.device,
    dtype: str,
    n_layers: int,
    mode: str = "none",
    name: str | None = None,
    base: HardwareProfile | None = None,
    repeats: int = 7,
) -> HardwareProfile:
    """An effective roofline profile for ``device`` measured now (about a second on a CPU).

    Args:
        device: where to measure.
        dtype: a key of ``DTYPES``; the peak is stored under this name.
        n_layers: depth of the overhead probe (use the depth you will predict).
        mode: decode step mode of the overhead probe (see ``decode.STEP_MODES``).
        name: profile name; default ``"<device type>_calibrated"``.
        base: profile whose other fields are kept (e.g. a datasheet profile).
        repeats: timed runs per probe (the fastest is used).

    Returns:
        The calibrated HardwareProfile.
    """
    torch_dtype = DTYPES[dtype]
    side = 4096 if device.type == "cpu" else 16384  # 64 MB fp32 on CPU, 512 MB bf16 on GPU
    weights = torch.randn(side, side, device=device, dtype=torch_dtype)
    vector = torch.randn(1, side, device=device, dtype=torch_dtype)
    read_s = _best_s(lambda: torch.nn.functional.linear(vector, weights), device, repeats)
    square = 1024 if device.type == "cpu" else 8192
    a = torch.randn(square, square, device=device, dtype=torch_dtype)
    matmul_s = _best_s(lambda: a @ a, device, repeats)
    tiny = ArchSpec(64, n_layers, 4, 2, 16, 64, 64, name="overhead_probe")
    new_tokens = 16
    decoder = Decoder(build_model(tiny, device, dtype, seed=0), 1, 8, new_tokens, mode)
    prompts = torch.zeros(1, 8, dtype=torch.long, device=device)
    decoder.run(prompts)
    step_s = min(decoder.run(prompts)[2] for _ in range(repeats)) / new_tokens
    return calibrate(
        name or f"{device.type}_calibrated",
        dtype,
        read_bytes=side * side * BYTES_PER_ELEMENT[dtype],
        read_s=read_s,
        matmul_flops=2 * square**3,
        matmul_s=matmul_s,
        step_overhead_s=step_s,
        base=base,
    )
