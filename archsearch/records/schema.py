"""RunRecord: what one training run leaves in its run directory (``record.json``). Pure.

Local records are the source of truth: fitting, search and the sweeper read them, never wandb.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archsearch.arch import FLOPS_CONVENTION, PARAMS_CONVENTION
from archsearch.records.io import (
    RecordError,
    dataclass_fields_in,
    files_below,
    read_json_in,
    write_json_atomic,
)

RECORD_FILE = "record.json"
METRICS_FILE = "metrics.jsonl"
SCHEMA_VERSION = 1
log = logging.getLogger(__name__)


@dataclass
class RunRecord:
    """One finished training run. Counts follow ``params_convention`` and ``flops_convention``."""

    run_id: str
    arch: dict[str, Any]
    n_params: int
    total_params: int
    embedding_params: int
    r_mlp_attn: float
    d_over_sqrt_n: float
    gqa_group: int
    train_tokens: int
    train_flops: float
    steps: int
    final_val_loss: float | None  # None only when the run diverged
    final_train_loss: float | None
    wall_time_s: float
    tokens_per_s: float  # trained tokens / wall time (evaluation and checkpoints included)
    seed: int
    backend: str
    device: str
    dataset: str
    git_rev: str = "unknown"
    unigram_entropy: float | None = None
    params_convention: str = PARAMS_CONVENTION
    flops_convention: str = FLOPS_CONVENTION
    model_flops_per_token: int | None = None  # arch.train_flops_per_token at the run's seq_len
    achieved_flops_per_s: float | None = None  # over the timed training steps
    mfu: float | None = None  # achieved / the device's dense peak (None where unknown, e.g. CPU)
    status: str = "completed"  # "diverged": the loss became non-finite at diverged_at_step
    diverged_at_step: int | None = None
    last_finite_loss: float | None = None  # the training loss of the step before divergence
    created_at: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.n_params <= 0 or self.train_tokens <= 0:
            raise RecordError(f"run {self.run_id}: n_params and train_tokens must be positive")
        if self.status == "diverged":
            if self.diverged_at_step is None:
                raise RecordError(f"run {self.run_id}: a diverged run needs diverged_at_step")
            return
        for name in ("final_val_loss", "final_train_loss"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise RecordError(
                    f"run {self.run_id}: {name} must be a finite positive number, got {value}"
                )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        return cls(**dataclass_fields_in(cls, data, "record"))


def write_record(run_dir: str | Path, record: RunRecord) -> Path:
    """Write ``record.json`` atomically into ``run_dir``; returns its path."""
    path = Path(run_dir) / RECORD_FILE
    write_json_atomic(path, record.to_dict())
    return path


def read_record(path: str | Path) -> RunRecord:
    """Read a ``record.json`` (or the one inside a run directory)."""
    path, data = read_json_in(path, RECORD_FILE)
    try:
        return RunRecord.from_dict(data)
    except (TypeError, RecordError) as e:
        raise RecordError(f"{path}: not a valid record ({e}); delete it to train again") from e


def scan_records(sweep_dir: str | Path) -> list[RunRecord]:
    """Every completed ``record.json`` below ``sweep_dir``, in path order; the others (runs
    that diverged) are skipped and counted in a warning."""
    records = [read_record(p) for p in files_below(sweep_dir, RECORD_FILE)]
    skipped = [f"{r.run_id} ({r.status})" for r in records if r.status != "completed"]
    if skipped:
        log.warning(
            "skipped %d runs that did not complete under %s: %s",
            len(skipped),
            sweep_dir,
            ", ".join(skipped),
        )
    return [r for r in records if r.status == "completed"]
