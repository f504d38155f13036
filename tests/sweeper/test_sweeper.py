"""The archsearch sweeper: ask/tell rounds through Hydra's launchers, resumable, converging."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
APP = Path(__file__).with_name("known_law_app.py")
# a 100M budget at 8 layers and head_dim 64 gives fine-grained shapes; nothing is trained
KNOWN_LAW = [
    "hydra/sweeper=archsearch",
    "model.n_layers=8",
    "model.head_dim=64",
    "model.gqa_group=1",
    "model.d_model_multiple=64",
    "model.d_ff_multiple=64",
    "budget.n_params=100000000",
    "budget.tokens_per_param=20",
]


def _sweep(sweep_dir: Path, *overrides: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(APP), "-m", *KNOWN_LAW, f"hydra.sweep.dir={sweep_dir}", *overrides],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((sweep_dir / "sweeper.json").read_text())


def test_sweeper_converges_to_the_known_optimum(tmp_path: Path) -> None:
    state = _sweep(
        tmp_path,
        "hydra.sweeper.max_rounds=5",
        "hydra.sweeper.jobs_per_round=8",
        "hydra.sweeper.tolerance=0",
    )
    assert len(state["rounds"]) == 5
    optimum = state["rounds"][-1]["optimum"]
    assert optimum["x"] == pytest.approx(0.08, rel=0.03)
    assert optimum["r"] == pytest.approx(1.2, rel=0.03)
    # every round left its report, and the law refitted after it
    for entry in state["rounds"]:
        round_dir = tmp_path / "rounds" / f"round_{entry['round']:02d}"
        assert len(json.loads((round_dir / "proposals.json").read_text())) == 8
        assert "| shape |" in (round_dir / "report.md").read_text()
    assert (tmp_path / "rounds" / "round_05" / "fit.json").exists()
    assert len(list(tmp_path.glob("*/.hydra"))) == 40  # one job directory per proposal


def test_interrupted_sweep_resumes_where_it_stopped(tmp_path: Path) -> None:
    first = _sweep(tmp_path, "hydra.sweeper.max_rounds=1", "hydra.sweeper.jobs_per_round=8")
    assert first["stop_reason"] == "reached max_rounds=1"
    jobs = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/.hydra/overrides.yaml")}
    second = _sweep(tmp_path, "hydra.sweeper.max_rounds=2", "hydra.sweeper.jobs_per_round=8")
    assert len(second["rounds"]) == 2
    assert second["rounds"][0] == first["rounds"][0]
    assert second["search"]["round"] == 2 and len(second["search"]["observations"]) == 16
    assert all(p.stat().st_mtime_ns == t for p, t in jobs.items())  # round 1 was not rerun


def test_sweep_overrides_are_refused_with_a_clear_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(APP),
            "-m",
            *KNOWN_LAW,
            f"hydra.sweep.dir={tmp_path}",
            "model.d_model=256,512",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    assert "proposes the shapes itself" in done.stderr


def test_converged_sweep_run_again_launches_nothing(tmp_path: Path) -> None:
    settings = ["hydra.sweeper.max_rounds=5", "hydra.sweeper.jobs_per_round=8"]
    first = _sweep(tmp_path, *settings, "hydra.sweeper.tolerance=1.0")
    assert len(first["rounds"]) == 2 and first["stop_reason"].startswith("optimum moved")
    jobs = sorted(tmp_path.glob("*/.hydra"))
    again = _sweep(tmp_path, *settings, "hydra.sweeper.tolerance=1.0")
    assert again["rounds"] == first["rounds"] and again["stop_reason"] == first["stop_reason"]
    assert sorted(tmp_path.glob("*/.hydra")) == jobs


def test_search_space_is_the_typed_shared_config(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    from archsearch.search import SearchSpaceConfig
    from hydra_plugins.archsearch_sweeper.config import ArchsearchSweeperConf

    conf = ArchsearchSweeperConf(space=OmegaConf.create({"x_max": 0.1, "gqa_groups": [1]}))
    assert conf.space == SearchSpaceConfig(x_max=0.1, gqa_groups=[1])
    state = _sweep(
        tmp_path,
        "hydra.sweeper.max_rounds=1",
        "hydra.sweeper.jobs_per_round=4",
        "hydra.sweeper.space.x_max=0.1",
        "hydra.sweeper.space.r_max=2.0",
        "hydra.sweeper.n_initial=4",
    )
    assert state["search"]["space"]["x_max"] == 0.1 and state["search"]["n_initial"] == 4
    proposed = json.loads((tmp_path / "rounds" / "round_01" / "proposals.json").read_text())
    assert len(proposed) == 4
    assert all(p["x"] <= 0.1 and p["r"] <= 2.0 for p in proposed)
