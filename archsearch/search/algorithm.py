"""Algorithm 1 of arXiv 2510.18245: accurate and fast architectures at a budget (N, D). Pure.

1. L_opt(N, D): the law's own model where it can predict at the budget; otherwise a Chinchilla
   law fitted on the law's data (Algorithm 1, step 1), or a constant given by the caller.
2. Every candidate of the ``SearchSpace`` gets the conditional law's predicted loss (Eq. 3) at the
   budget N and D with its own x and r, a bootstrap interval, and a throughput: the roofline
   estimate (``archsearch.throughput.roofline``) or a measured ``throughput.json`` of the same
   shape and protocol (on CPU, tokens/s over process CPU time, which machine load does not
   change: ``ThroughputModel``). The pick maximises throughput subject to ``loss <= L_t``.
3. Local GQA search on the pick (``gqa_search``): the law has no GQA term, so groups are judged on
   measured losses of trained variants, or listed as the runs to train next.
4. The loss-optimal pick (``loss_optimal``; the paper's Panda models are such picks), the
   fastest shape meeting L_t (``fastest_meeting_target``) and the Pareto front of (loss,
   throughput).

Validity domain: a law predicts only inside the x and r ranges it was fitted on
(``FitResult.domain``), and never past the paper's 0.5 <= r <= 5 (Sec. 4). By default only
candidates inside are scored; with ``extrapolate=True`` every candidate is scored and those outside
carry ``Scored.outside`` (which bound they pass), shown in the table, the JSON and the plots. A
law without architecture terms, or one predicting a non-positive loss inside its domain, is
refused; with ``extrapolate=True`` outside candidates with a non-positive prediction are dropped
(and counted in the notes).

L_t (Eq. 4) is a measured loss: a number, or a trained record of the reference shape. Only when
no record exists is the law's prediction for the reference shape used, labelled as such.

Uncertainty: with ``constraint_quantile = 0.5`` (default) the constraint and the ranking use the
point prediction. Another quantile q uses the q-quantile over bootstrap fits of the paired
difference ``L(candidate) - L_t`` for the constraint (a reference-shape target is predicted by
the same bootstrap fit) and the q-quantile of the candidate's loss for the ranking and the front.
``P(loss <= L_t)`` over bootstrap fits is reported either way when the fit has samples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from archsearch.arch import ArchSpec, gqa_variants
from archsearch.law import FitResult, LawData, LOpt, get_form, make_l_opt
from archsearch.search.domain import domain_notes, keep_positive, outside_domain, search_domain
from archsearch.search.measures import DecodeSetting, SpecKey, Speed, ThroughputModel
from archsearch.search.pareto import pareto_front
from archsearch.search.space import Candidate, SearchSpace, candidate_for, spec_key
from archsearch.search.target import Target


def law_at_budget(
    law: FitResult, n_params: int, train_tokens: int, l_opt: float | None = None
) -> tuple[FitResult, str]:
    """The law with an L_opt that can predict at the budget (Algorithm 1, step 1).

    Args:
        l_opt: a known L_opt(N, D) in nats/token; None keeps the law's own L_opt where it covers
            the budget, else fits Chinchilla on the law's data.

    Returns:
        The law to predict with, and a note saying which L_opt it uses.

    Raises:
        ValueError: when no L_opt can be had (no data stored in the fit): pass ``l_opt``.
    """
    if l_opt is not None:
        return replace(law, l_opt=LOpt("constant", value=float(l_opt))), f"constant {l_opt:.4f}"
    probe = {"x": 0.1, "r": 1.0, "d_model": 0.1 * n_params**0.5, "n_layers": 16}
    try:
        law.predict(n_params, train_tokens, **probe)
    except KeyError:
        if not law.data:
            raise ValueError(
                "the fit's best-observed L_opt has no entry at this budget and the fit stores no "
                "data to fit Chinchilla on: pass l_opt=<L_opt(N, D) in nats/token>"
            ) from None
        fitter = law.fitter if law.fitter in ("lm", "huber") else None
        model = make_l_opt(LawData.from_columns(**law.data), "chinchilla", fitter)
        return replace(law, l_opt=model), "Chinchilla fitted on the law's data (step 1)"
    kind = law.l_opt.kind if law.l_opt else "none"
    return law, f"the fit's own ({kind})"


@dataclass
class Scored:
    """A candidate with its predicted loss (nats/token) and throughput.

    Attributes:
        loss: point prediction; ``loss_low``/``loss_high``: bootstrap interval (NaN without one).
        rank_loss: the loss used to rank (point, or the constraint quantile of the samples).
        p_meets: fraction of bootstrap fits with ``loss <= L_t`` (None: no samples or target).
        meets: whether the constraint holds (None: no target).
        outside: the validity-domain bounds the shape passes (empty: inside, a prediction).
    """

    candidate: Candidate
    loss: float
    loss_low: float
    loss_high: float
    rank_loss: float
    p_meets: float | None
    meets: bool | None
    speed: Speed
    outside: list[str] = field(default_factory=list)

    @property
    def in_domain(self) -> bool:
        return not self.outside

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("loss_low", "loss_high"):
            out[key] = None if np.isnan(out[key]) else out[key]  # plain JSON has no NaN
        out["in_domain"] = self.in_domain
        return out


@dataclass
class GQAStep:
    """One group of the local GQA search; ``status`` is baseline, accepted, rejected, to_train,
    awaiting_baseline or not_reached."""

    candidate: Candidate
    speed: Speed
    measured_loss: float | None
    status: str


@dataclass
class GQASearch:
    """Result of Algorithm 1 step 3: the chosen group's shape and the runs that would decide."""

    baseline_loss: float | None
    steps: list[GQAStep]
    chosen: Candidate
    to_train: list[Candidate]


