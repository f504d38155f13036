"""Bootstrap confidence intervals for parameters, predictions and the optimum (x*, r*). Pure.

Whole groups of rows (``LawData.bootstrap_groups``: runs, shapes, or single rows) are resampled
with replacement and the law refitted, starting from the full-data optimum and
the best point of the start grid (a resample's optimum is near the full-data one, so two starts
suffice). L_opt is held fixed: intervals are conditional on it.
"""

from __future__ import annotations

import numpy as np

from archsearch.law.data import LawData
from archsearch.law.forms import LawForm
from archsearch.law.optimize import run_fitter


def bootstrap_thetas(
    form: LawForm,
    data: LawData,
    theta0: np.ndarray,
    fitter: str,
    delta: float,
    n_bootstrap: int,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """Fit-space parameters refitted on ``n_bootstrap`` resamples of ``data``: ``(B, P)``.

    Args:
        form: the law.
        data: rows used for the full fit (L_opt attached).
        theta0: full-data optimum in fit space, ``(P,)``.
        fitter: ``"lm"`` or ``"huber"``.
        delta: Huber threshold (log-loss units).
        n_bootstrap: number of resamples.
        seed: RNG seed.
        groups: a key per row; a resample draws as many groups as there are, with replacement,
            and takes every row of each (None: rows one by one).
    """
    rng = np.random.default_rng(seed)
    starts = np.vstack([theta0, form.start_grid()])
    keys = np.arange(len(data)) if groups is None else np.asarray(groups)
    members = [np.flatnonzero(keys == k) for k in np.unique(keys)]
    thetas = []
    for _ in range(n_bootstrap):
        drawn = rng.integers(0, len(members), len(members))
        sample = data.select(np.concatenate([members[i] for i in drawn]))
        thetas.append(run_fitter(form, sample, fitter, delta, starts=starts, top_k=1).theta)
    return np.array(thetas)


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> np.ndarray:
    """Equal-tailed percentile interval over axis 0, ignoring NaN: ``(2, ...)`` low and high."""
    tail = 50 * (1 - level)
    return np.nanpercentile(samples, [tail, 100 - tail], axis=0)


def bootstrap_intervals(
    form: LawForm, samples: np.ndarray, level: float = 0.95
) -> dict[str, list[float]]:
    """Intervals for every parameter and, where the form has one, the optimum (``x*``, ``r*``).

    Args:
        form: the law.
        samples: natural parameter values ``(B, P)`` in ``form.params`` order.
        level: coverage of the equal-tailed interval.
    """
    out = {
        name: percentile_interval(samples[:, i], level).tolist()
        for i, name in enumerate(form.param_names)
    }
    values = {name: samples[:, i] for i, name in enumerate(form.param_names)}
    for name, opt in (form.optimum(values) or {}).items():
        if np.any(np.isfinite(opt)):
            out[f"{name}*"] = percentile_interval(opt, level).tolist()
    return out
