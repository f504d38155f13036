"""Measure one architecture's decode throughput and write ``throughput.json``. Imports torch.

``run_throughput(cfg, out_dir)`` is what ``python -m archsearch.throughput`` calls; it is plain
Python, callable from tests and a shell.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import asdict, replace
from pathlib import Path

import torch

from archsearch.arch import ArchSpec, describe
from archsearch.config import resolve_arch
from archsearch.records.schema import RECORD_FILE
from archsearch.records.throughput import (
    ThroughputRecord,
    write_throughput_record,
)
from archsearch.throughput.config import DecodeConfig, ThroughputRunConfig
from archsearch.throughput.decode import (
    BatchTiming,
    measure_decode,
    resolve_device,
    resolve_dtype,
    resolve_step_mode,
)
from archsearch.throughput.hardware import (
    MEASURED,
    HardwareProfile,
    cached_profile,
    calibration_key,
    get_profile,
    profile_for_device,
    store_profile,
)
from archsearch.throughput.roofline import estimate_decode


def resolve_spec(cfg: ThroughputRunConfig) -> ArchSpec:
    """The measured shape: ``resolve_arch`` with the budget used only to size derived shapes.

    Nothing is trained, so an explicit shape (d_ff and heads given) is measured at its own N
    whatever the budget preset says.
    """
    budget = cfg.budget
    if None not in (cfg.model.d_ff, cfg.model.n_heads, cfg.model.n_kv_heads):
        budget = replace(budget, n_params=None)
    return resolve_arch(cfg.model, budget, cfg.vocab_size).spec


def device_key(device: torch.device, dtype: str, mode: str) -> str:
    """This device's ``calibration_key`` (CPU: with torch's current thread count)."""
    if device.type == "cuda":
        return calibration_key(torch.cuda.get_device_name(device), dtype, mode, None)
    return calibration_key(device.type, dtype, mode, torch.get_num_threads())


def use_threads(protocol: DecodeConfig) -> None:
    """Run with the protocol's CPU thread count (null keeps torch's), before measuring or
    looking up a calibration: the cached profile is keyed by the thread count."""
    if protocol.num_threads is not None:
        torch.set_num_threads(protocol.num_threads)


def calibrate_device(device: torch.device, dtype: str, mode: str) -> HardwareProfile:
    """Calibrate a profile on ``device`` now (``probe.calibrate_profile``) and cache it."""
    from archsearch.throughput.probe import calibrate_profile

    datasheet = (
        profile_for_device(torch.cuda.get_device_name(device)) if device.type == "cuda" else None
    )
    key = device_key(device, dtype, mode)
    print(f"calibrating the decode roofline for {key} (about a minute; cached after)", flush=True)
    profile = calibrate_profile(device, dtype, mode, base=datasheet).profile
    store_profile(key, profile)
    return profile


def resolve_profile(
    name: str | None, device: torch.device, dtype: str, mode: str
) -> HardwareProfile | None:
    """The roofline profile for the predictions stored beside the measurements.

    Args:
        name: null (no prediction); "auto": this machine's cached calibration for the device,
            dtype and step mode, else on CUDA the measured profile of the device (an H100 in bf16
            with CUDA-graph steps: ``h100_measured``) or its datasheet one, else a calibration
            made now (and cached);
            "calibrate": calibrate now (and cache); or a profile name (``get_profile``).
    """
    if name is None:
        return None
    if name not in ("auto", "calibrate"):
        return get_profile(name)
    if name == "auto":
        cached = cached_profile(device_key(device, dtype, mode))
        if cached is not None:
            return cached
        if device.type == "cuda":
            datasheet = profile_for_device(torch.cuda.get_device_name(device))
            if datasheet is not None and (dtype, mode) == ("bf16", "cuda_graph"):
                return MEASURED.get(datasheet.name, datasheet)  # fitted in that setting
            if datasheet is not None:
                return datasheet
    return calibrate_device(device, dtype, mode)


def _measure(
    spec: ArchSpec, protocol: DecodeConfig, device: torch.device, dtype: str
) -> tuple[list[BatchTiming], str]:
    if protocol.backend == "vllm":
        from archsearch.throughput.vllm_backend import measure_decode_vllm

        return measure_decode_vllm(spec, protocol), "vllm"
    if protocol.backend != "torch":
        raise ValueError(f"throughput.backend={protocol.backend!r}; choose torch or vllm")
    mode = resolve_step_mode(protocol.compile, device)
    return measure_decode(spec, protocol, device, dtype, mode), mode


def _run_id(dest: Path) -> str:
    record = dest / RECORD_FILE
    if record.exists():
        return str(json.loads(record.read_text()).get("run_id", dest.name))
    return dest.name


def run_throughput(cfg: ThroughputRunConfig, out_dir: str | Path) -> ThroughputRecord:
    """Measure, predict, and write ``throughput.json`` into ``cfg.run_dir`` or ``out_dir``.

    Args:
        cfg: the typed config.
        out_dir: where to write when ``cfg.run_dir`` is null (the Hydra output directory).

    Returns:
        The written ThroughputRecord.
    """
    protocol = cfg.throughput
    use_threads(protocol)
    spec = resolve_spec(cfg)
    device = resolve_device(cfg.device)
    dtype = resolve_dtype(protocol.dtype, device)
    timings, mode = _measure(spec, protocol, device, dtype)
    profile = resolve_profile(protocol.profile, device, dtype, mode)
    batches = []
    for timing in timings:
        estimate = None
        if profile is not None:
            estimate = estimate_decode(
                spec, profile, timing.batch_size, protocol.prompt_tokens, protocol.new_tokens, dtype
            )
        batches.append(timing.throughput(protocol.new_tokens, estimate))
    dest = Path(cfg.run_dir) if cfg.run_dir else Path(out_dir)
    record = ThroughputRecord(
        run_id=_run_id(dest),
        arch=spec.to_dict(),
        counts=describe(spec),
        prompt_tokens=protocol.prompt_tokens,
        new_tokens=protocol.new_tokens,
        batch_sizes=list(protocol.batch_sizes),
        repeats=protocol.repeats,
        warmup=protocol.warmup,
        dtype=dtype,
        device=torch.cuda.get_device_name(device) if device.type == "cuda" else str(device),
        backend=protocol.backend,
        step_mode=mode,
        batches=batches,
        roofline_profile=profile.to_dict() if profile else None,
        created_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        config=asdict(cfg),
    )
    write_throughput_record(dest, record)
    return record
