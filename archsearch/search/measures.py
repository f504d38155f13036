"""The two measures of a shape in Algorithm 1 (arXiv 2510.18245) besides the law: decode
throughput I(P) (roofline, or measured where a ``throughput.json`` matches) and measured losses of
trained runs (for the GQA search, since the law has no GQA term). Pure: no torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from archsearch.arch import ArchError, ArchSpec
from archsearch.records import RunRecord, ThroughputRecord
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
    """Decode throughput of one shape: tokens/s, ``"roofline"`` or ``"measured"``, and whether
    weights plus KV cache fit the device (None: unknown)."""

    tokens_per_s: float
    source: str
    fits_memory: bool | None


class ThroughputModel:
    """Roofline decode throughput, replaced by a measured one where a record matches.

    A ``throughput.json`` matches a shape when its arch, T_in, T_out, dtype and a measured batch
    size equal the setting's; its median tokens/s is used.
    """

    def __init__(self, setting: DecodeSetting, records: Iterable[ThroughputRecord] = ()) -> None:
        self.setting = setting
        self.measured: dict[SpecKey, float] = {}
        for rec in records:
            if (rec.prompt_tokens, rec.new_tokens, rec.dtype) != (
                setting.prompt_tokens,
                setting.new_tokens,
                setting.dtype,
            ):
                continue
            for batch in rec.batches:
                if batch.batch_size == setting.batch_size:
                    self.measured[spec_key(ArchSpec.from_dict(rec.arch))] = batch.tokens_per_s

    def __call__(self, spec: ArchSpec) -> Speed:
        s = self.setting
        estimate = estimate_decode(
            spec, s.profile, s.batch_size, s.prompt_tokens, s.new_tokens, s.dtype
        )
        measured = self.measured.get(spec_key(spec))
        if measured is not None:
            return Speed(measured, "measured", estimate.fits_memory)
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
