"""The study report: Markdown, the JSON of its tables, and PNG plots.

``write_report(result)`` writes ``<study>/report/`` from the study's results in memory (each
number also lives in a record file, which its table row names relative to the study
directory): ``report.md`` (the ``SECTIONS``), ``report.json`` (every table row as numbers, and
the criteria) and the PNGs (``archsearch.law.plots``, ``archsearch.study.plots`` and
``archsearch.throughput.report``; matplotlib imported lazily).
"""

from __future__ import annotations

import math
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archsearch.arch import ArchSpec, count_params
from archsearch.law.plots import plot_predicted_vs_observed, plot_u_curves
from archsearch.records import RECORD_FILE, THROUGHPUT_FILE, RunRecord, write_json_atomic
from archsearch.records.throughput import WALL_MEDIAN
from archsearch.search import GQASearch, Scored, spec_key
from archsearch.study import analysis
from archsearch.study.config import StudyConfig
from archsearch.study.downstream import DownstreamScore
from archsearch.study.jobs import CHECKS_DIR, SWEEP_DIR, Job
from archsearch.study.picks import ROLES, SEARCH_DIR, SEARCH_FILE, Picks
from archsearch.study.pipeline import FIT_DIR, Fits, HeadToHead, Trained
from archsearch.study.plots import plot_pareto
from archsearch.throughput.report import plot as plot_throughput

REPORT_DIR = "report"
SECTIONS = (
    "Setup",
    "Sweep",
    "U-curves",
    "Noise and learning rate",
    "Progressive fit",
    "Held-out predictions",
    "Law plots",
    "Search",
    "Final comparison",
    "Throughput against batch size",
    "Criteria",
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
    """What the report is built from (every number in it is also in a record file).

    Attributes:
        checks: the learning-rate and seed checks' jobs with their records.
        gqa: Algorithm 1's step 3 redone with the finals trained (None: no fastest pick).
    """

    cfg: StudyConfig
    sweep: list[Trained]
    skipped: list[str]
    checks: list[tuple[Job, RunRecord]]
    fits: Fits
    picks: Picks
    gqa: GQASearch | None
    finals: list[Trained]
    head_to_head: HeadToHead
    timings: dict[str, float]
    downstream: list[DownstreamScore] = field(default_factory=list)

    @property
    def measure(self) -> str:
        """The decode measure the search ranked with (``throughput_measure``), used throughout."""
        return self.picks.speed.measure or WALL_MEDIAN

    def runs(self, which: str) -> list[analysis.Run]:
        """The sweep's or the checks' jobs as ``analysis.Run`` (name, N, request, record)."""
        pairs = [(t.job, t.record) for t in self.sweep] if which == "sweep" else list(self.checks)
        return [
            analysis.Run(
                job.name,
                job.n_params,
                job.request
                or (job.run.model.d_over_sqrt_n, job.run.model.r_mlp_attn, job.run.model.gqa_group),
                record,
            )
            for job, record in pairs
        ]


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


def _tokens_per_s(trained: Trained, measure: str) -> dict[str, float]:
    """Decode tokens/s per batch size by ``measure`` (the one the search ranked with)."""
    out = {}
    for b in trained.throughput.batches:
        rates = b.rates(measure)
        out[str(b.batch_size)] = b.tokens_per_s if rates is None else rates[0]
    return out


def _run_row(trained: Trained, root: Path, measure: str) -> dict[str, Any]:
    """The numbers of one trained shape, straight from its record and throughput record."""
    rec, arch = trained.record, trained.record.arch
    return {
        "run": trained.job.name,
        "record": _rel(trained.job.run_dir / RECORD_FILE, root),
        "throughput_record": _rel(trained.job.run_dir / THROUGHPUT_FILE, root),
        "budget_n_params": trained.job.n_params,
        "n_params": rec.n_params,
        "total_params": count_params(ArchSpec.from_dict(arch)).total,
        "train_tokens": rec.train_tokens,
        "d_model": arch["d_model"],
        "heads": f"{arch['n_heads']}/{arch['n_kv_heads']}",
        "d_ff": arch["d_ff"],
        "x": rec.d_over_sqrt_n,
        "r": rec.r_mlp_attn,
        "g": rec.gqa_group,
        "loss": rec.final_val_loss,
        "train_s": rec.wall_time_s,
        "tokens_per_s": _tokens_per_s(trained, measure),
        "throughput_measure": measure,
    }


def _speed_columns(batch_sizes: Sequence[int]) -> list[Column]:
    return [
        (f"tok/s B={b}", "tokens_per_s", lambda v, b=str(b): f"{v[b]:.0f}") for b in batch_sizes
    ]


def _shape_columns() -> list[Column]:
    return [
        ("N", "n_params", _int),
        ("total params", "total_params", _int),
        ("D", "train_tokens", _int),
        ("d_model", "d_model", _s),
        ("heads/kv", "heads", _s),
        ("d_ff", "d_ff", _s),
        ("x", "x", _f(3)),
        ("r", "r", _f(2)),
        ("g", "g", _s),
    ]


def _sweep_section(result: StudyResult, root: Path) -> tuple[str, list[dict[str, Any]]]:
    rows = [_run_row(t, root, result.measure) for t in result.sweep]
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
        f"(D = {result.cfg.grid.tokens_per_param:g} N). N counts non-embedding parameters (the "
        "paper's N); total adds the embedding (tied with the output layer when "
        f"tie_embeddings={result.cfg.run.model.tie_embeddings}) and the norms. Loss is the final "
        "validation loss (nats/token); decode tokens/s from `throughput.json` beside each "
        f"record, by `{result.measure}` (the measure the search ranked with: on CPU the median "
        "over repeats of process CPU time, blind to other processes sharing the cores).\n\n"
        + md_table(cols, rows)
        + (f"\n\nRequests whole heads could not reach:{skipped}" if skipped else "")
    )
    return text, rows


