"""Hardware profiles for the roofline, and which profile to use for a hardware name. Pure.

Datasheet figures (dense, no sparsity), checked against NVIDIA's A100 and H100/H200 datasheets:
A100-40GB SXM 1,555 GB/s and 312 TFLOP/s bf16 (no fp8 units); A100-80GB SXM 2,039 GB/s;
H100-SXM 3.35 TB/s, 989 TFLOP/s bf16, 1,979 fp8; H200 4.8 TB/s with the H100's compute.
Datasheet profiles have no fixed costs and full bandwidth for every byte, so they give bounds.

Measured profiles have the terms of ``roofline.step_time_s`` fitted to measured decode steps
(``archsearch.throughput.calibration``): ``h100_measured`` is shipped (fitted to LLaMA-3.2-1B and
Surefire-1B decode on one H100, the paper's protocol, batch 1-256, CUDA-graph steps); a machine's
own calibration (``python -m archsearch.throughput.calibrate``) is cached per machine under
``$ARCHSEARCH_CACHE`` (default ``~/.cache/archsearch``) in ``throughput/<host>.json``.
``profile_for_hardware`` says which one a hardware name gets.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BYTES_PER_ELEMENT = {"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1}
LOCAL = "local"  # the hardware name of this machine's cached calibration
# the roofline form cached calibrations were fitted with: entries of another form are ignored
CALIBRATION_FORMAT = 2


@dataclass(frozen=True)
class HardwareProfile:
    """One accelerator (or CPU) as the roofline sees it (the terms of ``roofline.step_time_s``).

    Attributes:
        name: profile key, e.g. "a100_40gb".
        bandwidth_bytes_per_s: bandwidth at which a decode step reads the weights, bytes/s.
        peak_flops_per_s: dense peak FLOP/s by dtype name ("bf16", "fp8", "fp32").
        step_overhead_s: fixed cost of one decode step that adds to its memory and compute time
            (host work the device waits for: Python, dispatch, sampling), seconds.
        memory_bytes: device memory in bytes, or None when unknown.
        kv_bandwidth_bytes_per_s: bandwidth at which a step reads the KV cache; None: as weights.
        layer_overhead_s: fixed cost per layer per step that adds (module and op dispatch).
        attention_peak_flops_per_s: FLOP/s of attention's per-head matmuls by dtype (far below
            the dense peak on a CPU); a dtype missing here uses ``peak_flops_per_s``.
        overlap: whether memory traffic and compute overlap (a GPU: the step takes the longer,
            the roofline bound) or run in turn (one CPU thread: the step takes their sum).
        latency_floor_s: the shortest a step can take whatever it moves (kernel latencies of a
            step replayed on an asynchronous device, hidden once memory traffic is longer).
        fit: how the fitted terms were obtained (source, residuals, repeats, spread); empty for
            datasheet profiles.
    """

    name: str
    bandwidth_bytes_per_s: float
    peak_flops_per_s: Mapping[str, float] = field(default_factory=dict)
    step_overhead_s: float = 0.0
    memory_bytes: float | None = None
    kv_bandwidth_bytes_per_s: float | None = None
    layer_overhead_s: float = 0.0
    latency_floor_s: float = 0.0
    attention_peak_flops_per_s: Mapping[str, float] = field(default_factory=dict)
    overlap: bool = True
    fit: Mapping[str, Any] = field(default_factory=dict)

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

    def attention_peak_for(self, dtype: str) -> float:
        """FLOP/s of attention's matmuls for ``dtype`` (the dense peak when not fitted)."""
        return self.attention_peak_flops_per_s.get(dtype) or self.peak_for(dtype)

    @property
    def kv_bandwidth(self) -> float:
        """KV-cache read bandwidth, bytes/s (the weight bandwidth when not fitted separately)."""
        return self.kv_bandwidth_bytes_per_s or self.bandwidth_bytes_per_s

    def bound(self) -> HardwareProfile:
        """This profile as a roofline bound: no fixed costs or floor, bytes at the faster
        bandwidth, every FLOP at the peak, memory and compute overlapping."""
        fastest = max(self.bandwidth_bytes_per_s, self.kv_bandwidth)
        return HardwareProfile(
            f"{self.name}_bound", fastest, self.peak_flops_per_s, memory_bytes=self.memory_bytes
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "bandwidth_bytes_per_s": self.bandwidth_bytes_per_s,
            "peak_flops_per_s": dict(self.peak_flops_per_s),
            "step_overhead_s": self.step_overhead_s,
            "memory_bytes": self.memory_bytes,
            "kv_bandwidth_bytes_per_s": self.kv_bandwidth_bytes_per_s,
            "layer_overhead_s": self.layer_overhead_s,
            "attention_peak_flops_per_s": dict(self.attention_peak_flops_per_s),
            "overlap": self.overlap,
            "latency_floor_s": self.latency_floor_s,
            "fit": dict(self.fit),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HardwareProfile:
        """The inverse of ``to_dict`` (fields missing from older records take their defaults)."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


PROFILES: dict[str, HardwareProfile] = {
    "a100_40gb": HardwareProfile("a100_40gb", 1.555e12, {"bf16": 312e12}, memory_bytes=40e9),
    "a100_80gb": HardwareProfile("a100_80gb", 2.039e12, {"bf16": 312e12}, memory_bytes=80e9),
    "h100_sxm": HardwareProfile(
        "h100_sxm", 3.35e12, {"bf16": 989e12, "fp8": 1979e12}, memory_bytes=80e9
    ),
    "h200": HardwareProfile("h200", 4.8e12, {"bf16": 989e12, "fp8": 1979e12}, memory_bytes=141e9),
}

# Fitted with ``calibration.fit_profile`` to the 10 CUDA-graph rows of ``data/h100_decode.csv``
# (peak held at the matmul ceiling measured on the same GPU, 804 TFLOP/s); the fit's residuals
# are in ``fit``. Refitting the shipped data reproduces these (a test checks it).
H100_MEASURED = HardwareProfile(
    "h100_measured",
    bandwidth_bytes_per_s=9.481e11,
    peak_flops_per_s={"bf16": 8.04e14},
    memory_bytes=80e9,
    kv_bandwidth_bytes_per_s=2.842e12,
    latency_floor_s=3.252e-3,
    fit={
        "source": "LLaMA-3.2-1B and Surefire-1B decode on one H100 80GB HBM3, T_in 4096, "
        "T_out 1024, batch 1-256, one CUDA graph per step (2026-11-23)",
        "rows": 10,
        "fitted": ["bandwidth_bytes_per_s", "kv_bandwidth_bytes_per_s", "latency_floor_s"],
        "max_abs_rel_error": 0.0345,
        "rms_rel_error": 0.0145,
    },
)

# hardware name -> the measured profile preferred over its datasheet bound
MEASURED: dict[str, HardwareProfile] = {"h100_sxm": H100_MEASURED, "h100_measured": H100_MEASURED}


def get_profile(name: str) -> HardwareProfile:
    """The profile called ``name``: a datasheet key of ``PROFILES`` or ``"h100_measured"``.

    Raises:
        ValueError: naming the known profiles.
    """
    if name == H100_MEASURED.name:
        return H100_MEASURED
    if name not in PROFILES:
        known = sorted([*PROFILES, H100_MEASURED.name])
        raise ValueError(f"unknown hardware profile {name!r}; known: {known}")
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


def calibration_key(device: str, dtype: str, step_mode: str, threads: int | None) -> str:
    """The key of one calibration in a machine's cache, e.g. ``"cpu/fp32/none/1t"``.

    Args:
        device: "cpu" or the CUDA device name; dtype, step_mode: as the decode benchmark's;
        threads: CPU intra-op threads (None on CUDA).
    """
    return "/".join([device, dtype, step_mode, f"{threads}t" if threads else "-"])


LOCAL_CPU_KEY = calibration_key("cpu", "fp32", "none", 1)  # how tests, study and search run


def calibration_path(cache_dir: str | Path | None = None) -> Path:
    """This machine's calibration file: ``<cache>/throughput/<host>.json``.

    Args:
        cache_dir: default ``$ARCHSEARCH_CACHE``, else ``~/.cache/archsearch``.
    """
    root = cache_dir or os.environ.get("ARCHSEARCH_CACHE") or "~/.cache/archsearch"
    return Path(root).expanduser() / "throughput" / f"{platform.node() or 'host'}.json"


def cached_profile(key: str, cache_dir: str | Path | None = None) -> HardwareProfile | None:
    """This machine's cached calibration under ``key`` (``calibration_key``), or None."""
    entry = _cached_entries(cache_dir).get(key)
    return HardwareProfile.from_dict(entry) if entry else None


def _cached_entries(cache_dir: str | Path | None) -> dict[str, Any]:
    path = calibration_path(cache_dir)
    if not path.is_file():
        return {}
    cached = json.loads(path.read_text())
    if cached.get("format") != CALIBRATION_FORMAT:  # fitted with another roofline form
        return {}
    return dict(cached["profiles"])


def store_profile(key: str, profile: HardwareProfile, cache_dir: str | Path | None = None) -> Path:
    """Cache ``profile`` as this machine's calibration under ``key``; returns the file."""
    path = calibration_path(cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    entries = {**_cached_entries(cache_dir), key: profile.to_dict()}
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"format": CALIBRATION_FORMAT, "profiles": entries}, indent=1))
    tmp.replace(path)
    return path


