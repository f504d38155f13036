"""Fits know their validity domain and say what is wrong with them; losses are checked; the API and
the command line fit alike; the bootstrap resamples whole runs; held-out L_opt never peeks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from law_helpers import L_OPT, MORPH_CSV, TRUE, shared, sweep

from archsearch.errors import RecordError
from archsearch.law import (
    FitResult,
    LawData,
    check_fit,
    fit_law,
    from_csv,
    get_form,
    progressive,
    read_fit,
    write_fit,
)

ROOT = Path(__file__).resolve().parents[2]
MORPH_COLUMNS = {
    "N": "N_nonembed",
    "D": "D_tokens",
    "x": "d_over_sqrtN_nonembed",
    "r": "r_mlp_attn",
    "scale": "size_class",
}


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_fit_records_its_domain_and_round_trips(tmp_path):
    data = sweep()
    result = fit_law(data, "multiplicative")
    kept = (data.r >= 0.5) & (data.r <= 5.0)  # the paper's r filter
    assert result.domain["x"] == [data.x[kept].min(), data.x[kept].max()]
    assert result.domain["r"] == [data.r[kept].min(), data.r[kept].max()]
    assert result.domain["N"] == [1e7, 1e9] and result.domain["D"] == [2e8, 2e10]
    assert result.warnings == []  # a good fit of the true law: nothing to say
    back = read_fit(write_fit(tmp_path / "fit.json", result))
    assert back.domain == result.domain and back.warnings == []
    given = FitResult.from_params("multiplicative", TRUE["multiplicative"], L_OPT, {"r": (0.5, 5)})
    assert given.domain == {"r": [0.5, 5.0]}
    with pytest.raises(ValueError, match="low 5.0 > high 0.5"):
        FitResult.from_params("multiplicative", TRUE["multiplicative"], L_OPT, {"r": (5, 0.5)})


def test_negative_loss_csv_is_refused_naming_the_row(tmp_path):
    lines = MORPH_CSV.read_text().splitlines()
    header = lines[0].split(",")
    row = lines[3].split(",")
    row[header.index("loss")] = "-" + row[header.index("loss")]
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([*lines[:3], ",".join(row), *lines[4:]]) + "\n")
    with pytest.raises(ValueError, match=r"bad.csv:4 \(run_id '2'\) has loss -"):
        from_csv(bad, MORPH_COLUMNS)
    data = from_csv(MORPH_CSV, MORPH_COLUMNS)
    negated = LawData.from_columns(**{**data.columns(), "loss": -data.loss})
    with pytest.raises(ValueError, match="row 0 .* has loss -4.96"):
        fit_law(negated, "multiplicative")
    proc = run("-m", "archsearch.fit", f"input={bad}", "law=chinchilla", "columns.N=N_total",
               "columns.D=D_tokens", "plots=false", f"hydra.run.dir={tmp_path}/fit")  # fmt: skip
    assert proc.returncode != 0 and "bad.csv:4" in proc.stderr
    assert not (tmp_path / "fit" / "fit.json").exists()


def test_csv_without_the_law_columns_names_them_and_the_mapping():
    with pytest.raises(RecordError, match=r"no column for N, D \(or C\) \(columns: .*N_total"):
        from_csv(MORPH_CSV)
    assert len(from_csv(MORPH_CSV, {"N": "N_total", "D": "D_tokens"})) > 0


def test_fit_warnings_in_cli_and_fit_json(tmp_path):
    out = tmp_path / "fit"
    columns = [f"columns.{k}={v}" for k, v in MORPH_COLUMNS.items()]
    proc = run("-m", "archsearch.fit", f"input={MORPH_CSV}", "law=multiplicative", *columns,
               "law.n_bootstrap=0", "plots=false", f"hydra.run.dir={out}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "WARNING: no interior optimum in r" in proc.stdout
    assert "domain: x [0.05832, 0.1667], r [2, 2.25]" in proc.stdout
    fit = json.loads((out / "fit.json").read_text())["fit"]
    assert any(w.startswith("no interior optimum in r") for w in fit["warnings"])
    assert fit["domain"]["r"] == [2.0, 2.25]


def test_check_fit_flags_negative_r2_and_non_positive_predictions():
    data = sweep()
    data = data.with_l_opt(L_OPT(data))
    good = FitResult.from_params("multiplicative", TRUE["multiplicative"], L_OPT)
    good.domain = {"x": [0.04, 0.25], "r": [0.5, 5.0]}
    assert check_fit(good, data) == []
    wrong = replace(good, params={**good.params, "a0": 0.5})  # a biased level: R^2 < 0
    assert any(w.startswith("R^2 = ") and "< 0" in w for w in check_fit(wrong, data))
    # a2 < 0: no optimum in x; with a small a0 the x factor crosses zero inside [0.04, 0.25]
    params = {**TRUE["multiplicative"], "a0": 0.2, "a1": 0.3, "a2": -0.003}
    falling = FitResult.from_params("multiplicative", params, L_OPT, good.domain)
    assert np.isnan(falling.optimum["x"])
    warnings = check_fit(falling, data)
    assert any("non-positive predicted loss inside the domain" in w for w in warnings)
    assert any("no interior optimum in x" in w for w in warnings)


def test_api_and_cli_give_the_same_chinchilla_constants(tmp_path):
    path = shared("epoch-chinchilla") / "svg_extracted_data.csv"
    columns = {"N": "Model Size", "C": "Training FLOP"}
    api = fit_law(from_csv(path, columns), "chinchilla")
    assert api.fitter == get_form("chinchilla").default_fitter == "huber"
    out = tmp_path / "fit"
    proc = run("-m", "archsearch.fit", f"input={path}", "law=chinchilla",
               "columns.N='Model Size'", "columns.C='Training FLOP'", "law.n_bootstrap=0",
               "plots=false", f"hydra.run.dir={out}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    cli = json.loads((out / "fit.json").read_text())["fit"]
    assert cli["fitter"] == "huber"
    assert cli["params"] == pytest.approx(api.params, rel=1e-9)


def test_law_presets_use_the_forms_default_fitter():
    for path in sorted((ROOT / "conf" / "law").glob("*.yaml")):
        preset = yaml.safe_load(path.read_text())
        assert preset["fitter"] == get_form(preset["form"]).default_fitter, path.name


def test_group_bootstrap_is_wider_than_row_bootstrap():
    """12 shapes, each trained once and evaluated at 5 checkpoints of nearly equal loss: a
    run's deviation from the law is shared by its rows, so they are not 5 independent points."""
    rng = np.random.default_rng(0)
    base = sweep().select(np.arange(0, 75, 6)[:12])
    runs = LawData.from_columns(
        **{k: np.repeat(v, 5) for k, v in base.columns().items() if k not in ("run_id", "loss")},
        loss=np.repeat(base.loss * np.exp(rng.normal(0, 0.01, len(base))), 5)
        * np.exp(rng.normal(0, 1e-4, 5 * len(base))),
        run_id=np.repeat([f"run{i}" for i in range(len(base))], 5),
    )
    kw = dict(l_opt=L_OPT, n_bootstrap=40, seed=1)
    grouped = fit_law(runs, "multiplicative", **kw)
    rows = fit_law(runs, "multiplicative", bootstrap_unit="row", **kw)
    assert (
        grouped.settings["bootstrap_unit"] == "run" and grouped.settings["bootstrap_groups"] == 12
    )
    assert rows.settings["bootstrap_unit"] == "row"
    for name in ("a1", "a2", "b1", "b2"):
        width = {k: np.diff(f.intervals[name])[0] for k, f in (("g", grouped), ("r", rows))}
        assert width["g"] > 1.5 * width["r"], name


def test_progressive_held_out_l_opt_comes_from_the_training_scales():
    data = sweep()
    shifted = data.columns()
    held_out = data.scale == data.scales()[-1]
    shifted["loss"] = np.where(held_out, data.loss * 1.2, data.loss)  # the held-out scale only
    shifted = LawData.from_columns(**shifted)
    honest = [progressive(d, "multiplicative")[-1] for d in (data, shifted)]
    peek = [progressive(d, "multiplicative", "best_observed_peeking")[-1] for d in (data, shifted)]
    # the default predicts the held-out scale without looking at it: its error grows by the shift
    assert "power law in compute through 2 training budgets" in honest[0].l_opt_source
    assert honest[1].mse > honest[0].mse + 0.2
    # peeking takes the held-out scale's own best loss: the scaling cancels, and the step says so
    assert peek[0].l_opt_source.startswith("PEEKING")
    assert peek[1].mse == pytest.approx(peek[0].mse, rel=0.05, abs=1e-5)
    first = progressive(data, "multiplicative")[0]
    assert first.l_opt_source == "the one training budget's best, carried over"
