"""Ask/tell search with JSON-serialisable state: which shapes to train next at one budget. Pure.

The sweeper plugin drives it: ``propose(state, n)`` returns the next shapes worth training,
training runs produce ``RunRecord``s, ``update(state, records)`` adds them and refits the
conditional law (Eq. 3, arXiv 2510.18245) with ``archsearch.law.fit_law``.

- Before a fit exists (fewer than ``n_initial`` observations), proposals are a Latin hypercube in
  (ln x, ln r) over the configured ranges, snapped to the nearest feasible shape.
- Afterwards, the first proposal is the predicted optimum among untrained shapes; the others
  alternate between a lower confidence bound (``loss - kappa * std`` over bootstrap fits: near the
  optimum where the law is unsure) and the largest bootstrap spread (where the law is least
  certain), keeping ``min_distance`` apart in normalised (ln x, ln r).

Everything is deterministic under ``state.seed``; ``propose`` does not change the state, so asking
twice without an update returns the same shapes.

Example:
    >>> state = SearchState(n_params=973_078_528, train_tokens=19_461_570_560, n_layers=16,
    ...                     head_dim=64, vocab_size=128256)
    >>> batch = propose(state, 4)          # train these (Proposal.overrides() for Hydra)
    >>> state = update(state, records)     # RunRecords of the finished runs
    >>> json.dumps(state.to_dict())        # round-trips through SearchState.from_dict
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from archsearch.arch import ArchSpec
from archsearch.law import FitResult, LawData, LOpt, fit_law
from archsearch.records import RunRecord
from archsearch.search.algorithm import law_at_budget, predict_candidates
from archsearch.search.config import SearchSpaceConfig
from archsearch.search.space import Candidate, model_fields, space_from_config, spec_key


@dataclass
class SearchState:
    """Everything the ask/tell loop knows; ``to_dict`` is plain JSON.

    Attributes:
        n_params, train_tokens: the budget N and D the shapes are proposed at.
        n_layers, head_dim, gqa_group, vocab_size, tie_embeddings: the fixed shape fields.
        form: law form refitted by ``update``; ``l_opt``: ``"best_observed"``, ``"chinchilla"``
            or a constant L_opt(N, D) in nats/token.
        space: the shapes proposals come from (``SearchSpaceConfig``: x and r ranges, grids).
        n_params_tolerance: accepted ``|N_achieved / N - 1|``.
        n_initial: observations before the first fit (space-filling proposals until then).
        n_bootstrap: bootstrap fits per update (their spread drives exploration).
        kappa: weight of the bootstrap std in the lower confidence bound.
        min_distance: least distance between proposals of one batch in normalised (ln x, ln r).
        observations: one dict per trained run (see ``observation``).
        fit: the last ``FitResult.to_dict()`` or None.
    """

    n_params: int
    train_tokens: int
    n_layers: int
    head_dim: int
    vocab_size: int
    gqa_group: int = 4
    tie_embeddings: bool = False
    form: str = "multiplicative"
    l_opt: str | float = "best_observed"
    space: SearchSpaceConfig = field(default_factory=lambda: SearchSpaceConfig(n_r=30))
    n_params_tolerance: float = 0.05
    n_initial: int = 8
    n_bootstrap: int = 20
    kappa: float = 1.0
    min_distance: float = 0.08
    seed: int = 0
    round: int = 0
    observations: list[dict[str, Any]] = field(default_factory=list)
    fit: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchState:
        return cls(**{**data, "space": SearchSpaceConfig(**data["space"])})

    def law(self) -> FitResult | None:
        """The last fitted law, or None before the first fit."""
        return None if self.fit is None else FitResult.from_dict(self.fit)


@dataclass
class Proposal:
    """A shape to train, why, and (after a fit) its predicted loss (nats/token) and spread."""

    name: str
    arch: dict[str, Any]
    n_params: int
    x: float
    r: float
    gqa_group: int
    reason: str
    predicted_loss: float | None = None
    predicted_std: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def overrides(self) -> list[str]:
        """Hydra overrides training this shape (``model.d_model=...``, derivation fields null)."""
        fields = model_fields(ArchSpec.from_dict(self.arch))
        return [f"model.{k}={'null' if v is None else v}" for k, v in fields.items()]


def _pool(state: SearchState) -> list[Candidate]:
    """Feasible, not yet trained shapes at the state's budget with x and r inside the ranges."""
    space = space_from_config(
        state.space,
        state.n_params,
        state.n_layers,
        state.head_dim,
        state.vocab_size,
        state.gqa_group,
        tie_embeddings=state.tie_embeddings,
        n_params_tolerance=state.n_params_tolerance,
    )
    done = {spec_key(ArchSpec.from_dict(o["arch"])) for o in state.observations}
    return [c for c in space.candidates if spec_key(c.spec) not in done]


def _coords(state: SearchState, pool: list[Candidate]) -> np.ndarray:
    """Candidates in the unit square of (ln x, ln r) over the state's ranges, ``(n, 2)``."""
    lo = np.log([state.space.x_min, state.space.r_min])
    hi = np.log([state.space.x_max, state.space.r_max])
    return (np.log([[c.x, c.r] for c in pool]) - lo) / (hi - lo)


