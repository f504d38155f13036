"""The study report: Markdown, the JSON of its tables, and PNG plots, all from record files.

``write_report(result)`` writes ``<study>/report/``: ``report.md`` (sections: setup, sweep,
progressive fit, held-out predictions, U-curves, search, final comparison, throughput against
batch size, verdict), ``report.json`` (every table row as numbers, each naming the record file it
was read from, relative to the study directory) and the PNGs (``archsearch.law.plots``,
``archsearch.study.plots`` and ``archsearch.throughput.report``; matplotlib imported lazily).
"""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archsearch.law.plots import plot_predicted_vs_observed, plot_u_curves
from archsearch.records import RECORD_FILE, THROUGHPUT_FILE, write_json_atomic
from archsearch.study.config import StudyConfig
from archsearch.study.downstream import DownstreamScore
from archsearch.study.picks import ROLES, SEARCH_DIR, SEARCH_FILE, Picks
from archsearch.study.pipeline import FIT_DIR, PREDICTIONS_FILE, Fits, Trained
from archsearch.study.plots import plot_pareto
from archsearch.throughput.report import plot as plot_throughput

REPORT_DIR = "report"
SECTIONS = (
    "Setup",
    "Sweep",
    "Progressive fit",
    "Held-out predictions",
    "Law plots",
    "Search",
    "Final comparison",
    "Throughput against batch size",
    "Verdict",
)
# The paper's progressive evaluation (arXiv 2510.18245, the progressive MSE/Spearman figure:
# Fig. 6 in v2; Table 2 is the 3B ablation), for comparison.
PAPER_PROGRESSIVE = (
    "80M->145M: MSE 0.0002, rho 0.89; +145M->297M: 0.0001, 0.79; +297M->1B: 0.0001, 0.75"
)

Column = tuple[str, str, Callable[[Any], str]]


@dataclass(frozen=True)
class StudyResult:
    """What the report is built from (every number in it is also in a record file)."""

    cfg: StudyConfig
    sweep: list[Trained]
    skipped: list[str]
    fits: Fits
    picks: Picks
    finals: list[Trained]
    timings: dict[str, float]
    downstream: list[DownstreamScore] = field(default_factory=list)


def _f(digits: int) -> Callable[[Any], str]:
    return lambda v: "-" if v is None else f"{v:.{digits}f}"


def _e(v: Any) -> str:
    return "-" if v is None else f"{v:.2e}"


def _s(v: Any) -> str:
    return str(v)


def _int(v: Any) -> str:
    return f"{v:,}"


def _pct(v: Any) -> str:
    return "-" if v is None else f"{v:+.1f}%"


def md_table(columns: Sequence[Column], rows: Sequence[dict[str, Any]]) -> str:
    """A Markdown table: one column per ``(header, key, format)``."""
    lines = ["| " + " | ".join(c[0] for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(row[key]) for _, key, fmt in columns) + " |" for row in rows]
    return "\n".join(lines)


def _rel(path: Path, root: Path) -> str:
    return str(Path(path).relative_to(root))


def _tokens_per_s(trained: Trained) -> dict[str, float]:
    return {str(b.batch_size): b.tokens_per_s for b in trained.throughput.batches}


def _run_row(trained: Trained, root: Path) -> dict[str, Any]:
    """The numbers of one trained shape, straight from its record and throughput record."""
    rec, arch = trained.record, trained.record.arch
    return {
        "run": trained.job.name,
        "record": _rel(trained.job.run_dir / RECORD_FILE, root),
        "throughput_record": _rel(trained.job.run_dir / THROUGHPUT_FILE, root),
        "budget_n_params": trained.job.n_params,
        "n_params": rec.n_params,
        "train_tokens": rec.train_tokens,
        "d_model": arch["d_model"],
        "heads": f"{arch['n_heads']}/{arch['n_kv_heads']}",
        "d_ff": arch["d_ff"],
        "x": rec.d_over_sqrt_n,
        "r": rec.r_mlp_attn,
        "g": rec.gqa_group,
        "loss": rec.final_val_loss,
        "train_s": rec.wall_time_s,
        "tokens_per_s": _tokens_per_s(trained),
    }


