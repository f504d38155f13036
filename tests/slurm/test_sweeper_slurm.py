"""``hydra/sweeper=archsearch`` over real (tiny) training jobs: two rounds, locally and on SLURM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Multirun

from archsearch.records import read_record

# the debug shape's knobs, derived from a 200k budget by the sweeper's proposals
SWEEP = [
    "hydra/sweeper=archsearch",
    "hydra.sweeper.max_rounds=2",
    "hydra.sweeper.jobs_per_round=2",
    "model.n_heads=null",
    "model.n_kv_heads=null",
    "model.d_ff=null",
    "model.gqa_group=1",
    "budget.n_params=200000",
    "budget.train_tokens=2560",
]


@pytest.mark.parametrize(
    "launcher",
    [
        pytest.param("basic", id="basic"),
        pytest.param("local_slurm", id="local_slurm", marks=pytest.mark.slurm),
    ],
)
def test_sweeper_runs_two_rounds_of_training(
    launcher: str, multirun: Multirun, tmp_path: Path
) -> None:
    sweep = tmp_path / "sweep"
    done = multirun(sweep, f"hydra/launcher={launcher}", *SWEEP)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    state = json.loads((sweep / "sweeper.json").read_text())
    assert [r["round"] for r in state["rounds"]] == [1, 2]
    assert state["stop_reason"] == "reached max_rounds=2" and not state["failures"]
    records = {p.parent.name: read_record(p.parent) for p in sweep.glob("*/record.json")}
    # job directories are named by shape and budget: <shape>_D<train tokens>
    trained = {r.arch["name"]: r for r in records.values()}
    assert sorted(records) == sorted(f"{n}_D{r.train_tokens}" for n, r in trained.items())
    proposed = [name for r in state["rounds"] for name in r["proposed"]]
    assert sorted(trained) == sorted(proposed) and len(set(proposed)) == 4
    observed = {o["name"]: o["loss"] for o in state["search"]["observations"]}
    assert observed == {name: record.final_val_loss for name, record in records.items()}
    if launcher == "local_slurm":
        assert len(list(sweep.glob(".submitit/*/*_result.pkl"))) == 4
