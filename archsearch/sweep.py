"""Training sweeps: every job's shape is checked before any job starts, and a table ends the sweep.

``SweepCallback`` is registered in ``conf/train.yaml`` (``hydra.callbacks``, after
``cli.SweepDirCallback``). At the start of a multirun it composes every job of Hydra's basic
sweeper and resolves its shape; jobs that cannot be built are reported together in one error with
commands that work (the smallest N and the smallest budget preset that build them all, and for a
sweep of widths one a CPU finishes in minutes). At the end it prints one row per ``record.json``
in the sweep directory, also when the jobs ran under SLURM. ``check_jobs`` is the same check for
a single run. Only entry points import this module (it imports Hydra).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict

from archsearch import cli
from archsearch.arch import ArchError, train_flops_per_token
from archsearch.arch.feasible import builds, smallest_n_params, widest_d_model
from archsearch.config import BudgetConfig, ModelConfig, RunConfig, resolve_arch
from archsearch.records import RECORD_FILE, RunRecord, scan_records

# The default run's model FLOP/s on two CPU cores (NOTES.md: 7,106 tokens/s at 6.39 MFLOP/token):
# only for saying whether a suggested command takes minutes or hours there.
CPU_MODEL_FLOPS_PER_S = 4.5e10
CPU_HOURS_LIMIT = 1.0
# A GPU's model FLOP/s for the same purpose (DESIGN.md 4b: about 500 TFLOP/s on an H100, LLaMA-1B).
GPU_MODEL_FLOPS_PER_S = 4e14
# LLaMA-3.2-1B's x = d_model / sqrt(N) (DESIGN.md section 2), to place a requested width.
LLAMA_1B_X = 0.066
# Above this x (at the tiny presets' 4 layers, twice the 16-layer value) a shape is far from any
# the paper trained (its optimum x* is about 0.08 at 16 layers, DESIGN.md section 2).
PAPER_X_MAX = 0.3
# The widths offered for a CPU sweep, as x = d_model / sqrt(N) at the budget's N.
CPU_SWEEP_X = (0.1, 0.2, 0.4)
WIDTH_KEYS = ("model.d_model=", "model.d_over_sqrt_n=")

Job = tuple[list[str], RunConfig]


def shape_knobs(model: ModelConfig, budget: BudgetConfig, vocab_size: int) -> dict[str, Any]:
    """``shape_for``'s keyword arguments of a derived model, other than N and ``d_model``."""
    return {
        "n_layers": model.n_layers,
        "head_dim": model.head_dim,
        "r_mlp_attn_target": model.r_mlp_attn,
        "gqa_group": model.gqa_group,
        "vocab_size": model.vocab_size or vocab_size,
        "tie_embeddings": model.tie_embeddings,
        "d_model_multiple": model.d_model_multiple,
        "d_ff_multiple": model.d_ff_multiple,
        "n_params_tolerance": budget.n_params_tolerance,
    }


def _derived_width(cfg: RunConfig) -> int | None:
    """The requested ``d_model`` of a derived shape (from ``d_over_sqrt_n`` if given that way)."""
    model, n = cfg.model, cfg.budget.n_params
    if model.d_ff is not None or model.r_mlp_attn is None or model.gqa_group is None or not n:
        return None
    if model.d_model is not None:
        return model.d_model
    if model.d_over_sqrt_n is None:
        return None
    multiple = model.d_model_multiple
    return max(multiple, multiple * round(model.d_over_sqrt_n * math.sqrt(n) / multiple))


def _job_problem(cfg: RunConfig) -> str | None:
    """Why a job's shape cannot be built (with the budget that would build it), or None."""
    try:
        resolve_arch(cfg.model, cfg.budget, cfg.data.vocab_size)
    except ArchError as e:
        width = _derived_width(cfg)
        if width is None or cfg.budget.n_params is None:
            return str(e)
        knobs = shape_knobs(cfg.model, cfg.budget, cfg.data.vocab_size)
        needed = smallest_n_params(width, knobs)
        x = width / math.sqrt(cfg.budget.n_params)
        builds_at = f"needs N >= {needed:,}" if needed else "builds at no N below 10^13"
        reason = str(e).split(": ")[0]  # shape_for's messages: "<why>: <what to change>"
        return f"x = d_model/sqrt(N) = {x:.3g}, {builds_at} ({reason})"
    return None