def _speed_columns(batch_sizes: Sequence[int]) -> list[Column]:
    return [
        (f"tok/s B={b}", "tokens_per_s", lambda v, b=str(b): f"{v[b]:.0f}") for b in batch_sizes
    ]


def _shape_columns() -> list[Column]:
    return [
        ("N", "n_params", _int),
        ("D", "train_tokens", _int),
        ("d_model", "d_model", _s),
        ("heads/kv", "heads", _s),
        ("d_ff", "d_ff", _s),
        ("x", "x", _f(3)),
        ("r", "r", _f(2)),
        ("g", "g", _s),
    ]


def _sweep_section(result: StudyResult, root: Path) -> tuple[str, list[dict[str, Any]]]:
    rows = [_run_row(t, root) for t in result.sweep]
    cols = [
        ("run", "run", _s),
        *_shape_columns(),
        ("val loss", "loss", _f(4)),
        ("train s", "train_s", _f(0)),
        *_speed_columns(result.cfg.throughput.batch_sizes),
        ("record", "record", _s),
    ]
    skipped = "".join(f"\n- skipped `{s}`" for s in result.skipped)
    budgets = result.cfg.grid.scales
    text = (
        f"{len(rows)} shapes trained at budgets {', '.join(f'{n:,}' for n in budgets)} "
        f"(D = {result.cfg.grid.tokens_per_param:g} N). Loss is the final validation loss "
        "(nats/token); decode tokens/s from `throughput.json` beside each record.\n\n"
        + md_table(cols, rows)
        + (f"\n\nRequests whole heads could not reach:{skipped}" if skipped else "")
    )
    return text, rows


def _optimum(optimum: dict[str, float]) -> str:
    """The law's optimum (x*, r*) as text; NaN where a fitted coefficient is not positive."""
    if not optimum or any(math.isnan(v) for v in optimum.values()):
        return "no interior optimum: a fitted coefficient of ln x, 1/x, ln r or 1/r is not positive"
    return "optimum " + ", ".join(f"{k}* = {v:.3g}" for k, v in optimum.items())


def _fit_sections(result: StudyResult, root: Path, out: Path) -> tuple[list[str], dict[str, Any]]:
    fits = result.fits
    fit_record = f"{FIT_DIR}/extrapolation.json"
    steps = [
        {
            "train": "+".join(s.train),
            "test": s.test,
            "n": s.n_test,
            "mse": s.mse,
            "spearman": s.spearman,
            "max_rel_err_pct": s.max_rel_err_pct,
            "record": fit_record,
        }
        for s in fits.steps
    ]
    step_cols: list[Column] = [
        ("fit on N", "train", _s),
        ("predict N", "test", _s),
        ("runs", "n", _s),
        ("MSE", "mse", _e),
        ("Spearman", "spearman", _f(2)),
        ("max rel err", "max_rel_err_pct", _f(2)),
        ("record", "record", _s),
    ]
    excluded = ", ".join(f"`{r}`" for r in fits.excluded) or "none"
    progressive = (
        f"Law `{result.cfg.law.form}` ({result.cfg.law.fitter}, L_opt = best observed loss of "
        "each budget), fitted on the smaller budgets and predicting the next. The paper: "
        f"{PAPER_PROGRESSIVE}. Runs outside the law's r range {result.cfg.law.r_range} (left out "
        f"of every fit): {excluded}.\n\n" + md_table(step_cols, steps)
    )
    held_out = [
        {
            **row,
            "error": row["predicted"] - row["observed"],
            "record": f"{FIT_DIR}/{PREDICTIONS_FILE}",
        }
        for row in json.loads((root / FIT_DIR / PREDICTIONS_FILE).read_text())["rows"]
        if row["held_out"]
    ]
    held_cols: list[Column] = [
        ("run", "run_id", _s),
        ("x", "x", _f(3)),
        ("r", "r", _f(2)),
        ("observed", "observed", _f(4)),
        ("predicted", "predicted", _f(4)),
        ("error", "error", _f(4)),
        ("record", "record", _s),
    ]
    optimum = _optimum(fits.extrapolation.optimum)
    predictions = (
        f"The largest budget ({fits.target_scale}) predicted by the law fitted on the others "
        f"({optimum}).\n\n" + md_table(held_cols, held_out)
    )
    u_curves = plot_u_curves(fits.full, fits.data, out / "u_curves.png")
    plot_predicted_vs_observed(fits.extrapolation, fits.data, out / "predicted_vs_observed.png")
    full_opt = _optimum(fits.full.optimum)
    plots = (
        (
            f"![U-curves](u_curves.png)\n\nU-curves: loss against x and r per budget with the law "
            f"fitted on all budgets ({full_opt}).\n\n"
            if u_curves
            else ""
        )
        + "![Predicted vs observed](predicted_vs_observed.png)\n\nPredicted against observed "
        "loss, law fitted on every budget but the largest (the largest is out of sample)."
    )
    return [progressive, predictions, plots], {"progressive": steps, "held_out": held_out}


