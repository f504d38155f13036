"""The archsearch sweeper's rounds: propose -> launch -> read records -> refit -> save.

Imports only Hydra, ``archsearch.arch``, ``law``, ``search``, ``records`` and ``track`` (never
training code or torch; wandb only when the sweep sets ``tracker=wandb``, then each round is
mirrored to wandb): jobs run wherever the configured launcher puts them and hand back their
``RunRecord`` as ``JobReturn.return_value``. Everything the sweep knows is saved in
``<sweep dir>/sweeper.json`` after every round, so running the same command again resumes an
interrupted sweep; the sweep directory is locked while a sweep runs and fingerprinted
(``fingerprint.json``) by the task's result fields and the search settings, so a rerun under
another budget is refused, not resumed.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from archsearch.config import BudgetConfig, run_fields
from archsearch.errors import StateError
from archsearch.law import FitResult, write_fit
from archsearch.records import RunRecord, write_json_atomic, write_text_atomic
from archsearch.records.io import read_json_in
from archsearch.records.state import check_fingerprint, locked
from archsearch.search import Proposal, SearchState, propose, update
from archsearch.track.results import mirror_sweeper_round
from hydra_plugins.archsearch_sweeper.config import ArchsearchSweeperConf

log = logging.getLogger(__name__)
STATE_FILE = "sweeper.json"
# Settings a rerun may change without changing what the sweep's results mean.
SWEEP_STOP_RULES = ("max_rounds", "max_train_tokens", "max_failures", "tolerance")
SWEEP_WAYS_OUT = (
    "give the sweep a new name= (or hydra.sweep.dir=), or delete that directory to start it again"
)


class SweepError(RuntimeError):
    """The sweep cannot go on (too many failed jobs, a bad command line)."""


@dataclass
class SweepProgress:
    """What the sweeper adds to the search state: bookkeeping across rounds."""

    search: dict[str, Any]
    job_idx: int = 0
    trained_tokens: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str | None = None


class ArchsearchSweeperImpl:
    def __init__(self, conf: ArchsearchSweeperConf) -> None:
        self.conf = conf
        self.config: DictConfig | None = None
        self.launcher: Launcher | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> list[JobReturn]:
        assert self.config is not None and self.launcher is not None
        swept = [a for a in arguments if "," in a.partition("=")[2]]
        if swept:
            raise SweepError(
                f"hydra/sweeper=archsearch proposes the shapes itself; drop the sweep {swept} "
                "(fixed overrides such as budget=... or train.seq_len=... are fine)"
            )
        sweep_dir = Path(self.config.hydra.sweep.dir)
        with locked(sweep_dir, "sweep"):
            check_fingerprint(sweep_dir, *self._fingerprint_fields(), SWEEP_WAYS_OUT)
            return self._sweep(sweep_dir, arguments)

    def _fingerprint_fields(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the task config, its fields that decide the sweep's results: the task's result fields,
        the sweeper's seed, space and law settings; not the stop rules a rerun may change)."""
        assert self.config is not None
        task = OmegaConf.masked_copy(self.config, [k for k in self.config if k != "hydra"])
        config = OmegaConf.to_container(task, resolve=True)
        search = {
            f"sweeper.{key}": value
            for key, value in asdict(self.conf).items()
            if key not in SWEEP_STOP_RULES
        }
        fields = run_fields(config)  # type: ignore[arg-type]
        fields |= search
        return config, fields  # type: ignore[return-value]

    def _sweep(self, sweep_dir: Path, arguments: list[str]) -> list[JobReturn]:
        assert self.launcher is not None
        progress = self._load(sweep_dir)
        returns: list[JobReturn] = []
        while True:
            state = SearchState.from_dict(progress.search)
            progress.stop_reason = self._stop_before(state, progress)
            if progress.stop_reason:
                break
            proposals = propose(state, self.conf.jobs_per_round)
            # each job's directory is named by its shape and budget (the override list would be
            # too long); the job's own fingerprint refuses a directory another config made
            batch = [
                [*arguments, *p.overrides(), f"hydra.sweep.subdir={p.name}_D{state.train_tokens}"]
                for p in proposals
            ]
            log.info("round %d: launching %d jobs", state.round + 1, len(batch))
            round_returns = self.launcher.launch(batch, initial_job_idx=progress.job_idx)
            returns += round_returns
            records = self._collect(round_returns, proposals, progress)
            new_state = update(state, records)
            progress.job_idx += len(batch)
            progress.trained_tokens += sum(r.train_tokens for r in records)
            progress.search = new_state.to_dict()
            law = new_state.law()
            progress.rounds.append(_round_summary(new_state, law, proposals, records))
            _write_round(sweep_dir, new_state, law, proposals, records)
            mirror_sweeper_round(self.config, sweep_dir, new_state.round, law, proposals, records)
            write_json_atomic(sweep_dir / STATE_FILE, asdict(progress))
        log.info("sweep stopped: %s", progress.stop_reason)
        log.info(_optimum_line(SearchState.from_dict(progress.search).law(), sweep_dir))
        write_json_atomic(sweep_dir / STATE_FILE, asdict(progress))
        return returns

    def _load(self, sweep_dir: Path) -> SweepProgress:
        """The saved sweep (resume) or a new one at the task's budget."""
        path = sweep_dir / STATE_FILE
        if path.exists():
            path, saved = read_json_in(path, STATE_FILE)
            try:
                progress = SweepProgress(**saved)
            except TypeError as e:
                raise StateError(f"{path} is not a sweep state ({e}): {SWEEP_WAYS_OUT}") from e
            log.info("resuming sweep after round %d", len(progress.rounds))
            return progress  # whether to stop is decided again under this command's settings
        return SweepProgress(search=self._initial_state().to_dict())

    def _initial_state(self) -> SearchState:
        assert self.config is not None
        model, budget = self.config.model, self.config.budget
        if budget.n_params is None:
            raise SweepError("hydra/sweeper=archsearch needs a budget with n_params (N) set")
        n_params = int(budget.n_params)
        budget_cfg = BudgetConfig(**OmegaConf.to_container(budget, resolve=True))
        tokens = budget_cfg.train_tokens_at(n_params)
        conf = self.conf
        return SearchState(
            n_params=n_params,
            train_tokens=int(tokens),
            n_layers=int(model.n_layers),
            head_dim=int(model.head_dim),
            vocab_size=int(model.vocab_size or self.config.data.vocab_size),
            gqa_group=int(model.gqa_group or 1),
            tie_embeddings=bool(model.tie_embeddings),
            n_params_tolerance=float(budget.n_params_tolerance),
            seed=conf.seed,
            space=conf.space,
            form=conf.form,
            l_opt=conf.l_opt if conf.l_opt_value is None else conf.l_opt_value,
            n_initial=conf.n_initial,
            n_bootstrap=conf.n_bootstrap,
            kappa=conf.kappa,
            min_distance=conf.min_distance,
        )

    def _stop_before(self, state: SearchState, progress: SweepProgress) -> str | None:
        """Why the sweep stops before another round (None: run it), from the saved rounds."""
        converged = self._converged(progress)
        if converged:
            return converged
        if len(progress.rounds) >= self.conf.max_rounds:
            return f"reached max_rounds={self.conf.max_rounds}"
        next_tokens = self.conf.jobs_per_round * state.train_tokens
        limit = self.conf.max_train_tokens
        if limit is not None and progress.trained_tokens + next_tokens > limit:
            return f"another round would pass max_train_tokens={limit:,}"
        return None

    def _collect(
        self, returns: list[JobReturn], proposals: list[Proposal], progress: SweepProgress
    ) -> list[RunRecord]:
        """The completed jobs' records; failed jobs counted against ``max_failures``."""
        records = []
        for job, proposal in zip(returns, proposals, strict=True):
            if job.status == JobStatus.COMPLETED and isinstance(job.return_value, RunRecord):
                if job.return_value.status == "completed":
                    records.append(job.return_value)
                    continue
                error = f"diverged at step {job.return_value.diverged_at_step}"  # no observation
            elif job.status == JobStatus.FAILED:
                error = job._return_value
            else:
                error = job.return_value
            progress.failures.append({"shape": proposal.name, "error": repr(error)[:2000]})
            log.error("job for %s failed: %r", proposal.name, error)
        if len(progress.failures) > self.conf.max_failures:
            report = "\n".join(f"  {f['shape']}: {f['error'][:300]}" for f in progress.failures)
            raise SweepError(
                f"{len(progress.failures)} failed jobs, more than max_failures="
                f"{self.conf.max_failures}:\n{report}"
            )
        return records

    def _converged(self, progress: SweepProgress) -> str | None:
        optima = [r["optimum"] for r in progress.rounds if r.get("optimum")]
        if len(optima) < 2:
            return None
        moved = max(abs(math.log(optima[-1][k] / optima[-2][k])) for k in ("x", "r"))
        if moved < self.conf.tolerance:
            return f"optimum moved {moved:.3%} < tolerance {self.conf.tolerance:.1%}"
        return None


