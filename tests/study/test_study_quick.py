"""The quick study end to end: its report has every section and every number in its tables is the
one in the record file it names; a second run skips every finished job."""

from __future__ import annotations

import json
import re
import statistics
from typing import Any

import pytest
from study_helpers import cells as _cells
from study_helpers import section as _section

from archsearch.arch import ArchSpec
from archsearch.errors import StateError
from archsearch.records import RECORD_FILE, THROUGHPUT_FILE, read_record
from archsearch.records.throughput import read_throughput_record
from archsearch.study.config import StudyConfig
from archsearch.study.jobs import measure
from archsearch.throughput.config import DecodeConfig

# the report's sections, in order (the study's documented contract, not read from its code)
SECTIONS = (
    "Setup",
    "Sweep",
    "U-curves",
    "Noise and learning rate",
    "Progressive fit",
    "Held-out predictions",
    "Law plots",
    "Search",
    "Final comparison",
    "Throughput against batch size",
    "Criteria",
    "Verdict",
)
FIGURES = ("u_curves.png", "predicted_vs_observed.png", "pareto.png", "throughput_vs_batch.png")


def test_report_has_every_section_and_figure(study: dict[str, Any]) -> None:
    markdown = study["markdown"]
    assert re.findall(r"^## (.+)$", markdown, flags=re.MULTILINE) == list(SECTIONS)
    for name in FIGURES:
        assert (study["out"] / "report" / name).stat().st_size > 1000
        assert f"({name})" in markdown
    assert study["report"]["sections"] == list(SECTIONS)


def _tokens_per_s(speed: Any, measure: str) -> dict[str, float]:
    return {str(b.batch_size): b.rates(measure)[0] for b in speed.batches}


def test_sweep_rows_match_their_records(study: dict[str, Any]) -> None:
    out, rows = study["out"], study["report"]["tables"]["sweep"]
    section = _section(study["markdown"], "Sweep")
    search = json.loads((out / "search" / "search.json").read_text())
    assert search["throughput_measure"] == "cpu_time_median"  # on CPU: blind to other load
    assert len(rows) == len(list((out / "sweep").rglob(RECORD_FILE))) >= 15
    for row in rows:
        record = read_record(out / row["record"])
        speed = read_throughput_record(out / row["throughput_record"])
        assert row["loss"] == record.final_val_loss
        assert (row["n_params"], row["train_tokens"]) == (record.n_params, record.train_tokens)
        assert (row["x"], row["r"], row["g"]) == (
            record.d_over_sqrt_n,
            record.r_mlp_attn,
            record.gqa_group,
        )
        assert row["throughput_measure"] == search["throughput_measure"]
        measured = _tokens_per_s(speed, row["throughput_measure"])
        assert row["tokens_per_s"] == measured
        cells = _cells(section, (row["run"],))
        assert f"{record.final_val_loss:.4f}" in cells
        assert f"{record.n_params:,}" in cells
        assert all(f"{v:.0f}" in cells for v in measured.values())
        assert cells[-1] == row["record"]


def test_fit_tables_match_the_fit_records(study: dict[str, Any]) -> None:
    out, tables = study["out"], study["report"]["tables"]
    evaluation = json.loads((out / "fit" / "extrapolation.json").read_text())["evaluation"]
    assert len(tables["progressive"]) == len(evaluation) == 2  # 3 budgets: 2 held-out steps
    section = _section(study["markdown"], "Progressive fit")
    for row, step in zip(tables["progressive"], evaluation, strict=True):
        assert (row["mse"], row["spearman"]) == (step["mse"], step["spearman"])
        cells = _cells(section, ("+".join(step["train"]), step["test"]))
        assert f"{step['mse']:.2e}" in cells and f"{step['spearman']:.2f}" in cells
    predictions = json.loads((out / "fit" / "predictions.json").read_text())["rows"]
    held_out = {p["run_id"]: p for p in predictions if p["held_out"]}
    section = _section(study["markdown"], "Held-out predictions")
    assert {r["run_id"] for r in tables["held_out"]} == set(held_out)
    for row in tables["held_out"]:
        source = held_out[row["run_id"]]
        assert (row["observed"], row["predicted"]) == (source["observed"], source["predicted"])
        cells = _cells(section, (row["run_id"],))
        assert f"{source['observed']:.4f}" in cells and f"{source['predicted']:.4f}" in cells
    # the held-out budget's L_opt comes from the smaller budgets, not its own best loss
    best_there = min(p["observed"] for p in held_out.values())
    assert {p["l_opt"] for p in held_out.values()} != {best_there}
    # the last progressive step predicts exactly the held-out rows
    errors = [(p["predicted"] - p["observed"]) ** 2 for p in held_out.values()]
    assert sum(errors) / len(errors) == pytest.approx(evaluation[-1]["mse"], rel=1e-9)


