"""Progressive and leave-one-scale-out evaluation of law forms, side by side. Pure.

Progressive (arXiv 2510.18245, Sec. 5, the progressive MSE/Spearman figure: Fig. 6 in v2): fit
on the k smallest scales, predict scale k+1, report MSE (nats^2) and Spearman rank correlation
between predicted and observed loss.

The held-out scale's L_opt comes from the training scales only (``held_out_l_opt=
"training_scales"``, the default; ``training_l_opt`` says how): a law fitted with a Chinchilla
L_opt extrapolates with it; a best-observed L_opt is extrapolated from the training scales' best
losses. ``held_out_l_opt="best_observed_peeking"`` takes the held-out scale's own best observed
loss instead, as the paper did in practice: it peeks at the answer, and every step says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from archsearch.errors import ConfigError
from archsearch.law.data import LawData, best_observed
from archsearch.law.fit import PAPER_R_RANGE, filter_r_for, fit_law, make_l_opt
from archsearch.law.forms import get_form
from archsearch.law.result import LOpt

HELD_OUT_L_OPT = ("training_scales", "best_observed_peeking")


@dataclass(frozen=True)
class Step:
    """One held-out prediction.

    Attributes:
        form: law form.
        mode: ``"progressive"`` or ``"loso"`` (leave one scale out).
        train: scale labels fitted on; ``test``: the held-out scale.
        n_test: rows predicted; ``mse`` in nats^2; ``spearman`` rank correlation (NaN below
            3 rows); ``max_rel_err_pct`` the worst relative error in percent.
        l_opt_source: where the held-out scale's L_opt came from.
    """

    form: str
    mode: str
    train: tuple[str, ...]
    test: str
    n_test: int
    mse: float
    spearman: float
    max_rel_err_pct: float
    l_opt_source: str = ""


def training_l_opt(train_rows: LawData) -> tuple[LOpt, str]:
    """L_opt at unseen budgets from the training rows' best losses per (N, D) group, and how.

    Five or more groups: a Chinchilla law fitted on the group bests (Algorithm 1, step 1, arXiv
    2510.18245). Two to four: a power law in training compute ``C = 6 N D`` through them (too
    few budgets for Chinchilla's five parameters). One: that budget's best loss, carried over
    unchanged (one budget cannot be extrapolated; a constant L_opt leaves the held-out ranking
    untouched, but biases its MSE).
    """
    keys = train_rows.groups()
    best = best_observed(train_rows)
    firsts = [int(np.flatnonzero(keys == k)[0]) for k in best]
    n, d = train_rows.N[firsts], train_rows.D[firsts]
    loss = np.array(list(best.values()))
    if len(best) >= len(get_form("chinchilla").params):
        bests = LawData.from_columns(N=n, D=d, loss=loss)
        return make_l_opt(bests, "chinchilla"), "Chinchilla fitted on the training scales' best"
    if len(best) >= 2:
        slope, intercept = np.polyfit(np.log(6.0 * n * d), np.log(loss), 1)
        note = f"power law in compute through {len(best)} training budgets' best (k {-slope:.3g})"
        return LOpt("power_law", params={"a": float(intercept), "k": float(-slope)}), note
    return LOpt("constant", value=float(loss[0])), "the one training budget's best, carried over"


def _score(
    data: LawData,
    form: str,
    mode: str,
    train: list[str],
    test: str,
    fit_kwargs: dict[str, Any],
    held_out_l_opt: str = "training_scales",
) -> Step:
    law = get_form(form)
    train_rows = data.select(np.isin(data.scale, train))
    test_rows = data.select(data.scale == test)
    result = fit_law(train_rows, form, **fit_kwargs)
    source = "-"
    if "l_opt" in law.columns and result.l_opt.kind != "best_observed":
        source = f"the fit's own ({result.l_opt.kind}, training scales)"
    elif "l_opt" in law.columns and held_out_l_opt == "best_observed_peeking":
        test_rows = test_rows.with_l_opt(make_l_opt(test_rows, "best_observed")(test_rows))
        source = "PEEKING: the held-out scale's own best observed loss"
    elif "l_opt" in law.columns:
        model, source = training_l_opt(train_rows)
        test_rows = test_rows.with_l_opt(model(test_rows))
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
        l_opt_source=source,
    )


def progressive(
    data: LawData, form: str, held_out_l_opt: str = "training_scales", **fit_kwargs: Any
) -> list[Step]:
    """Fit on scales ``[0, k)`` and predict scale ``k`` for every k >= 1 (scales by median N).

    Args:
        data: all rows; ``data.scale`` labels the scales.
        form: law form name.
        held_out_l_opt: ``"training_scales"`` or ``"best_observed_peeking"`` (module docstring).
        **fit_kwargs: passed to ``fit_law`` (fitter, l_opt, r_range, ...).
    """
    return _steps(data, form, "progressive", fit_kwargs, held_out_l_opt)


def leave_one_scale_out(
    data: LawData, form: str, held_out_l_opt: str = "training_scales", **fit_kwargs: Any
) -> list[Step]:
    """Fit on every scale but one and predict that one, for each scale."""
    return _steps(data, form, "loso", fit_kwargs, held_out_l_opt)


def _steps(
    data: LawData, form: str, mode: str, fit_kwargs: dict[str, Any], held_out_l_opt: str
) -> list[Step]:
    """One ``_score`` per held-out scale: the smaller scales before it ("progressive") or every
    other scale ("loso"), after the form's r filter."""
    if held_out_l_opt not in HELD_OUT_L_OPT:
        raise ValueError(f"held_out_l_opt must be one of {HELD_OUT_L_OPT}, got {held_out_l_opt!r}")
    data = filter_r_for(data, get_form(form), fit_kwargs.get("r_range", PAPER_R_RANGE))
    scales = data.scales()
    if len(scales) < 2:
        raise ConfigError(
            f"evaluating a law fits on some scales (N, D) and predicts another, but the data "
            f"holds {len(scales)} ({', '.join(scales) or 'none'}): add runs at a second budget "
            "(e.g. the same sweep with another budget.n_params) or drop evaluate=true"
        )
    if mode == "progressive":
        splits = [(scales[:k], scales[k]) for k in range(1, len(scales))]
    else:
        splits = [([s for s in scales if s != test], test) for test in scales]
    return [
        _score(data, form, mode, train, test, fit_kwargs, held_out_l_opt) for train, test in splits
    ]


def compare(
    data: LawData,
    forms: Iterable[str],
    loso: bool = True,
    held_out_l_opt: str = "training_scales",
    **fit_kwargs: Any,
) -> list[Step]:
    """Progressive (and leave-one-scale-out) steps for several forms, for one table."""
    steps: list[Step] = []
    for form in forms:
        steps += progressive(data, form, held_out_l_opt, **fit_kwargs)
        if loso:
            steps += leave_one_scale_out(data, form, held_out_l_opt, **fit_kwargs)
    return steps


def format_table(steps: Iterable[Step]) -> str:
    """A plain-text table: one line per step, forms side by side, each step's L_opt source."""
    lines = [
        f"{'form':<16}{'mode':<13}{'train':<28}{'test':<10}{'n':>4}{'MSE':>11}{'rho':>7}"
        "  held-out L_opt"
    ]
    for s in steps:
        train = "+".join(s.train)
        train = train if len(train) <= 26 else train[:23] + "..."
        lines.append(
            f"{s.form:<16}{s.mode:<13}{train:<28}{s.test:<10}{s.n_test:>4}"
            f"{s.mse:>11.2e}{s.spearman:>7.2f}  {s.l_opt_source}"
        )
    return "\n".join(lines)


def to_rows(steps: Iterable[Step]) -> list[dict[str, Any]]:
    """Steps as JSON-ready dicts."""
    return [asdict(s) for s in steps]
