"""Which budgets and widths can build a derived shape: the advice behind every shape error. Pure.

The one rule (DESIGN.md section 2; ``shape_for``): at width ``d_model`` the budget's attention share
per layer, ``N / (n_layers (1 + r))``, must hold whole heads, ``2 d_model head_dim (g + 1)`` per KV
head. So a width needs about

    N >= n_layers (1 + r) (g + 1) head_dim d_model     (half a KV head rounds up to one)

and a budget N builds widths up to about ``N / (n_layers (1 + r) (g + 1) head_dim)``. Rounding
``d_ff`` and whole heads then moves r and N a little (within ``shape_for``'s tolerances). The
functions here scan for the exact bounds, so an error can say which budget or width works.
"""

from __future__ import annotations

import math
from typing import Any

from archsearch.arch.shapes import shape_for
from archsearch.arch.spec import ArchError

# Budgets are scanned on a 2% geometric grid of 3-significant-digit values, up to 10^13.
_N_STEP = 1.02
_N_LIMIT = 10**13


def _round_sig(value: float, digits: int = 3) -> int:
    exponent = max(0, math.floor(math.log10(value)) - digits + 1)
    return int(math.ceil(value / 10**exponent) * 10**exponent)


def builds(n_params: int, d_model: int, knobs: dict[str, Any]) -> bool:
    """Whether ``shape_for(n_params, d_model=d_model, **knobs)`` finds a shape within tolerance."""
    try:
        shape_for(n_params=n_params, d_model=d_model, **knobs)
    except ArchError:
        return False
    return True


def width_bound_n_params(d_model: int, knobs: dict[str, Any]) -> float:
    """The rule's lower bound on N: ``n_layers (1 + r) (g + 1) head_dim d_model``."""
    return (
        knobs["n_layers"]
        * (1 + knobs["r_mlp_attn_target"])
        * (knobs["gqa_group"] + 1)
        * knobs["head_dim"]
        * d_model
    )


def smallest_n_params(d_model: int, knobs: dict[str, Any]) -> int | None:
    """The smallest budget N (3 significant digits) at which ``d_model`` builds; None if none does
    below 10^13.

    Args:
        knobs: ``shape_for``'s keyword arguments other than ``n_params`` and ``d_model``.
    """
    n = _round_sig(max(1000.0, 0.9 * width_bound_n_params(d_model, knobs)))
    while n < _N_LIMIT:
        if builds(n, d_model, knobs):
            return n
        n = _round_sig(n * _N_STEP)
    return None


def widest_d_model(n_params: int, knobs: dict[str, Any]) -> int | None:
    """The widest ``d_model`` (a multiple of ``d_model_multiple``) that builds at ``n_params``."""
    multiple = knobs.get("d_model_multiple", 64)
    bound = n_params / width_bound_n_params(1, knobs)
    for d_model in range(multiple * math.ceil(1.2 * bound / multiple), 0, -multiple):
        if builds(n_params, d_model, knobs):
            return d_model
    return None
