"""Inference throughput: the roofline model (pure) and the measured decode benchmark (torch).

This package's namespace imports only pure modules (no torch), so search and the sweeper can use
the roofline: ``from archsearch.throughput import estimate_decode, profile_for_hardware``. Fitting
a profile to measured steps is ``archsearch.throughput.calibration`` (numpy, scipy); the benchmark
lives in ``archsearch.throughput.decode`` and ``runner``; the entry points are
``python -m archsearch.throughput`` and ``python -m archsearch.throughput.calibrate``.
"""

from archsearch.throughput.config import DecodeConfig, ThroughputRunConfig
from archsearch.throughput.hardware import (
    BYTES_PER_ELEMENT,
    H100_MEASURED,
    LOCAL,
    LOCAL_CPU_KEY,
    PROFILES,
    HardwareProfile,
    ProfileChoice,
    cached_profile,
    calibration_key,
    calibration_path,
    get_profile,
    profile_for_device,
    profile_for_hardware,
    store_profile,
)
from archsearch.throughput.roofline import (
    DecodeEstimate,
    estimate_decode,
    estimate_prefill_s,
    fixed_cost_s,
    memory_bytes,
    step_bytes,
    step_flops,
    step_time_s,
    weight_bytes,
)

__all__ = [
    "BYTES_PER_ELEMENT",
    "H100_MEASURED",
    "LOCAL",
    "LOCAL_CPU_KEY",
    "PROFILES",
    "DecodeConfig",
    "DecodeEstimate",
    "HardwareProfile",
    "ProfileChoice",
    "ThroughputRunConfig",
    "cached_profile",
    "calibration_key",
    "calibration_path",
    "estimate_decode",
    "estimate_prefill_s",
    "fixed_cost_s",
    "get_profile",
    "memory_bytes",
    "profile_for_device",
    "profile_for_hardware",
    "step_bytes",
    "step_flops",
    "step_time_s",
    "store_profile",
    "weight_bytes",
]