def _optimum(optimum: dict[str, float]) -> str:
    """The law's optimum (x*, r*) as text; NaN where a fitted coefficient is not positive."""
    if not optimum or any(math.isnan(v) for v in optimum.values()):
        return "no interior optimum: a fitted coefficient of ln x, 1/x, ln r or 1/r is not positive"
    return "optimum " + ", ".join(f"{k}* = {v:.3g}" for k, v in optimum.items())


def _fit_sections(result: StudyResult, out: Path) -> tuple[list[str], dict[str, Any]]:
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
        f"Law `{result.cfg.law.form}` ({result.cfg.law.fitter}; in sample, L_opt = the best "
        "observed loss of each budget), fitted on the smaller budgets and predicting the next "
        "with L_opt extrapolated from the training budgets only (the held-out budget's own "
        "losses are never used). The paper: "
        f"{PAPER_PROGRESSIVE}. Runs outside the law's r range {result.cfg.law.r_range} (left out "
        f"of every fit): {excluded}.\n\n" + md_table(step_cols, steps)
    )
    held_out = [{**row, "error": row["predicted"] - row["observed"]} for row in fits.held_out]
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
        f"({optimum}). L_opt there: {fits.target_l_opt:.4f}, {fits.target_l_opt_note} (the best "
        f"loss observed there, for comparison only: {fits.target_best_observed:.4f}).\n\n"
        + md_table(held_cols, held_out)
    )
    plot_predicted_vs_observed(
        fits.extrapolation, fits.predictions, out / "predicted_vs_observed.png"
    )
    plots = (
        "![Predicted vs observed](predicted_vs_observed.png)\n\nPredicted against observed "
        "loss, law fitted on every budget but the largest (the largest is out of sample, its "
        "L_opt extrapolated)."
    )
    return [progressive, predictions, plots], {"progressive": steps, "held_out": held_out}


def _scored_for(result: StudyResult, arch: dict[str, Any]) -> Scored | None:
    """The search's scored entry (or its target's) for a trained shape, matched on the shape."""
    r = result.picks.result
    key = spec_key(ArchSpec.from_dict(arch))
    entries = [r.target.scored if r.target else None, *r.scored]
    return next((e for e in entries if e and spec_key(e.candidate.spec) == key), None)