def _proposal(cand: Candidate, reason: str, loss: float | None, std: float | None) -> Proposal:
    return Proposal(
        cand.name,
        cand.spec.to_dict(),
        cand.n_params,
        cand.x,
        cand.r,
        cand.gqa_group,
        reason,
        loss,
        std,
    )


def _initial(state: SearchState, pool: list[Candidate], n: int) -> list[Proposal]:
    """A Latin hypercube of ``n`` points, each snapped to the nearest unused candidate."""
    rng = np.random.default_rng([state.seed, state.round, len(state.observations)])
    design = np.column_stack([(rng.permutation(n) + rng.random(n)) / n for _ in range(2)])
    coords, used, out = _coords(state, pool), set(), []
    for point in design:
        order = np.argsort(np.sum((coords - point) ** 2, axis=1), kind="stable")
        pick = next((int(i) for i in order if int(i) not in used), None)
        if pick is not None:
            used.add(pick)
            out.append(_proposal(pool[pick], "initial", None, None))
    return out


def propose(state: SearchState, n: int) -> list[Proposal]:
    """The next ``n`` shapes worth training (see the module docstring). Does not change ``state``.

    Args:
        state: the loop's state.
        n: how many shapes to return (fewer when the space runs out).

    Returns:
        Proposals, exploitation first.
    """
    pool = _pool(state)
    law = state.law()
    if law is None or not pool:
        return _initial(state, pool, min(n, len(pool)))
    law, _ = law_at_budget(law, state.n_params, state.train_tokens, _constant(state.l_opt))
    point, samples = predict_candidates(law, state.n_params, state.train_tokens, pool)
    std = samples.std(axis=0) if samples is not None else np.zeros(len(pool))
    coords = _coords(state, pool)
    taken: list[int] = []
    out = []
    for k in range(min(n, len(pool))):
        if k == 0:
            value, reason = point, "optimum"
        elif k % 2 == 1:
            value, reason = -std, "uncertain"
        else:
            value, reason = point - state.kappa * std, "lower_bound"
        far = np.ones(len(pool), dtype=bool)
        for i in taken:
            far &= np.linalg.norm(coords - coords[i], axis=1) >= state.min_distance
        far[taken] = False
        if not far.any():
            break
        i = int(np.argmin(np.where(far, value, np.inf)))
        taken.append(i)
        out.append(_proposal(pool[i], reason, float(point[i]), float(std[i])))
    return out


def observation(record: RunRecord) -> dict[str, Any]:
    """The fields of a finished run the law is fitted on (plain JSON)."""
    return {
        "name": record.run_id,
        "arch": dict(record.arch),
        "N": record.n_params,
        "D": record.train_tokens,
        "x": record.d_over_sqrt_n,
        "r": record.r_mlp_attn,
        "d_model": record.arch["d_model"],
        "n_layers": record.arch["n_layers"],
        "loss": record.final_val_loss,
    }


def _constant(l_opt: str | float) -> float | None:
    return None if isinstance(l_opt, str) else float(l_opt)


def update(state: SearchState, records: Iterable[RunRecord]) -> SearchState:
    """A new state with the completed ``records`` added and the law refitted.

    Runs within ``n_params_tolerance`` of the budget N share its L_opt group (best-observed
    L_opt compares runs of one nominal budget). The law is refitted once there are at least
    ``n_initial`` observations and more than the form has parameters.

    Args:
        state: the current state (not changed).
        records: finished runs; those not ``completed`` are skipped.

    Returns:
        The next state (``round`` + 1).
    """
    obs = list(state.observations)
    known = {o["name"] for o in obs}
    obs += [observation(r) for r in records if r.status == "completed" and r.run_id not in known]
    new = dataclasses.replace(state, observations=obs, round=state.round + 1)
    if len(obs) < max(state.n_initial, 6):
        return new
    budget_label = f"{state.n_params:.2g}"
    cols = {k: np.array([o[k] for o in obs], dtype=float) for k in ("N", "D", "loss", "x", "r")}
    near = np.abs(cols["N"] / state.n_params - 1) <= state.n_params_tolerance
    data = LawData.from_columns(
        **cols,
        d_model=[o["d_model"] for o in obs],
        n_layers=[o["n_layers"] for o in obs],
        scale=[budget_label if ok else f"{n:.2g}" for ok, n in zip(near, cols["N"], strict=True)],
        run_id=[o["name"] for o in obs],
    )
    constant = _constant(state.l_opt)
    l_opt = state.l_opt if constant is None else LOpt("constant", value=constant)
    result = fit_law(
        data,
        state.form,
        l_opt=l_opt,
        r_range=(state.space.r_min, state.space.r_max),
        n_bootstrap=state.n_bootstrap,
        seed=state.seed,
        source="asktell",
    )
    new.fit = _json_safe(result.to_dict())
    return new


def _json_safe(value: Any) -> Any:
    """Plain-JSON copy of a FitResult dict (numpy scalars to Python floats)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
