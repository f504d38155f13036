"""Checkpoints written atomically into the run directory, and the latest one found for resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from archsearch.records import atomic_writer

CHECKPOINT_FILE = "checkpoint.pt"


def save_checkpoint(run_dir: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``run_dir/checkpoint.pt`` via a temporary file and an atomic rename."""
    with atomic_writer(run_dir / CHECKPOINT_FILE, "wb") as f:
        torch.save(state, f)


def load_checkpoint(run_dir: Path) -> dict[str, Any] | None:
    """The run directory's checkpoint, or None when the run starts fresh."""
    path = run_dir / CHECKPOINT_FILE
    if not path.exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)
