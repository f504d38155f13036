"""Hardware profiles for the roofline: memory bandwidth, dense peak FLOP/s, per-step overhead. Pure.

Datasheet figures (dense, no sparsity), checked against NVIDIA's A100 and H100/H200 datasheets:
A100-40GB SXM 1,555 GB/s and 312 TFLOP/s bf16 (no fp8 units); A100-80GB SXM 2,039 GB/s;
H100-SXM 3.35 TB/s, 989 TFLOP/s bf16, 1,979 fp8; H200 4.8 TB/s with the H100's compute.
Datasheet profiles carry no per-step overhead, so they give bounds; ``calibrate`` builds an
effective profile from measurements on the current machine (DESIGN.md section 4b measured about
3.0 TB/s and 790 TFLOP/s bf16 on an H100, i.e. 0.90 and 0.80 of the datasheet).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

BYTES_PER_ELEMENT = {"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1}


@dataclass(frozen=True)
class HardwareProfile:
    """One accelerator (or CPU) as the roofline sees it.

    Attributes:
        name: profile key, e.g. "a100_40gb".
        bandwidth_bytes_per_s: memory bandwidth in bytes/s.
        peak_flops_per_s: dense peak FLOP/s by dtype name ("bf16", "fp8", "fp32").
        step_overhead_s: fixed cost of one decode step in seconds (launches, sampling).
        memory_bytes: device memory in bytes, or None when unknown.
    """

    name: str
    bandwidth_bytes_per_s: float
    peak_flops_per_s: Mapping[str, float] = field(default_factory=dict)
    step_overhead_s: float = 0.0
    memory_bytes: float | None = None

    def peak_for(self, dtype: str) -> float:
        """Dense peak FLOP/s for ``dtype``.

        Raises:
            ValueError: when the profile has no peak for that dtype (A100 has no fp8).
        """
        if dtype not in self.peak_flops_per_s:
            raise ValueError(
                f"profile {self.name!r} has no {dtype} peak; it has {sorted(self.peak_flops_per_s)}"
            )
        return self.peak_flops_per_s[dtype]

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "bandwidth_bytes_per_s": self.bandwidth_bytes_per_s,
            "peak_flops_per_s": dict(self.peak_flops_per_s),
            "step_overhead_s": self.step_overhead_s,
            "memory_bytes": self.memory_bytes,
        }


PROFILES: dict[str, HardwareProfile] = {
    "a100_40gb": HardwareProfile("a100_40gb", 1.555e12, {"bf16": 312e12}, memory_bytes=40e9),
    "a100_80gb": HardwareProfile("a100_80gb", 2.039e12, {"bf16": 312e12}, memory_bytes=80e9),
    "h100_sxm": HardwareProfile(
        "h100_sxm", 3.35e12, {"bf16": 989e12, "fp8": 1979e12}, memory_bytes=80e9
    ),
    "h200": HardwareProfile("h200", 4.8e12, {"bf16": 989e12, "fp8": 1979e12}, memory_bytes=141e9),
}


def get_profile(name: str) -> HardwareProfile:
    """The datasheet profile called ``name`` (a key of ``PROFILES``).

    Raises:
        ValueError: naming the known profiles.
    """
    if name not in PROFILES:
        raise ValueError(f"unknown hardware profile {name!r}; known: {sorted(PROFILES)}")
    return PROFILES[name]


def profile_for_device(device_name: str) -> HardwareProfile | None:
    """The datasheet profile matching a CUDA device name, or None (e.g. H100 PCIe, CPUs).

    Args:
        device_name: as ``torch.cuda.get_device_name()`` reports it, e.g. "NVIDIA H100 80GB HBM3".
    """
    upper = device_name.upper()
    if "A100" in upper:
        return PROFILES["a100_40gb" if "40GB" in upper else "a100_80gb"]
    if "H100" in upper and "PCIE" not in upper:
        return PROFILES["h100_sxm"]
    if "H200" in upper:
        return PROFILES["h200"]
    return None


def calibrate(
    name: str,
    dtype: str,
    read_bytes: float,
    read_s: float,
    matmul_flops: float,
    matmul_s: float,
    step_overhead_s: float,
    base: HardwareProfile | None = None,
) -> HardwareProfile:
    """An effective profile from one measurement of each roofline term on the current machine.

    Effective bandwidth = ``read_bytes / read_s`` (time a weight-streaming kernel such as a
    matrix-vector product), effective peak = ``matmul_flops / matmul_s`` (a large matmul), and the
    per-step overhead is taken as measured (a decode step of a model too small to move bytes or
    FLOPs, at the depth being predicted).

    Args:
        name: name of the new profile, e.g. "cpu_calibrated".
        dtype: the dtype the matmul ran in ("fp32", "bf16", ...).
        read_bytes: bytes the streaming kernel read.
        read_s: its wall time in seconds.
        matmul_flops: FLOPs of the matmul.
        matmul_s: its wall time in seconds.
        step_overhead_s: measured per-step overhead in seconds.
        base: a profile to start from (its other dtypes' peaks and memory are kept).

    Returns:
        The calibrated HardwareProfile.
    """
    for label, value in (("read_s", read_s), ("matmul_s", matmul_s), ("read_bytes", read_bytes)):
        if not value > 0:
            raise ValueError(f"{label} must be positive, got {value}")
    if not matmul_flops > 0 or step_overhead_s < 0:
        raise ValueError("matmul_flops must be positive and step_overhead_s non-negative")
    peaks = dict(base.peak_flops_per_s) if base else {}
    peaks[dtype] = matmul_flops / matmul_s
    start = base or HardwareProfile(name, 0.0)
    return replace(
        start,
        name=name,
        bandwidth_bytes_per_s=read_bytes / read_s,
        peak_flops_per_s=peaks,
        step_overhead_s=step_overhead_s,
    )
