"""Batches from token arrays for training and evaluation (torch).

The training batch at step s depends only on (seed, s), so a resumed run sees exactly the batches an
uninterrupted one would. Evaluation always reads the same leading windows of the validation split.
"""

from __future__ import annotations

import numpy as np
import torch

from archsearch.errors import DataError


def train_batch(
    tokens: np.ndarray, batch_size: int, seq_len: int, seed: int, step: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows: inputs and next-token targets, each (batch_size, seq_len) int64."""
    if len(tokens) <= seq_len + 1:
        raise DataError(
            f"training split has {len(tokens):,} tokens, too few for train.seq_len={seq_len}"
        )
    rng = np.random.default_rng([seed, step])
    starts = rng.integers(0, len(tokens) - seq_len - 1, size=batch_size)
    windows = np.stack([tokens[s : s + seq_len + 1] for s in starts]).astype(np.int64)
    batch = torch.from_numpy(windows)
    return batch[:, :-1], batch[:, 1:]


def eval_batches(
    tokens: np.ndarray, batch_size: int, seq_len: int, max_tokens: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Contiguous, non-overlapping validation windows covering up to ``max_tokens`` targets."""
    n_windows = min(max_tokens // seq_len, (len(tokens) - 1) // seq_len)
    if n_windows < 1:
        raise DataError(
            f"validation split has {len(tokens):,} tokens, too few for train.seq_len={seq_len}: "
            "raise data.val_fraction or train.eval_tokens"
        )
    flat = np.asarray(tokens[: n_windows * seq_len + 1], dtype=np.int64)
    inputs = torch.from_numpy(flat[:-1].reshape(n_windows, seq_len).copy())
    targets = torch.from_numpy(flat[1:].reshape(n_windows, seq_len).copy())
    return list(zip(inputs.split(batch_size), targets.split(batch_size), strict=True))
