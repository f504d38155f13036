"""The validity domain of a law in the search (arXiv 2510.18245, Sec. 4 keeps 0.5 <= r <= 5): which
shapes are predictions, which are extrapolations, and what the search says about them. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from archsearch.law import PAPER_R_RANGE, FitResult
from archsearch.search.space import Candidate, SearchSpace

if TYPE_CHECKING:
    from archsearch.search.algorithm import Scored


def search_domain(law: FitResult) -> dict[str, list[float]]:
    """The x and r ranges the search may score: the law's domain, r also within the paper's
    0.5 <= r <= 5 (Sec. 4, arXiv 2510.18245) whether or not the law records a domain."""
    domain = {k: list(v) for k, v in law.domain.items() if k == "x"}
    r_low, r_high = law.domain.get("r", PAPER_R_RANGE)
    domain["r"] = [max(r_low, PAPER_R_RANGE[0]), min(r_high, PAPER_R_RANGE[1])]
    return domain


def outside_domain(domain: Mapping[str, Sequence[float]], cand: Candidate) -> list[str]:
    """The bounds of ``domain`` that ``cand``'s achieved x and r pass, in words (empty: inside)."""
    out = []
    for name, value in (("x", cand.x), ("r", cand.r)):
        if name not in domain:
            continue
        low, high = domain[name]
        if value < low:
            out.append(f"{name} {value:.4g} < {low:.4g}")
        elif value > high:
            out.append(f"{name} {value:.4g} > {high:.4g}")
    return out


def keep_positive(scored: list[Scored]) -> tuple[list[Scored], list[str]]:
    """Refuse a non-positive predicted loss inside the domain; drop those outside (a note)."""
    bad = [s for s in scored if not s.loss > 0]
    inside = [s for s in bad if s.in_domain]
    if inside:
        s = inside[0]
        raise ValueError(
            f"the law predicts a non-positive loss {s.loss:.4g} inside its domain at "
            f"{s.candidate.name} (x {s.candidate.x:.4g}, r {s.candidate.r:.4g}; {len(inside)} "
            "shapes in all): it is not a usable law there (see the fit's warnings)"
        )
    kept = [s for s in scored if s.loss > 0]
    notes = []
    if bad:
        lowest = min(s.loss for s in bad)
        notes.append(
            f"{len(bad)} shapes outside the domain dropped: the law predicts a non-positive loss "
            f"there (as low as {lowest:.4g})"
        )
    if not kept:
        raise ValueError("the law predicts a non-positive loss for every candidate")
    return kept, notes


def domain_notes(
    law: FitResult,
    domain: Mapping[str, Sequence[float]],
    space: SearchSpace,
    candidates: Sequence[Candidate],
    n_params: int,
    train_tokens: int,
    extrapolate: bool,
) -> list[str]:
    """What the search says about the validity domain: skipped shapes, budget outside it."""
    bounds = ", ".join(f"{k} [{lo:.4g}, {hi:.4g}]" for k, (lo, hi) in domain.items())
    notes = []
    if not law.domain:
        notes.append("the law records no validity domain: only r in [0.5, 5] is enforced")
    skipped = len(space.candidates) - len(candidates)
    if skipped:
        notes.append(
            f"{skipped} shapes outside the law's domain ({bounds}) not scored "
            "(extrapolate=true scores and marks them)"
        )
    if extrapolate:
        notes.append(f"extrapolating: shapes outside {bounds} are scored and marked '*'")
    for name, value in (("N", n_params), ("D", train_tokens)):
        if name in law.domain and not law.domain[name][0] <= value <= law.domain[name][1]:
            low, high = law.domain[name]
            notes.append(
                f"the budget's {name} = {value:.4g} lies outside the fitted {name} range "
                f"[{low:.4g}, {high:.4g}]: the law extrapolates in scale (Algorithm 1 does)"
            )
    return notes
