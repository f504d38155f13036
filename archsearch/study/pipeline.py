"""The study's stages, each a function that skips work already done (imports torch).

1. ``train_stage``: train every job, ``workers`` at a time (a finished ``record.json`` is read,
   not retrained): the sweep, the learning-rate and seed checks, and the baseline.
2. ``throughput_stage``: measure decode throughput beside each record (``throughput.json``).
3. ``fit_stage``: progressive evaluation of the conditional law (fit on the smaller budgets,
   predict the next with L_opt from the training budgets only; MSE and Spearman as in arXiv
   2510.18245's progressive figure, Fig. 6 in v2), the fit on every budget but the largest
   (used to predict and search there) and the fit on all budgets.
4. ``search_stage``: Algorithm 1 at the largest budget, L_t the baseline's measured loss.
5. ``final_jobs`` + stages 1-2: train and measure the picks; then the GQA step (``gqa_step``)
   and ``head_to_head_stage``: the finals' decode at the search batch measured in turns.
6. ``archsearch.study.report.write_report`` from the results in memory.

``run_study`` chains them. Progress goes to a ``log`` callback (the entry point prints it);
fits, the search and the report are cheap and are recomputed on every run from the records.
"""

from __future__ import annotations

import dataclasses
import datetime
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

import numpy as np

from archsearch.arch import ArchSpec
from archsearch.law import (
    FitResult,
    LawData,
    fit_law,
    get_form,
    make_l_opt,
    progressive,
    records_data,
    write_fit,
)
from archsearch.law.evaluate import Step, to_rows, training_l_opt
from archsearch.law.fit import filter_r_for
from archsearch.records import (
    RECORD_FILE,
    THROUGHPUT_FILE,
    RunRecord,
    ThroughputRecord,
    write_json_atomic,
)
from archsearch.records.io import dataclass_fields_in, read_json_in
from archsearch.records.throughput import BatchThroughput
from archsearch.search import spec_key
from archsearch.study.config import StudyConfig
from archsearch.study.jobs import FINAL_DIR, SWEEP_DIR, Job, measure, train_job

Log = Callable[[str], None]
FIT_DIR = "fit"
PREDICTIONS_FILE = "predictions.json"
HEAD_TO_HEAD_FILE = "head_to_head.json"


@dataclass(frozen=True)
class Trained:
    """A finished job with its training record and decode measurement."""

    job: Job
    record: RunRecord
    throughput: ThroughputRecord


@dataclass(frozen=True)
class Fits:
    """Stage 3's results.

    Attributes:
        data: every sweep row in the law's r range, ``l_opt`` the best observed loss of its
            (N, D) group (what the fits use in sample).
        predictions: the same rows with the largest budget's ``l_opt`` extrapolated from the
            smaller budgets (``target_l_opt``): what the extrapolation law predicts from.
        steps: progressive evaluation, one step per held-out budget, L_opt from the training
            scales only.
        extrapolation: the law fitted on every budget but the largest (predicts and searches).
        full: the law fitted on every budget.
        target_scale: the largest budget's scale label.
        target_l_opt: L_opt there from the smaller budgets' best losses
            (``law.evaluate.training_l_opt``), how in ``target_l_opt_note``;
            ``target_best_observed``: the best loss observed there (for comparison only).
        held_out: one row per run at the largest budget (observed beside predicted).
        excluded: runs left out of every fit by the law's r range (the paper's 0.5 <= r <= 5).
    """

    data: LawData
    predictions: LawData
    steps: list[Step]
    extrapolation: FitResult
    full: FitResult
    target_scale: str
    target_l_opt: float
    target_l_opt_note: str
    target_best_observed: float
    held_out: list[dict[str, Any]]
    excluded: list[str]


def _cost(job: Job) -> float:
    """A job's training work, N x D (the 6ND of training FLOPs, up to the constant)."""
    return job.n_params * job.run.budget.train_tokens_at(job.n_params)