def _final_rows(
    result: StudyResult, noise: analysis.SeedNoise | None, root: Path
) -> list[dict[str, Any]]:
    """One row per role: predicted loss (the search) beside achieved loss, and speed both from
    each run's own measurement and from the head-to-head measurement (the comparison)."""
    by_name = {t.job.name: t for t in result.finals}
    base = next(t for t in result.finals if "baseline" in result.picks.roles[t.job.name])
    h2h = result.head_to_head

    def rates(name: str) -> tuple[float, float, float]:
        speed = h2h.speeds[name]
        return speed.rates(result.measure) or (speed.tokens_per_s,) * 3

    def round_s(name: str) -> list[float]:
        speed = h2h.speeds[name]
        return speed.decode_times(result.measure) or speed.decode_s

    rows = []
    for name, roles in result.picks.roles.items():
        trained = by_name[name]
        row = _run_row(trained, root, result.measure)
        scored = _scored_for(result, trained.record.arch)
        delta = row["loss"] - base.record.final_val_loss
        median, low, high = rates(name)
        speedup, faster = analysis.paired_speedup(round_s(name), round_s(base.job.name))
        for role in roles:
            rows.append(
                {
                    **row,
                    "role": role,
                    "search_record": f"{SEARCH_DIR}/{SEARCH_FILE}",
                    "predicted_loss": scored.loss if scored else None,
                    "predicted_low": _finite(scored.loss_low) if scored else None,
                    "predicted_high": _finite(scored.loss_high) if scored else None,
                    "delta_loss": delta,
                    "delta_sd": delta / noise.sd_diff if noise else None,
                    "h2h_tokens_per_s": median,
                    "h2h_tokens_per_s_range": [low, high],
                    "h2h_round_s": round_s(name),
                    "h2h_record": h2h.record,
                    "speedup_pct": 100 * speedup,
                    "faster_rounds": f"{faster}/{h2h.repeats}",
                }
            )
    order = {role: i for i, role in enumerate(ROLES)}
    return sorted(rows, key=lambda r: order[r["role"]])


def _finite(v: float) -> float | None:
    return None if math.isnan(v) else v


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
        ("in noise sd", "delta_sd", _f(1)),
        *_speed_columns(result.cfg.throughput.batch_sizes),
        (f"head-to-head tok/s B={batch} [min, max]", "h2h_tokens_per_s", _s),
        (f"speed vs baseline B={batch}", "speedup_pct", _pct),
        ("rounds faster", "faster_rounds", _s),
        ("record", "record", _s),
    ]
    shown = [
        {
            **r,
            "predicted_low": f"[{_f(4)(r['predicted_low'])}, {_f(4)(r['predicted_high'])}]",
            "h2h_tokens_per_s": f"{r['h2h_tokens_per_s']:.0f} "
            + "[{:.0f}, {:.0f}]".format(*r["h2h_tokens_per_s_range"]),
        }
        for r in rows
    ]
    h2h = result.head_to_head
    base = next(t for t in result.finals if "baseline" in result.picks.roles[t.job.name])
    spec = ArchSpec.from_dict(base.record.arch)
    transfer = analysis.baseline_transfer(
        result.cfg, spec, base.record.d_over_sqrt_n, base.record.r_mlp_attn
    )
    notes = "".join(f"\n- {n}" for n in result.picks.notes)
    return (
        f"Every final trained at N = {result.cfg.target_n_params:,} with the sweep's D, seed and "
        f"learning rate. The baseline is LLaMA-3.2-1B's per-layer proportions at "
        f"{result.cfg.run.model.n_layers} layers: {transfer}. Predicted: the law fitted on the "
        f"smaller budgets with L_opt extrapolated from them ({result.cfg.search.level:.0%} "
        "bootstrap interval); achieved: final validation loss; 'in noise sd': the loss "
        "difference over the standard deviation of paired seed differences; tok/s per batch "
        "size from each run's `throughput.json`; the comparison with the baseline from the "
        f"head-to-head measurement (`{h2h.record}`): {h2h.repeats} rounds at B={batch} in "
        "which every final decodes once, in turns, so a slow spell of the machine falls on all "
        f"of them (tok/s: median, slowest and fastest round by {result.measure}; speed vs "
        "baseline: the median over rounds of the two models' speed ratio in the same round)."
        f"\n\n{md_table(cols, shown)}\n\n{_gqa_text(result)}"
        + (f"\n\nNotes:{notes}" if notes else "")
    )


