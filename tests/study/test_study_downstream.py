"""The quick study's downstream stage: the report's accuracies are the ones stored in each final
run's ``eval.json``, a re-run reads them back, other settings are refused, and the real report goes
to wandb (offline) and reads back."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
from study_helpers import cells, section

from archsearch.errors import StateError
from archsearch.evaluate.harness import EVAL_FILE
from archsearch.records import read_record
from archsearch.study.config import DownstreamSettings
from archsearch.study.downstream import evaluate_final


def test_report_accuracies_are_the_stored_ones(study: dict[str, Any]) -> None:
    out, tables = study["out"], study["report"]["tables"]
    rows = tables["downstream"]
    assert {r["role"] for r in rows} == {r["role"] for r in tables["final"]}
    finals = {r["role"]: r for r in tables["final"]}
    text = section(study["markdown"], "Final comparison")
    base = {r["task"]: r["acc"] for r in rows if r["role"] == "baseline"}
    for row in rows:
        stored = json.loads((out / row["eval_record"]).read_text())
        metrics = stored["tasks"][row["task"]]
        assert (row["acc"], row["acc_stderr"]) == (metrics["acc"], metrics["acc_stderr"])
        assert row["n_items"] == metrics["n_items"] == stored["limit"]
        assert Path(row["eval_record"]).parent == Path(row["record"]).parent  # the same run
        assert row["loss"] == read_record(out / row["record"]).final_val_loss
        assert (row["loss"], row["record"]) == (
            finals[row["role"]]["loss"],
            finals[row["role"]]["record"],
        )
        assert row["delta_acc"] == pytest.approx(row["acc"] - base[row["task"]])
        shown = cells(text, (row["role"], row["run"], f"{row['loss']:.4f}"))
        assert shown[4:] == [
            row["task"],
            f"{metrics['acc']:.3f}",
            f"{metrics['acc_stderr']:.3f}",
            f"{row['delta_acc']:+.3f}",
            str(row["n_items"]),
            row["eval_record"],
        ]


def test_scores_are_accuracies_over_their_items(study: dict[str, Any]) -> None:
    for row in study["report"]["tables"]["downstream"]:
        n, acc = row["n_items"], row["acc"]
        assert n > 1 and 0 <= acc <= 1
        assert acc * n == pytest.approx(round(acc * n), abs=1e-9)  # a count of correct items
        # the standard error of a mean of n zeros and ones (sample deviation / sqrt(n))
        assert row["acc_stderr"] == pytest.approx(math.sqrt(acc * (1 - acc) / (n - 1)), rel=1e-6)


def test_second_run_reads_the_scores_back(study: dict[str, Any]) -> None:
    evals = [p for p in study["mtimes"] if p.name == EVAL_FILE]
    assert len(evals) == len({r["run"] for r in study["report"]["tables"]["final"]})
    assert all(p.stat().st_mtime_ns == study["mtimes"][p] for p in evals)
    lines = [ln for ln in study["second_log"].splitlines() if "[final downstream" in ln]
    assert len(lines) == len(evals) and all(ln.endswith("(done, skipped)") for ln in lines)
    first = [ln for ln in study["first_log"].splitlines() if "[final downstream" in ln]
    assert len(first) == len(evals) and not any(ln.endswith("(done, skipped)") for ln in first)


def test_scores_under_other_settings_are_refused(study: dict[str, Any]) -> None:
    row = study["report"]["tables"]["downstream"][0]
    path = study["out"] / row["eval_record"]
    before = path.read_text()
    stored = json.loads(before)
    tasks = list(stored["tasks"])
    same = DownstreamSettings(tasks=tasks, limit=stored["limit"])
    assert evaluate_final(path.parent, same, stored["max_len"], "cpu") == stored
    others = [
        (DownstreamSettings(tasks=tasks, limit=stored["limit"] + 1), stored["max_len"]),
        (DownstreamSettings(tasks=[*tasks, "sotu_word_order"], limit=stored["limit"]), 0),
        (same, stored["max_len"] // 2),
    ]
    for settings, max_len in others:
        with pytest.raises(StateError, match="delete that file to evaluate again"):
            evaluate_final(path.parent, settings, max_len, "cpu")
    assert path.read_text() == before


@pytest.mark.usefixtures("wandb_offline")
def test_real_report_goes_to_wandb_and_reads_back(study: dict[str, Any], tmp_path: Path) -> None:
    pytest.importorskip("wandb")
    from archsearch.config import TrackerConfig
    from archsearch.track.results import log_study
    from archsearch.track.wandb_tracker import read_run_fields, read_summary

    report = tmp_path / "report"  # a copy: the shared study stays as the other tests read it
    shutil.copytree(study["out"] / "report", report)
    log_study(TrackerConfig(kind="wandb"), report, name="cpu_quick")
    media = report / "wandb"
    tables = {k: rows for k, rows in study["report"]["tables"].items() if rows}
    assert "downstream" in tables
    for key, rows in tables.items():
        (table_file,) = media.glob(f"offline-run-*/files/media/table/table/{key}_*.table.json")
        table = json.loads(table_file.read_text())
        assert table["columns"] == list(rows[0])
        assert table["data"] == [[row[c] for c in table["columns"]] for row in rows]
    for png in report.glob("*.png"):
        assert len(list(media.glob(f"offline-run-*/files/media/images/figure/{png.stem}_*"))) == 1
    assert read_run_fields(report) == ("cpu_quick", "study")
    verdict = study["report"]["verdict"]
    summary = read_summary(report)
    assert {k: summary[f"verdict/{k}"] for k in verdict} == verdict


def test_switched_off_stage_evaluates_nothing() -> None:
    from archsearch.study.config import SearchSettings, StudyConfig
    from archsearch.study.downstream import downstream_stage

    lines: list[str] = []
    off = DownstreamSettings(enabled=False)
    cfg = StudyConfig(search=SearchSettings(batch_size=1), downstream=off)
    assert downstream_stage(cfg, [], lines.append) == []
    assert lines == ["[final downstream] off (downstream.enabled=false)"]
