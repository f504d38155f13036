"""Every kind of result to wandb, beside the training runs: throughput sweeps, the sweeper's rounds,
the study's report and downstream evaluations. Offline by default, like the training mirror.

The local files stay the source of truth (``throughput.json``, ``rounds/``, ``report/``,
``eval.json``); these functions only mirror them. Runs of one sweep share a group (the
``TrackerConfig.group``, else the Hydra sweep's name) and carry a job type (``throughput``,
``sweeper``, ``study``, ``eval``), so one wandb report can put them side by side. wandb is
imported only inside the functions that log; the row builders are pure.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from archsearch.config import TrackerConfig
from archsearch.records.throughput import ThroughputRecord, scan_throughput_records
from archsearch.track.wandb_tracker import finish, is_scalar, open_run

SWEEPER_RUN_DIR = "wandb_sweeper"  # inside the sweep directory: the sweeper's own wandb run
EVAL_PREFIX = "eval"


def throughput_rows(records: list[ThroughputRecord]) -> list[dict[str, Any]]:
    """One row per (shape, batch size): measured decode tokens/s (median, min, max; wall clock and,
    on CPU, process CPU time), end to end, the roofline's predicted tokens/s (the memory/compute
    floor as a rate) and the fraction of it reached (DESIGN of the roofline:
    ``archsearch.throughput.roofline``)."""
    rows = []
    for record in records:
        for b in record.batches:
            rows.append(
                {
                    "run_id": record.run_id,
                    "shape": record.arch.get("name") or record.run_id,
                    "d_model": record.arch["d_model"],
                    "n_heads": record.arch["n_heads"],
                    "n_kv_heads": record.arch["n_kv_heads"],
                    "d_ff": record.arch["d_ff"],
                    "r_mlp_attn": record.counts["r_mlp_attn"],
                    "batch_size": b.batch_size,
                    "tokens_per_s": b.tokens_per_s,
                    "tokens_per_s_min": b.tokens_per_s_min,
                    "tokens_per_s_max": b.tokens_per_s_max,
                    "cpu_time_tokens_per_s": b.cpu_time_tokens_per_s,
                    "cpu_time_tokens_per_s_min": b.cpu_time_tokens_per_s_min,
                    "cpu_time_tokens_per_s_max": b.cpu_time_tokens_per_s_max,
                    "end_to_end_tokens_per_s": b.end_to_end_tokens_per_s,
                    "predicted_tokens_per_s": b.roofline_tokens_per_s,
                    "fraction_of_floor": b.roofline_fraction,
                    "device": record.device,
                    "backend": record.backend,
                }
            )
    return rows


def _table(rows: list[dict[str, Any]]) -> Any:
    import wandb

    columns = list(rows[0]) if rows else []
    return wandb.Table(columns=columns, data=[[row.get(c) for c in columns] for row in rows])


def log_throughput(
    records: list[ThroughputRecord],
    cfg: TrackerConfig,
    out_dir: str | Path,
    plot: str | Path | None = None,
) -> None:
    """A throughput sweep as one wandb run (job type ``throughput``): the table and the plot."""
    import wandb

    if not records:
        raise ValueError("log_throughput needs at least one throughput record")
    run = open_run(cfg, Path(out_dir), job_type="throughput")
    logged: dict[str, Any] = {"throughput": _table(throughput_rows(records))}
    if plot is not None:
        logged["throughput_plot"] = wandb.Image(str(plot))
    run.log(logged)
    finish(run)


def sweeper_round_row(round_number: int, law: Any, losses: dict[str, float]) -> dict[str, Any]:
    """The scalars of one sweeper round: the refitted law's parameters (``law/<name>``), the
    predicted optimum x*, r* with their bootstrap intervals, the round's best loss.

    Args:
        round_number: the round (1-based, as in ``rounds/round_NN``).
        law: the ``archsearch.law.FitResult`` refitted after the round, or None before the
            first fit.
        losses: final validation loss of each shape the round trained.
    """
    row: dict[str, Any] = {"round": round_number, "jobs_completed": len(losses)}
    if losses:
        row["best_val_loss"] = min(losses.values())
    if law is None:
        return row
    row |= {f"law/{name}": float(value) for name, value in law.params.items()}
    row |= {f"fit/{name}": float(value) for name, value in law.metrics.items()}
    for key in ("x", "r"):
        if law.optimum.get(key):
            row[f"{key}_star"] = float(law.optimum[key])
        low_high = law.intervals.get(f"{key}*")
        if low_high:
            row[f"{key}_star_low"], row[f"{key}_star_high"] = map(float, low_high)
    return row


def log_sweeper_round(
    cfg: TrackerConfig,
    sweep_dir: str | Path,
    row: dict[str, Any],
    proposals: list[dict[str, Any]],
) -> None:
    """Append one round to the sweep's wandb run (job type ``sweeper``) as step ``round``: the
    scalars of ``sweeper_round_row`` and a table of the round's proposals with their losses.

    Each round reopens the same wandb run (its id kept in ``<sweep_dir>/wandb_sweeper``), so a
    resumed sweep continues it.
    """
    run = open_run(cfg, Path(sweep_dir) / SWEEPER_RUN_DIR, job_type="sweeper")
    scalars = {k: v for k, v in row.items() if k != "round"}
    run.log({**scalars, "proposals": _table(proposals)}, step=row["round"])
    finish(run)


def log_study(cfg: TrackerConfig, report_dir: str | Path, name: str = "study") -> None:
    """The study's report as one wandb run (job type ``study``, group ``name`` unless the config
    sets one): every table of ``report.json`` as a wandb Table, every figure as an image, the
    verdict as summary, and the whole folder as an artifact ``<name>-report``."""
    import wandb

    report_dir = Path(report_dir)
    report = json.loads((report_dir / "report.json").read_text())
    run = open_run(replace(cfg, group=cfg.group or name), report_dir, job_type="study")
    logged: dict[str, Any] = {
        f"table/{key}": _table(rows) for key, rows in report["tables"].items() if rows
    }
    logged |= {
        f"figure/{png.stem}": wandb.Image(str(png)) for png in sorted(report_dir.glob("*.png"))
    }
    run.log(logged)
    run.summary.update(
        {f"verdict/{k}": v for k, v in report.get("verdict", {}).items() if is_scalar(v)}
    )
    artifact = wandb.Artifact(f"{name}-report", type="study-report")
    for path in sorted(report_dir.iterdir()):
        if path.is_file():
            artifact.add_file(str(path))
    run.log_artifact(artifact)
    finish(run)


def eval_summary(eval_record: dict[str, Any]) -> dict[str, float]:
    """``eval/<task>/<metric>`` -> value, from an ``eval.json``."""
    return {
        f"{EVAL_PREFIX}/{task}/{metric}": value
        for task, metrics in eval_record["tasks"].items()
        for metric, value in metrics.items()
    }


def log_eval(cfg: TrackerConfig, run_dir: str | Path, eval_record: dict[str, Any]) -> None:
    """Add a run's downstream scores to its own wandb run (resumed; job type ``eval`` when the
    run has none yet) as summary values ``eval/<task>/<metric>``."""
    run = open_run(cfg, Path(run_dir), job_type="eval")
    run.summary.update(eval_summary(eval_record))
    finish(run)


def wandb_config(config: Any) -> TrackerConfig | None:
    """The ``tracker`` node of a composed config (a DictConfig or a dict) when it asks for
    wandb, as a TrackerConfig; None otherwise (nothing is mirrored)."""
    tracker = config.get("tracker") if config is not None else None
    if not tracker or tracker.get("kind") != "wandb":
        return None
    names = ("kind", "project", "entity", "group", "mode")
    return TrackerConfig(**{name: tracker[name] for name in names if name in tracker})


def mirror_sweeper_round(
    config: Any,
    sweep_dir: str | Path,
    round_number: int,
    law: Any,
    proposals: list[Any],
    records: list[Any],
) -> None:
    """Log a finished sweeper round when the sweep's config has ``tracker.kind=wandb``.

    Args:
        config: the sweep's composed job config (its ``tracker`` node decides).
        proposals: the round's ``archsearch.search.Proposal`` objects; ``records``: the
            ``RunRecord`` of each job that completed.
    """
    cfg = wandb_config(config)
    if cfg is None:
        return
    losses = {r.arch.get("name"): r.final_val_loss for r in records}
    rows = [
        {k: v for k, v in p.to_dict().items() if is_scalar(v) or v is None}
        | {"val_loss": losses.get(p.name)}
        for p in proposals
    ]
    cfg = replace(cfg, group=cfg.group or Path(sweep_dir).name)  # the jobs' group (sweep_id)
    log_sweeper_round(cfg, sweep_dir, sweeper_round_row(round_number, law, losses), rows)


def mirror_throughput(config: Any, sweep_dir: str | Path, plot: str | Path | None = None) -> None:
    """Log every ``throughput.json`` below ``sweep_dir`` (and the sweep's plot) when the sweep's
    config has ``tracker.kind=wandb``."""
    cfg = wandb_config(config)
    records = scan_throughput_records(sweep_dir) if cfg is not None else []
    if cfg is not None and records:
        cfg = replace(cfg, group=cfg.group or Path(sweep_dir).name)  # the jobs' group (sweep_id)
        log_throughput(records, cfg, sweep_dir, plot if plot and Path(plot).exists() else None)