def _budget_presets() -> list[BudgetConfig]:
    """The ``conf/budget`` presets, budgets with the model's own N first, then by rising N."""
    presets = [cli.load_preset(p, BudgetConfig) for p in sorted(cli.CONF_DIR.glob("budget/*.yaml"))]
    return sorted(presets, key=lambda b: b.n_params or 0)


def _command(overrides: list[str], multirun: bool, extra: list[str]) -> str:
    """``python -m archsearch.train`` with ``overrides`` (budget ones replaced by ``extra``)."""
    kept = [o for o in overrides if not o.split("=")[0].lstrip("+~").startswith("budget")]
    words = ["python -m archsearch.train", *(["-m"] if multirun else []), *kept, *extra]
    return " ".join(words)


def _train_flops(jobs: list[Job]) -> float:
    """Model FLOPs of training every job (``train_flops_per_token`` x D)."""
    flops = 0.0
    for _, cfg in jobs:
        arch = resolve_arch(cfg.model, cfg.budget, cfg.data.vocab_size)
        flops += train_flops_per_token(arch.spec, cfg.train.seq_len) * arch.train_tokens
    return flops


def _preset_budget(jobs: list[Job]) -> tuple[str, list[Job]] | None:
    """The smallest budget preset that builds every job, and the jobs at that budget."""
    for preset in _budget_presets():
        moved = [(o, replace(cfg, budget=preset)) for o, cfg in jobs]
        if all(_job_problem(cfg) is None for _, cfg in moved):
            return f"budget={preset.name}", moved
    return None


def _smallest_budget(jobs: list[Job]) -> tuple[str, list[Job]] | None:
    """The smallest ``budget.n_params`` that builds every (derived) job, and the jobs there."""
    needs = []
    for _, cfg in jobs:
        width = _derived_width(cfg)
        knobs = shape_knobs(cfg.model, cfg.budget, cfg.data.vocab_size)
        needed = smallest_n_params(width, knobs) if width else None
        if needed is None:
            return None
        needs.append(needed)
    n_params = max(needs)
    moved = [(o, replace(cfg, budget=replace(cfg.budget, n_params=n_params))) for o, cfg in jobs]
    if any(_job_problem(cfg) is not None for _, cfg in moved):
        return None
    return f"budget.n_params={n_params}", moved


def _cpu_sweep(jobs: list[Job]) -> list[int]:
    """Widths near x in ``CPU_SWEEP_X`` that build at the jobs' own budget for every job."""
    first = jobs[0][1]
    n_params = first.budget.n_params
    if n_params is None or _derived_width(first) is None:
        return []
    multiple = first.model.d_model_multiple
    knobs = [shape_knobs(cfg.model, cfg.budget, cfg.data.vocab_size) for _, cfg in jobs]
    widths = set()
    for x in CPU_SWEEP_X:
        near = x * math.sqrt(n_params)
        tries = sorted(
            range(multiple, int(1.5 * near) + multiple, multiple), key=lambda d: abs(d - near)
        )
        fits = (d for d in tries if all(builds(n_params, d, k) for k in knobs))
        widths |= {next(fits, 0)} - {0}
    return sorted(widths)


def _hours(jobs: list[Job]) -> str:
    """The jobs' time on two CPU cores, and on a GPU where that is long."""
    flops = _train_flops(jobs)
    cpu = flops / CPU_MODEL_FLOPS_PER_S / 3600
    if cpu <= CPU_HOURS_LIMIT:
        return f"~{cpu * 60:.0f} min on two CPU cores"
    gpu = flops / GPU_MODEL_FLOPS_PER_S / 3600
    gpu_text = f"{gpu:,.0f} h" if gpu >= 1 else f"{max(1.0, gpu * 60):.0f} min"
    return f"~{cpu:,.0f} h on two CPU cores, ~{gpu_text} on one GPU at 400 model TFLOP/s"


