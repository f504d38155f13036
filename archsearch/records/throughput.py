"""ThroughputRecord: decode throughput of one architecture (``throughput.json``). Pure: no torch.

Written by ``python -m archsearch.throughput`` beside a training run's ``record.json`` or on its
own. Throughput is generated tokens per second of the generation phase, ``B * T_out / decode_s``,
per timed repeat; the median and the min/max over repeats are stored with the raw times. Two
measures: wall clock (every device), and on CPU the process's CPU time (``decode_cpu_s``), which
other processes sharing the cores do not inflate. Schema 2 added the CPU-time fields; a schema-1
record loads with them None.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archsearch.arch import ArchError, ArchSpec
from archsearch.records.io import (
    RecordError,
    dataclass_fields_in,
    files_below,
    read_json_in,
    write_json_atomic,
)

THROUGHPUT_FILE = "throughput.json"
THROUGHPUT_SCHEMA_VERSION = 2
WALL_MEDIAN = "wall_median"
CPU_TIME_MEDIAN = "cpu_time_median"
MEASURES = (WALL_MEDIAN, CPU_TIME_MEDIAN)


def _positive(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _rates(generated: int, seconds: list[float]) -> tuple[float, float, float]:
    """Median, min and max over repeats of ``generated / seconds``."""
    rates = [generated / s for s in seconds]
    return statistics.median(rates), min(rates), max(rates)


def _is_wall(measure: str) -> bool:
    """Whether ``measure`` is the wall clock (else process CPU time); refuses other names."""
    if measure not in MEASURES:
        raise ValueError(f"throughput measure {measure!r}; choose one of {MEASURES}")
    return measure == WALL_MEDIAN


@dataclass
class BatchThroughput:
    """Measurements at one batch size B (times in seconds, throughputs in tokens/s).

    Attributes:
        tokens_per_s: median over repeats of ``B * T_out / decode_s`` (wall clock).
        tokens_per_s_min: slowest repeat; ``tokens_per_s_max``: fastest.
        end_to_end_tokens_per_s: median of ``B * T_out / (prefill_s + decode_s)``.
        prefill_s, decode_s: per-repeat wall times of prefill and generation.
        roofline_tokens_per_s: the roofline's decode prediction on this device (or null).
        roofline_fraction: ``tokens_per_s / roofline_tokens_per_s``.
        prefill_cpu_s, decode_cpu_s: per-repeat process CPU times of the same phases (CPU only;
            null on GPUs and in schema-1 records).
        cpu_time_tokens_per_s: median over repeats of ``B * T_out / decode_cpu_s``;
            ``cpu_time_tokens_per_s_min``/``_max``: slowest and fastest repeat (null with them).
    """

    batch_size: int
    tokens_per_s: float
    tokens_per_s_min: float
    tokens_per_s_max: float
    end_to_end_tokens_per_s: float
    prefill_s: list[float]
    decode_s: list[float]
    roofline_tokens_per_s: float | None = None
    roofline_end_to_end_tokens_per_s: float | None = None
    roofline_fraction: float | None = None
    prefill_cpu_s: list[float] | None = None
    decode_cpu_s: list[float] | None = None
    cpu_time_tokens_per_s: float | None = None
    cpu_time_tokens_per_s_min: float | None = None
    cpu_time_tokens_per_s_max: float | None = None

    @classmethod
    def from_times(
        cls,
        batch_size: int,
        new_tokens: int,
        prefill_s: list[float],
        decode_s: list[float],
        roofline_tokens_per_s: float | None = None,
        roofline_end_to_end_tokens_per_s: float | None = None,
        prefill_cpu_s: list[float] | None = None,
        decode_cpu_s: list[float] | None = None,
    ) -> BatchThroughput:
        """Summarise per-repeat times of generating ``new_tokens`` (T_out) for B rows: wall
        times, and process CPU times where measured (both lists or neither)."""
        generated = batch_size * new_tokens
        median, low, high = _rates(generated, decode_s)
        end_to_end = [generated / (p + d) for p, d in zip(prefill_s, decode_s, strict=True)]
        cpu = _rates(generated, decode_cpu_s) if decode_cpu_s is not None else (None, None, None)
        return cls(
            batch_size=batch_size,
            tokens_per_s=median,
            tokens_per_s_min=low,
            tokens_per_s_max=high,
            end_to_end_tokens_per_s=statistics.median(end_to_end),
            prefill_s=list(prefill_s),
            decode_s=list(decode_s),
            roofline_tokens_per_s=roofline_tokens_per_s,
            roofline_end_to_end_tokens_per_s=roofline_end_to_end_tokens_per_s,
            roofline_fraction=median / roofline_tokens_per_s if roofline_tokens_per_s else None,
            prefill_cpu_s=None if prefill_cpu_s is None else list(prefill_cpu_s),
            decode_cpu_s=None if decode_cpu_s is None else list(decode_cpu_s),
            cpu_time_tokens_per_s=cpu[0],
            cpu_time_tokens_per_s_min=cpu[1],
            cpu_time_tokens_per_s_max=cpu[2],
        )

    def rates(self, measure: str) -> tuple[float, float, float] | None:
        """(median, min, max) decode tokens/s over repeats by ``measure`` (one of ``MEASURES``:
        wall clock or process CPU time); None where that measure was not recorded."""
        prefix = "tokens_per_s" if _is_wall(measure) else "cpu_time_tokens_per_s"
        median = getattr(self, prefix)
        if median is None:
            return None
        return median, getattr(self, f"{prefix}_min"), getattr(self, f"{prefix}_max")

    def decode_times(self, measure: str) -> list[float] | None:
        """Per-repeat generation seconds by ``measure`` (one of ``MEASURES``); None where that
        measure was not recorded."""
        return self.decode_s if _is_wall(measure) else self.decode_cpu_s

    def validate(self, where: str, repeats: int) -> None:
        """Raise RecordError naming the first bad field (``where`` prefixes the field name)."""
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise RecordError(f"{where}.batch_size must be a positive integer: {self.batch_size}")
        cpu = [
            "prefill_cpu_s",
            "decode_cpu_s",
            "cpu_time_tokens_per_s",
            "cpu_time_tokens_per_s_min",
            "cpu_time_tokens_per_s_max",
        ]
        if len({getattr(self, name) is None for name in cpu}) > 1:
            raise RecordError(f"{where}: the CPU-time fields {cpu} must be all null or all set")
        timed = [("", "prefill_s", "decode_s")]
        if self.decode_cpu_s is not None:
            timed.append(("cpu_time_", "prefill_cpu_s", "decode_cpu_s"))
        for prefix, prefill, decode in timed:
            rate = f"{prefix}tokens_per_s"
            for name in (rate, f"{rate}_min", f"{rate}_max"):
                if not _positive(getattr(self, name)):
                    raise RecordError(f"{where}.{name} must be positive: {getattr(self, name)!r}")
            if (
                not getattr(self, f"{rate}_min")
                <= getattr(self, rate)
                <= getattr(self, f"{rate}_max")
            ):
                raise RecordError(f"{where}.{rate} must lie within {rate}_min/max")
            for name in (prefill, decode):
                times = getattr(self, name)
                if not isinstance(times, list) or len(times) != repeats:
                    raise RecordError(f"{where}.{name} must list one time per repeat ({repeats})")
                if not all(_positive(t) or (name == prefill and t == 0) for t in times):
                    raise RecordError(f"{where}.{name} must hold positive seconds: {times}")
        if not _positive(self.end_to_end_tokens_per_s):
            raise RecordError(f"{where}.end_to_end_tokens_per_s must be positive")
        for name in ("roofline_tokens_per_s", "roofline_end_to_end_tokens_per_s"):
            value = getattr(self, name)
            if value is not None and not _positive(value):
                raise RecordError(f"{where}.{name} must be positive or null: {value!r}")


@dataclass
class ThroughputRecord:
    """Decode throughput of one architecture under one protocol, per batch size.

    Attributes:
        arch: ``ArchSpec.to_dict()``; ``counts``: ``archsearch.arch.describe(spec)``.
        prompt_tokens: T_in; ``new_tokens``: T_out.
        backend: "torch" or "vllm"; ``step_mode``: "none", "cuda_graph", "compile" (torch).
        roofline_profile: the HardwareProfile (as a dict) of the predictions, or null.
    """

    run_id: str
    arch: dict[str, Any]
    counts: dict[str, float | int]
    prompt_tokens: int
    new_tokens: int
    batch_sizes: list[int]
    repeats: int
    warmup: int
    dtype: str
    device: str
    backend: str
    step_mode: str
    batches: list[BatchThroughput]
    roofline_profile: dict[str, Any] | None = None
    created_at: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    schema_version: int = THROUGHPUT_SCHEMA_VERSION

    def __post_init__(self) -> None:
        where = f"throughput record {self.run_id!r}"
        try:
            ArchSpec.from_dict(self.arch)
        except (ArchError, TypeError) as e:
            raise RecordError(f"{where}: arch is not a valid ArchSpec ({e})") from e
        for name in ("prompt_tokens", "new_tokens", "repeats"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise RecordError(f"{where}: {name} must be a positive integer, got {value!r}")
        if not isinstance(self.warmup, int) or self.warmup < 0:
            raise RecordError(f"{where}: warmup must be a non-negative integer")
        if self.batch_sizes != [b.batch_size for b in self.batches]:
            raise RecordError(f"{where}: batch_sizes must match the batches' batch_size, in order")
        for i, batch in enumerate(self.batches):
            batch.validate(f"{where}: batches[{i}]", self.repeats)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ThroughputRecord:
        """Build and validate a record from its JSON form; unknown keys are ignored."""
        values = dataclass_fields_in(cls, data, "throughput record")
        try:
            values["batches"] = [BatchThroughput(**b) for b in data["batches"]]
        except TypeError as e:
            raise RecordError(f"throughput record: batches hold unexpected fields ({e})") from e
        return cls(**values)


def write_throughput_record(directory: str | Path, record: ThroughputRecord) -> Path:
    """Write ``throughput.json`` atomically into ``directory``; returns its path."""
    path = Path(directory) / THROUGHPUT_FILE
    write_json_atomic(path, record.to_dict())
    return path


def read_throughput_record(path: str | Path) -> ThroughputRecord:
    """Read a ``throughput.json`` (or the one inside a directory)."""
    return ThroughputRecord.from_dict(read_json_in(path, THROUGHPUT_FILE)[1])


def scan_throughput_records(sweep_dir: str | Path) -> list[ThroughputRecord]:
    """Every ``throughput.json`` below ``sweep_dir``, in path order."""
    return [read_throughput_record(p) for p in files_below(sweep_dir, THROUGHPUT_FILE)]
