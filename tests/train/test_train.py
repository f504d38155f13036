"""Training on real text: the loss falls, records are complete, a killed run resumes exactly."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from archsearch import cli
from archsearch.arch import count_params, describe
from archsearch.config import RunConfig
from archsearch.records import read_jsonl, read_record
from archsearch.train import train

DEBUG = ["model=debug", "budget=debug", "train=debug"]


def _cfg(overrides: list[str]) -> RunConfig:
    cli.register_run_groups()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(cli.CONF_DIR), version_base="1.3"):
        return cli.to_typed(compose(config_name="train", overrides=overrides))


@pytest.fixture(scope="module")
def debug_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("debug-run")
    train(_cfg(DEBUG), run_dir)
    return run_dir


def test_loss_falls_on_real_text(debug_run: Path) -> None:
    rows = read_jsonl(debug_run / "metrics.jsonl")
    evals = [r["val_loss"] for r in rows if "val_loss" in r]
    assert len(evals) >= 3
    assert evals[-1] < evals[0] - 0.25
    # below the unigram entropy: the model uses context, not just token frequencies
    assert evals[-1] < read_record(debug_run).unigram_entropy
    first_train = rows[0]["train_loss"]
    assert first_train == pytest.approx(8.32, abs=0.4)  # ln(4096): uniform at initialisation
    assert rows[-1]["train_loss"] < first_train - 1.5


def test_record_is_complete_and_consistent(debug_run: Path) -> None:
    record = read_record(debug_run)
    spec_counts = count_params(record_spec := _spec(record.arch))
    assert record.n_params == spec_counts.non_embedding
    assert record.total_params == spec_counts.total
    assert record.r_mlp_attn == pytest.approx(describe(record_spec)["r_mlp_attn"])
    assert record.train_tokens == record.steps * 8 * 64 >= 30720
    assert record.train_flops == 6 * record.n_params * record.train_tokens
    assert record.final_val_loss == read_jsonl(debug_run / "metrics.jsonl")[-1]["val_loss"]
    assert record.unigram_entropy is not None and record.unigram_entropy > 5
    assert record.wall_time_s > 0 and record.tokens_per_s > 0
    assert record.dataset == "sotu" and record.config["model"]["name"] == "debug"
    assert not list(debug_run.glob(".*.tmp")), "no half-written files are left behind"


def test_finished_run_is_not_trained_again(debug_run: Path) -> None:
    before = (debug_run / "record.json").read_text()
    again = train(_cfg(DEBUG), debug_run)
    assert (debug_run / "record.json").read_text() == before
    assert again.final_val_loss == read_record(debug_run).final_val_loss


def test_run_killed_after_its_last_checkpoint_still_writes_its_record(
    debug_run: Path, tmp_path: Path
) -> None:
    """A process that died between the final checkpoint and record.json: the rerun trains no
    step and writes the same final figures from the checkpoint."""
    shutil.copytree(debug_run, tmp_path, dirs_exist_ok=True)
    (tmp_path / "record.json").unlink()
    record = train(_cfg(DEBUG), tmp_path)
    original = read_record(debug_run)
    assert (record.steps, record.final_val_loss, record.final_train_loss) == (
        original.steps,
        original.final_val_loss,
        original.final_train_loss,
    )
    assert read_record(tmp_path).final_val_loss == original.final_val_loss


def test_gradient_accumulation_run_matches_one_big_batch(debug_run: Path, tmp_path: Path) -> None:
    """batch 4 x 2 micro-batches per step trains exactly as batch 8 (the debug run)."""
    cfg = _cfg([*DEBUG, "train.batch_size=4", "train.global_batch_tokens=512", "perf=eager"])
    record = train(cfg, tmp_path)
    assert record.steps == read_record(debug_run).steps
    accumulated = read_jsonl(tmp_path / "metrics.jsonl")
    for a, b in zip(accumulated, read_jsonl(debug_run / "metrics.jsonl"), strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-5)
    assert record.model_flops_per_token > 6 * record.n_params
    assert record.mfu is None  # no datasheet peak for a CPU


def _spec(arch: dict):  # noqa: ANN202
    from archsearch.arch import ArchSpec

    return ArchSpec.from_dict(arch)


def _command(run_dir: Path) -> list[str]:
    return [sys.executable, "-m", "archsearch.train", *DEBUG, f"hydra.run.dir={run_dir}"]


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path: Path, debug_run: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    run_dir = tmp_path / "killed"
    proc = subprocess.Popen(
        _command(run_dir), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    metrics = run_dir / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if (
            (run_dir / "checkpoint.pt").exists()
            and metrics.exists()
            and len(read_jsonl(metrics)) >= 23
        ):
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"run ended before it could be killed: {proc.stderr.read()!r}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "record.json").exists()
    killed_at = len(read_jsonl(metrics))
    done = subprocess.run(_command(run_dir), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    resumed = read_jsonl(metrics)
    uninterrupted = read_jsonl(debug_run / "metrics.jsonl")
    assert killed_at < len(uninterrupted)
    assert [r["step"] for r in resumed] == [r["step"] for r in uninterrupted]
    for a, b in zip(resumed, uninterrupted, strict=True):
        assert a["train_loss"] == b["train_loss"]  # every digit: batches depend on (seed, step)
    assert read_record(run_dir).final_val_loss == read_record(debug_run).final_val_loss
    assert (
        json.loads((run_dir / "record.json").read_text())["steps"] == read_record(debug_run).steps
    )
