"""Metric trackers: ``metrics.jsonl`` in the run directory is the source of truth; others mirror it.

``make_tracker(cfg, run_dir)`` returns an object with ``log(row)``, ``summary(record)`` and
``close()``. ``kind``: ``none`` (record.json only), ``jsonl`` (metrics.jsonl), ``wandb``
(metrics.jsonl mirrored to wandb, ``archsearch.track.wandb_tracker``; wandb imported only then).
"""

from __future__ import annotations

from pathlib import Path

from archsearch.config import TrackerConfig
from archsearch.track.jsonl import JsonlTracker, NullTracker, Tracker


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
