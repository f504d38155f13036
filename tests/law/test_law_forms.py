"""Every law form recovers its parameters from synthetic data drawn from known values plus noise."""

from __future__ import annotations

import numpy as np
import pytest
from law_helpers import CHINCHILLA_TRUE, L_OPT, TRUE, conditional_table

from archsearch.law import FORMS, FitResult, fit_law, get_form

NOISE = 2e-4  # relative (multiplicative) noise on loss, nats/token
# Tolerance per form: (relative for scale parameters, absolute for exponents and coefficients).
TOL = {
    "chinchilla": {"E": 0.01, "A": 0.15, "B": 0.15, "alpha": 0.01, "beta": 0.01},
    "chinchilla_tied": {"E": 0.01, "A": 0.1, "B": 0.1, "alpha": 0.01},
    "aspect_ratio": {"E": 0.01, "A": 0.15, "B": 0.15, "alpha": 0.01, "eps": 0.15},
}
COEF_ABS = 2e-3


def synthetic(form: str, seed: int = 1):
    law = get_form(form)
    data = conditional_table(n_scales=4, per_scale=40, seed=seed)
    if form.startswith("chinchilla") or form == "aspect_ratio":  # vary D independently of N
        rng = np.random.default_rng(seed)
        data = data.__class__.from_columns(
            **{
                **data.columns(),
                "D": data.N * np.exp(rng.uniform(np.log(5), np.log(300), len(data))),
            }
        )
    data = data.with_l_opt(L_OPT(data))
    clean = law.predict(TRUE[form], {c: getattr(data, c) for c in law.columns})
    noise = np.random.default_rng(seed + 100).normal(0, NOISE, len(data))
    return data.__class__.from_columns(**{**data.columns(), "loss": clean * np.exp(noise)})


def test_every_form_has_a_synthetic_case():
    assert set(TRUE) == set(FORMS)


@pytest.mark.parametrize("form", sorted(TRUE))
@pytest.mark.parametrize("fitter", ["lm", "huber"])
def test_recovers_known_parameters(form: str, fitter: str):
    data = synthetic(form)
    result = fit_law(data, form, fitter=fitter, l_opt=L_OPT, r_range=None)
    for name, true in TRUE[form].items():
        got = result.params[name]
        tol = TOL.get(form, {}).get(name)
        if tol is None or name.startswith("alpha") or name == "beta":
            assert abs(got - true) <= (tol or COEF_ABS), (name, got, true)
        else:
            assert abs(got / true - 1) <= tol, (name, got, true)
    assert result.metrics["mse"] < 4 * (NOISE * data.loss.mean()) ** 2


def test_optimum_of_conditional_forms():
    p = TRUE["multiplicative"]
    result = FitResult.from_params("multiplicative", p)
    assert result.optimum == pytest.approx({"x": p["a2"] / p["a1"], "r": p["b2"] / p["b1"]})
    joint = FitResult.from_params("joint", TRUE["joint"], l_opt=3.0)
    grid_x, grid_r = np.meshgrid(np.geomspace(0.01, 1, 400), np.geomspace(0.1, 10, 400))
    loss = joint.predict(1e8, 2e9, x=grid_x.ravel(), r=grid_r.ravel())
    best = np.argmin(loss)
    assert joint.optimum["x"] == pytest.approx(grid_x.ravel()[best], rel=0.02)
    assert joint.optimum["r"] == pytest.approx(grid_r.ravel()[best], rel=0.02)


def test_paper_coefficients_normalise_b0():
    """Paper Task-3 values (b not normalised) give the same predictions with b0 = 1."""
    a, b = (2.697, 0.0974, 0.0078), (0.387, 0.0063, 0.0065)
    raw = dict(zip(("a0", "a1", "a2", "b0", "b1", "b2"), (*a, *b), strict=True))
    law = FitResult.from_params("multiplicative", raw, l_opt=CHINCHILLA_TRUE)
    x, r, n, d = 0.066, 4.8, 1e9, 2e10
    by_hand = (a[0] + a[1] * np.log(x) + a[2] / x) * (b[0] + b[1] * np.log(r) + b[2] / r)
    expected = by_hand * (1.8 + 400 / n**0.34 + 2000 / d**0.37)
    assert law.predict(n, d, x=x, r=r)[0] == pytest.approx(expected, rel=1e-12)
    assert law.optimum["x"] == pytest.approx(0.0078 / 0.0974)
    assert law.optimum["r"] == pytest.approx(0.0065 / 0.0063)