def _scored_for(search: dict[str, Any], arch: dict[str, Any]) -> dict[str, Any] | None:
    """The search's scored entry (or its target) for a trained shape, matched on the shape."""
    same = {k: v for k, v in arch.items() if k != "name"}
    for entry in [search.get("target_scored"), *search["scored"]]:
        if entry and {k: v for k, v in entry["candidate"]["spec"].items() if k != "name"} == same:
            return entry
    return None


def _final_rows(result: StudyResult, search: dict[str, Any], root: Path) -> list[dict[str, Any]]:
    """One row per role: predicted loss (search.json) beside achieved loss and speed."""
    by_name = {t.job.name: t for t in result.finals}
    base = next(t for t in result.finals if "baseline" in result.picks.roles[t.job.name])
    batch = str(result.cfg.search.batch_size)
    rows = []
    for name, roles in result.picks.roles.items():
        trained = by_name[name]
        row = _run_row(trained, root)
        scored = _scored_for(search, trained.record.arch)
        for role in roles:
            rows.append(
                {
                    **row,
                    "role": role,
                    "search_record": f"{SEARCH_DIR}/{SEARCH_FILE}",
                    "predicted_loss": scored["loss"] if scored else None,
                    "predicted_low": scored["loss_low"] if scored else None,
                    "predicted_high": scored["loss_high"] if scored else None,
                    "delta_loss": row["loss"] - base.record.final_val_loss,
                    "speedup_pct": 100
                    * (row["tokens_per_s"][batch] / _tokens_per_s(base)[batch] - 1),
                }
            )
    order = {role: i for i, role in enumerate(ROLES)}
    return sorted(rows, key=lambda r: order[r["role"]])


def _final_section(result: StudyResult, rows: list[dict[str, Any]]) -> str:
    batch = result.cfg.search.batch_size
    cols: list[Column] = [
        ("role", "role", _s),
        ("run", "run", _s),
        *_shape_columns(),
        ("predicted", "predicted_loss", _f(4)),
        ("interval", "predicted_low", _s),
        ("achieved", "loss", _f(4)),
        ("vs baseline", "delta_loss", _f(4)),
        *_speed_columns(result.cfg.throughput.batch_sizes),
        (f"speed vs baseline B={batch}", "speedup_pct", _pct),
        ("record", "record", _s),
    ]
    shown = [
        {**r, "predicted_low": f"[{_f(4)(r['predicted_low'])}, {_f(4)(r['predicted_high'])}]"}
        for r in rows
    ]
    b = result.cfg.baseline
    notes = "".join(f"\n- {n}" for n in result.picks.notes)
    return (
        f"All three trained at N = {result.cfg.target_n_params:,}, the same D and seed. The "
        f"baseline is LLaMA-3.2-1B's shape rescaled by the paper's knobs (x = {b.d_over_sqrt_n}, "
        f"r = {b.r_mlp_attn}, g = {b.gqa_group} requested; whole heads give the x, r and g "
        "shown). Predicted: the law fitted on the smaller budgets with L_opt the best loss "
        f"observed at this budget ({result.cfg.search.level:.0%} bootstrap interval); achieved: "
        "final validation loss; speed from each run's `throughput.json`.\n\n"
        + md_table(cols, shown)
        + (f"\n\nNotes:{notes}" if notes else "")
    )


