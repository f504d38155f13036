"""``python -m archsearch.fit`` writes a fit JSON and plots (purity: tests/test_layers.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from law_helpers import MORPH_CSV, sweep

from archsearch.fit import load
from archsearch.law import from_records, read_fit
from archsearch.law.config import FitConfig
from archsearch.records import RunRecord, write_record

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_fit_entry_point_on_csv(tmp_path):
    out = tmp_path / "fit"
    proc = run(
        "-m", "archsearch.fit", f"input={MORPH_CSV}", "law=aspect_ratio",
        "columns.N=N_total", "columns.D=D_tokens", "columns.scale=size_class",
        "+fit_rows.used_in_paper_fit=True", "law.n_bootstrap=5", f"hydra.run.dir={out}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    payload = json.loads((out / "fit.json").read_text())
    assert payload["fit"]["form"] == "aspect_ratio" and len(payload["fit"]["bootstrap"]) == 5
    assert payload["fit"]["metrics"]["all_mse"] <= 0.0006
    assert (out / "predicted_vs_observed.png").stat().st_size > 0
    assert read_fit(out).params["eps"] > 0


def write_sweep(root: Path) -> None:
    data = sweep()
    for i in range(len(data)):
        n = int(data.N[i])
        record = RunRecord(
            run_id=f"run{i}",
            arch={"d_model": int(data.x[i] * np.sqrt(n)), "n_layers": 8},
            n_params=n,
            total_params=n,
            embedding_params=0,
            r_mlp_attn=float(data.r[i]),
            d_over_sqrt_n=float(data.x[i]),
            gqa_group=1,
            train_tokens=int(data.D[i]),
            train_flops=6.0 * n * data.D[i],
            steps=1,
            final_val_loss=float(data.loss[i]),
            final_train_loss=float(data.loss[i]),
            wall_time_s=1.0,
            tokens_per_s=1.0,
            seed=0,
            backend="torch",
            device="cpu",
            dataset="synthetic",
            config={"budget": {"n_params": n}},
        )
        write_record(root / f"run{i}", record)


def test_fit_entry_point_on_records_with_evaluation(tmp_path):
    sweep_dir, out = tmp_path / "sweep", tmp_path / "fit"
    write_sweep(sweep_dir)
    assert len(from_records(sweep_dir).scales()) == 3
    proc = run(
        "-m", "archsearch.fit", f"input={sweep_dir}", "evaluate=true",
        "law.n_bootstrap=10", f"hydra.run.dir={out}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "progressive" in proc.stdout and "x*" in proc.stdout
    payload = json.loads((out / "fit.json").read_text())
    assert payload["fit"]["l_opt"]["kind"] == "best_observed"
    assert {row["form"] for row in payload["evaluation"]} == {"multiplicative", "additive", "joint"}
    assert (out / "u_curves.png").stat().st_size > 0


def test_row_filters_on_a_records_directory_are_refused(tmp_path):
    write_sweep(tmp_path)
    assert len(load(FitConfig(input=str(tmp_path)))) > 0
    with pytest.raises(ValueError, match="filter CSV columns"):
        load(FitConfig(input=str(tmp_path), fit_rows={"used_in_paper_fit": "True"}))
