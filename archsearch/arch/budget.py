"""Training budgets: N and D, and the steps that spend them. Pure: no torch."""

from __future__ import annotations

import math

from archsearch.errors import ArchError


def train_tokens_for(n_params: int, tokens_per_param: float) -> int:
    """D = tokens_per_param x N (Chinchilla-optimal is about 20)."""
    if tokens_per_param <= 0:
        raise ArchError(f"budget.tokens_per_param must be > 0, got {tokens_per_param}")
    return int(round(tokens_per_param * n_params))


def steps_for(train_tokens: int, tokens_per_step: int) -> int:
    """Optimizer steps that spend ``train_tokens`` (rounded up, so D is never undershot)."""
    if tokens_per_step <= 0:
        raise ArchError(f"tokens per step must be > 0, got {tokens_per_step}")
    if train_tokens <= 0:
        raise ArchError(
            f"the budget gives {train_tokens:,} training tokens: set budget.train_tokens or "
            "budget.tokens_per_param above 0"
        )
    return math.ceil(train_tokens / tokens_per_step)