def train_stage(jobs: list[Job], log: Log, stage: str, workers: int = 1) -> list[RunRecord]:
    """Train the jobs, ``workers`` at a time (one process each), costliest first so the last
    to finish are short; finished jobs return their record at once. Each finished job logs
    its wall time and an ETA for the rest, from the work (N x D) done so far.
    """
    todo = [job for job in jobs if not (job.run_dir / RECORD_FILE).exists()]
    if len(todo) < len(jobs):
        log(f"[{stage}] {len(jobs) - len(todo)} of {len(jobs)} jobs done before, skipped")
    todo.sort(key=_cost, reverse=True)
    total, done_cost, start = sum(map(_cost, todo)), 0.0, time.perf_counter()
    if todo:
        log(f"[{stage}] training {len(todo)} jobs, {workers} at a time")

    def finished(i: int, job: Job, job_s: float) -> None:
        nonlocal done_cost
        done_cost += _cost(job)
        elapsed = time.perf_counter() - start
        eta = elapsed * (total - done_cost) / done_cost
        log(
            f"[{stage} {i}/{len(todo)}] {job.name} trained in {job_s:.0f} s; ETA {eta / 60:.0f} min"
        )

    if workers > 1 and len(todo) > 1:
        context = multiprocessing.get_context("spawn")  # a fresh torch per worker
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = {pool.submit(_timed_train, job): job for job in todo}
            for i, future in enumerate(as_completed(futures), 1):
                finished(i, futures[future], future.result())
    else:
        for i, job in enumerate(todo, 1):
            finished(i, job, _timed_train(job))
    return [train_job(job) for job in jobs]


def _timed_train(job: Job) -> float:
    """Train ``job`` (in a worker process when ``workers > 1``); its wall time in seconds."""
    start = time.perf_counter()
    train_job(job)
    return time.perf_counter() - start


def throughput_stage(
    cfg: StudyConfig, jobs: list[Job], records: list[RunRecord], log: Log, stage: str
) -> list[Trained]:
    """Measure each trained shape's decode throughput; finished measurements are read back."""
    trained = []
    for i, (job, record) in enumerate(zip(jobs, records, strict=True), 1):
        done = (job.run_dir / THROUGHPUT_FILE).exists()
        log(
            f"[{stage} throughput {i}/{len(jobs)}] {job.name}"
            + (" (done, skipped)" if done else "")
        )
        spec = ArchSpec.from_dict(record.arch)
        trained.append(Trained(job, record, measure(cfg, spec, job.run_dir)))
    return trained


@dataclass(frozen=True)
class HeadToHead:
    """The finals' decode at one batch size, measured in turns (``measure_interleaved``).

    Attributes:
        speeds: job name -> its measurement (``repeats`` timed runs after the warm-up).
        record: the file it was written to, relative to the study's directory.
    """

    batch_size: int
    repeats: int
    speeds: dict[str, BatchThroughput]
    record: str


def decode_setting(cfg: StudyConfig) -> tuple[Any, str, str]:
    """(device, dtype, step mode) of the study's decode measurements, with the protocol's CPU
    threads set, resolved as ``run_throughput`` resolves them."""
    from archsearch.throughput.decode import resolve_device, resolve_dtype, resolve_step_mode
    from archsearch.throughput.runner import use_threads

    use_threads(cfg.throughput)  # as the measurements ran, whatever ran before in this process
    device = resolve_device(cfg.run.train.device)
    return (
        device,
        resolve_dtype(cfg.throughput.dtype, device),
        resolve_step_mode(cfg.throughput.compile, device),
    )


def head_to_head_stage(cfg: StudyConfig, finals: list[Trained], log: Log) -> HeadToHead:
    """Measure the finals' decode at the search batch in turns, ``search.head_to_head_repeats``
    rounds, and write ``final/head_to_head.json``: the speed comparison of the picks with the
    baseline. Each final's own ``throughput.json`` is taken alone, minutes apart from the
    others', and for shapes this close such measurements can disagree on which is faster.
    Measured with the torch decoder (``measure_interleaved``) whatever ``throughput.backend``.
    A file measured under the same protocol for the same shapes is read back instead.
    """
    batch = cfg.search.batch_size
    protocol = dataclasses.replace(
        cfg.throughput, batch_sizes=[batch], repeats=cfg.search.head_to_head_repeats
    )
    shapes = [
        {"run": t.job.name, "arch": ArchSpec.from_dict(t.record.arch).to_dict()} for t in finals
    ]
    path = cfg.out_dir / FINAL_DIR / HEAD_TO_HEAD_FILE
    record = str(path.relative_to(cfg.out_dir))
    if path.exists():
        _, stored = read_json_in(path, HEAD_TO_HEAD_FILE)
        keys = [spec_key(ArchSpec.from_dict(s["arch"])) for s in stored.get("shapes", [])]
        same = keys == [spec_key(ArchSpec.from_dict(s["arch"])) for s in shapes]
        if stored.get("protocol") == dataclasses.asdict(protocol) and same:
            log("[final head-to-head] done, skipped")
            speeds = {}
            for s in stored["shapes"]:
                where = f"{record}: {s['run']}"
                speed = BatchThroughput(**dataclass_fields_in(BatchThroughput, s["speed"], where))
                speed.validate(where, protocol.repeats)
                speeds[s["run"]] = speed
            return HeadToHead(batch, protocol.repeats, speeds, record)
        log("[final head-to-head] the finals or the protocol changed: measuring again")
    from archsearch.throughput.decode import measure_interleaved

    device, dtype, mode = decode_setting(cfg)
    log(
        f"[final head-to-head] {len(finals)} finals at B={batch}, "
        f"{protocol.repeats} rounds in turns"
    )
    specs = [ArchSpec.from_dict(s["arch"]) for s in shapes]
    timings = measure_interleaved(specs, protocol, batch, device, dtype, mode)
    speeds = {
        s["run"]: t.throughput(protocol.new_tokens) for s, t in zip(shapes, timings, strict=True)
    }
    write_json_atomic(
        path,
        {
            "protocol": dataclasses.asdict(protocol),
            "backend": "torch",
            "device": str(device),
            "dtype": dtype,
            "step_mode": mode,
            "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "shapes": [{**s, "speed": dataclasses.asdict(speeds[s["run"]])} for s in shapes],
        },
    )
    return HeadToHead(batch, protocol.repeats, speeds, record)