def _rule(cfg: RunConfig) -> str | None:
    """The width rule with the numbers of a derived job, and the widest width at its budget."""
    budget = cfg.budget
    if _derived_width(cfg) is None or not budget.n_params:
        return None
    width = _derived_width(cfg) or 0
    knobs = shape_knobs(cfg.model, budget, cfg.data.vocab_size)
    widest = widest_d_model(budget.n_params, knobs)
    return (
        "Rule: a derived shape gives attention N / (n_layers (1 + r)) parameters per layer in "
        "whole heads, so width d_model needs N >= about n_layers (1 + r) (g + 1) head_dim "
        f"d_model = {knobs['n_layers']} x {1 + knobs['r_mlp_attn_target']:g} x "
        f"{knobs['gqa_group'] + 1} x {knobs['head_dim']} x d_model; at N = "
        f"{budget.n_params:,} the widest is d_model = {widest}."
        + (
            f" An x above ~{PAPER_X_MAX} lies far outside the paper's shapes (LLaMA-3.2-1B: "
            f"x = {LLAMA_1B_X} at 16 layers)."
            if width / math.sqrt(budget.n_params) > PAPER_X_MAX
            else ""
        )
    )


def _on_cpu(jobs: list[Job]) -> bool:
    return _train_flops(jobs) / CPU_MODEL_FLOPS_PER_S / 3600 <= CPU_HOURS_LIMIT


def _suggestions(jobs: list[Job], overrides: list[str], multirun: bool) -> list[str]:
    """Commands that build every job: the smallest budget preset (on a GPU or SLURM when it is
    hours on a CPU), the smallest N, and for a sweep of widths one a CPU finishes in minutes."""
    preset, smallest = _preset_budget(jobs), _smallest_budget(jobs)
    if preset is None and smallest is None:
        return ["No budget builds every job: change the shape fields named above."]
    lines: list[str] = []
    if smallest is not None and (preset is None or smallest[0] != preset[0]):
        override, moved = smallest
        lines += [
            f"Smallest N that builds every job: {override} ({_hours(moved)}):",
            "  " + _command(overrides, multirun, [override]),
        ]
    if preset is not None:
        override, moved = preset
        n_params = moved[0][1].budget.n_params
        n_text = f"N = {n_params:,}" if n_params else "the model's own N"
        head = f"Smallest budget preset that builds every job: {override} ({n_text}; "
        lines.append(head + f"{_hours(moved)}):")
        if _on_cpu(moved):
            return [*lines, "  " + _command(overrides, multirun, [override])]
        gpu = [override, "train=gpu"]
        lines += [
            "  on a GPU:   " + _command(overrides, multirun, gpu),
            "  on SLURM:   " + _command(overrides, True, [*gpu, "hydra/launcher=h100_example"]),
        ]
    if smallest is not None and _on_cpu(smallest[1]):
        return lines
    first = jobs[0][1]
    sweeps_width = any(o.startswith(WIDTH_KEYS) for job_overrides, _ in jobs for o in job_overrides)
    widths = _cpu_sweep(jobs) if sweeps_width else []
    if widths and first.budget.n_params:
        kept = [o for o in overrides if not o.startswith(WIDTH_KEYS)]
        xs = ", ".join(f"{w / math.sqrt(first.budget.n_params):.2g}" for w in widths)
        lines += [
            f"On a CPU in minutes a job, widths that budget={first.budget.name} builds (x = {xs}):",
            "  " + _command([*kept, f"model.d_model={','.join(map(str, widths))}"], True, []),
        ]
    return lines


def check_jobs(jobs: list[Job], overrides: list[str], multirun: bool) -> None:
    """Resolve every job's shape before any trains.

    Args:
        jobs: each job's own overrides and its typed config.
        overrides: the command line's overrides (for the commands that the error suggests).
        multirun: whether the command is a sweep (``-m``).

    Raises:
        ArchError: one message listing every job that cannot be built, why, and commands that
            work.
    """
    problems = [(o, cfg, p) for o, cfg in jobs if (p := _job_problem(cfg)) is not None]
    if not problems:
        return
    budget, model = problems[0][1].budget, problems[0][1].model
    n_text = f"N = {budget.n_params:,}" if budget.n_params else "the model's own N"
    what = f"{len(problems)} of {len(jobs)} jobs" if multirun else "the run"
    lines = [
        f"{what} cannot be built at budget={budget.name} ({n_text}) with "
        f"model={model.name}; nothing was started:",
        *(f"  {' '.join(o) or '(no overrides)'}: {p}" for o, _, p in problems),
    ]
    rule = _rule(problems[0][1])
    raise ArchError(
        "\n".join([*lines, *([rule] if rule else []), *_suggestions(jobs, overrides, multirun)])
    )


