"""The study's analysis of its records: U-curves per budget, seed noise, the learning-rate check,
the baseline's transfer to the study's depth and the pass/fail criteria. Pure: no torch.

Every function reads training records (``RunRecord``) and the study's jobs, never files, so the
report states numbers that trace to one record each.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from archsearch.arch import ArchSpec
from archsearch.law import FitResult
from archsearch.records import RunRecord
from archsearch.search import spec_key
from archsearch.study.config import StudyConfig


@dataclass(frozen=True)
class ArmPoint:
    """One trained shape of an arm: the achieved knob value and the final validation loss."""

    run: str
    value: float
    loss: float


@dataclass(frozen=True)
class Arm:
    """The x or r arm at one budget, sorted by the achieved knob value.

    Attributes:
        knob: ``"x"`` (``d_model / sqrt(N)``) or ``"r"`` (MLP / attention parameters).
        best: index of the lowest loss; ``interior``: it is neither end of the arm (the U of
            arXiv 2510.18245, Fig. 3, seen in the data rather than in a fit).
    """

    n_params: int
    knob: str
    points: list[ArmPoint]

    @property
    def best(self) -> int:
        return int(np.argmin([p.loss for p in self.points]))

    @property
    def interior(self) -> bool:
        return 0 < self.best < len(self.points) - 1


@dataclass(frozen=True)
class Run:
    """A trained job: its name, budget N, the (x, r, g) it was requested at, and its record."""

    name: str
    n_params: int
    request: tuple[float | None, float | None, int | None]
    record: RunRecord

    @property
    def loss(self) -> float:
        return self.record.final_val_loss

    @property
    def lr(self) -> float:
        return float(self.record.config["optim"]["lr"])

    @property
    def seed(self) -> int:
        return int(self.record.config["train"]["seed"])


def arms(cfg: StudyConfig, sweep: Sequence[Run]) -> list[Arm]:
    """The x and r arms at every budget, from the sweep's runs and their (x, r, g) requests.

    A run belongs to the x arm when it was requested at ``(r_center, group)``, to the r arm when
    requested at ``(x_center, group)`` (the centre belongs to both).
    """
    grid = cfg.grid
    members = {
        "x": lambda x, r, g: r == grid.r_center and g == grid.group,
        "r": lambda x, r, g: x == grid.x_center and g == grid.group,
    }
    out = []
    for n_params in sorted(grid.scales):
        for knob, member in members.items():
            points = [
                ArmPoint(
                    run.name,
                    run.record.d_over_sqrt_n if knob == "x" else run.record.r_mlp_attn,
                    run.loss,
                )
                for run in sweep
                if run.n_params == n_params and member(*run.request)
            ]
            if len(points) >= 2:
                out.append(Arm(n_params, knob, sorted(points, key=lambda p: p.value)))
    return out


@dataclass(frozen=True)
class SeedNoise:
    """Run-to-run noise from the same shapes trained with two seeds.

    Attributes:
        pairs: (shape's run, other seed's run, loss, other loss).
        sd_diff: the standard deviation of the paired differences (nats), the unit every
            advantage is stated in; a single run's noise is ``sd_diff / sqrt(2)``.
    """

    pairs: list[tuple[str, str, float, float]]
    sd_diff: float

    @property
    def mean_diff(self) -> float:
        return float(np.mean([b - a for _, _, a, b in self.pairs]))


def _key(run: Run) -> tuple[object, ...]:
    return (spec_key(ArchSpec.from_dict(run.record.arch)), run.record.train_tokens)


def seed_noise(cfg: StudyConfig, sweep: Sequence[Run], checks: Sequence[Run]) -> SeedNoise | None:
    """Pair each seed-check run with the sweep run of the same shape and D (the study's
    learning rate and seed); None with fewer than two pairs (no standard deviation)."""
    by_key = {_key(run): run for run in sweep}
    pairs = []
    for run in checks:
        match = by_key.get(_key(run))
        if match is None or run.lr != cfg.run.optim.lr or run.seed == match.seed:
            continue
        pairs.append((match.name, run.name, match.loss, run.loss))
    if len(pairs) < 2:
        return None
    diffs = [b - a for _, _, a, b in pairs]
    return SeedNoise(pairs, float(np.std(diffs, ddof=1)))


@dataclass(frozen=True)
class LrPoint:
    """One (width, learning rate) run of the learning-rate check."""

    run: str
    x: float
    lr: float
    loss: float


def lr_check(cfg: StudyConfig, sweep: Sequence[Run], checks: Sequence[Run]) -> list[LrPoint]:
    """The learning-rate check's runs beside the sweep's runs of the same shapes at the study's
    learning rate, sorted by (lr, x)."""
    lr_runs = [run for run in checks if run.lr != cfg.run.optim.lr]
    shapes = {_key(run) for run in lr_runs}
    same = [run for run in sweep if _key(run) in shapes]
    points = [LrPoint(r.name, r.record.d_over_sqrt_n, r.lr, r.loss) for r in [*lr_runs, *same]]
    return sorted(points, key=lambda p: (p.lr, p.x))


def best_width_per_lr(points: Sequence[LrPoint]) -> dict[float, LrPoint]:
    """The lowest-loss width at each learning rate."""
    best: dict[float, LrPoint] = {}
    for p in points:
        if p.lr not in best or p.loss < best[p.lr].loss:
            best[p.lr] = p
    return best


@dataclass(frozen=True)
class Criterion:
    """One pass/fail statement of the study (None: could not be evaluated, ``detail`` says why)."""

    name: str
    passed: bool | None
    detail: str


def baseline_transfer(cfg: StudyConfig, spec: ArchSpec, x: float, r: float) -> str:
    """The arithmetic that moves the reference model's proportions to the study's depth."""
    b, n_layers, n = cfg.baseline, cfg.run.model.n_layers, cfg.target_n_params
    x_at = b.d_over_sqrt_n_at(n_layers)
    return (
        f"x = {b.d_over_sqrt_n} x sqrt({b.reference_n_layers} / {n_layers}) = {x_at:.3f} "
        f"(per-layer parameters / d_model^2 = 1 / (L x^2) kept); d_model = {x_at:.3f} x "
        f"sqrt({n:,}) = {x_at * math.sqrt(n):.1f}, rounded to {spec.d_model} (achieved x "
        f"{x:.3f}); r = {b.r_mlp_attn} and g = {b.gqa_group} are per-layer ratios and "
        f"transfer as they are: whole heads give r = {r:.2f}, g = {spec.gqa_group} "
        f"({spec.n_heads} query / {spec.n_kv_heads} KV heads of {spec.head_dim})"
    )


def _range(bounds: Sequence[float | None] | None, digits: int = 3) -> str:
    if not bounds:
        return "[unknown]"
    return "[" + ", ".join("-" if b is None else f"{b:.{digits}g}" for b in bounds) + "]"


@dataclass(frozen=True)
class Outcome:
    """A trained final: achieved loss, the search's predicted interval, and its decode seconds
    in each head-to-head round (every final decoded once per round, in turns)."""

    run: str
    loss: float
    low: float | None
    high: float | None
    round_s: tuple[float, ...]


def paired_speedup(pick_s: Sequence[float], base_s: Sequence[float]) -> tuple[float, int]:
    """Median over head-to-head rounds of the pick's speed over the baseline's, minus 1 (the
    same tokens in both, so ``base_s / pick_s`` per round), and the rounds the pick was faster.
    Pairing by round cancels what the machine did during that round."""
    ratios = [b / p for p, b in zip(pick_s, base_s, strict=True)]
    return float(np.median(ratios)) - 1, sum(r > 1 for r in ratios)


def criteria(
    arm_list: Sequence[Arm],
    fit: FitResult,
    held_out_spearman: float,
    best_sweep: Run,
    loss_optimal: Outcome,
    fastest: Outcome | None,
    baseline: Outcome,
    noise: SeedNoise | None,
) -> list[Criterion]:
    """The study's claims as pass/fail statements, each with the numbers that decide it.

    1. Every x arm has its lowest loss strictly inside (the U, arXiv 2510.18245, Fig. 3).
    2. The law fitted on every budget has a1, a2, b1, b2 > 0 (Eq. 5: an interior optimum) with
       x* and r* inside the swept ranges.
    3. The progressive fit ranks the held-out budget with Spearman >= 0.8 (the paper: 0.75-0.89).
    4. The loss-optimal pick's loss lies in its predicted interval and is no worse than the best
       sweep shape at that budget beyond two noise standard deviations.
    5. The fastest pick meeting L_t decodes faster than the baseline (the median of their
       per-round speed ratios in the head-to-head measurement) with loss no worse than the
       baseline's beyond two noise standard deviations.
    """
    out = []
    x_arms = [a for a in arm_list if a.knob == "x"]
    edges = [f"{a.n_params:,}" for a in x_arms if not a.interior]
    mins = ", ".join(f"{a.n_params:,}: x {a.points[a.best].value:.3f}" for a in x_arms)
    out.append(
        Criterion(
            "x-arm minimum strictly inside the arm at every budget",
            bool(x_arms) and not edges,
            f"lowest loss at {mins}" + (f"; at an end at {', '.join(edges)}" if edges else ""),
        )
    )
    coeffs = {k: fit.params.get(k, math.nan) for k in ("a1", "a2", "b1", "b2")}
    ranges = {k: fit.domain.get(k) for k in ("x", "r")}
    inside = {
        k: bool(ranges[k]) and ranges[k][0] <= fit.optimum.get(k, math.nan) <= ranges[k][1]
        for k in ("x", "r")
    }
    out.append(
        Criterion(
            "law fitted on every budget: a1, a2, b1, b2 > 0, x* and r* inside the swept ranges",
            all(v > 0 for v in coeffs.values()) and all(inside.values()),
            ", ".join(f"{k} {v:.3g}" for k, v in coeffs.items())
            + "; "
            + ", ".join(
                f"{k}* {fit.optimum.get(k, math.nan):.3g} in {_range(ranges[k])}: {inside[k]}"
                for k in ("x", "r")
            ),
        )
    )
    out.append(
        Criterion(
            "progressive Spearman >= 0.8 on the held-out budget",
            None if math.isnan(held_out_spearman) else held_out_spearman >= 0.8,
            f"Spearman {held_out_spearman:.2f}",
        )
    )
    sd = noise.sd_diff if noise else None
    in_interval = (
        loss_optimal.low is not None
        and loss_optimal.high is not None
        and loss_optimal.low <= loss_optimal.loss <= loss_optimal.high
    )
    gap = loss_optimal.loss - best_sweep.loss
    outside = ""
    if not in_interval and sd and loss_optimal.low is not None and loss_optimal.high is not None:
        miss = max(loss_optimal.low - loss_optimal.loss, loss_optimal.loss - loss_optimal.high)
        outside = (
            f" ({miss:.4f} outside; the interval is the law's, without one run's own noise, "
            f"sd {sd / math.sqrt(2):.4f})"
        )
    out.append(
        Criterion(
            "loss-optimal pick inside its interval, no worse than the best sweep shape beyond "
            "2 noise sd",
            None if sd is None else in_interval and gap <= 2 * sd,
            f"loss {loss_optimal.loss:.4f} in {_range([loss_optimal.low, loss_optimal.high], 4)}: "
            f"{in_interval}{outside}; vs best sweep shape `{best_sweep.name}` "
            f"{best_sweep.loss:.4f}: {gap:+.4f}"
            + (f" = {gap / sd:+.1f} sd" if sd else " (noise not measured)"),
        )
    )
    if fastest is None:
        out.append(Criterion("fastest pick meeting L_t", None, "no candidate met L_t"))
    else:
        delta = fastest.loss - baseline.loss
        speedup, faster = paired_speedup(fastest.round_s, baseline.round_s)
        out.append(
            Criterion(
                "fastest pick decodes faster than the baseline, loss no worse beyond 2 noise sd",
                None if sd is None else speedup > 0 and delta <= 2 * sd,
                f"decode {100 * speedup:+.1f}% (median over {len(fastest.round_s)} head-to-head "
                f"rounds; faster in {faster}); loss {delta:+.4f}"
                + (f" = {delta / sd:+.1f} sd" if sd else " (noise not measured)"),
            )
        )
    return out
