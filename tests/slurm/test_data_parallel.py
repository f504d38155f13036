"""Data-parallel training on CPU (gloo): two processes, started by torchrun or as two ``srun`` tasks
on the local SLURM cluster, train the same model as one process at the same global batch, and a
run whose rank was killed resumes with any number of processes dividing the batch.

Tolerance: losses agree to 1e-5 nats (measured: train losses equal in float32, val_loss 3e-8
apart after 10 steps): two ranks average two half-batch gradients where one process takes one
mean, a different order of float sums.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from archsearch import cli
from archsearch.config import RunConfig
from archsearch.records import read_jsonl, read_record
from archsearch.train import train
from archsearch.train.checkpoint import CHECKPOINT_FILE

# 10 steps of 8 rows x 64 tokens, a checkpoint every 3 steps, evaluation every 5
DP_RUN = ["model=debug", "budget=debug", "train=debug", "budget.train_tokens=5120"]
DP_RUN += ["train.ckpt_every_steps=3", "train.eval_every_steps=5"]
LOSS_TOLERANCE = 1e-5
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
TIMEOUT_S = 300

# rank 1 dies (SIGKILL) after its 5th step; the checkpoint of step 3 is on disk
KILL_RANK_1 = """
import os, signal
from archsearch.train.torch_backend import TorchBackend
step = TorchBackend.step
def step_then_die(self, *args):
    out = step(self, *args)
    self.steps_done = getattr(self, "steps_done", 0) + 1
    if self.world.rank == 1 and self.steps_done == 5:
        os.kill(os.getpid(), signal.SIGKILL)
    return out
TorchBackend.step = step_then_die
from archsearch import cli
from archsearch.train.__main__ import main
cli.run("train", main)
"""


def _cfg(overrides: list[str]) -> RunConfig:
    cli.register_run_groups()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(cli.CONF_DIR), version_base="1.3"):
        return cli.to_typed(compose(config_name="train", overrides=overrides))


def _torchrun(args: list[str], run_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TORCHRUN, *args, *DP_RUN, f"hydra.run.dir={run_dir}"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


@pytest.fixture(scope="module")
def one_process(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("one-process")
    train(_cfg(DP_RUN), run_dir)
    return run_dir


def _losses(run_dir: Path) -> list[tuple[float, float | None]]:
    return [
        (row["train_loss"], row.get("val_loss")) for row in read_jsonl(run_dir / "metrics.jsonl")
    ]


def assert_same_losses(run_dir: Path, reference: Path) -> None:
    """Every logged step's losses (and the record's) within ``LOSS_TOLERANCE`` of the reference."""
    got, expected = _losses(run_dir), _losses(reference)
    assert len(got) == len(expected) == 10
    for (train_loss, val_loss), (train_ref, val_ref) in zip(got, expected, strict=True):
        assert train_loss == pytest.approx(train_ref, abs=LOSS_TOLERANCE)
        assert (val_loss is None) == (val_ref is None)
        assert val_loss is None or val_loss == pytest.approx(val_ref, abs=LOSS_TOLERANCE)
    assert read_record(run_dir).final_val_loss == pytest.approx(
        read_record(reference).final_val_loss, abs=LOSS_TOLERANCE
    )


@pytest.mark.slow
def test_two_torchrun_processes_reach_the_one_process_loss(
    one_process: Path, tmp_path: Path
) -> None:
    done = _torchrun(["-m", "archsearch.train"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_same_losses(tmp_path, one_process)
    assert not list(tmp_path.glob(".*.tmp")), "rank 0 alone writes, atomically"


@pytest.mark.slow
def test_a_run_whose_rank_was_killed_resumes_on_one_process(
    one_process: Path, tmp_path: Path
) -> None:
    script = tmp_path / "kill_rank_1.py"
    script.write_text(KILL_RANK_1)
    run_dir = tmp_path / "run"
    killed = _torchrun([str(script)], run_dir)
    assert killed.returncode != 0
    assert not (run_dir / "record.json").exists()
    checkpoint = torch.load(run_dir / CHECKPOINT_FILE, weights_only=True)
    assert checkpoint["step"] == 3  # written by rank 0 of the two-process run
    record = train(_cfg(DP_RUN), run_dir)  # one process: any world size dividing the batch
    assert record.steps == 10
    assert_same_losses(run_dir, one_process)


@pytest.mark.slow
@pytest.mark.slurm
def test_two_srun_tasks_reach_the_one_process_loss(one_process: Path, tmp_path: Path) -> None:
    """Rendezvous from SLURM's task variables (``SLURM_PROCID``, ``SLURM_NTASKS``)."""
    command = ["srun", "--ntasks=2", "--cpus-per-task=1", sys.executable, "-m", "archsearch.train"]
    done = subprocess.run(
        [*command, *DP_RUN, f"hydra.run.dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert_same_losses(tmp_path, one_process)