@dataclass
class SearchResult:
    """Everything Algorithm 1 found at one budget (see the module docstring); ``law`` is the law
    as evaluated, with the L_opt named by ``l_opt_note``; ``domain`` the x and r ranges scored
    as predictions (``search_domain``); ``extrapolate`` whether shapes outside were scored;
    ``throughput_measure`` what ranked the measured shapes (``ThroughputModel.measure``:
    ``"cpu_time_median"``, ``"wall_median"``, or None when no shape was measured)."""

    scored: list[Scored]
    fastest_meeting_target: Scored | None
    loss_optimal: Scored
    front: list[Scored]
    target: Target | None
    gqa: GQASearch
    n_params: int
    train_tokens: int
    setting: DecodeSetting
    constraint_quantile: float
    level: float
    l_opt_note: str
    n_grid_points: int
    n_infeasible: int
    law: FitResult
    domain: dict[str, list[float]] = field(default_factory=dict)
    extrapolate: bool = False
    throughput_measure: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (every scored candidate included)."""
        gqa = self.gqa
        fastest = self.fastest_meeting_target
        return {
            "n_params": self.n_params,
            "train_tokens": self.train_tokens,
            "setting": {**asdict(self.setting), "profile": self.setting.profile.to_dict()},
            "throughput_measure": self.throughput_measure,
            "constraint_quantile": self.constraint_quantile,
            "level": self.level,
            "l_opt": self.l_opt_note,
            "n_grid_points": self.n_grid_points,
            "n_infeasible": self.n_infeasible,
            "domain": self.domain,
            "extrapolate": self.extrapolate,
            "law_warnings": self.law.warnings,
            "target": None if self.target is None else self.target.to_dict(),
            "fastest_meeting_target": None if fastest is None else _pick(fastest),
            "loss_optimal": _pick(self.loss_optimal),
            "front": [s.candidate.name for s in self.front],
            "gqa": {
                "baseline_loss": gqa.baseline_loss,
                "chosen": gqa.chosen.name,
                "to_train": [c.name for c in gqa.to_train],
                "steps": [
                    {
                        "name": s.candidate.name,
                        "gqa_group": s.candidate.gqa_group,
                        "tokens_per_s": s.speed.tokens_per_s,
                        "measured_loss": s.measured_loss,
                        "status": s.status,
                    }
                    for s in gqa.steps
                ],
            },
            "notes": self.notes,
            "scored": [s.to_dict() for s in self.scored],
        }


def _pick(s: Scored) -> dict[str, Any]:
    return {
        "name": s.candidate.name,
        "loss": s.loss,
        "tokens_per_s": s.speed.tokens_per_s,
        "in_domain": s.in_domain,
        "outside": s.outside,
    }


def predict_candidates(
    law: FitResult, n_params: int, train_tokens: int, candidates: Sequence[Candidate]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Point predictions ``(n,)`` and bootstrap predictions ``(B, n)`` (None without samples) of
    the law at the budget N and D, each candidate at its own x, r, d_model and n_layers."""
    shape = {
        "x": [c.x for c in candidates],
        "r": [c.r for c in candidates],
        "d_model": [c.spec.d_model for c in candidates],
        "n_layers": [c.spec.n_layers for c in candidates],
    }
    point = law.predict(n_params, train_tokens, **shape)
    samples = law.predict_samples(n_params, train_tokens, **shape) if law.bootstrap else None
    return point, samples


