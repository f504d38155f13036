"""Progressive and leave-one-scale-out evaluation of law forms, side by side. Pure.

Progressive (arXiv 2510.18245, Sec. 5 / Table 2): fit on the k smallest scales, predict scale k+1,
report MSE (nats^2) and Spearman rank correlation between predicted and observed loss. With
``l_opt="best_observed"`` the held-out scale's L_opt is its own best observed loss, as the paper
did in practice; with ``l_opt="chinchilla"`` it is extrapolated by a Chinchilla law fitted on the
training scales only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from archsearch.law.data import LawData
from archsearch.law.fit import PAPER_R_RANGE, filter_r_for, fit_law, make_l_opt
from archsearch.law.forms import get_form


@dataclass(frozen=True)
class Step:
    """One held-out prediction.

    Attributes:
        form: law form.
        mode: ``"progressive"`` or ``"loso"`` (leave one scale out).
        train: scale labels fitted on; ``test``: the held-out scale.
        n_test: rows predicted; ``mse`` in nats^2; ``spearman`` rank correlation (NaN below
            3 rows); ``max_rel_err_pct`` the worst relative error in percent.
    """

    form: str
    mode: str
    train: tuple[str, ...]
    test: str
    n_test: int
    mse: float
    spearman: float
    max_rel_err_pct: float


def _score(
    data: LawData, form: str, mode: str, train: list[str], test: str, fit_kwargs: dict[str, Any]
) -> Step:
    law = get_form(form)
    train_rows = data.select(np.isin(data.scale, train))
    test_rows = data.select(data.scale == test)
    result = fit_law(train_rows, form, **fit_kwargs)
    if "l_opt" in law.columns and result.l_opt.kind == "best_observed":
        own_best = make_l_opt(test_rows, "best_observed")
        test_rows = test_rows.with_l_opt(own_best(test_rows))
    pred = result.predict_data(test_rows)
    obs = test_rows.loss
    rho = spearmanr(pred, obs).statistic if len(obs) >= 3 else float("nan")
    return Step(
        form=form,
        mode=mode,
        train=tuple(train),
        test=test,
        n_test=len(obs),
        mse=float(np.mean((pred - obs) ** 2)),
        spearman=float(rho),
        max_rel_err_pct=float(100 * np.max(np.abs(pred - obs) / obs)),
    )


def progressive(data: LawData, form: str, **fit_kwargs: Any) -> list[Step]:
    """Fit on scales ``[0, k)`` and predict scale ``k`` for every k >= 1 (scales by median N).

    Args:
        data: all rows; ``data.scale`` labels the scales.
        form: law form name.
        **fit_kwargs: passed to ``fit_law`` (fitter, l_opt, r_range, ...).
    """
    return _steps(data, form, "progressive", fit_kwargs)


def leave_one_scale_out(data: LawData, form: str, **fit_kwargs: Any) -> list[Step]:
    """Fit on every scale but one and predict that one, for each scale."""
    return _steps(data, form, "loso", fit_kwargs)


def _steps(data: LawData, form: str, mode: str, fit_kwargs: dict[str, Any]) -> list[Step]:
    """One ``_score`` per held-out scale: the smaller scales before it ("progressive") or every
    other scale ("loso"), after the form's r filter."""
    data = filter_r_for(data, get_form(form), fit_kwargs.get("r_range", PAPER_R_RANGE))
    scales = data.scales()
    if mode == "progressive":
        splits = [(scales[:k], scales[k]) for k in range(1, len(scales))]
    else:
        splits = [([s for s in scales if s != test], test) for test in scales]
    return [_score(data, form, mode, train, test, fit_kwargs) for train, test in splits]


def compare(
    data: LawData, forms: Iterable[str], loso: bool = True, **fit_kwargs: Any
) -> list[Step]:
    """Progressive (and leave-one-scale-out) steps for several forms, for one table."""
    steps: list[Step] = []
    for form in forms:
        steps += progressive(data, form, **fit_kwargs)
        if loso:
            steps += leave_one_scale_out(data, form, **fit_kwargs)
    return steps


def format_table(steps: Iterable[Step]) -> str:
    """A plain-text table: one line per step, forms side by side."""
    lines = [f"{'form':<16}{'mode':<13}{'train':<28}{'test':<10}{'n':>4}{'MSE':>11}{'rho':>7}"]
    for s in steps:
        train = "+".join(s.train)
        train = train if len(train) <= 26 else train[:23] + "..."
        lines.append(
            f"{s.form:<16}{s.mode:<13}{train:<28}{s.test:<10}{s.n_test:>4}"
            f"{s.mse:>11.2e}{s.spearman:>7.2f}"
        )
    return "\n".join(lines)


def to_rows(steps: Iterable[Step]) -> list[dict[str, Any]]:
    """Steps as JSON-ready dicts."""
    return [asdict(s) for s in steps]
