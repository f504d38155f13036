"""Stage 4: Algorithm 1 at the target budget, and the final jobs it picks (imports torch).

Every candidate's decode throughput is measured on this machine (``search/throughput/``, one
``throughput.json`` per shape at the search batch size, skipped when present), so the search
ranks measured figures rather than a CPU roofline dominated by per-step overhead. The law is the
one fitted on the smaller budgets, L_opt at the target is extrapolated from their best losses,
and L_t (Eq. 4) is the measured loss of the LLaMA-3.2-shaped baseline, trained with the sweep.

The finals: the baseline, the loss-optimal pick, the fastest pick meeting L_t, and the next
faster GQA group of that pick (Algorithm 1, step 3), which ``gqa_step`` accepts when its
measured loss is no worse than the pick's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from archsearch.arch import ArchSpec, gqa_variants, train_tokens_for
from archsearch.records import (
    RECORD_FILE,
    THROUGHPUT_FILE,
    RunRecord,
    ThroughputRecord,
    write_json_atomic,
)
from archsearch.search import (
    DecodeSetting,
    GQASearch,
    SearchResult,
    Target,
    ThroughputModel,
    candidate_for,
    gqa_search,
    measured_losses,
    search,
    space_from_config,
    spec_key,
)
from archsearch.study.config import StudyConfig
from archsearch.study.jobs import FINAL_DIR, Job, knob_job, measure, spec_job
from archsearch.study.pipeline import Fits, Log, decode_setting
from archsearch.throughput.hardware import HardwareProfile

SEARCH_DIR = "search"
SEARCH_FILE = "search.json"
ROLES = ("baseline", "loss_optimal", "fastest_meeting_target", "gqa_step")


@dataclass(frozen=True)
class Picks:
    """The search's outcome and the jobs that train its picks and the baseline.

    Attributes:
        result: Algorithm 1's result.
        jobs: one job per distinct shape, in ``ROLES`` order; ``roles``: job name -> the roles
            its shape fills (a pick may coincide with another).
        speed: the throughput model the search ranked with (the GQA step reuses it).
        notes: what could not be picked, and why.
    """

    result: SearchResult
    jobs: list[Job]
    roles: dict[str, list[str]]
    speed: ThroughputModel
    notes: list[str]


def baseline_job(cfg: StudyConfig) -> Job:
    """The LLaMA-3.2-shaped reference at the target budget: its per-layer proportions at the
    study's depth (``BaselineConfig``)."""
    b = cfg.baseline
    return knob_job(
        cfg,
        b.name,
        cfg.target_n_params,
        b.d_over_sqrt_n_at(cfg.run.model.n_layers),
        b.r_mlp_attn,
        b.gqa_group,
        cfg.out_dir / FINAL_DIR,
    )


def search_stage(
    cfg: StudyConfig, fits: Fits, sweep_records: list[RunRecord], baseline: RunRecord, log: Log
) -> Picks:
    """Run Algorithm 1 at the target budget and write ``search/search.json``.

    Args:
        fits: stage 3's laws (the extrapolation law and the extrapolated L_opt are used).
        sweep_records: the sweep's training records (measured losses for the GQA step).
        baseline: the trained baseline's record (its loss is L_t).
    """
    s, model, n = cfg.search, cfg.run.model, cfg.target_n_params
    base = baseline_job(cfg)
    base_spec = base.spec()
    target = Target(
        f"{base.name} (baseline)",
        baseline.final_val_loss,
        source="measured",
        detail=f"{FINAL_DIR}/{base.name}/{RECORD_FILE}",
        spec=base_spec,
    )
    tokens = train_tokens_for(n, cfg.grid.tokens_per_param)
    space = space_from_config(
        replace(s.space, d_ff_multiple=model.d_ff_multiple),
        n,
        model.n_layers,
        model.head_dim,
        cfg.run.data.vocab_size,
        base_spec.gqa_group,
        tie_embeddings=model.tie_embeddings,
        n_params_tolerance=base.run.budget.n_params_tolerance,
    )
    log(f"[search] {len(space.candidates)} candidates at N={n:,} ({space.n_infeasible} infeasible)")
    records = _measure(cfg, [c.spec for c in space.candidates] + [base_spec], log)
    profile, dtype = _profile(cfg)
    setting = DecodeSetting(
        profile=profile,
        batch_size=s.batch_size,
        prompt_tokens=cfg.throughput.prompt_tokens,
        new_tokens=cfg.throughput.new_tokens,
        dtype=dtype,
    )

    def run(speed: ThroughputModel) -> SearchResult:
        return search(
            fits.extrapolation,
            space,
            n,
            tokens,
            speed,
            target=target,
            level=s.level,
            l_opt=fits.target_l_opt,
            measured_loss=measured_losses([*sweep_records, baseline], tokens),
            extrapolate=s.extrapolate,
        )

    speed = ThroughputModel(setting, records)
    result = run(speed)
    if result.fastest_meeting_target is not None:  # step 3 compares measured groups too
        pick = result.fastest_meeting_target.candidate.spec
        variants = [candidate_for(v, n).spec for v in gqa_variants(pick)]  # named by shape
        speed = ThroughputModel(setting, [*records, *_measure(cfg, variants, log)])
        result = run(speed)
    log(f"[search] measured shapes ranked by {speed.measure}; others by profile {profile.name}")
    path = cfg.out_dir / SEARCH_DIR / SEARCH_FILE
    target = result.target.scored if result.target else None
    write_json_atomic(
        path,
        {
            **result.to_dict(),
            "target_scored": target and target.to_dict(),
            "throughput_profile": setting.profile.name,
        },
    )
    return _picks(cfg, result, base, base_spec, speed)


