"""Sweeps through Hydra launchers: one record per job, locally and on SLURM; a preempted SLURM
job is requeued, resumes from its run directory and ends exactly like an uninterrupted run, its
wandb mirror included."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import JOB_TIMEOUT_S, TINY, Multirun
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from archsearch import cli
from archsearch.records import METRICS_FILE, read_jsonl, read_record
from archsearch.track.wandb_tracker import read_history
from archsearch.train import train
from archsearch.train.checkpoint import CHECKPOINT_FILE

LEARNING_KEYS = ("step", "tokens", "train_loss", "val_loss", "lr", "grad_norm")


@pytest.mark.parametrize(
    "launcher",
    [
        pytest.param("basic", id="basic"),
        pytest.param("local_slurm", id="local_slurm", marks=pytest.mark.slurm),
    ],
)
def test_multirun_writes_one_record_per_job(
    launcher: str, multirun: Multirun, tmp_path: Path
) -> None:
    sweep = tmp_path / "sweep"
    done = multirun(
        sweep, f"hydra/launcher={launcher}", "budget.train_tokens=2560", "model.d_model=48,64"
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    records = [read_record(path.parent) for path in sweep.glob("*/record.json")]
    assert sorted(record.arch["d_model"] for record in records) == [48, 64]
    if launcher == "local_slurm":  # ran as SLURM jobs, one submitit folder per array task
        assert len(list(sweep.glob(".submitit/*/*_result.pkl"))) == 2


@pytest.mark.slurm
def test_preempted_job_is_requeued_and_loses_nothing(
    start_multirun: Callable[..., subprocess.Popen[str]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    pytest.importorskip("wandb")
    for key, value in {"WANDB_SILENT": "true", "WANDB_MODE": "offline"}.items():
        monkeypatch.setenv(key, value)  # sbatch passes the environment on to the job
    for key in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(key, str(tmp_path / key.lower()))
    overrides = ["budget.train_tokens=20480", "train.eval_every_steps=40"]
    sweep = tmp_path / "sweep"
    proc = start_multirun(sweep, "hydra/launcher=local_slurm", "tracker=wandb", *overrides)
    job_id = None
    try:
        run_dir = _wait_for(lambda: next(sweep.glob(f"*/{CHECKPOINT_FILE}"), None), proc).parent
        job_id = next(sweep.glob(".submitit/[0-9]*")).name  # the SLURM job id
        # what SLURM sends a job it preempts (or before its time limit) on a submitit cluster
        subprocess.run(["scancel", "--signal=USR2", job_id], check=True, timeout=30)
        proc.wait(timeout=JOB_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            if job_id:
                subprocess.run(["scancel", job_id], timeout=30)
    assert proc.returncode == 0, Path(f"{sweep}.log").read_text()[-3000:]
    job_log = next(sweep.glob(f".submitit/{job_id}/*_log.out")).read_text()
    assert "this job is preempted" in job_log
    assert f"Requeued job {job_id}" in job_log
    assert job_log.count("Starting with JobEnvironment") == 2

    reference = tmp_path / "uninterrupted"
    expected = train(_compose([*TINY, *overrides]), reference)
    resumed = read_record(run_dir)
    assert resumed.final_val_loss == pytest.approx(expected.final_val_loss, rel=1e-6)
    assert resumed.steps == expected.steps == 160
    rows, expected_rows = (read_jsonl(d / METRICS_FILE) for d in (run_dir, reference))
    assert [row["step"] for row in rows] == list(range(1, 161))  # no step lost or repeated
    assert [_learning(row) for row in rows] == [
        pytest.approx(_learning(row), rel=1e-6) for row in expected_rows
    ]
    # the wandb mirror: both attempts logged into one wandb run, grouped by the sweep
    assert read_history(run_dir) == rows
    attempts = sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len({attempt.name for attempt in attempts}) == 1 < len(attempts)


def _wait_for(find: Callable[[], Path | None], proc: subprocess.Popen[str]) -> Path:
    """Poll ``find`` until it returns a path; fail if the sweep exits or times out first."""
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while (found := find()) is None:
        assert proc.poll() is None, "the sweep ended before the job wrote a checkpoint"
        assert time.monotonic() < deadline, "no checkpoint before the timeout"
        time.sleep(0.1)
    return found


def _compose(overrides: list[str]):  # noqa: ANN202
    cli.register_run_groups()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(cli.CONF_DIR), version_base="1.3"):
        return cli.to_typed(compose(config_name="train", overrides=overrides))


def _learning(row: dict[str, float]) -> dict[str, float]:
    """A metrics row without its timings (wall-clock time, throughput)."""
    return {k: v for k, v in row.items() if k in LEARNING_KEYS}
