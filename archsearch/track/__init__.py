"""Metric trackers: ``metrics.jsonl`` in the run directory is the source of truth; others mirror it.

``make_tracker(cfg, run_dir)`` returns an object with ``log(row)``, ``summary(record)`` and
``close()``. ``kind``: ``none`` (record.json only), ``jsonl`` (metrics.jsonl), ``wandb``
(metrics.jsonl mirrored to wandb, ``archsearch.track.wandb_tracker``; wandb imported only then).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from archsearch.config import TrackerConfig
from archsearch.records import METRICS_FILE, append_jsonl, read_jsonl, write_jsonl_atomic


class Tracker(Protocol):
    def log(self, row: dict[str, Any]) -> None: ...
    def summary(self, record: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


class NullTracker:
    """Keeps nothing beyond record.json."""

    def log(self, row: dict[str, Any]) -> None:
        pass

    def summary(self, record: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


class JsonlTracker(NullTracker):
    """Appends each row to ``metrics.jsonl``; on resume drops rows past the checkpoint's step."""

    def __init__(self, run_dir: Path, resume_step: int) -> None:
        self.path = run_dir / METRICS_FILE
        if self.path.exists():
            kept = [row for row in read_jsonl(self.path) if row.get("step", 0) <= resume_step]
            write_jsonl_atomic(self.path, kept)  # always: also drops a torn last line

    def log(self, row: dict[str, Any]) -> None:
        append_jsonl(self.path, row)


def make_tracker(cfg: TrackerConfig, run_dir: Path, resume_step: int = 0) -> Tracker:
    """The tracker ``cfg.kind`` names, writing into ``run_dir``."""
    if cfg.kind == "none":
        return NullTracker()
    if cfg.kind == "jsonl":
        return JsonlTracker(run_dir, resume_step)
    if cfg.kind == "wandb":
        from archsearch.track.wandb_tracker import WandbTracker

        return WandbTracker(cfg, run_dir, resume_step)
    raise ValueError(f"tracker.kind={cfg.kind!r} is unknown: use none, jsonl or wandb")


__all__ = ["JsonlTracker", "NullTracker", "Tracker", "make_tracker"]
