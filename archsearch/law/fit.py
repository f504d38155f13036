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
from archsearch.law.result import DOMAIN_COLUMNS, FitResult, LOpt

PAPER_R_RANGE = (0.5, 5.0)  # Sec. 4, arXiv 2510.18245


def make_l_opt(data: LawData, kind: str, fitter: str | None = None, delta: float = 1e-3) -> LOpt:
    """An L_opt model from ``data``: the best observed loss per (N, D) group, or a Chinchilla law
    (Hoffmann et al. 2022, Eq. 2) fitted on all of ``data`` with the given fitter (None: the
    Chinchilla form's default)."""
    if kind == "best_observed":
        return LOpt(kind, table=best_observed(data))
    if kind == "chinchilla":
        form = get_form("chinchilla")
        opt = run_fitter(form, data, fitter or form.default_fitter, delta)
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
    fitter: str | None = None,
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
    fitter: str | None = None,
    l_opt: str | LOpt = "best_observed",
    delta: float = 1e-3,
    r_range: tuple[float, float] | None = PAPER_R_RANGE,
    top_k: int | None = None,
    n_bootstrap: int = 0,
    bootstrap_unit: str = "auto",
    seed: int = 0,
    source: str = "",
) -> FitResult:
    """Fit a law form and (optionally) bootstrap it.

    Every loss must be finite and positive (the bad row is named). The result records its
    validity domain (the x, r, N and D ranges of the rows used) and ``warnings`` from
    ``check_fit``.

    Args:
        data: the table (``from_records`` / ``from_csv``).
        form: registered form name.
        fitter: ``"lm"`` (the paper's Levenberg-Marquardt) or ``"huber"`` (on log loss); None:
            the form's default (Huber for ``chinchilla``, LM for the others), as on the command
            line.
        l_opt: for conditional forms: ``"best_observed"``, ``"chinchilla"`` or a given LOpt.
        delta: Huber threshold in log-loss units.
        r_range: keep ``r_min <= r <= r_max`` for forms that use r; None keeps every row.
        top_k: starts refined (see ``run_fitter``); default 8 for LM, 16 for Huber.
        n_bootstrap: resamples for the intervals (0: none).
        bootstrap_unit: what is resampled: ``"auto"``, ``"row"``, ``"run"`` or ``"shape"``
            (``LawData.bootstrap_groups``); the unit used is recorded in the settings.
        seed: bootstrap RNG seed.
        source: where the data came from, recorded in the settings.

    Returns:
        The FitResult with metrics on the data used (after filtering).
    """
    law = get_form(form)
    fitter = fitter or law.default_fitter
    data.check_losses()
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
    result.domain = domain_of(used)
    if n_bootstrap > 0:
        groups, unit = used.bootstrap_groups(bootstrap_unit)
        thetas = bootstrap_thetas(law, used, opt.theta, fitter, delta, n_bootstrap, seed, groups)
        samples = np.column_stack(list(law.to_values(thetas).values()))
        result.bootstrap = samples.tolist()
        result.intervals = bootstrap_intervals(law, samples)
        result.settings["bootstrap_unit"] = unit
        result.settings["bootstrap_groups"] = len(np.unique(groups))
    result.warnings = check_fit(result, used)
    return result


def domain_of(data: LawData) -> dict[str, list[float]]:
    """The validity domain of a fit: ``[min, max]`` of x, r, N and D over the rows with values."""
    out = {}
    for name in DOMAIN_COLUMNS:
        values = getattr(data, name)
        values = values[np.isfinite(values)]
        if len(values):
            out[name] = [float(values.min()), float(values.max())]
    return out


def domain_grid(result: FitResult, data: LawData, n: int = 9) -> LawData:
    """Every row of ``data`` at each point of an ``n x n`` geometric grid over the law's x and r
    domain (forms that read x and r), else the rows themselves: where a law must hold."""
    law = get_form(result.form)
    if not {"x", "r"} <= set(law.columns) or not {"x", "r"} <= set(result.domain):
        return data
    xs, rs = (np.geomspace(*result.domain[k], n) for k in ("x", "r"))
    xx, rr = (a.ravel() for a in np.meshgrid(xs, rs))
    cols = {k: np.repeat(v, len(xx)) for k, v in data.columns().items()}
    cols["x"], cols["r"] = np.tile(xx, len(data)), np.tile(rr, len(data))
    return LawData.from_columns(**cols)


def check_fit(result: FitResult, data: LawData) -> list[str]:
    """What makes a law unfit to search with, in words (empty: nothing found).

    Checked: R^2 < 0 on ``data``; a non-positive predicted loss anywhere on a grid over the
    domain (``domain_grid``); no interior optimum of the architecture terms (a fitted
    coefficient with the wrong sign: the loss keeps falling towards an edge of x or r, so a
    search's pick would sit on the edge of its grid).

    Args:
        result: the law, with its ``domain``.
        data: the rows it was fitted on, L_opt attached.
    """
    out = []
    r2 = metrics(data.loss, result.predict_data(data))["r2"]
    if r2 < 0:
        out.append(f"R^2 = {r2:.3g} < 0: the law predicts its own data worse than their mean")
    grid = domain_grid(result, data)
    pred = result.predict_data(grid)
    bad = ~(np.isfinite(pred) & (pred > 0))
    if bad.any():
        i = int(np.argmin(np.where(np.isfinite(pred), pred, -np.inf)))
        at = ", ".join(f"{k} {getattr(grid, k)[i]:.4g}" for k in ("N", "D", "x", "r"))
        out.append(
            f"non-positive predicted loss inside the domain: {pred[i]:.4g} at {at} "
            f"({bad.sum()} of {len(pred)} grid points)"
        )
    for name, value in sorted(result.optimum.items()):
        if not np.isfinite(value):
            out.append(
                f"no interior optimum in {name}: the fitted {name} terms keep falling towards an "
                f"edge, so a search's pick would sit on the edge of its {name} range"
            )
    return out


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
