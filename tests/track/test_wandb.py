"""Trackers: wandb offline mirrors metrics.jsonl exactly (read back from its run files), resumes
the same wandb run after a requeue, logs throughput sweeps as tables; none and jsonl kinds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from archsearch import cli
from archsearch.config import RunConfig, TrackerConfig
from archsearch.records import METRICS_FILE, RECORD_FILE, read_jsonl, read_record
from archsearch.track import make_tracker
from archsearch.train import train

pytest.importorskip("wandb")

from archsearch.track.wandb_tracker import (  # noqa: E402  (needs wandb)
    RUN_ID_FILE,
    log_throughput_sweep,
    read_history,
)

TINY = [
    "model=debug",
    "budget=debug",
    "train=debug",
    "budget.train_tokens=2560",
    "train.batch_size=4",
    "train.seq_len=32",
    "train.eval_tokens=1024",
    "train.eval_every_steps=5",
]


def _cfg(overrides: list[str]) -> RunConfig:
    cli.register_run_groups()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(cli.CONF_DIR), version_base="1.3"):
        return cli.to_typed(compose(config_name="train", overrides=overrides))


def _offline_runs(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "wandb").glob("offline-run-*"))


def test_offline_run_mirrors_metrics_jsonl(tmp_path: Path) -> None:
    cfg = _cfg([*TINY, "tracker=wandb", "tracker.group=g1"])
    record = train(cfg, tmp_path)
    rows = read_jsonl(tmp_path / METRICS_FILE)
    assert len(rows) == record.steps == 20
    assert read_history(tmp_path) == rows  # every key, every step, bit for bit
    (offline,) = _offline_runs(tmp_path)
    run_id = (tmp_path / RUN_ID_FILE).read_text().strip()
    assert offline.name.endswith(run_id)
    mirrored = json.loads((offline / "files" / RECORD_FILE).read_text())
    assert mirrored == read_record(tmp_path).to_dict()


def test_requeued_run_resumes_the_same_wandb_run(tmp_path: Path) -> None:
    cfg = TrackerConfig(kind="wandb", project="p", group="g")
    first = make_tracker(cfg, tmp_path, resume_step=0)
    for step in range(1, 7):
        first.log({"step": step, "train_loss": 1.0 / step})
    first.close()  # preempted after step 6; its checkpoint holds step 4
    second = make_tracker(cfg, tmp_path, resume_step=4)
    for step in range(5, 9):
        second.log({"step": step, "train_loss": 2.0 / step})
    second.close()
    rows = read_jsonl(tmp_path / METRICS_FILE)
    assert [r["step"] for r in rows] == list(range(1, 9))
    assert rows[5]["train_loss"] == 2.0 / 6
    assert read_history(tmp_path) == rows
    run_id = (tmp_path / RUN_ID_FILE).read_text().strip()
    attempts = [run / f"run-{run_id}.wandb" for run in _offline_runs(tmp_path)]
    assert len(attempts) == 2
    assert all(attempt.exists() for attempt in attempts)


def test_throughput_sweep_is_logged_as_a_table(tmp_path: Path) -> None:
    rows = [
        {"shape": "llama3_2_1b", "batch_size": 16, "tokens_per_s": 1200.5},
        {"shape": "llama3_2_1b", "batch_size": 64, "tokens_per_s": 4100.0},
        {"shape": "surefire_1b", "batch_size": 64, "tokens_per_s": 5300.25},
    ]
    log_throughput_sweep(rows, TrackerConfig(kind="wandb"), tmp_path)
    (offline,) = _offline_runs(tmp_path)
    (table_file,) = (offline / "files" / "media" / "table").glob("throughput_*.table.json")
    table = json.loads(table_file.read_text())
    assert table["columns"] == ["shape", "batch_size", "tokens_per_s"]
    assert table["data"] == [list(row.values()) for row in rows]


@pytest.mark.parametrize(("kind", "writes_metrics"), [("none", False), ("jsonl", True)])
def test_none_and_jsonl_trackers(tmp_path: Path, kind: str, writes_metrics: bool) -> None:
    record = train(_cfg([*TINY, f"tracker={kind}"]), tmp_path)
    assert (tmp_path / RECORD_FILE).exists()
    assert (tmp_path / METRICS_FILE).exists() == writes_metrics
    assert not (tmp_path / "wandb").exists()
    if writes_metrics:
        assert read_jsonl(tmp_path / METRICS_FILE)[-1]["val_loss"] == record.final_val_loss
