"""The two fitters: Levenberg-Marquardt least squares and multi-start Huber on log loss. Pure.

- ``fit_lm``: least squares on loss, ``scipy.optimize.least_squares(method="lm")``, the paper's
  method (arXiv 2510.18245, Sec. 4) and the one of arXiv 2501.18107 and Gadre et al.
- ``fit_huber``: sum of Huber(delta) on ``ln L - ln L_hat`` (Hoffmann et al. 2022, Sec. 3.3;
  Epoch AI, arXiv 2404.10102), L-BFGS-B from a grid of starts.

Multi-start is fast because the whole start grid is scored in one vectorised numpy call and only
the ``top_k`` best starts, plus a spread of others, are refined by scipy. Derivatives are exact
up to rounding: central differences of the form's ``predict``, evaluated for all 2P perturbed
parameter vectors in one call.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares, minimize
from scipy.special import huber

from archsearch.law.data import LawData
from archsearch.law.forms import LawForm

Cols = Mapping[str, np.ndarray]


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run with one BLAS thread. scipy's L-BFGS-B calls BLAS on 5-vectors; a multi-threaded
    OpenBLAS makes each call spin up its pool, which made the Epoch fit 10-20x slower on a busy
    2-core machine. threadpoolctl is optional: without it this is a no-op."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@dataclass(frozen=True)
class Optimum:
    """A fitted parameter vector.

    Attributes:
        theta: parameters in fit space, shape ``(P,)`` (see ``LawForm.to_values``).
        objective: the fitter's objective at ``theta`` (sum of squares / 2, or sum of Huber).
        n_starts: how many starts were scored; ``n_refined`` how many were optimised.
    """

    theta: np.ndarray
    objective: float
    n_starts: int
    n_refined: int


def predict_batch(form: LawForm, thetas: np.ndarray, cols: Cols) -> np.ndarray:
    """Predictions for many fit-space vectors ``(S, P)`` -> ``(S, n)``."""
    with np.errstate(all="ignore"):
        return np.broadcast_to(form.predict(form.to_values(thetas), cols), (len(thetas), _n(cols)))


def _n(cols: Cols) -> int:
    return len(next(iter(cols.values())))


def prediction_and_jacobian(
    form: LawForm, theta: np.ndarray, cols: Cols
) -> tuple[np.ndarray, np.ndarray]:
    """Prediction ``(n,)`` and its Jacobian ``(n, P)`` in fit space, by central differences."""
    p = len(theta)
    step = 1e-6 * np.maximum(1.0, np.abs(theta))
    shifts = np.concatenate([np.diag(step), -np.diag(step)])
    pred = predict_batch(form, np.vstack([theta, theta + shifts]), cols)
    with np.errstate(all="ignore"):
        jac = (pred[1 : p + 1] - pred[p + 1 :]) / (2 * step[:, None])
    return pred[0], jac.T


def _spread(order: np.ndarray, top_k: int) -> np.ndarray:
    """The ``top_k`` best starts plus ``top_k`` more spaced evenly through the rest of the ranking,
    so refinement also sees basins whose starting points score badly."""
    rest = order[top_k:]
    extra = (
        rest[np.linspace(0, len(rest) - 1, min(top_k, len(rest))).astype(int)]
        if len(rest)
        else rest
    )
    return np.concatenate([order[:top_k], extra])


def _best(results: list[tuple[np.ndarray, float]], n_starts: int) -> Optimum:
    theta, objective = min(results, key=lambda t: t[1])
    return Optimum(theta, float(objective), n_starts, len(results))


def fit_lm(
    form: LawForm, cols: Cols, loss: np.ndarray, starts: np.ndarray, top_k: int = 8
) -> Optimum:
    """Least squares on loss with Levenberg-Marquardt from the best-scoring starts.

    Args:
        form: the law.
        cols: data columns the form reads, each ``(n,)``.
        loss: observed loss, nats/token, ``(n,)``.
        starts: fit-space starting vectors ``(S, P)``; all are scored, ``2 * top_k`` refined.
        top_k: see ``starts``.

    Returns:
        The best optimum; objective = half the sum of squared residuals.
    """
    sse = np.nansum((predict_batch(form, starts, cols) - loss) ** 2, axis=1)
    sse[~np.isfinite(sse)] = np.inf
    results = []
    for i in _spread(np.argsort(sse), top_k):
        if not np.isfinite(sse[i]):
            continue

        def residual(theta: np.ndarray) -> np.ndarray:
            return predict_batch(form, theta[None], cols)[0] - loss

        def jacobian(theta: np.ndarray) -> np.ndarray:
            return prediction_and_jacobian(form, theta, cols)[1]

        try:
            sol = least_squares(residual, starts[i], jac=jacobian, method="lm", xtol=1e-12)
        except ValueError:  # non-finite residuals along the way
            continue
        if np.isfinite(sol.cost):
            results.append((sol.x, sol.cost))
    if not results:
        raise RuntimeError(f"{form.name}: no start converged to a finite fit")
    return _best(results, len(starts))


def huber_objective(form: LawForm, thetas: np.ndarray, cols: Cols, loss: np.ndarray, delta: float):
    """Sum of Huber(delta) on ``ln L - ln L_hat`` for every row of ``thetas (S, P)`` -> ``(S,)``;
    infinite where a prediction is not positive."""
    with np.errstate(all="ignore"):
        res = np.log(loss) - np.log(predict_batch(form, thetas, cols))
        total = huber(delta, res).sum(axis=1)
    return np.where(np.isfinite(total), total, np.inf)


def fit_huber(
    form: LawForm,
    cols: Cols,
    loss: np.ndarray,
    starts: np.ndarray,
    delta: float = 1e-3,
    top_k: int = 32,
) -> Optimum:
    """Minimise the sum of Huber(delta) on log loss with L-BFGS-B from the best-scoring starts.

    Args:
        form: the law.
        cols: data columns the form reads, each ``(n,)``.
        loss: observed loss, nats/token, ``(n,)``.
        starts: fit-space starting vectors ``(S, P)`` (e.g. Epoch AI's 4,500-point grid).
        delta: Huber threshold on log-loss residuals (1e-3 in Hoffmann et al.).
        top_k: the best ``top_k`` starts and ``top_k`` spread through the rest are refined.

    Returns:
        The best optimum; objective = sum of Huber losses.
    """
    log_loss = np.log(loss)
    scores = huber_objective(form, starts, cols, loss, delta)

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        pred, jac = prediction_and_jacobian(form, theta, cols)
        with np.errstate(all="ignore"):
            res = log_loss - np.log(pred)
        if not np.all(np.isfinite(res)):
            return np.inf, np.zeros_like(theta)
        grad = -(np.clip(res, -delta, delta) / pred) @ jac
        return float(huber(delta, res).sum()), grad

    results = []
    for i in _spread(np.argsort(scores), top_k):
        if not np.isfinite(scores[i]):
            continue
        sol = minimize(
            objective,
            starts[i],
            jac=True,
            method="L-BFGS-B",
            bounds=form.bounds(),
            options={"ftol": 1e-14, "gtol": 1e-12, "maxiter": 5000},
        )
        if np.isfinite(sol.fun):
            results.append((sol.x, sol.fun))
    if not results:
        raise RuntimeError(f"{form.name}: no start converged to a finite fit")
    return _best(results, len(starts))


FITTERS = ("lm", "huber")
DEFAULT_TOP_K = {"lm": 8, "huber": 16}


def run_fitter(
    form: LawForm,
    data: LawData,
    fitter: str = "lm",
    delta: float = 1e-3,
    starts: np.ndarray | None = None,
    top_k: int | None = None,
) -> Optimum:
    """Fit ``form`` to every row of ``data`` (no filtering) from ``starts`` (default: its grid).

    Args:
        form: the law.
        data: rows to fit; the form's columns must be finite.
        fitter: ``"lm"`` (least squares on loss) or ``"huber"`` (Huber(delta) on log loss).
        delta: Huber threshold (log-loss units).
        starts: fit-space start vectors ``(S, P)``.
        top_k: refine the best ``top_k`` starts and ``top_k`` spread through the rest.
    """
    if fitter not in FITTERS:
        raise ValueError(f"fitter must be one of {FITTERS}, got {fitter!r}")
    cols = {c: getattr(data, c) for c in form.columns}
    bad = [c for c, v in cols.items() if not np.all(np.isfinite(v))]
    if bad:
        raise ValueError(f"{form.name} needs finite columns {bad}; check the data mapping")
    starts = form.start_grid() if starts is None else starts
    k = DEFAULT_TOP_K[fitter] if top_k is None else top_k
    with single_threaded_blas():
        if fitter == "lm":
            return fit_lm(form, cols, data.loss, starts, top_k=k)
        return fit_huber(form, cols, data.loss, starts, delta=delta, top_k=k)