def fit_stage(cfg: StudyConfig, records: list[RunRecord], log: Log) -> Fits:
    """Fit the law on the sweep's records (this study's jobs only, never other records left in
    its directory) and write ``fit/`` (fit JSONs and per-row predictions).

    Rows outside the law's r range are dropped first, as ``fit_law`` and ``progressive`` do.
    The largest budget is predicted without looking at it: its L_opt is extrapolated from the
    smaller budgets' best losses, as in the progressive evaluation.
    """
    law = cfg.law
    settings = law.fit_settings()
    sweep_dir = cfg.out_dir / SWEEP_DIR
    every = records_data(records)
    raw = filter_r_for(every, get_form(law.form), law.r_range)
    excluded = sorted(set(every.run_id) - set(raw.run_id))
    data = raw.with_l_opt(make_l_opt(raw, "best_observed")(raw))
    target = data.scales()[-1]
    log(f"[fit] {len(data)} runs at budgets {', '.join(data.scales())}; held out: {target}")
    steps = progressive(raw, law.form, "training_scales", **settings)
    boot = dict(n_bootstrap=law.n_bootstrap, seed=law.seed, source=str(sweep_dir))
    train_rows = raw.select(raw.scale != target)
    extrapolation = fit_law(train_rows, law.form, **settings, **boot)
    full = fit_law(raw, law.form, **settings, **boot)
    fit_dir = cfg.out_dir / FIT_DIR
    write_fit(fit_dir / "extrapolation.json", extrapolation, to_rows(steps))
    write_fit(fit_dir / "full.json", full, to_rows(steps))
    l_opt_model, l_opt_note = training_l_opt(train_rows)
    held = data.scale == target
    predictions = data.with_l_opt(np.where(held, l_opt_model(data), data.l_opt))
    predicted = extrapolation.predict_data(predictions)
    rows = [
        {
            "run_id": str(data.run_id[i]),
            "scale": str(data.scale[i]),
            "held_out": bool(held[i]),
            "x": float(data.x[i]),
            "r": float(data.r[i]),
            "l_opt": float(predictions.l_opt[i]),
            "observed": float(data.loss[i]),
            "predicted": float(predicted[i]),
            "record": f"{FIT_DIR}/{PREDICTIONS_FILE}",
        }
        for i in range(len(data))
    ]
    write_json_atomic(
        fit_dir / PREDICTIONS_FILE,
        {
            "fit": "extrapolation.json",
            "target_l_opt": l_opt_note,
            "rows": rows,
            "excluded_by_r_range": excluded,
        },
    )
    for step in steps:
        fitted = "+".join(step.train)
        log(f"[fit] {fitted} -> {step.test}: MSE {step.mse:.2e}, rho {step.spearman:.2f}")
    return Fits(
        data=data,
        predictions=predictions,
        steps=steps,
        extrapolation=extrapolation,
        full=full,
        target_scale=target,
        target_l_opt=float(predictions.l_opt[held][0]),
        target_l_opt_note=l_opt_note,
        target_best_observed=float(data.l_opt[held][0]),
        held_out=[row for row in rows if row["held_out"]],
        excluded=excluded,
    )
