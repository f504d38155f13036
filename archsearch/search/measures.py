"""The two measures of a shape in Algorithm 1 (arXiv 2510.18245) besides the law: decode
throughput I(P) (roofline, or measured where a ``throughput.json`` matches) and measured losses of
trained runs (for the GQA search, since the law has no GQA term). Pure: no torch.

Measured throughput on CPU is ranked by process CPU time, not wall clock: wall-clock tokens/s fall
when other processes share the cores, so a ranking by them (and the picks) would change with the
machine's load.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from archsearch.arch import ArchError, ArchSpec
from archsearch.records import RunRecord, ThroughputRecord
from archsearch.records.throughput import CPU_TIME_MEDIAN, MEASURES, WALL_MEDIAN, BatchThroughput
from archsearch.search.space import spec_key
from archsearch.throughput.hardware import HardwareProfile
from archsearch.throughput.roofline import estimate_decode

SpecKey = tuple[Any, ...]


@dataclass(frozen=True)
class DecodeSetting:
    """The inference-efficiency measure I(P): decode tokens/s at one batch size and protocol."""

    profile: HardwareProfile
    batch_size: int = 64
    prompt_tokens: int = 4096
    new_tokens: int = 1024
    dtype: str = "bf16"

    def describe(self) -> str:
        return (
            f"{self.profile.name} {self.dtype}, batch {self.batch_size}, "
            f"T_in {self.prompt_tokens}, T_out {self.new_tokens}"
        )


@dataclass(frozen=True)
class Speed:
    """Decode throughput of one shape: tokens/s, ``"roofline"`` or ``"measured"``, whether
    weights plus KV cache fit the device (None: unknown), and for a measured shape the slowest
    and fastest timed repeat (tokens/s, same measure; None for the roofline)."""

    tokens_per_s: float
    source: str
    fits_memory: bool | None
    tokens_per_s_min: float | None = None
    tokens_per_s_max: float | None = None


class ThroughputModel:
    """Roofline decode throughput, replaced by a measured one where a record matches.

    A ``throughput.json`` matches a shape when its arch, T_in, T_out, dtype and a measured batch
    size equal the setting's; the median over its timed repeats is used, by ``measure``:

    - ``"auto"`` (default): ``"cpu_time_median"`` when every matching batch has process CPU
      times (CPU measurements), else ``"wall_median"`` (GPUs, vLLM; with a note when a CPU record
      is among them, e.g. one written before CPU times were recorded).
    - ``"cpu_time_median"``: tokens/s over process CPU time (blind to other processes sharing the
      cores, so the ranking does not change with load); every matching record must have them.
    - ``"wall_median"``: tokens/s over wall-clock time.

    Attributes:
        measure: the measure that ranked the measured shapes (None: no record matched).
        notes: why ``"auto"`` fell back to wall clock, if it did.
    """

    def __init__(
        self,
        setting: DecodeSetting,
        records: Iterable[ThroughputRecord] = (),
        measure: str = "auto",
    ) -> None:
        if measure != "auto" and measure not in MEASURES:
            raise ValueError(f"throughput measure {measure!r}; choose auto or one of {MEASURES}")
        self.setting = setting
        matched: dict[SpecKey, BatchThroughput] = {}
        on_cpu = False
        for rec in records:
            if (rec.prompt_tokens, rec.new_tokens, rec.dtype) != (
                setting.prompt_tokens,
                setting.new_tokens,
                setting.dtype,
            ):
                continue
            for batch in rec.batches:
                if batch.batch_size == setting.batch_size:
                    matched[spec_key(ArchSpec.from_dict(rec.arch))] = batch
                    on_cpu |= rec.device == "cpu"
        without_cpu = sum(b.cpu_time_tokens_per_s is None for b in matched.values())
        self.notes: list[str] = []
        if measure == "auto":
            measure = CPU_TIME_MEDIAN if matched and not without_cpu else WALL_MEDIAN
            if without_cpu and on_cpu:
                self.notes.append(
                    f"{without_cpu} of {len(matched)} measured shapes have no CPU-time figures "
                    "(GPU records, or CPU records older than throughput schema 2): every measured "
                    "shape is ranked by wall clock, which changes with the machine's load"
                )
        elif measure == CPU_TIME_MEDIAN and without_cpu:
            raise ValueError(
                f"{without_cpu} matching throughput records have no CPU-time figures (GPU or "
                "older records): rank by wall_median or measure them again"
            )
        self.measure = measure if matched else None
        self.measured: dict[SpecKey, tuple[float, float, float]] = {
            key: rates for key, b in matched.items() if (rates := b.rates(measure)) is not None
        }

    def __call__(self, spec: ArchSpec) -> Speed:
        s = self.setting
        estimate = estimate_decode(
            spec, s.profile, s.batch_size, s.prompt_tokens, s.new_tokens, s.dtype
        )
        measured = self.measured.get(spec_key(spec))
        if measured is not None:
            return Speed(measured[0], "measured", estimate.fits_memory, *measured[1:])
        return Speed(estimate.tokens_per_s, "roofline", estimate.fits_memory)


def records_at(
    records: Iterable[RunRecord], train_tokens: int, rel_tol: float = 0.02
) -> Iterator[tuple[SpecKey, RunRecord]]:
    """``(spec_key, record)`` of completed runs trained on ``train_tokens`` (+-rel_tol).

    Records whose ``arch`` is not a full ArchSpec are skipped.
    """
    for rec in records:
        if rec.status != "completed" or abs(rec.train_tokens / train_tokens - 1) > rel_tol:
            continue
        try:
            yield spec_key(ArchSpec.from_dict(rec.arch)), rec
        except (ArchError, TypeError):
            continue


def measured_losses(
    records: Iterable[RunRecord], train_tokens: int, rel_tol: float = 0.02
) -> dict[SpecKey, float]:
    """Mean ``final_val_loss`` per shape of the runs of ``records_at``."""
    losses: dict[SpecKey, list[float]] = {}
    for key, rec in records_at(records, train_tokens, rel_tol):
        losses.setdefault(key, []).append(rec.final_val_loss)
    return {k: float(np.mean(v)) for k, v in losses.items()}
