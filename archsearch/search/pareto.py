"""Pareto front of (predicted loss, throughput): lower loss and higher throughput are better. Pure.

Step 4 of Algorithm 1, arXiv 2510.18245: the front the searched architecture is chosen from.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether ``a = (loss, tokens_per_s)`` dominates ``b``: no worse in both, better in one."""
    return a[0] <= b[0] and a[1] >= b[1] and (a[0] < b[0] or a[1] > b[1])


def pareto_front(loss: Sequence[float], tokens_per_s: Sequence[float]) -> list[int]:
    """Indices of the non-dominated points, ordered by rising loss (and rising throughput).

    Of points equal in both coordinates only the first is kept.

    Args:
        loss: predicted loss per point, nats/token.
        tokens_per_s: throughput per point, tokens/s.
    """
    loss_arr = np.asarray(loss, dtype=float)
    speed = np.asarray(tokens_per_s, dtype=float)
    # Sort by loss, ties by falling throughput (then index, lexsort is stable); sweep keeping
    # every point faster than all points of lower or equal loss seen so far.
    order = np.lexsort((-speed, loss_arr))
    front: list[int] = []
    fastest = -np.inf
    for i in order:
        if speed[i] > fastest:
            front.append(int(i))
            fastest = speed[i]
    return front
