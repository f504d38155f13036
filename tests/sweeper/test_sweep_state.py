"""The sweeper's stored state checks itself: another budget is refused naming the field, one
process at a time per sweep, damaged state is named, job directories carry shape and budget."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from archsearch.records.state import locked

REPO = Path(__file__).resolve().parents[2]
APP = Path(__file__).with_name("known_law_app.py")
SMALL_SWEEP = [
    "hydra/sweeper=archsearch",
    "model.n_layers=8",
    "model.head_dim=64",
    "model.gqa_group=1",
    "budget.n_params=100000000",
    "budget.tokens_per_param=20",
    "hydra.sweeper.max_rounds=1",
    "hydra.sweeper.jobs_per_round=2",
]


def _sweep(sweep_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(APP), "-m", *SMALL_SWEEP, f"hydra.sweep.dir={sweep_dir}", *overrides],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_sweep_under_another_budget_is_refused_naming_the_field(tmp_path: Path) -> None:
    assert _sweep(tmp_path).returncode == 0
    jobs = sorted(p.parent.name for p in tmp_path.glob("*/.hydra"))
    assert len(jobs) == 2 and all(j.endswith("_D2000000000") for j in jobs), jobs
    state = (tmp_path / "sweeper.json").read_text()
    refused = _sweep(tmp_path, "budget.tokens_per_param=40")
    assert refused.returncode != 0
    assert "budget.tokens_per_param: 20.0 -> 40.0" in refused.stderr
    assert "new name=" in refused.stderr
    assert (tmp_path / "sweeper.json").read_text() == state
    # a stop rule is not a result field: raising max_rounds resumes the same sweep
    assert _sweep(tmp_path, "hydra.sweeper.max_rounds=2").returncode == 0


def test_second_sweep_process_is_refused_with_the_holder(tmp_path: Path) -> None:
    with locked(tmp_path, "sweep"):
        refused = _sweep(tmp_path)
    assert refused.returncode != 0
    assert f"sweep {tmp_path} is in use by pid {os.getpid()}" in refused.stderr
    assert not (tmp_path / "sweeper.json").exists()


def test_truncated_sweep_state_is_named(tmp_path: Path) -> None:
    assert _sweep(tmp_path).returncode == 0
    path = tmp_path / "sweeper.json"
    path.write_text(path.read_text()[:100])
    refused = _sweep(tmp_path)
    assert refused.returncode != 0
    assert f"{path}: not valid JSON" in refused.stderr