def _job_overrides(config: DictConfig) -> tuple[list[str], list[list[str]]]:
    """The sweep's arguments and each job's overrides, as Hydra's basic sweeper splits them."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = [f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()]
    arguments = [*params, *config.hydra.overrides.task]
    parsed = OverridesParser.create().parse_overrides(arguments)
    return arguments, [list(job) for job in BasicSweeper.split_arguments(parsed, None)[0]]


def sweep_jobs(config: DictConfig) -> list[Job]:
    """Every job of a basic-sweeper multirun, composed as Hydra will compose it, and typed."""
    from hydra.core.global_hydra import GlobalHydra

    arguments, job_overrides = _job_overrides(config)
    loader = GlobalHydra.instance().config_loader()
    jobs = []
    for overrides in job_overrides:
        job_cfg = loader.load_sweep_config(config, overrides)
        with open_dict(job_cfg):
            del job_cfg["hydra"]
        swept = [o for o in overrides if o not in arguments]
        jobs.append((swept, cli.to_typed(job_cfg)))
    return jobs


def format_table(records: list[RunRecord], sweep_dir: Path, total: int) -> str:
    """One row per record: shape, x, r, g, N, D, final loss, tokens/s and its directory.

    Args:
        total: the records below ``sweep_dir``, earlier sweeps over the same keys included.
    """
    header = (
        f"{'shape (d, heads/kv, d_ff)':<24} {'x':>6} {'r':>5} {'g':>3} {'N':>13} {'D':>15} "
        f"{'val_loss':>9} {'tokens/s':>9}  run"
    )
    rows = [header, "-" * len(header)]
    for record in records:
        a = record.arch
        shape = f"d{a['d_model']} {a['n_heads']}/{a['n_kv_heads']} ff{a['d_ff']}"
        rows.append(
            f"{shape:<24} {record.d_over_sqrt_n:6.3f} {record.r_mlp_attn:5.2f} "
            f"{record.gqa_group:>3} {record.n_params:>13,} {record.train_tokens:>15,} "
            f"{record.final_val_loss:9.4f} {record.tokens_per_s:9,.0f}  {record.run_id}"
        )
    rows.append(
        f"{len(records)} runs of this sweep; {total} with a {RECORD_FILE} below {sweep_dir}"
    )
    return "\n".join(rows)


def _is_basic_sweeper(config: DictConfig) -> bool:
    return str(config.hydra.sweeper.get("_target_", "")).endswith("BasicSweeper")


def _without_sacct_noise(record: logging.LogRecord) -> bool:
    """False for submitit's "Bypassing sacct error" warning: a cluster without accounting (the
    local one) raises it at every status poll, while squeue still gives the status."""
    return "Bypassing sacct error" not in record.getMessage()


class SweepCallback(Callback):
    """Hydra callback: check every job's shape before a sweep, print the table after it."""

    def __init__(self) -> None:
        self.job_dirs: set[str] | None = None  # this sweep's job directories (basic sweeper)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        logging.getLogger("submitit").addFilter(_without_sacct_noise)
        if not _is_basic_sweeper(config):
            return  # a proposing sweeper (archsearch) resolves its own shapes
        exclude = list(config.hydra.job.config.override_dirname.exclude_keys)
        self.job_dirs = {cli.run_id(o, exclude) for o in _job_overrides(config)[1]}
        overrides = list(config.hydra.overrides.task)
        try:
            check_jobs(sweep_jobs(config), overrides, multirun=True)
        except ArchError as e:
            # Hydra turns a callback's exception into a warning and carries on: exit instead
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                traceback.print_exc()
            sys.exit(str(e))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        every = scan_records(sweep_dir) if sweep_dir.is_dir() else []
        jobs = self.job_dirs
        records = [r for r in every if jobs is None or r.run_id in jobs]
        if records:
            print(format_table(records, sweep_dir, len(every)), flush=True)
        else:
            print(f"no {RECORD_FILE} below {sweep_dir}: no job finished", flush=True)
