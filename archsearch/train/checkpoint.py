"""Checkpoints in the run directory: weights-only files, written atomically, one generation kept.

``checkpoint.pt`` holds tensors and plain metadata only, so it loads with
``torch.load(weights_only=True)`` (no pickled code runs). Before a new checkpoint is written the
last one becomes ``checkpoint.prev.pt``; a kill mid-write, or a newest file that cannot be read,
falls back to it.
"""

from __future__ import annotations

import logging
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from archsearch.errors import StateError
from archsearch.records import atomic_writer

CHECKPOINT_FILE = "checkpoint.pt"
PREVIOUS_FILE = "checkpoint.prev.pt"
CHECKPOINT_FORMAT = 2  # 2: weights-only, with the run's config fingerprint
KEYS = ("format", "fingerprint", "model", "optimizer", "step", "elapsed_s", "row")
RESTART = "rerun with train.resume=restart to train from step 0"
UNREADABLE = (
    RuntimeError,
    EOFError,
    OSError,
    ValueError,
    pickle.UnpicklingError,
    zipfile.BadZipFile,
)
log = logging.getLogger(__name__)


def checkpoint_files(run_dir: Path) -> list[Path]:
    """The run directory's checkpoint files, newest first."""
    return [p for p in (run_dir / CHECKPOINT_FILE, run_dir / PREVIOUS_FILE) if p.exists()]


def save_checkpoint(run_dir: Path, state: dict[str, Any]) -> None:
    """Write ``state`` (``KEYS`` less ``format``) as ``run_dir/checkpoint.pt``, the previous one
    kept as ``checkpoint.prev.pt`` until the new one is complete on disk."""
    path = run_dir / CHECKPOINT_FILE
    if path.exists():
        path.replace(run_dir / PREVIOUS_FILE)
    with atomic_writer(path, "wb") as f:
        torch.save({"format": CHECKPOINT_FORMAT, **state}, f)


def load_checkpoint(run_dir: Path, fingerprint: str) -> dict[str, Any] | None:
    """The newest readable checkpoint of the run with config ``fingerprint``; None when the run
    starts fresh. An unreadable newest file is reported, removed, and the previous one used.

    Raises:
        StateError: no checkpoint file is readable, or one is of another format or config.
    """
    problems = []
    for path in checkpoint_files(run_dir):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except UNREADABLE as e:
            problems.append((path, first_line(e)))
            continue
        _check(path, state, fingerprint)
        for bad, why in problems:
            log.warning("%s is unreadable (%s): resuming from %s instead", bad, why, path.name)
            bad.unlink()
        return state
    if problems:
        listed = "; ".join(f"{p} ({why})" for p, why in problems)
        raise StateError(f"no readable checkpoint: {listed}: {RESTART}")
    return None


def first_line(error: BaseException) -> str:
    """``Type: the message's first line`` (torch's errors run to many lines)."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:200]}" if lines else type(error).__name__


def _check(path: Path, state: Any, fingerprint: str) -> None:
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format", "none") if isinstance(state, dict) else type(state).__name__
        raise StateError(
            f"{path} is not an archsearch checkpoint of format {CHECKPOINT_FORMAT} (found "
            f"{found}): {RESTART}, or delete it"
        )
    missing = [k for k in KEYS if k not in state]
    if missing:
        raise StateError(f"{path} lacks {missing}: {RESTART}, or delete it")
    if state["fingerprint"] != fingerprint:
        raise StateError(
            f"{path} was written by another config (fingerprint {state['fingerprint']}, this "
            f"run's {fingerprint}): give this run a new name=, or {RESTART}"
        )