def _downstream_rows(result: StudyResult, finals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (role, task): the final row's loss beside the run's downstream accuracy
    (``eval.json``) and both against the baseline's."""
    base = next(r["run"] for r in finals if r["role"] == "baseline")
    base_acc = {s.task: s.acc for s in result.downstream if s.run == base}
    return [
        {
            "role": row["role"],
            "run": row["run"],
            "loss": row["loss"],
            "delta_loss": row["delta_loss"],
            "record": row["record"],
            "task": score.task,
            "acc": score.acc,
            "acc_stderr": score.acc_stderr,
            "delta_acc": score.acc - base_acc[score.task],
            "n_items": score.n_items,
            "eval_record": score.record,
        }
        for row in finals
        for score in result.downstream
        if score.run == row["run"]
    ]


def _downstream_text(rows: list[dict[str, Any]]) -> str:
    """The downstream table under the final comparison (nothing when evaluation is off)."""
    if not rows:
        return ""
    cols: list[Column] = [
        ("role", "role", _s),
        ("run", "run", _s),
        ("achieved", "loss", _f(4)),
        ("vs baseline", "delta_loss", _f(4)),
        ("task", "task", _s),
        ("accuracy", "acc", _f(3)),
        ("stderr", "acc_stderr", _f(3)),
        ("acc vs baseline", "delta_acc", lambda v: f"{v:+.3f}"),
        ("items", "n_items", _s),
        ("eval record", "eval_record", _s),
    ]
    return (
        "\n\nDownstream accuracy of the same models beside their loss (arXiv 2510.18245 reports up "
        "to 2.1% higher accuracy than LLaMA-3.2 at equal budget): multiple choice scored by "
        "lm-evaluation-harness, offline, from each run's `eval.json` (`python -m "
        "archsearch.evaluate`); stderr: the accuracy's standard error, so a difference "
        "smaller than about 2 sqrt(stderr_a^2 + stderr_b^2) is within noise.\n\n"
        + md_table(cols, rows)
    )


def _search_section(
    result: StudyResult, search: dict[str, Any], finals: list[dict[str, Any]], out: Path
) -> str:
    batch = str(result.cfg.search.batch_size)
    plot_pareto(search, finals, batch, out / "pareto.png")
    r = result.picks.result
    fastest = r.fastest_meeting_target
    best = fastest.candidate.name if fastest else "none"
    return (
        f"Algorithm 1 at N = {r.n_params:,}, D = {r.train_tokens:,}: {len(r.scored)} feasible "
        f"candidates of {r.n_grid_points} grid points; throughput measured at batch {batch} "
        f"({result.cfg.throughput.prompt_tokens} prompt + {result.cfg.throughput.new_tokens} "
        f"generated tokens, this CPU); L_opt: {r.l_opt_note}. "
        f"{r.target.describe() if r.target else 'no L_t'}. "
        f"Loss-optimal pick: `{r.loss_optimal.candidate.name}`; fastest meeting L_t: `{best}` "
        f"(after the GQA step: `{r.gqa.chosen.name}`); {len(r.front)} shapes on the front. "
        f"Record: `{SEARCH_DIR}/{SEARCH_FILE}`.\n\n![Pareto front](pareto.png)\n\nHollow: "
        "predicted loss of a trained shape; filled: its achieved loss."
    )


def _throughput_section(result: StudyResult, out: Path) -> str:
    records = [t.throughput for t in result.finals]
    plot_throughput(records, out / "throughput_vs_batch.png")
    p = result.cfg.throughput
    threads = p.num_threads or "torch's default number of"
    return (
        "Measured decode tokens/s (median of the repeats; bars: min and max) against batch size "
        f"for the trained finals: random weights, {p.prompt_tokens} prompt + {p.new_tokens} "
        f"generated tokens per row, {p.repeats} timed repeats after {p.warmup} warm-up, "
        f"{threads} CPU thread(s), {records[0].dtype}.\n\n"
        "![Throughput against batch size](throughput_vs_batch.png)"
    )


def _verdict(result: StudyResult, finals: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """Plain statements computed from the final rows (and the progressive steps)."""
    rows = {r["role"]: r for r in finals}
    batch = str(result.cfg.search.batch_size)
    facts: dict[str, Any] = {}
    lines = []
    opt = rows["loss_optimal"]
    facts["loss_optimal_beats_baseline"] = opt["delta_loss"] < 0
    lines.append(
        f"- Loss-optimal pick vs baseline at equal budget: {opt['delta_loss']:+.4f} nats "
        f"({'lower, the law picked a better shape' if opt['delta_loss'] < 0 else 'not lower'})."
    )
    if "fastest_meeting_target" in rows:
        fast = rows["fastest_meeting_target"]
        facts["fastest_meeting_target_faster"] = fast["speedup_pct"] > 0
        facts["fastest_meeting_target_no_worse_loss"] = fast["delta_loss"] <= 0
        lines.append(
            f"- Fastest pick meeting L_t vs baseline: {fast['speedup_pct']:+.1f}% decode "
            f"tokens/s at batch {batch}, loss {fast['delta_loss']:+.4f} nats "
            f"({'no worse' if fast['delta_loss'] <= 0 else 'worse'} than the baseline)."
        )
    worst = max(s.mse for s in result.fits.steps)
    lines.append(
        f"- Progressive fit: MSE up to {worst:.2e} and Spearman "
        + ", ".join(f"{s.spearman:.2f}" for s in result.fits.steps)
        + " (paper: MSE ~1e-4, Spearman 0.75-0.89)."
    )
    lines.append(
        "- Caveats: one seed per shape (run-to-run noise at this scale was not measured and can "
        "be ~0.01 nats); a few hundred thousand parameters trained on a few tokens per "
        "parameter, where the output layer and whole-head rounding shape the loss as much as "
        "x and r; CPU throughput of tiny models is dominated by per-step overhead, so speed "
        "differences are small and noisy when other jobs share the machine."
    )
    return "\n".join(lines), facts


def _setup(result: StudyResult) -> str:
    cfg, model = result.cfg, result.cfg.run.model
    total = sum(t.record.wall_time_s for t in [*result.sweep, *result.finals])
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in result.timings.items())
    return (
        f"Study `{cfg.name}` on {platform.machine()} CPU ({platform.node() or 'this machine'}). "
        f"Shapes: {model.n_layers} layers, head_dim {model.head_dim}, vocabulary "
        f"{cfg.run.data.vocab_size} (BPE on `{cfg.run.data.source}`), sequence "
        f"{cfg.run.train.seq_len}, batch {cfg.run.train.batch_size}, AdamW lr "
        f"{cfg.run.optim.lr:g} ({cfg.run.optim.schedule}). Training wall time summed over all "
        f"runs' records: {total:.0f} s. This invocation's stages (skipped jobs cost nothing): "
        f"{stages}."
    )


def write_report(result: StudyResult) -> Path:
    """Write ``report/report.md``, ``report/report.json`` and the PNGs; returns the Markdown."""
    root = result.cfg.out_dir
    out = root / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    search = json.loads((root / SEARCH_DIR / SEARCH_FILE).read_text())
    sweep_text, sweep_rows = _sweep_section(result, root)
    fit_texts, fit_tables = _fit_sections(result, root, out)
    finals = _final_rows(result, search, root)
    downstream = _downstream_rows(result, finals)
    verdict, facts = _verdict(result, finals)
    bodies = [
        _setup(result),
        sweep_text,
        *fit_texts,
        _search_section(result, search, finals, out),
        _final_section(result, finals) + _downstream_text(downstream),
        _throughput_section(result, out),
        verdict,
    ]
    parts = [f"# archsearch study `{result.cfg.name}`\n"]
    parts += [f"## {title}\n\n{body}\n" for title, body in zip(SECTIONS, bodies, strict=True)]
    path = out / "report.md"
    path.write_text("\n".join(parts))
    tables = {"sweep": sweep_rows, **fit_tables, "final": finals}
    tables["downstream"] = downstream
    write_json_atomic(
        out / "report.json",
        {"study": result.cfg.name, "sections": list(SECTIONS), "tables": tables, "verdict": facts},
    )
    return path