def _optimum_line(law: FitResult | None, sweep_dir: Path) -> str:
    """The refitted law's optimum (x*, r*) with its bootstrap interval, for the console."""
    if law is None or not law.optimum:
        return f"no optimum yet (too few runs for a law); rounds in {sweep_dir / 'rounds'}"
    parts = []
    for name in ("x", "r"):
        low, high = law.intervals.get(f"{name}*", (float("nan"), float("nan")))
        parts.append(f"{name}* = {law.optimum[name]:.4g} [{low:.4g}, {high:.4g}]")
    return f"predicted optimum: {', '.join(parts)} (law and rounds in {sweep_dir / 'rounds'})"


def _round_summary(
    state: SearchState,
    law: FitResult | None,
    proposals: list[Proposal],
    records: list[RunRecord],
) -> dict[str, Any]:
    optimum = law.optimum if law is not None and law.optimum else None
    valid = optimum and all(optimum.get(k, 0) > 0 for k in ("x", "r"))
    return {
        "round": state.round,
        "proposed": [p.name for p in proposals],
        "completed": [r.run_id for r in records],
        "optimum": {k: float(optimum[k]) for k in ("x", "r")} if valid else None,
    }


def _write_round(
    sweep_dir: Path,
    state: SearchState,
    law: FitResult | None,
    proposals: list[Proposal],
    records: list[RunRecord],
) -> None:
    """``rounds/round_NN/``: the proposals, their losses, and the law refitted after them."""
    out = sweep_dir / "rounds" / f"round_{state.round:02d}"
    losses = {r.arch.get("name"): r.final_val_loss for r in records}
    write_json_atomic(out / "proposals.json", [p.to_dict() for p in proposals])
    lines = [
        f"# Round {state.round}",
        "",
        "| shape | x | r | g | reason | predicted | val loss |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in proposals:
        predicted = "" if p.predicted_loss is None else f"{p.predicted_loss:.4f}"
        achieved = f"{losses[p.name]:.4f}" if p.name in losses else "failed"
        lines.append(
            f"| {p.name} | {p.x:.4f} | {p.r:.3f} | {p.gqa_group} | {p.reason} | "
            f"{predicted} | {achieved} |"
        )
    if law is not None:
        write_fit(out / "fit.json", law)
        lines += ["", f"Law refitted on {len(state.observations)} runs: optimum {law.optimum}."]
    write_text_atomic(out / "report.md", "\n".join(lines) + "\n")
