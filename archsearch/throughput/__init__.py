"""Inference throughput: the roofline model (pure) and the measured decode benchmark (torch).

This package's namespace imports only pure modules (no torch), so search and the sweeper can use
the roofline: ``from archsearch.throughput import estimate_decode, get_profile``. The benchmark
lives in ``archsearch.throughput.decode`` and ``runner``; the entry point is
``python -m archsearch.throughput``.
"""

from archsearch.throughput.config import DecodeConfig, ThroughputRunConfig
from archsearch.throughput.hardware import (
    BYTES_PER_ELEMENT,
    PROFILES,
    HardwareProfile,
    calibrate,
    get_profile,
    profile_for_device,
)
from archsearch.throughput.roofline import (
    DecodeEstimate,
    estimate_decode,
    estimate_prefill_s,
    memory_bytes,
    step_bytes,
    step_flops,
    step_time_s,
    weight_bytes,
)

__all__ = [
    "BYTES_PER_ELEMENT",
    "PROFILES",
    "DecodeConfig",
    "DecodeEstimate",
    "HardwareProfile",
    "ThroughputRunConfig",
    "calibrate",
    "estimate_decode",
    "estimate_prefill_s",
    "get_profile",
    "memory_bytes",
    "profile_for_device",
    "step_bytes",
    "step_flops",
    "step_time_s",
    "weight_bytes",
]
