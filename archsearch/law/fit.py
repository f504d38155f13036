"""``fit_law``: fit one law form to a LawData table, with L_opt, filters and bootstrap. Pure.

Example:
    >>> from archsearch.law import fit_law, from_csv
    >>> data = from_csv("runs.csv", columns={"N": "n_params", "D": "tokens"})
    >>> result = fit_law(data, "multiplicative", l_opt="best_observed", n_bootstrap=200)
    >>> result.params, result.optimum, result.intervals
"""

from __future__ import annotations

from typing import Any

import numpy as np

from archsearch.law.bootstrap import bootstrap_intervals, bootstrap_thetas
from archsearch.law.data import LawData, best_observed
from archsearch.law.forms import LawForm, get_form
from archsearch.law.optimize import DEFAULT_TOP_K, run_fitter
from archsearch.law.result import FitResult, LOpt

PAPER_R_RANGE = (0.5, 5.0)  # Sec. 4, arXiv 2510.18245


def make_l_opt(data: LawData, kind: str, fitter: str = "lm", delta: float = 1e-3) -> LOpt:
    """An L_opt model from ``data``: the best observed loss per (N, D) group, or a Chinchilla law
    (Hoffmann et al. 2022, Eq. 2) fitted on all of ``data`` with the given fitter."""
    if kind == "best_observed":
        return LOpt(kind, table=best_observed(data))
    if kind == "chinchilla":
        form = get_form("chinchilla")
        opt = run_fitter(form, data, fitter, delta)
        return LOpt(kind, params={k: float(v) for k, v in form.to_values(opt.theta).items()})
    raise ValueError(f"l_opt must be 'best_observed', 'chinchilla' or an LOpt, got {kind!r}")


def filter_r_for(data: LawData, form: LawForm, r_range: tuple[float, float] | None) -> LawData:
    """Keep ``r_min <= r <= r_max`` when the form uses r and a range is given (the paper's
    0.5 <= r <= 5 by default); otherwise every row."""
    return data.filter_r(*r_range) if form.uses_r and r_range is not None else data


def prepare(
    data: LawData,
    form: LawForm,
    l_opt: str | LOpt = "best_observed",
    r_range: tuple[float, float] | None = PAPER_R_RANGE,
    fitter: str = "lm",
    delta: float = 1e-3,
) -> tuple[LawData, LOpt | None]:
    """Apply the r filter (forms that use r) and attach L_opt (forms that use it)."""
    data = filter_r_for(data, form, r_range)
    if "l_opt" not in form.columns:
        return data, None
    model = l_opt if isinstance(l_opt, LOpt) else make_l_opt(data, l_opt, fitter, delta)
    return data.with_l_opt(model(data)), model


def fit_law(
    data: LawData,
    form: str = "multiplicative",
    *,
    fitter: str = "lm",
    l_opt: str | LOpt = "best_observed",
    delta: float = 1e-3,
    r_range: tuple[float, float] | None = PAPER_R_RANGE,
    top_k: int | None = None,
    n_bootstrap: int = 0,
    seed: int = 0,
    source: str = "",
) -> FitResult:
    """Fit a law form and (optionally) bootstrap it.

    Args:
        data: the table (``from_records`` / ``from_csv``).
        form: registered form name.
        fitter: ``"lm"`` (the paper's Levenberg-Marquardt) or ``"huber"`` (on log loss).
        l_opt: for conditional forms: ``"best_observed"``, ``"chinchilla"`` or a given LOpt.
        delta: Huber threshold in log-loss units.
        r_range: keep ``r_min <= r <= r_max`` for forms that use r; None keeps every row.
        top_k: starts refined (see ``run_fitter``); default 8 for LM, 16 for Huber.
        n_bootstrap: resamples for the intervals (0: none).
        seed: bootstrap RNG seed.
        source: where the data came from, recorded in the settings.

    Returns:
        The FitResult with metrics on the data used (after filtering).
    """
    law = get_form(form)
    used, l_opt_model = prepare(data, law, l_opt, r_range, fitter, delta)
    if len(used) < len(law.params):
        raise ValueError(f"{form}: {len(used)} rows cannot determine {len(law.params)} parameters")
    opt = run_fitter(law, used, fitter, delta, top_k=top_k)
    result = FitResult.from_params(form, law.to_values(opt.theta), l_opt_model)
    result.fitter, result.objective = fitter, opt.objective
    result.settings = {
        "delta": delta,
        "r_range": list(r_range) if (law.uses_r and r_range) else None,
        "top_k": top_k or DEFAULT_TOP_K[fitter],
        "n_starts": opt.n_starts,
        "n_refined": opt.n_refined,
        "n_bootstrap": n_bootstrap,
        "seed": seed,
        "source": source,
        "rows_in": len(data),
    }
    result.metrics = metrics(used.loss, result.predict_data(used))
    result.data = {k: v.tolist() for k, v in used.columns().items()}
    if n_bootstrap > 0:
        thetas = bootstrap_thetas(law, used, opt.theta, fitter, delta, n_bootstrap, seed)
        samples = np.column_stack(list(law.to_values(thetas).values()))
        result.bootstrap = samples.tolist()
        result.intervals = bootstrap_intervals(law, samples)
    return result


def metrics(observed: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """MSE (nats^2), R^2 and mean relative error (%) of predictions."""
    resid = predicted - observed
    total = np.sum((observed - observed.mean()) ** 2)
    return {
        "mse": float(np.mean(resid**2)),
        "r2": float(1 - np.sum(resid**2) / total) if total > 0 else float("nan"),
        "mean_abs_rel_err_pct": float(100 * np.mean(np.abs(resid) / observed)),
        "n": int(len(observed)),
    }
