"""Stage 4: Algorithm 1 at the target budget, and the final jobs it picks (imports torch).

Every candidate's decode throughput is measured on this machine (``search/throughput/``, one
``throughput.json`` per shape at the search batch size, skipped when present), so the search
ranks measured figures rather than a CPU roofline dominated by per-step overhead. The law is the
one fitted on the smaller budgets; L_opt at the target is the best loss observed there, and L_t
is the law's prediction for the LLaMA-3.2-shaped baseline at the same budget.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from archsearch.arch import ArchSpec, train_tokens_for
from archsearch.records import THROUGHPUT_FILE, RunRecord, write_json_atomic
from archsearch.records.throughput import read_throughput_record
from archsearch.search import (
    DecodeSetting,
    SearchResult,
    ThroughputModel,
    d_model_grid,
    enumerate_space,
    measured_losses,
    r_grid,
    search,
    spec_key,
)
from archsearch.study.config import StudyConfig
from archsearch.study.jobs import FINAL_DIR, Job, knob_job, spec_job, throughput_config
from archsearch.study.pipeline import Fits, Log
from archsearch.throughput.hardware import HardwareProfile

SEARCH_DIR = "search"
SEARCH_FILE = "search.json"
ROLES = ("baseline", "loss_optimal", "throughput")


@dataclass(frozen=True)
class Picks:
    """The search's outcome and the jobs that train its picks and the baseline.

    Attributes:
        result: Algorithm 1's result; ``path``: its JSON.
        jobs: one job per distinct shape, in ``ROLES`` order; ``roles``: job name -> the roles
            its shape fills (a pick may coincide with another).
        notes: what could not be picked, and why.
    """

    result: SearchResult
    path: Path
    jobs: list[Job]
    roles: dict[str, list[str]]
    notes: list[str]


def baseline_job(cfg: StudyConfig) -> Job:
    """The LLaMA-3.2-shaped reference at the target budget, sized by the paper's knobs."""
    b = cfg.baseline
    return knob_job(
        cfg,
        "baseline",
        b.name,
        cfg.target_n_params,
        b.d_over_sqrt_n,
        b.r_mlp_attn,
        b.gqa_group,
        cfg.out_dir / FINAL_DIR,
    )


def _measure(cfg: StudyConfig, spec: ArchSpec, log: Log, i: int, n: int) -> None:
    """Measure one candidate at the search batch size unless already measured."""
    out = cfg.out_dir / SEARCH_DIR / "throughput" / spec.name
    if (out / THROUGHPUT_FILE).exists():
        return
    from archsearch.throughput.runner import run_throughput

    log(f"[search throughput {i}/{n}] {spec.name}")
    tcfg = throughput_config(cfg, spec, out)
    protocol = replace(tcfg.throughput, batch_sizes=[cfg.search.batch_size])
    run_throughput(replace(tcfg, throughput=protocol), out)


def search_stage(cfg: StudyConfig, fits: Fits, sweep_records: list[RunRecord], log: Log) -> Picks:
    """Run Algorithm 1 at the target budget and write ``search/search.json``.

    Args:
        fits: stage 3's laws (the extrapolation law is used).
        sweep_records: the sweep's training records (measured losses for the GQA step).
    """
    s, model, n = cfg.search, cfg.run.model, cfg.target_n_params
    base = baseline_job(cfg)
    base_spec = base.spec()
    tokens = train_tokens_for(n, cfg.grid.tokens_per_param)
    space = enumerate_space(
        n,
        model.n_layers,
        model.head_dim,
        cfg.run.data.vocab_size,
        d_model_grid(n, s.x_min, s.x_max, s.d_model_multiple),
        r_grid(s.r_min, s.r_max, s.n_r),
        s.gqa_groups,
        d_ff_multiple=model.d_ff_multiple,
        n_params_tolerance=base.run.budget.n_params_tolerance,
    )
    log(f"[search] {len(space.candidates)} candidates at N={n:,} ({space.n_infeasible} infeasible)")
    shapes = [c.spec for c in space.candidates] + [base_spec]
    for i, spec in enumerate(shapes, 1):
        _measure(cfg, spec, log, i, len(shapes))
    records = [read_throughput_record(p) for p in (cfg.out_dir / SEARCH_DIR).rglob(THROUGHPUT_FILE)]
    setting = DecodeSetting(
        profile=_profile(cfg),
        batch_size=s.batch_size,
        prompt_tokens=cfg.throughput.prompt_tokens,
        new_tokens=cfg.throughput.new_tokens,
        dtype=records[0].dtype,
    )
    result = search(
        fits.extrapolation,
        space,
        n,
        tokens,
        ThroughputModel(setting, records),
        target=base_spec,
        target_name=f"{base.name} (baseline)",
        level=s.level,
        l_opt=fits.target_l_opt,
        measured_loss=measured_losses(sweep_records, tokens),
    )
    path = cfg.out_dir / SEARCH_DIR / SEARCH_FILE
    target = result.target.scored if result.target else None
    write_json_atomic(path, {**result.to_dict(), "target_scored": target and target.to_dict()})
    return _picks(cfg, result, path, base)


def _profile(cfg: StudyConfig) -> HardwareProfile:
    """This CPU's roofline profile (for the search's memory check and any unmeasured shape)."""
    import torch

    from archsearch.throughput.probe import measure_profile

    return measure_profile(torch.device("cpu"), "fp32", cfg.run.model.n_layers)


def _picks(cfg: StudyConfig, result: SearchResult, path: Path, base: Job) -> Picks:
    """Final jobs: baseline, loss-optimal pick and throughput pick, one per distinct shape."""
    notes = list(result.notes)
    chosen = {"baseline": base.spec(), "loss_optimal": result.panda.candidate.spec}
    if result.best is not None:
        chosen["throughput"] = result.gqa.chosen.spec
    else:
        notes.append("no throughput pick: no candidate is predicted to meet the baseline's loss")
    jobs: dict[tuple[object, ...], Job] = {}
    roles: dict[str, list[str]] = {}
    for role, spec in chosen.items():
        key = spec_key(spec)
        if key not in jobs:
            name = f"{role}_{spec.name}"
            job = (
                base if role == "baseline" else spec_job(cfg, role, name, spec, cfg.target_n_params)
            )
            jobs[key] = job
        roles.setdefault(jobs[key].name, []).append(role)
    return Picks(result, path, list(jobs.values()), roles, notes)
