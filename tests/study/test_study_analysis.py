"""The quick study's analysis against its record files: the U-curve arms, the seed noise, the
learning-rate check and the criteria are recomputed here from the records they name."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

import pytest

from archsearch.records import RECORD_FILE, read_record
from archsearch.study import analysis
from archsearch.study.config import BaselineConfig


def _records(folder: Path) -> dict[str, Any]:
    return {p.parent.name: read_record(p.parent) for p in folder.rglob(RECORD_FILE)}


def test_baseline_keeps_its_per_layer_proportions_at_the_study_depth() -> None:
    # per-layer parameters / d_model^2 = 1 / (L x^2): 16 layers at x 0.066 -> 4 layers at 0.132
    base = BaselineConfig(d_over_sqrt_n=0.066, reference_n_layers=16)
    assert base.d_over_sqrt_n_at(4) == pytest.approx(0.132)
    assert pytest.approx(4 * base.d_over_sqrt_n_at(4) ** 2) == 16 * 0.066**2
    assert base.d_over_sqrt_n_at(16) == pytest.approx(0.066)


def test_arm_rows_name_the_lowest_loss_of_their_records(study: dict[str, Any]) -> None:
    out, rows = study["out"], study["report"]["tables"]["arms"]
    sweep = _records(out / "sweep")
    assert {r["knob"] for r in rows} == {"x", "r"}
    assert len(rows) == 6  # x and r arms at each of 3 budgets
    for row in rows:
        budget = int(row["budget"].replace(",", ""))
        knob = "d_over_sqrt_n" if row["knob"] == "x" else "r_mlp_attn"
        members = [
            (getattr(rec, knob), rec.final_val_loss, name)
            for name, rec in sweep.items()
            if rec.config["budget"]["n_params"] == budget and name in row["runs"]
        ]
        members.sort()
        assert [m[2] for m in members] == row["runs"] and [m[1] for m in members] == row["losses"]
        best = min(range(len(members)), key=lambda i: members[i][1])
        assert members[best][2] == row["best_run"]
        assert row["interior"] == (0 < best < len(members) - 1)
        assert read_record(out / Path(row["record"]).parent).final_val_loss == members[best][1]


def test_seed_noise_is_the_sd_of_paired_record_differences(study: dict[str, Any]) -> None:
    out, sd = study["out"], study["report"]["verdict"]["noise_sd_diff"]
    sweep, checks = _records(out / "sweep"), _records(out / "checks")
    pairs = study["report"]["tables"]["seed_pairs"]
    assert len(pairs) >= 2
    diffs = []
    for row in pairs:
        base_run, seed_run, base_loss, seed_loss = (
            row["run"],
            row["seed_run"],
            row["loss"],
            row["seed_loss"],
        )
        assert sweep[base_run].final_val_loss == base_loss
        assert checks[seed_run].final_val_loss == seed_loss
        assert {**sweep[base_run].arch, "name": ""} == {**checks[seed_run].arch, "name": ""}
        assert sweep[base_run].config["train"]["seed"] != checks[seed_run].config["train"]["seed"]
        diffs.append(seed_loss - base_loss)
    assert sd == pytest.approx(statistics.stdev(diffs), rel=1e-12)
    assert f"{sd:.4f} nats" in study["markdown"]


def test_learning_rate_check_rows_come_from_records(study: dict[str, Any]) -> None:
    out, points = study["out"], study["report"]["tables"]["lr_check"]
    every = {**_records(out / "sweep"), **_records(out / "checks")}
    assert len({p["lr"] for p in points}) >= 2  # the study's learning rate and another
    for p in points:
        rec = every[p["run"]]
        assert (p["lr"], p["loss"]) == (rec.config["optim"]["lr"], rec.final_val_loss)


def test_paired_speedup_compares_within_rounds() -> None:
    # equal medians of the two lists (2 s each), but the pick is faster in 2 of 3 rounds and
    # the median of the per-round speed ratios is 3/2
    assert analysis.paired_speedup([1.0, 2.0, 3.0], [2.0, 3.0, 1.0]) == (0.5, 2)
    assert analysis.paired_speedup([1.0, 2.0], [1.0, 2.0]) == (0.0, 0)


def test_criteria_are_decided_by_the_reported_numbers(study: dict[str, Any]) -> None:
    report = study["report"]
    criteria = {c["name"]: c for c in report["criteria"]}
    assert len(criteria) == 5
    x_arms = [r for r in report["tables"]["arms"] if r["knob"] == "x"]
    inside = next(c for n, c in criteria.items() if n.startswith("x-arm minimum"))
    assert inside["passed"] == all(r["interior"] for r in x_arms)
    rho = report["tables"]["progressive"][-1]["spearman"]
    spearman = next(c for n, c in criteria.items() if n.startswith("progressive Spearman"))
    assert spearman["passed"] == (None if math.isnan(rho) else rho >= 0.8)
    final = {r["role"]: r for r in report["tables"]["final"]}
    sd = report["verdict"]["noise_sd_diff"]
    if "fastest_meeting_target" in final:
        fast, base = final["fastest_meeting_target"], final["baseline"]
        speed = next(c for n, c in criteria.items() if n.startswith("fastest pick"))
        h2h = json.loads((study["out"] / base["h2h_record"]).read_text())
        rounds = {s["run"]: s["speed"]["decode_cpu_s"] for s in h2h["shapes"]}
        ratios = [b / p for p, b in zip(rounds[fast["run"]], rounds[base["run"]], strict=True)]
        faster = statistics.median(ratios) > 1  # paired by round: the same machine state
        assert speed["passed"] == (faster and fast["loss"] - base["loss"] <= 2 * sd)
    marks = {"PASS": True, "FAIL": False, "NOT EVALUATED": None}
    section = study["markdown"].split("## Criteria\n", 1)[1].split("\n## ", 1)[0]
    for mark, passed in marks.items():
        assert section.count(f"**{mark}**") == sum(c["passed"] is passed for c in criteria.values())
