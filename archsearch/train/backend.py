"""What the training loop asks of a backend (the torch model, or megatron-core's).

The loop (``archsearch.train.loop``) owns the cadence of evaluation, logging and checkpoints, the
progress bar, the metrics rows, divergence, resume and the record; a backend owns the model and
its optimizer, one optimizer step over a global batch, evaluation, and saving and loading its
state. Every process of a run calls the same methods in the same order with the same rows; only
the process whose ``world.writes`` is true writes files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import torch

Batches = list[tuple[torch.Tensor, torch.Tensor]]
# What a checkpoint carries besides the backend's state: (step, elapsed seconds, that step's row)
Progress = tuple[int, float, dict[str, float]]


class Backend(Protocol):
    def step(self, inputs: torch.Tensor, targets: torch.Tensor, lr: float) -> tuple[float, float]:
        """One optimizer step at learning rate ``lr`` over the global batch (every process passes
        all its rows); returns (mean training loss, gradient norm before clipping), the same on
        every process."""
        ...

    def evaluate(self, batches: Batches) -> float:
        """Mean next-token loss in nats over the fixed validation windows, on every process."""
        ...

    def save(self, run_dir: Path, fingerprint: str, progress: Progress) -> None:
        """Checkpoint the model, the optimizer and ``progress`` into ``run_dir``."""
        ...

    def load(self, run_dir: Path, fingerprint: str) -> Progress | None:
        """Restore the latest checkpoint in ``run_dir``; its progress, or None to start fresh."""
        ...

    def close(self) -> None:
        """Release what the backend set up beyond the process group."""
        ...
