"""Scaling-law fitting: Chinchilla and the conditional law of arXiv 2510.18245. Pure: numpy and
scipy only (no torch, no Hydra).

Public API:

- Data: ``LawData`` (column table: N, D, loss, x, r, d_model, n_layers, scale, l_opt, run_id),
  ``from_records(sweep_dir, loss_field="final_val_loss")`` (``records_data(records)`` for records
  already read), ``from_csv(path, columns=None,
  where=None)``, ``best_observed(data) -> {group: loss}``.
- Forms: ``FORMS`` (name -> form), ``get_form(name)``, ``LawForm`` + ``@register`` to add one.
  Registered: ``chinchilla``, ``chinchilla_tied``, ``aspect_ratio`` (arXiv 2501.18107),
  ``multiplicative`` (Eq. 3, b0 = 1), ``additive``, ``joint`` (quadratic in ln x, ln r).
- Fitting: ``fit_law(data, form="multiplicative", *, fitter=None (the form's default_fitter)|
  "lm"|"huber", l_opt="best_observed"|"chinchilla"|LOpt, delta=1e-3, r_range=(0.5, 5.0),
  top_k=None, n_bootstrap=0, bootstrap_unit="auto", seed=0, source="") -> FitResult``; lower
  level ``run_fitter(form, data, fitter, delta, starts, top_k)``; ``check_fit(result, data)``
  (warnings), ``domain_of(data)``.
- Results: ``FitResult`` (``params``, ``l_opt``, ``optimum``, ``intervals``, ``bootstrap``,
  ``metrics``, ``data``, ``domain``, ``warnings``),
  ``FitResult.from_params(form, params, l_opt=None, domain=None)``,
  ``.predict(N, D, *, x, r, d_model, n_layers, l_opt) -> (n,)``,
  ``.predict_samples(...) -> (B, n)``, ``.predict_interval(N, D, level=0.95, **shape)``,
  ``.samples()``; ``LOpt(kind, params, table, value)``;
  ``write_fit(path, result, evaluation=None)``, ``read_fit(path)``.
- Evaluation: ``progressive(data, form, held_out_l_opt="training_scales", **fit_kwargs)``,
  ``leave_one_scale_out(...)``, ``compare(data, forms, loso=True, ...) -> [Step]``,
  ``format_table(steps)``.
- Plots (matplotlib, imported lazily): ``archsearch.law.plots.plot_u_curves``,
  ``plot_predicted_vs_observed``.

Example, the search layer's use of the paper's published Task-3 coefficients:

    >>> from archsearch.law import FitResult
    >>> law = FitResult.from_params("multiplicative", {"a0": 2.697, "a1": 0.0974, "a2": 0.0078,
    ...     "b0": 0.387, "b1": 0.0063, "b2": 0.0065}, l_opt={"E": 1.8172, "A": 477.8,
    ...     "B": 2143.0, "alpha": 0.3473, "beta": 0.3672},
    ...     domain={"x": (0.04, 0.12), "r": (0.5, 5.0)})
    >>> law.optimum  # x* = a2/a1, r* = b2/b1
    >>> law.predict(1.0e9, 20e9, x=0.066, r=4.8)
"""

from archsearch.law.data import LawData, best_observed, from_csv, from_records, records_data
from archsearch.law.evaluate import (
    Step,
    compare,
    format_table,
    leave_one_scale_out,
    progressive,
)
from archsearch.law.fit import PAPER_R_RANGE, check_fit, domain_of, fit_law, make_l_opt
from archsearch.law.forms import FORMS, LawForm, Param, get_form, register
from archsearch.law.io import read_fit, write_fit
from archsearch.law.optimize import run_fitter
from archsearch.law.result import FitResult, LOpt

__all__ = [
    "FORMS",
    "PAPER_R_RANGE",
    "FitResult",
    "LOpt",
    "LawData",
    "LawForm",
    "Param",
    "Step",
    "best_observed",
    "check_fit",
    "compare",
    "domain_of",
    "fit_law",
    "format_table",
    "from_csv",
    "from_records",
    "records_data",
    "get_form",
    "leave_one_scale_out",
    "make_l_opt",
    "progressive",
    "read_fit",
    "register",
    "run_fitter",
    "write_fit",
]
