"""Fixtures for launching sweeps: a reachable SLURM cluster, a warm data cache, a multirun helper.

The cluster is the single-node one of ``launchers/start_local_slurm.sh`` (``tests/run.sh`` starts
it and exports SLURM_CONF). Without it the ``slurm`` tests skip, except under CI=true where a
missing cluster is an error.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest

from archsearch.config import DataConfig
from archsearch.data import prepare

Multirun = Callable[..., subprocess.CompletedProcess[str]]

# seconds; a job is a few seconds of training after about 10 s of imports on a busy 2-core box
JOB_TIMEOUT_S = 300

# A run of a few seconds: 128 tokens a step, a checkpoint every 5 steps, one torch thread.
TINY = [
    "model=debug",
    "budget=debug",
    "train=debug",
    "train.batch_size=4",
    "train.seq_len=32",
    "train.eval_tokens=2048",
    "train.ckpt_every_steps=5",
    "train.num_threads=1",
]


def _cluster_problem() -> str | None:
    """Why no SLURM cluster can take jobs, or None when one can."""
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"sinfo failed: {err}"
    states = out.stdout.split()
    if out.returncode != 0 or not {"idle", "mix", "alloc"} & set(states):
        return f"no idle SLURM node (sinfo: {out.stdout.strip() or out.stderr.strip()})"
    return None


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """Skip (fail under CI=true) unless ``sinfo`` reaches a cluster with a usable node."""
    problem = _cluster_problem()
    if problem is None:
        return
    message = (
        f"{problem}; start one with launchers/start_local_slurm.sh and "
        "`source ${TMPDIR:-/tmp}/slurm-local-$USER/env.sh`"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _needs_cluster(request: pytest.FixtureRequest) -> None:
    """Tests marked ``slurm`` check the cluster first, before any other setup."""
    if request.node.get_closest_marker("slurm"):
        request.getfixturevalue("slurm_cluster")


@pytest.fixture(scope="session")
def warm_cache() -> None:
    """Tokenize the bundled corpus once here, so parallel jobs only read the shared cache."""
    prepare(DataConfig())


@pytest.fixture
def multirun(warm_cache: None, repo: Path) -> Multirun:
    """``multirun(sweep_dir, *overrides)``: ``python -m archsearch.train -m`` in a subprocess."""

    def run(sweep_dir: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            _command(sweep_dir, overrides),
            cwd=repo,  # archsearch importable even without an install
            capture_output=True,
            text=True,
            timeout=JOB_TIMEOUT_S,
        )

    return run


def _command(sweep_dir: Path, overrides: tuple[str, ...]) -> list[str]:
    sweep = f"hydra.sweep.dir={sweep_dir}"
    return [sys.executable, "-m", "archsearch.train", "-m", sweep, *TINY, *overrides]


@pytest.fixture
def start_multirun(warm_cache: None, repo: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Like ``multirun`` but returns the running process (output in ``<sweep_dir>.log``)."""
    logs: list[IO[str]] = []

    def start(sweep_dir: Path, *overrides: str) -> subprocess.Popen[str]:
        logs.append(open(f"{sweep_dir}.log", "w"))  # noqa: SIM115  (closed at teardown)
        return subprocess.Popen(
            _command(sweep_dir, overrides),
            cwd=repo,  # archsearch importable even without an install
            stdout=logs[-1],
            stderr=subprocess.STDOUT,
            text=True,
        )

    yield start
    for log in logs:
        log.close()