def test_final_rows_match_records_and_search(study: dict[str, Any]) -> None:
    out, rows = study["out"], study["report"]["tables"]["final"]
    search = json.loads((out / "search" / "search.json").read_text())
    section = _section(study["markdown"], "Final comparison")
    roles = [r["role"] for r in rows]
    assert roles[:2] == ["baseline", "loss_optimal"]
    base = read_record(out / rows[0]["record"])
    batch = search["setting"]["batch_size"]
    assert search["throughput_measure"] == "cpu_time_median"
    # the speed comparison: every final decoded in turns, the same rounds for each
    h2h = json.loads((out / rows[0]["h2h_record"]).read_text())
    assert h2h["protocol"]["batch_sizes"] == [batch]
    speeds = {s["run"]: s["speed"] for s in h2h["shapes"]}
    assert set(speeds) == {r["run"] for r in rows}
    assert all(len(s["decode_cpu_s"]) == h2h["protocol"]["repeats"] > 1 for s in speeds.values())
    base_speed = speeds[rows[0]["run"]]
    # L_t is the baseline's measured loss, trained before the search
    assert search["target"]["source"] == "measured"
    assert search["target"]["loss"] == base.final_val_loss
    for row in rows:
        record = read_record(out / row["record"])
        speed = speeds[row["run"]]
        tps = speed["cpu_time_tokens_per_s"]
        assert next(s["arch"] for s in h2h["shapes"] if s["run"] == row["run"]) == record.arch
        assert row["h2h_tokens_per_s"] == tps
        assert row["h2h_tokens_per_s_range"] == [
            speed["cpu_time_tokens_per_s_min"],
            speed["cpu_time_tokens_per_s_max"],
        ]
        assert row["loss"] == record.final_val_loss
        # the picks train as the sweep did: the same model settings but the shape
        assert record.config["model"]["tie_embeddings"] == base.config["model"]["tie_embeddings"]
        assert record.arch["tie_embeddings"] == base.arch["tie_embeddings"]
        assert record.config["budget"]["n_params"] == search["n_params"]
        assert record.train_tokens == base.train_tokens
        assert row["delta_loss"] == pytest.approx(record.final_val_loss - base.final_val_loss)
        pairs = zip(speed["decode_cpu_s"], base_speed["decode_cpu_s"], strict=True)
        ratios = [b / p for p, b in pairs]
        assert row["speedup_pct"] == pytest.approx(100 * (statistics.median(ratios) - 1))
        assert row["faster_rounds"] == f"{sum(r > 1 for r in ratios)}/{len(ratios)}"
        same = {k: v for k, v in record.arch.items() if k != "name"}
        entries = [search["target_scored"], *search["scored"]]
        matches = [
            e for e in entries if {**e["candidate"]["spec"], "name": ""} == {**same, "name": ""}
        ]
        if row["predicted_loss"] is None:  # a GQA variant, not a search candidate
            assert row["role"] == "gqa_step" and not matches
        else:
            assert matches and row["predicted_loss"] == matches[0]["loss"]
        cells = _cells(section, (row["role"], row["run"]))
        assert f"{record.final_val_loss:.4f}" in cells
        assert f"{_fmt(row['predicted_loss'])}" in cells
        assert f"{row['delta_loss']:.4f}" in cells
        assert f"{row['speedup_pct']:+.1f}%" in cells
        assert f"{tps:.0f} [{row['h2h_tokens_per_s_range'][0]:.0f}, " in " ".join(cells)
    verdict = study["report"]["verdict"]
    assert verdict["loss_optimal_beats_baseline"] == (rows[1]["delta_loss"] < 0)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def test_second_run_skips_every_finished_job(study: dict[str, Any]) -> None:
    mtimes = study["mtimes"]
    assert len(mtimes) >= 2 * 15
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    assert "(done, skipped)" in study["second_log"]
    assert "[search throughput" not in study["second_log"]
    # nothing slow is redone: no training, no measurement, no roofline calibration (the cached one
    # serves); asserted on what ran, not on wall time, which a loaded machine stretches
    assert "calibrating the decode roofline" not in study["second_log"]
    lines = study["second_log"].splitlines()
    throughput = [line for line in lines if re.search(r"\[\w+ throughput \d+/\d+\]", line)]
    assert throughput and all(line.endswith("(done, skipped)") for line in throughput)


def test_measurement_under_another_protocol_is_refused(study: dict[str, Any]) -> None:
    run_dir = sorted((study["out"] / "sweep").iterdir())[0]
    before = (run_dir / THROUGHPUT_FILE).read_text()
    spec = ArchSpec.from_dict(read_record(run_dir).arch)
    with pytest.raises(StateError, match="another shape or protocol"):
        measure(StudyConfig(throughput=DecodeConfig(batch_sizes=[1, 4])), spec, run_dir)
    other = sorted((study["out"] / "sweep").iterdir())[1]
    other_spec = ArchSpec.from_dict(read_record(other).arch)
    assert other_spec != spec
    measured = read_throughput_record(run_dir).config["throughput"]
    protocol = DecodeConfig(**{**measured, "batch_sizes": [1, 4]})
    with pytest.raises(StateError, match="another shape or protocol"):  # the same protocol
        measure(StudyConfig(throughput=protocol), other_spec, run_dir, measured["batch_sizes"])
    assert (run_dir / THROUGHPUT_FILE).read_text() == before