def _measure(cfg: StudyConfig, shapes: list[ArchSpec], log: Log) -> list[ThroughputRecord]:
    """Decode throughput of each shape at the search batch (``search/throughput/<shape>/``)."""
    records = []
    for i, spec in enumerate(shapes, 1):
        out = cfg.out_dir / SEARCH_DIR / "throughput" / spec.name
        if not (out / THROUGHPUT_FILE).exists():
            log(f"[search throughput {i}/{len(shapes)}] {spec.name}")
        records.append(measure(cfg, spec, out, [cfg.search.batch_size]))
    return records


def _profile(cfg: StudyConfig) -> tuple[HardwareProfile, str]:
    """The roofline profile and dtype of the device the throughput is measured on (for the
    search's memory check and any unmeasured shape), resolved as ``run_throughput`` does."""
    from archsearch.throughput.runner import resolve_profile

    device, dtype, mode = decode_setting(cfg)
    profile = resolve_profile("auto", device, dtype, mode)
    assert profile is not None  # "auto" calibrates when nothing else fits
    return profile, dtype


def _picks(
    cfg: StudyConfig, result: SearchResult, base: Job, base_spec: ArchSpec, speed: ThroughputModel
) -> Picks:
    """Final jobs: baseline, loss-optimal pick, the fastest pick meeting L_t and its next faster
    GQA group, one job per distinct shape."""
    notes = list(result.notes)
    chosen = {"baseline": base_spec, "loss_optimal": result.loss_optimal.candidate.spec}
    fastest = result.fastest_meeting_target
    if fastest is not None:
        chosen["fastest_meeting_target"] = fastest.candidate.spec
        faster = [
            c for c in result.gqa.to_train if spec_key(c.spec) != spec_key(fastest.candidate.spec)
        ]
        if faster:
            chosen["gqa_step"] = faster[0].spec
        else:
            notes.append("no GQA step: no group of the fastest pick is faster")
    else:
        notes.append("no fastest_meeting_target pick: no candidate is predicted to meet L_t")
    jobs: dict[tuple[object, ...], Job] = {}
    roles: dict[str, list[str]] = {}
    for role, spec in chosen.items():
        key = spec_key(spec)
        if key not in jobs:
            name = f"{role}_{spec.name}"
            job = base if role == "baseline" else spec_job(cfg, name, spec, cfg.target_n_params)
            jobs[key] = job
        roles.setdefault(jobs[key].name, []).append(role)
    return Picks(result, list(jobs.values()), roles, speed, notes)


def gqa_step(picks: Picks, records: list[RunRecord]) -> GQASearch | None:
    """Algorithm 1, step 3, with the finals trained: the fastest pick's GQA groups walked in
    order of rising throughput, accepted while their measured loss is no worse than the pick's.
    None when there is no fastest pick."""
    fastest = picks.result.fastest_meeting_target
    if fastest is None:
        return None
    r = picks.result
    return gqa_search(
        fastest.candidate.spec, r.n_params, picks.speed, measured_losses(records, r.train_tokens)
    )