def score(
    law: FitResult,
    n_params: int,
    train_tokens: int,
    candidates: Sequence[Candidate],
    speed: ThroughputModel,
    target: Target | None = None,
    constraint_quantile: float = 0.5,
    level: float = 0.9,
    domain: Mapping[str, Sequence[float]] | None = None,
) -> list[Scored]:
    """Predicted loss, interval, constraint and throughput of every candidate (step 2), each
    marked with the bounds of ``domain`` it passes."""
    point, samples = predict_candidates(law, n_params, train_tokens, candidates)
    use_quantile = constraint_quantile != 0.5
    if use_quantile and samples is None:
        raise ValueError("constraint_quantile != 0.5 needs a fit with bootstrap samples")
    nan = np.full(len(candidates), np.nan)
    low, high = nan, nan
    if samples is not None:
        low, high = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2], axis=0)
    rank = np.quantile(samples, constraint_quantile, axis=0) if use_quantile else point
    diff = None
    if target is not None and samples is not None:
        t = target.samples[:, None] if target.samples is not None else target.loss
        diff = samples - t
    out = []
    for i, cand in enumerate(candidates):
        meets = None
        if target is not None:
            gap = np.quantile(diff[:, i], constraint_quantile) if use_quantile else None
            meets = bool(gap <= 0) if gap is not None else bool(point[i] <= target.loss)
        p_meets = float(np.mean(diff[:, i] <= 0)) if diff is not None else None
        out.append(
            Scored(
                cand,
                float(point[i]),
                float(low[i]),
                float(high[i]),
                float(rank[i]),
                p_meets,
                meets,
                speed(cand.spec),
                outside_domain(domain or {}, cand),
            )
        )
    return out


def make_target(
    law: FitResult,
    n_params: int,
    train_tokens: int,
    target: Target | ArchSpec | float,
    name: str = "",
) -> Target:
    """L_t as a Target: as given (a Target or a number), or, the labelled fallback, the law's
    prediction for a reference shape with no trained record."""
    if isinstance(target, Target):
        return target
    if not isinstance(target, ArchSpec):
        return Target(name or f"L_t={float(target):.4f}", float(target))
    point, samples = predict_candidates(
        law, n_params, train_tokens, [candidate_for(target, n_params)]
    )
    if not point[0] > 0:
        raise ValueError(
            f"the law predicts a non-positive loss {point[0]:.4g} for the target {target.name}: "
            "it cannot stand in for a measured L_t (give target=<measured loss or record.json>)"
        )
    return Target(
        name or target.name,
        float(point[0]),
        source="predicted",
        detail=f"no trained record of {target.name} at D = {train_tokens:,}",
        spec=target,
        samples=None if samples is None else samples[:, 0],
    )


def gqa_search(
    spec: ArchSpec,
    n_params: int,
    speed: ThroughputModel,
    measured_loss: Mapping[SpecKey, float],
) -> GQASearch:
    """Local search over the feasible GQA groups of ``spec`` (Algorithm 1, step 3).

    The groups faster than ``spec``'s own (the baseline, the group the law was fitted at) are
    walked in order of rising throughput. A group is accepted while its measured loss is no worse
    than the baseline's measured loss; the walk stops early at the first group that is worse
    (larger groups are taken to be no better) or not yet trained (it is the next run to train).
    With no measurement of the baseline, the baseline and the first faster group are to train.

    Args:
        spec: the shape picked in step 2.
        n_params: budget N.
        speed: the throughput model.
        measured_loss: ``spec_key -> final loss`` of trained runs at this budget.

    Returns:
        The fastest accepted shape (``spec`` itself if none), the steps, and the runs to train.
    """
    variants = [candidate_for(v, n_params) for v in gqa_variants(spec)]
    speeds = {c.name: speed(c.spec) for c in variants}
    base = next(c for c in variants if spec_key(c.spec) == spec_key(spec))
    baseline_loss = measured_loss.get(spec_key(base.spec))
    faster = sorted(
        (c for c in variants if speeds[c.name].tokens_per_s > speeds[base.name].tokens_per_s),
        key=lambda c: speeds[c.name].tokens_per_s,
    )
    to_train = [] if baseline_loss is not None else [base]
    steps = [
        GQAStep(
            base, speeds[base.name], baseline_loss, "baseline" if to_train == [] else "to_train"
        )
    ]
    chosen, stopped = base, False
    for cand in faster:
        loss = measured_loss.get(spec_key(cand.spec))
        if stopped:
            status = "not_reached"
        elif loss is None:
            status, stopped = "to_train", True
            to_train.append(cand)
        elif baseline_loss is None:
            status, stopped = "awaiting_baseline", True
        elif loss <= baseline_loss:
            status, chosen = "accepted", cand
        else:
            status, stopped = "rejected", True
        steps.append(GQAStep(cand, speeds[cand.name], loss, status))
    return GQASearch(baseline_loss, steps, chosen, to_train)