@dataclass(frozen=True)
class ProfileChoice:
    """The profile that ranks shapes for a hardware name, and where it comes from.

    Attributes:
        profile: the HardwareProfile to pass to ``estimate_decode``.
        source: "measured" (fitted to measured decode steps: shipped, or this machine's cached
            calibration) or "datasheet" (a bound: no fixed costs, full bandwidth).
        label: one line for tables and ``search.json``, e.g.
            "h100_measured (measured: LLaMA-3.2-1B and Surefire-1B decode on one H100 ...)".
    """

    profile: HardwareProfile
    source: str
    label: str

    def to_dict(self) -> dict[str, object]:
        return {"profile": self.profile.to_dict(), "source": self.source, "label": self.label}


def profile_for_hardware(
    hardware: str,
    calibration: str = LOCAL_CPU_KEY,
    cache_dir: str | Path | None = None,
    measured: bool = True,
) -> ProfileChoice:
    """The profile to rank shapes with on ``hardware``: measured when one exists, else datasheet.

    Args:
        hardware: a datasheet name ("a100_40gb", "h100_sxm", ...), "h100_measured", or
            ``"local"`` (this machine's cached calibration).
        calibration: the ``calibration_key`` looked up for ``"local"`` (default: CPU, fp32,
            eager, 1 thread).
        cache_dir: where calibrations are cached (see ``calibration_path``).
        measured: False gives the datasheet bound even where a measured profile exists.

    Returns:
        A ProfileChoice: "h100_sxm" gives ``h100_measured`` (source "measured"); a name with no
        measured profile gives its datasheet profile (source "datasheet").

    Raises:
        ValueError: for an unknown name, ``"local"`` without a cached calibration (naming the
            command that makes one), or ``"h100_measured"`` with ``measured=False``.
    """
    if hardware == LOCAL:
        profile = cached_profile(calibration, cache_dir)
        if profile is None:
            raise ValueError(
                f"no calibration {calibration!r} cached in {calibration_path(cache_dir)}: run "
                "python -m archsearch.throughput.calibrate (or pass a hardware profile name)"
            )
        return ProfileChoice(profile, "measured", _label(profile, f"calibrated, {calibration}"))
    if measured and hardware in MEASURED:
        profile = MEASURED[hardware]
        return ProfileChoice(profile, "measured", _label(profile, "measured"))
    if hardware not in PROFILES:
        raise ValueError(
            f"unknown hardware {hardware!r}; known: {sorted([*PROFILES, *MEASURED, LOCAL])}"
            + (
                " (h100_measured is a measured profile; measured=False asks for a datasheet one)"
                if hardware in MEASURED
                else ""
            )
        )
    return ProfileChoice(PROFILES[hardware], "datasheet", f"{hardware} (datasheet bound)")


def _label(profile: HardwareProfile, kind: str) -> str:
    fit = profile.fit
    detail = f"; {fit['source']}" if "source" in fit else ""
    error = fit.get("max_abs_rel_error")
    accuracy = f"; fit within {error:.0%} on {fit.get('rows')} steps" if error is not None else ""
    return f"{profile.name} ({kind}{detail}{accuracy})"
