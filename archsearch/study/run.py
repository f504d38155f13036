"""``run_study``: the six stages in order, returning the report's path (imports torch).

Every training run and throughput measurement is skipped when its record exists, so re-running
a study resumes it; fits, the search and the report are recomputed from the records each time
(seconds). Stage wall times go into ``<study>/timings.json`` (the last run's, per stage).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from archsearch.records import write_json_atomic
from archsearch.study.config import StudyConfig
from archsearch.study.downstream import downstream_stage
from archsearch.study.jobs import check_jobs, sweep_jobs
from archsearch.study.picks import baseline_job, gqa_step, search_stage
from archsearch.study.pipeline import (
    Log,
    fit_stage,
    head_to_head_stage,
    throughput_stage,
    train_stage,
)

TIMINGS_FILE = "timings.json"


def run_study(cfg: StudyConfig, log: Log) -> Path:
    """Run (or resume) the study and write its report; returns ``report/report.md``."""
    from archsearch.study.report import StudyResult, write_report

    timings: dict[str, float] = {}

    def timed(stage: str, fn: Any, *args: Any) -> Any:
        log(f"== {stage} ==")
        start = time.perf_counter()
        out = fn(*args)
        timings[stage] = time.perf_counter() - start
        return out

    jobs, skipped = sweep_jobs(cfg)
    checks, checks_skipped = check_jobs(cfg)
    base = baseline_job(cfg)
    for note in skipped + checks_skipped:
        log(f"skipped {note}")
    every = timed("1 train sweep", train_stage, [*jobs, *checks, base], log, "sweep", cfg.workers)
    records, check_records, baseline = every[: len(jobs)], every[len(jobs) : -1], every[-1]
    sweep = timed("2 throughput", throughput_stage, cfg, jobs, records, log, "sweep")
    fits = timed("3 fit", fit_stage, cfg, records, log)
    picks = timed("4 search", search_stage, cfg, fits, records, baseline, log)
    for name, roles in picks.roles.items():
        log(f"[final] {name}: {', '.join(roles)}")
    final_records = timed("5 train finals", train_stage, picks.jobs, log, "final", cfg.workers)
    finals = timed(
        "5 throughput finals", throughput_stage, cfg, picks.jobs, final_records, log, "final"
    )
    gqa = gqa_step(picks, [*records, *final_records])
    head_to_head = timed("5 head-to-head finals", head_to_head_stage, cfg, finals, log)
    downstream = timed("5 downstream finals", downstream_stage, cfg, finals, log)
    result = StudyResult(
        cfg=cfg,
        sweep=sweep,
        skipped=skipped + checks_skipped,
        checks=list(zip(checks, check_records, strict=True)),
        fits=fits,
        picks=picks,
        gqa=gqa,
        finals=finals,
        head_to_head=head_to_head,
        timings=timings,
        downstream=downstream,
    )
    report = timed("6 report", write_report, result)
    if cfg.run.tracker.kind == "wandb":
        from archsearch.track.results import log_study

        timed("6 report to wandb", log_study, cfg.run.tracker, report.parent, cfg.name)
    write_json_atomic(cfg.out_dir / TIMINGS_FILE, timings)
    return report
