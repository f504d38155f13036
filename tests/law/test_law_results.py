"""FitResult JSON round trip, bootstrap intervals, L_opt kinds and progressive evaluation."""

from __future__ import annotations

import numpy as np
import pytest
from law_helpers import CHINCHILLA_TRUE, L_OPT, TRUE, sweep

from archsearch.errors import ConfigError
from archsearch.law import (
    FitResult,
    LOpt,
    compare,
    fit_law,
    format_table,
    progressive,
    read_fit,
    write_fit,
)


def test_json_round_trip_with_bootstrap(tmp_path):
    data = sweep()
    result = fit_law(data, "multiplicative", l_opt="chinchilla", n_bootstrap=30, seed=1)
    assert result.settings["r_range"] == [0.5, 5.0] and np.all(data.r.min() < 0.5)
    assert len(result.data["r"]) < len(data) and min(result.data["r"]) >= 0.5
    path = write_fit(tmp_path / "fit.json", result)
    again = read_fit(path)
    assert again.params == result.params and again.l_opt == result.l_opt
    assert again.intervals == result.intervals
    n, d, x, r = [1e8, 3e8], [2e9, 6e9], [0.1, 0.08], [1.0, 2.0]
    np.testing.assert_allclose(again.predict(n, d, x=x, r=r), result.predict(n, d, x=x, r=r))
    assert again.predict_samples(n, d, x=x, r=r).shape == (30, 2)
    low, high = again.predict_interval(n, d, x=x, r=r)
    point = again.predict(n, d, x=x, r=r)
    assert low.shape == high.shape == (2,)
    assert np.all(low < point) and np.all(point < high)  # a real spread around the fit
    estimates = {**result.params, "x*": result.optimum["x"], "r*": result.optimum["r"]}
    for name in ("a1", "b2", "x*", "r*"):
        lo, hi = result.intervals[name]
        assert lo < estimates[name] < hi, name
    lo, hi = result.intervals["x*"]
    assert lo * 0.8 <= TRUE["multiplicative"]["a2"] / TRUE["multiplicative"]["a1"] <= hi * 1.25


def test_l_opt_kinds_are_recorded():
    data = sweep()
    best = fit_law(data, "additive", l_opt="best_observed")
    assert best.l_opt.kind == "best_observed" and len(best.l_opt.table) == 3
    with pytest.raises(KeyError, match="best-observed"):
        best.predict(5e9, 1e11, x=0.1, r=1.0)
    assert np.isfinite(best.predict(5e9, 1e11, x=0.1, r=1.0, l_opt=2.5)).all()
    chin = fit_law(data, "additive", l_opt="chinchilla")
    assert chin.l_opt.kind == "chinchilla" and set(chin.l_opt.params) == set(CHINCHILLA_TRUE)
    given = FitResult.from_params("additive", chin.params, l_opt=2.5)
    assert given.l_opt == LOpt("constant", value=2.5)


def test_progressive_and_leave_one_scale_out_table():
    data = sweep()
    steps = progressive(data, "multiplicative", l_opt=L_OPT)
    assert [s.test for s in steps] == ["s1", "s2"] and steps[1].train == ("s0", "s1")
    assert all(s.mse < 1e-5 and s.spearman > 0.9 for s in steps)
    table = compare(data, ["multiplicative", "additive", "joint"], l_opt="best_observed")
    assert len(table) == 3 * (2 + 3)
    text = format_table(table)
    assert "loso" in text and "joint" in text
    one_scale = data.select(data.scale == "s0")
    with pytest.raises(ConfigError, match=r"holds 1 \(s0\): add runs at a second budget"):
        compare(one_scale, ["multiplicative"], l_opt="best_observed")


def test_missing_optimum_reads_back_as_nan(tmp_path):
    """No interior optimum in x (a1 < 0) is NaN in memory, null in JSON and NaN again on read."""
    params = {"a0": 1.0, "a1": -0.01, "a2": 0.003, "b1": 0.016, "b2": 0.017}
    result = FitResult.from_params("multiplicative", params, l_opt=2.5)
    assert np.isnan(result.optimum["x"]) and result.optimum["r"] > 0
    again = read_fit(write_fit(tmp_path, result))
    assert np.isnan(again.optimum["x"]) and again.optimum["r"] == result.optimum["r"]
