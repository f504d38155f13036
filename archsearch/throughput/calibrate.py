"""``python -m archsearch.throughput.calibrate``: fit this machine's roofline profile and cache it.

Times the decode loop on the probe shapes (``probe.calibrate_profile``), fits the profile, prints
its terms and every probe's residual, and caches it (``hardware.calibration_path``) under this
device's key, where ``python -m archsearch.throughput``, the search and the study find it.

Examples:
    python -m archsearch.throughput.calibrate                  # CPU, fp32, eager, 1 thread
    python -m archsearch.throughput.calibrate --device cuda    # bf16, one CUDA graph per step
"""

from __future__ import annotations

import argparse

import torch

from archsearch.throughput.decode import resolve_device, resolve_dtype, resolve_step_mode
from archsearch.throughput.hardware import HardwareProfile, store_profile
from archsearch.throughput.probe import calibrate_profile
from archsearch.throughput.runner import device_key


def describe_profile(profile: HardwareProfile, dtype: str) -> str:
    """The profile's terms in one line, in the units they are usually quoted in."""
    p = profile
    return (
        f"weights {p.bandwidth_bytes_per_s / 1e9:.2f} GB/s, KV {p.kv_bandwidth / 1e9:.2f} GB/s, "
        f"peak {p.peak_for(dtype) / 1e9:.1f} GFLOP/s (attention "
        f"{p.attention_peak_for(dtype) / 1e9:.1f}), step {p.step_overhead_s * 1e3:.3f} ms + layer "
        f"{p.layer_overhead_s * 1e3:.3f} ms, floor {p.latency_floor_s * 1e3:.3f} ms, "
        f"{'overlapping' if p.overlap else 'in turn'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument("--dtype", default="auto", help="auto (bf16 on CUDA, fp32 on CPU)")
    parser.add_argument("--mode", default="auto", help="decode step mode (see throughput.compile)")
    parser.add_argument("--threads", type=int, default=1, help="CPU intra-op threads")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    mode = resolve_step_mode(args.mode, device)
    fit = calibrate_profile(device, dtype, mode, repeats=args.repeats)
    for label, predicted, error in zip(
        [s.label for s in fit.steps], fit.predicted_s, fit.rel_errors, strict=True
    ):
        print(f"{label:<44} predicted {predicted * 1e3:8.3f} ms/step  {error:+.1%}")
    print(describe_profile(fit.profile, dtype))
    print({k: v for k, v in fit.profile.fit.items() if k != "source"})
    path = store_profile(device_key(device, dtype, mode), fit.profile)
    print(f"cached as {device_key(device, dtype, mode)!r} in {path}")


if __name__ == "__main__":
    main()
