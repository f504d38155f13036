"""Every result kind mirrored to wandb offline and read back: a throughput multirun (table and
plot), the sweeper's rounds (one step each), the study's report (one run with artifacts) and a
run's downstream scores (in its own wandb run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("wandb")

from test_wandb import TINY, _cfg  # noqa: E402  (tests/track on sys.path)

from archsearch.law import read_fit  # noqa: E402
from archsearch.records.throughput import scan_throughput_records  # noqa: E402
from archsearch.track.results import SWEEPER_RUN_DIR, log_study  # noqa: E402
from archsearch.track.wandb_tracker import (  # noqa: E402
    read_history,
    read_run_fields,
    read_summary,
)

REPO = Path(__file__).resolve().parents[2]


def _run(args: list[str], cwd: Path) -> None:
    done = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def _files(run_dir: Path, pattern: str) -> list[Path]:
    return sorted((run_dir / "wandb").glob(f"offline-run-*/files/media/{pattern}"))


def test_throughput_multirun_is_mirrored_as_a_table_and_plot(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    _run(
        [
            "-m",
            "archsearch.throughput",
            "-m",
            "model=debug",
            "model.n_kv_heads=1,4",
            "throughput.prompt_tokens=16",
            "throughput.new_tokens=4",
            "throughput.repeats=3",
            "throughput.num_threads=1",
            "throughput.batch_sizes=[1,2]",
            "throughput.profile=null",
            "device=cpu",
            "tracker.kind=wandb",
            f"hydra.sweep.dir={sweep}",
        ],
        tmp_path,
    )
    (table_file,) = _files(sweep, "table/throughput_*.table.json")
    table = json.loads(table_file.read_text())
    rows = [dict(zip(table["columns"], row, strict=True)) for row in table["data"]]
    measured = {
        (r.arch["n_kv_heads"], b.batch_size): b.tokens_per_s
        for r in scan_throughput_records(sweep)
        for b in r.batches
    }
    assert {(row["n_kv_heads"], row["batch_size"]): row["tokens_per_s"] for row in rows} == measured
    assert {"predicted_tokens_per_s", "fraction_of_floor", "shape"} <= set(table["columns"])
    assert read_run_fields(sweep) == ("sweep", "throughput")  # the jobs' group: the sweep's name
    (plot,) = _files(sweep, "images/throughput_plot_*.png")
    assert plot.stat().st_size > 0


def test_sweeper_rounds_are_steps_with_the_refitted_law(tmp_path: Path) -> None:
    _run(
        [
            str(REPO / "tests" / "sweeper" / "known_law_app.py"),
            "-m",
            "hydra/sweeper=archsearch",
            "model.n_layers=8",
            "model.head_dim=64",
            "model.gqa_group=1",
            "budget.n_params=100000000",
            "budget.tokens_per_param=20",
            "hydra.sweeper.max_rounds=2",
            "hydra.sweeper.jobs_per_round=8",
            "hydra.sweeper.tolerance=0",
            "tracker=wandb",
            f"hydra.sweep.dir={tmp_path}",
        ],
        REPO,
    )
    history = read_history(tmp_path / SWEEPER_RUN_DIR)
    assert [row["step"] for row in history] == [1, 2]
    for row in history:
        law = read_fit(tmp_path / "rounds" / f"round_{row['step']:02d}" / "fit.json")
        assert {k[4:]: v for k, v in row.items() if k.startswith("law/")} == law.params
        assert (row["x_star"], row["r_star"]) == (law.optimum["x"], law.optimum["r"])
        assert [row["x_star_low"], row["x_star_high"]] == law.intervals["x*"]
        assert row["x_star_low"] <= row["x_star"] <= row["x_star_high"]
        assert row["jobs_completed"] == 8
    assert read_run_fields(tmp_path / SWEEPER_RUN_DIR) == (tmp_path.name, "sweeper")
    tables = _files(tmp_path / SWEEPER_RUN_DIR, "table/proposals_*.table.json")
    assert len(tables) == 2
    first = json.loads(tables[0].read_text())
    proposals = json.loads((tmp_path / "rounds" / "round_01" / "proposals.json").read_text())
    names = first["data"]
    assert [row[first["columns"].index("name")] for row in names] == [p["name"] for p in proposals]
    assert all(row[first["columns"].index("val_loss")] > 0 for row in names)


def test_study_report_is_one_run_with_tables_figures_and_an_artifact(tmp_path: Path) -> None:
    from archsearch.config import TrackerConfig
    from archsearch.plotting import pyplot, save

    report = tmp_path / "report"
    report.mkdir()
    tables = {
        "sweep": [{"shape": "a", "val_loss": 4.1}, {"shape": "b", "val_loss": 4.3}],
        "final": [{"role": "fastest", "val_loss": 4.2, "tokens_per_s_64": 1234.5}],
    }
    verdict = {"faster": True, "speedup_64": 1.31}
    (report / "report.json").write_text(json.dumps({"tables": tables, "verdict": verdict}))
    (report / "report.md").write_text("# study\n")
    fig, ax = pyplot().subplots()
    ax.plot([1, 2], [3, 4])
    save(fig, report / "pareto.png")
    log_study(TrackerConfig(kind="wandb"), report, name="quick")
    for key, rows in tables.items():
        (table_file,) = _files(report, f"table/table/{key}_*.table.json")
        table = json.loads(table_file.read_text())
        assert table["data"] == [list(row.values()) for row in rows]
    assert len(_files(report, "images/figure/pareto_*.png")) == 1
    assert read_run_fields(report) == ("quick", "study")
    summary = read_summary(report)
    assert summary["verdict/faster"] is True and summary["verdict/speedup_64"] == 1.31
    (offline,) = sorted((report / "wandb").glob("offline-run-*"))
    manifests = list((offline / "files").rglob("*.json")) + list(offline.rglob("*.wandb"))
    assert any(b"quick-report" in path.read_bytes() for path in manifests)


def test_eval_scores_join_the_runs_own_wandb_run(tmp_path: Path) -> None:
    pytest.importorskip("lm_eval")
    from archsearch.evaluate.harness import EVAL_FILE, evaluate_run
    from archsearch.train import train

    record = train(_cfg([*TINY, "tracker=wandb"]), tmp_path)
    scores = evaluate_run(tmp_path, ["sotu_word_order"], limit=20)
    assert json.loads((tmp_path / EVAL_FILE).read_text()) == scores
    summary = read_summary(tmp_path)
    assert summary["eval/sotu_word_order/acc"] == scores["tasks"]["sotu_word_order"]["acc"]
    assert summary["final_val_loss"] == record.final_val_loss  # the same wandb run, resumed
    assert len(list((tmp_path / "wandb").glob("offline-run-*"))) == 2