def search(
    law: FitResult,
    space: SearchSpace,
    n_params: int,
    train_tokens: int,
    speed: ThroughputModel,
    target: Target | ArchSpec | float | None = None,
    target_name: str = "",
    constraint_quantile: float = 0.5,
    level: float = 0.9,
    l_opt: float | None = None,
    measured_loss: Mapping[SpecKey, float] | None = None,
    extrapolate: bool = False,
) -> SearchResult:
    """Algorithm 1 of arXiv 2510.18245 over ``space`` at budget (N, D).

    Args:
        law: a fitted conditional law (``archsearch.law.read_fit``) with architecture terms.
        space: candidates from ``enumerate_space`` at the same N.
        n_params: budget N; the law is evaluated at N, each candidate at its own x and r.
        train_tokens: budget D.
        speed: the inference-efficiency measure.
        target: L_t (Eq. 4): a Target (e.g. a measured loss), nats/token, or a reference shape
            whose loss the law predicts (the labelled fallback); None: no constraint
            (``fastest_meeting_target`` is None; the GQA search starts from the loss optimum).
        constraint_quantile: see the module docstring (0.5: point estimate).
        level: central probability of the reported bootstrap interval.
        l_opt: known L_opt(N, D) in nats/token (see ``law_at_budget``).
        measured_loss: ``spec_key -> loss`` of trained runs, for the GQA search.
        extrapolate: score candidates outside the law's domain too (marked); default: skip them.

    Returns:
        The SearchResult.

    Raises:
        ValueError: when the space (inside the domain) is empty, the law has no architecture
            terms, or it predicts a non-positive loss inside its domain.
    """
    if not get_form(law.form).architecture_columns:
        raise ValueError(
            f"the {law.form} law has no architecture terms: every shape at the budget gets the "
            "same loss, so the search would only pick the fastest; fit a conditional law "
            "(law=multiplicative, additive, joint or aspect_ratio)"
        )
    law, note = law_at_budget(law, n_params, train_tokens, l_opt)
    domain = search_domain(law)
    candidates = [c for c in space.candidates if extrapolate or not outside_domain(domain, c)]
    if not candidates:
        raise ValueError(
            f"the search space is empty inside the law's domain {domain} "
            f"({len(space.candidates)} shapes outside): widen the x/r grids or the N tolerance, "
            "or score outside the domain with extrapolate=true"
        )
    goal = None if target is None else make_target(law, n_params, train_tokens, target, target_name)
    settings = (goal, constraint_quantile, level, domain)
    scored, notes = keep_positive(score(law, n_params, train_tokens, candidates, speed, *settings))
    notes += domain_notes(law, domain, space, candidates, n_params, train_tokens, extrapolate)
    notes += speed.notes
    if goal is not None and goal.spec is not None:
        reference = [candidate_for(goal.spec, n_params)]
        goal.scored = score(law, n_params, train_tokens, reference, speed, *settings)[0]
    loss_optimal = min(scored, key=lambda s: (s.rank_loss, -s.speed.tokens_per_s))
    feasible = [s for s in scored if s.meets]
    fastest = (
        max(feasible, key=lambda s: (s.speed.tokens_per_s, -s.rank_loss)) if feasible else None
    )
    if goal is not None and fastest is None:
        notes.append(f"no candidate meets L_t = {goal.loss:.4f}; the loss optimum is reported")
    reference = goal.scored if goal is not None else None
    if (
        goal
        and fastest
        and reference
        and fastest.speed.tokens_per_s <= reference.speed.tokens_per_s
    ):
        notes.append(
            f"no candidate meeting L_t decodes faster than the target {goal.name} "
            f"({reference.speed.tokens_per_s:.0f} tokens/s): the fastest one, "
            f"{fastest.candidate.name}, reaches {fastest.speed.tokens_per_s:.0f}"
        )
    front = [
        scored[i]
        for i in pareto_front([s.rank_loss for s in scored], [s.speed.tokens_per_s for s in scored])
    ]
    start = (fastest or loss_optimal).candidate.spec
    gqa = gqa_search(start, n_params, speed, measured_loss or {})
    return SearchResult(
        scored=scored,
        fastest_meeting_target=fastest,
        loss_optimal=loss_optimal,
        front=front,
        target=goal,
        gqa=gqa,
        n_params=n_params,
        train_tokens=train_tokens,
        setting=speed.setting,
        constraint_quantile=constraint_quantile,
        level=level,
        l_opt_note=note,
        n_grid_points=space.n_grid_points,
        n_infeasible=space.n_infeasible,
        law=law,
        domain=domain,
        extrapolate=extrapolate,
        throughput_measure=speed.measure,
        notes=notes,
    )