def _gqa_text(result: StudyResult) -> str:
    """Algorithm 1's step 3 with the finals trained: each group, its speed, loss and status."""
    if result.gqa is None:
        return "GQA step: no fastest pick, so no step."
    steps = "; ".join(
        f"`{s.candidate.name}` (g {s.candidate.gqa_group}) "
        f"{s.speed.tokens_per_s:.0f} tok/s, loss "
        + ("-" if s.measured_loss is None else f"{s.measured_loss:.4f}")
        + f": {s.status}"
        for s in result.gqa.steps
    )
    return (
        f"GQA step (Algorithm 1, step 3) from the fastest pick, groups in order of rising "
        f"throughput, accepted while the measured loss is no worse than the pick's: {steps}. "
        f"Chosen: `{result.gqa.chosen.name}`."
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


def _search_section(result: StudyResult, finals: list[dict[str, Any]], out: Path) -> str:
    batch = str(result.cfg.search.batch_size)
    plot_pareto(result.picks.result.to_dict(), finals, batch, out / "pareto.png")
    r = result.picks.result
    fastest = r.fastest_meeting_target
    best = fastest.candidate.name if fastest else "none"
    return (
        f"Algorithm 1 at N = {r.n_params:,}, D = {r.train_tokens:,}: {len(r.scored)} feasible "
        f"candidates of {r.n_grid_points} grid points; throughput measured at batch {batch} "
        f"({result.cfg.throughput.prompt_tokens} prompt + {result.cfg.throughput.new_tokens} "
        f"generated tokens, this CPU); L_opt: {r.l_opt_note}. "
        f"{r.target.describe() if r.target else 'no L_t'}. "
        f"Loss-optimal pick: `{r.loss_optimal.candidate.name}`; fastest meeting L_t: `{best}`; "
        f"{len(r.front)} shapes on the front. Record: `{SEARCH_DIR}/{SEARCH_FILE}`.\n\n"
        "![Pareto front](pareto.png)\n\nHollow: predicted loss of a trained shape; filled: "
        "its achieved loss."
    )


def _arms_section(
    result: StudyResult, arms: list[analysis.Arm], out: Path
) -> tuple[str, list[dict[str, Any]]]:
    """Each arm at each budget: its points, the lowest one, whether it is inside the arm."""
    rows = [
        {
            "budget": f"{a.n_params:,}",
            "knob": a.knob,
            "points": ", ".join(
                ("**" if i == a.best else "")
                + f"{p.value:.3g}: {p.loss:.4f}"
                + ("**" if i == a.best else "")
                for i, p in enumerate(a.points)
            ),
            "runs": [p.run for p in a.points],
            "values": [p.value for p in a.points],
            "losses": [p.loss for p in a.points],
            "best_run": a.points[a.best].run,
            "best_value": a.points[a.best].value,
            "interior": a.interior,
            "record": f"{SWEEP_DIR}/{a.points[a.best].run}/{RECORD_FILE}",
        }
        for a in arms
    ]
    cols: list[Column] = [
        ("budget N", "budget", _s),
        ("arm", "knob", _s),
        ("achieved value: val loss (lowest in bold)", "points", _s),
        ("lowest inside the arm", "interior", _s),
    ]
    u_curves = plot_u_curves(result.fits.full, result.fits.data, out / "u_curves.png")
    text = (
        "The x arm varies x = d_model / sqrt(N) at (r, g) = "
        f"({result.cfg.grid.r_center:g}, {result.cfg.grid.group}); the r arm varies r at "
        f"(x, g) = ({result.cfg.grid.x_center:g}, {result.cfg.grid.group}). The paper's "
        "finding (arXiv 2510.18245, Fig. 3) is a U: the lowest loss strictly inside each arm.\n\n"
        + md_table(cols, rows)
        + (
            f"\n\n![U-curves](u_curves.png)\n\nLoss against x and r per budget with the law "
            f"fitted on all budgets ({_optimum(result.fits.full.optimum)})."
            if u_curves
            else ""
        )
    )
    return text, rows


def _checks_section(
    result: StudyResult, noise: analysis.SeedNoise | None
) -> tuple[str, dict[str, Any]]:
    """Seed noise (paired differences) and the learning-rate check."""
    sweep, checks = result.runs("sweep"), result.runs("checks")
    if noise is None:
        noise_text = (
            "Seed noise: not measured (give `checks.seeds` to train an arm again with another "
            "seed); advantages below are not stated in noise units."
        )
    else:
        pairs = ", ".join(f"`{a}` {la:.4f} / {lb:.4f}" for a, _, la, lb in noise.pairs)
        noise_text = (
            f"Seed noise at N = {result.cfg.checks_n_params:,}: {len(noise.pairs)} shapes "
            f"trained with two seeds ({pairs}); paired differences have mean "
            f"{noise.mean_diff:+.4f} and standard deviation **{noise.sd_diff:.4f} nats** (one "
            f"run's noise: {noise.sd_diff / math.sqrt(2):.4f}). Records: "
            f"`{SWEEP_DIR}/<run>/{RECORD_FILE}` and `{CHECKS_DIR}/<run>_seed*/{RECORD_FILE}`."
        )
    points = analysis.lr_check(result.cfg, sweep, checks)
    tables: dict[str, Any] = {
        "seed_pairs": [
            {"run": a, "seed_run": b, "loss": la, "seed_loss": lb, "diff": lb - la}
            for a, b, la, lb in (noise.pairs if noise else [])
        ],
        "lr_check": [p.__dict__ for p in points],
    }
    if not points:
        return noise_text + "\n\nLearning-rate check: not run.", tables
    best = analysis.best_width_per_lr(points)
    lines = "\n".join(
        f"- lr {lr:g}: "
        + ", ".join(
            ("**" if p is best[lr] else "")
            + f"x {p.x:.3f}: {p.loss:.4f}"
            + ("**" if p is best[lr] else "")
            for p in points
            if p.lr == lr
        )
        for lr in sorted(best)
    )
    widths = sorted({p.x for p in points})
    same = len({round(b.x, 6) for b in best.values()}) == 1
    verdict = (
        f"the same width is best at every learning rate (x {next(iter(best.values())).x:.3f})"
        if same
        else "the best width moves with the learning rate: "
        + ", ".join(f"lr {lr:g} -> x {b.x:.3f}" for lr, b in sorted(best.items()))
    )
    return (
        f"{noise_text}\n\nLearning-rate check at N = {result.cfg.checks_n_params:,}: widths "
        + ", ".join(f"{w:.3f}" for w in widths)
        + f" at learning rates x {result.cfg.checks.lr_factors} of {result.cfg.run.optim.lr:g} "
        f"(lowest loss per learning rate in bold):\n\n{lines}\n\nVerdict: {verdict}.",
        tables,
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


def _outcome(rows: dict[str, dict[str, Any]], role: str) -> analysis.Outcome:
    row = rows[role]
    return analysis.Outcome(
        row["run"],
        row["loss"],
        row["predicted_low"],
        row["predicted_high"],
        tuple(row["h2h_round_s"]),
    )


def _criteria(
    result: StudyResult,
    arms: list[analysis.Arm],
    finals: list[dict[str, Any]],
    noise: analysis.SeedNoise | None,
) -> list[analysis.Criterion]:
    rows = {r["role"]: r for r in finals}
    at_target = [r for r in result.runs("sweep") if r.n_params == result.cfg.target_n_params]
    held = result.fits.steps[-1]
    return analysis.criteria(
        arms,
        result.fits.full,
        held.spearman,
        min(at_target, key=lambda r: r.loss),
        _outcome(rows, "loss_optimal"),
        _outcome(rows, "fastest_meeting_target") if "fastest_meeting_target" in rows else None,
        _outcome(rows, "baseline"),
        noise,
    )


def _criteria_section(criteria: list[analysis.Criterion]) -> str:
    mark = {True: "PASS", False: "FAIL", None: "NOT EVALUATED"}
    return (
        "The study's claims, each decided by the numbers beside it (none is loosened to pass):\n\n"
        + "\n".join(f"- **{mark[c.passed]}** {c.name}: {c.detail}." for c in criteria)
    )


def _verdict(
    result: StudyResult, finals: list[dict[str, Any]], noise: analysis.SeedNoise | None
) -> tuple[str, dict[str, Any]]:
    """Plain statements computed from the final rows (and the progressive steps)."""
    rows = {r["role"]: r for r in finals}
    batch = str(result.cfg.search.batch_size)
    sd = f" ({rows['loss_optimal']['delta_sd']:+.1f} noise sd)" if noise else ""
    facts: dict[str, Any] = {}
    lines = []
    opt = rows["loss_optimal"]
    facts["loss_optimal_beats_baseline"] = opt["delta_loss"] < 0
    lines.append(
        f"- Loss-optimal pick vs baseline at equal budget: {opt['delta_loss']:+.4f} nats{sd} "
        f"({'lower' if opt['delta_loss'] < 0 else 'not lower'})."
    )
    if "fastest_meeting_target" in rows:
        fast = rows["fastest_meeting_target"]
        facts["fastest_meeting_target_faster"] = fast["speedup_pct"] > 0
        facts["fastest_meeting_target_no_worse_loss"] = fast["delta_loss"] <= 0
        fast_sd = f" ({fast['delta_sd']:+.1f} noise sd)" if noise else ""
        lines.append(
            f"- Fastest pick meeting L_t vs baseline: {fast['speedup_pct']:+.1f}% decode "
            f"tokens/s at batch {batch} (head-to-head), loss {fast['delta_loss']:+.4f} "
            f"nats{fast_sd}."
        )
    worst = max(s.mse for s in result.fits.steps)
    lines.append(
        f"- Progressive fit: MSE up to {worst:.2e} and Spearman "
        + ", ".join(f"{s.spearman:.2f}" for s in result.fits.steps)
        + " (paper: MSE ~1e-4, Spearman 0.75-0.89)."
    )
    lines.append(
        "- Scale: models of tens to hundreds of thousands of parameters on one public-domain "
        "corpus; whole heads round every shape, and CPU decode of such models is dominated by "
        "per-step overhead, so speed differences come mostly from head counts and widths."
    )
    return "\n".join(lines), facts


def _setup(result: StudyResult) -> str:
    cfg, model = result.cfg, result.cfg.run.model
    records = [t.record for t in [*result.sweep, *result.finals]]
    total = sum(r.wall_time_s for r in [*records, *(rec for _, rec in result.checks)])
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in result.timings.items())
    vocab = cfg.run.data.vocab_size
    tokens = "bytes: the 256 byte values and an end-of-document token" if vocab == 257 else "BPE"
    return (
        f"Study `{cfg.name}` on {platform.machine()} CPU ({platform.node() or 'this machine'}). "
        f"Shapes: {model.n_layers} layers, head_dim {model.head_dim}, vocabulary {vocab} "
        f"({tokens}, on `{cfg.run.data.source}`; embeddings tied: {model.tie_embeddings}), "
        f"sequence {cfg.run.train.seq_len}, batch {cfg.run.train.batch_size}, AdamW lr "
        f"{cfg.run.optim.lr:g} ({cfg.run.optim.schedule}), D = {cfg.grid.tokens_per_param:g} N. "
        f"Training wall time summed over all runs' records: {total:.0f} s ({cfg.workers} "
        f"training process(es) at a time). This invocation's stages (skipped jobs cost "
        f"nothing): {stages}."
    )


def write_report(result: StudyResult) -> Path:
    """Write ``report/report.md``, ``report/report.json`` and the PNGs; returns the Markdown."""
    root = result.cfg.out_dir
    out = root / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    noise = analysis.seed_noise(result.cfg, result.runs("sweep"), result.runs("checks"))
    arms = analysis.arms(result.cfg, result.runs("sweep"))
    sweep_text, sweep_rows = _sweep_section(result, root)
    arms_text, arm_rows = _arms_section(result, arms, out)
    checks_text, check_tables = _checks_section(result, noise)
    fit_texts, fit_tables = _fit_sections(result, out)
    finals = _final_rows(result, noise, root)
    criteria = _criteria(result, arms, finals, noise)
    verdict, facts = _verdict(result, finals, noise)
    downstream = _downstream_rows(result, finals)
    bodies = [
        _setup(result),
        sweep_text,
        arms_text,
        checks_text,
        *fit_texts,
        _search_section(result, finals, out),
        _final_section(result, finals) + _downstream_text(downstream),
        _throughput_section(result, out),
        _criteria_section(criteria),
        verdict,
    ]
    parts = [f"# archsearch study `{result.cfg.name}`\n"]
    parts += [f"## {title}\n\n{body}\n" for title, body in zip(SECTIONS, bodies, strict=True)]
    path = out / "report.md"
    path.write_text("\n".join(parts))
    tables = {"sweep": sweep_rows, "arms": arm_rows, **check_tables, **fit_tables, "final": finals}
    tables["downstream"] = downstream
    facts["noise_sd_diff"] = noise.sd_diff if noise else None
    write_json_atomic(
        out / "report.json",
        {
            "study": result.cfg.name,
            "sections": list(SECTIONS),
            "tables": tables,
            "criteria": [c.__dict__ for c in criteria],
            "verdict": facts,
        },
    )
    return path
