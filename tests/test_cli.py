"""What a newcomer meets before training: run-directory names, the sweep pre-check and its advice,
one-line user errors, missing extras named, and the lists that summarise a sweep or a fit."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from omegaconf import OmegaConf, open_dict

from archsearch import cli, sweep
from archsearch.arch.feasible import builds, smallest_n_params, widest_d_model
from archsearch.config import BudgetConfig, RunConfig, resolve_arch
from archsearch.errors import ArchError, ConfigError
from archsearch.fit import list_runs
from archsearch.law import LawData


def tiny_run(**model: object) -> RunConfig:
    """The CPU default (model tiny, budget tiny) with model fields changed."""
    base = cli.load_model_preset(cli.CONF_DIR / "model" / "tiny.yaml")
    budget = cli.load_preset(cli.CONF_DIR / "budget" / "tiny.yaml", BudgetConfig)
    return RunConfig(model=replace(base, **model), budget=budget)


def test_run_names_are_short_and_safe_whatever_the_overrides() -> None:
    assert cli.run_id([]) == "default"
    assert cli.run_id(["model.d_model=96", "budget=tiny"]) == "budget=tiny,model.d_model=96"
    assert cli.run_id(["name=x", "model.d_model=96"], ["name"]) == "model.d_model=96"
    paths = cli.run_id(["data=files", "data.paths=[/data/a.txt,/data/b.jsonl]"])
    assert "/" not in paths and paths.startswith("data.paths=sha")
    assert cli.run_id(["data.paths=[/a.txt]"]) != cli.run_id(["data.paths=[/b.txt]"])
    many = [f"model.k{i}={'v' * 30}" for i in range(40)]
    name = cli.run_id(many)
    assert len(name) <= cli.NAME_CHARS and name != cli.run_id(many[:-1])


def test_a_sweep_is_named_by_its_swept_keys() -> None:
    overrides = ["model.gqa_group=1,2", "budget=tiny", "model.d_model=96,128"]
    assert cli.sweep_id(overrides) == "model.d_model,model.gqa_group"
    assert cli.sweep_id(["budget=tiny"]) == "budget=tiny"


def test_the_width_rule_bounds_the_budget_a_width_needs() -> None:
    knobs = sweep.shape_knobs(tiny_run().model, tiny_run().budget, 4096)
    needed = smallest_n_params(1024, knobs)
    assert needed is not None and builds(needed, 1024, knobs)
    assert not builds(round(needed / 1.02), 1024, knobs)
    widest = widest_d_model(500_000, knobs)
    assert widest is not None and builds(500_000, widest, knobs)
    assert not any(builds(500_000, d, knobs) for d in range(widest + 16, 2 * widest, 16))


def test_headline_sweep_is_refused_whole_with_commands_that_build() -> None:
    jobs = [([f"model.d_model={d}"], tiny_run(d_model=d)) for d in (1024, 2048)]
    with pytest.raises(ArchError) as error:
        sweep.check_jobs(jobs, ["model.d_model=1024,2048"], multirun=True)
    message = str(error.value)
    assert message.startswith("2 of 2 jobs cannot be built at budget=tiny")
    assert "model.d_model=1024: x = d_model/sqrt(N) = 1.45" in message
    assert "-m model.d_model=1024,2048 budget=llama1b_20x train=gpu" in message
    # every command it suggests builds every job
    preset = cli.load_preset(cli.CONF_DIR / "budget" / "llama1b_20x.yaml", BudgetConfig)
    smallest = int(message.split("budget.n_params=")[1].split()[0])
    cpu = message.rsplit("model.d_model=", 1)[1].split()[0]
    for _, cfg in jobs:
        resolve_arch(cfg.model, preset, 4096)
        resolve_arch(cfg.model, replace(cfg.budget, n_params=smallest), 4096)
    for width in cpu.split(","):
        resolve_arch(tiny_run(d_model=int(width)).model, tiny_run().budget, 4096)


def test_feasible_jobs_pass_the_check() -> None:
    jobs = [([f"model.d_model={d}"], tiny_run(d_model=d)) for d in (96, 128)]
    sweep.check_jobs(jobs, ["model.d_model=96,128"], multirun=True)


def test_user_errors_are_one_line_and_missing_extras_are_named() -> None:
    def bad(cfg: object) -> None:
        raise ConfigError("set train.device=cpu")

    def needs_wandb(cfg: object) -> None:
        raise ModuleNotFoundError("No module named 'wandb'", name="wandb")

    cfg = OmegaConf.create({"a": 1})
    with pytest.raises(cli.UserInputError, match="^ConfigError: set train.device=cpu$"):
        cli.call_task(bad, cfg)
    with pytest.raises(cli.UserInputError) as missing:
        cli.call_task(needs_wandb, cfg)
    assert str(missing.value) == "wandb is not installed: pip install 'archsearch[wandb]'"
    assert cli.missing_extra(cli.SUBMITIT_PLUGIN).endswith("pip install 'archsearch[slurm]'")
    assert cli.needs_submitit(["-m", "hydra/launcher=local_slurm", "x=1"]) == (
        "hydra/launcher=local_slurm"
    )
    assert cli.needs_submitit(["hydra/launcher=basic"]) is None


def test_fit_lists_runs_used_and_dropped_with_their_groups() -> None:
    data = LawData.from_columns(
        N=[5e5, 5e5, 5e5],
        D=[1e6, 1e6, 2e6],
        loss=[4.0, 3.9, 3.8],
        x=[0.1, 0.2, 0.2],
        r=[1.0, 8.0, 1.0],
        run_id=["a", "b", "c"],
    )
    text = list_runs(data, ["a", "c"], (0.5, 5.0))
    lines = text.splitlines()
    assert lines[2].split()[-1] == "b" and "no: r outside [0.5, 5]" in lines[2]
    assert "2 of 3 runs used" in lines[-1] and "5e+05|1e+06 (1 runs)" in lines[-1]
    assert "5e+05|2e+06 (1 runs)" in lines[-1]
    assert np.isclose(float(lines[1].split()[3]), 1.0)


def test_unknown_config_keys_are_refused_at_the_entry_point() -> None:
    cfg = OmegaConf.structured(RunConfig)
    assert isinstance(cli.to_typed(cfg), RunConfig)
    with open_dict(cfg.model):
        cfg.model.foo = 1  # what `+model.foo=1` composes
    with pytest.raises(ConfigError, match=r"^model\.foo is not a config field: use one of d_ff"):
        cli.to_typed(cfg)
