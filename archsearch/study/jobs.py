"""The study's jobs: which shapes are trained where, and running one (train, then throughput).

Imports torch (through ``archsearch.train`` and ``archsearch.throughput``). A job whose directory
already holds ``record.json`` (training) or ``throughput.json`` (decode) is not run again, so a
re-run of the study resumes where it stopped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from archsearch.arch import ArchError, ArchSpec
from archsearch.config import BudgetConfig, ModelConfig, RunConfig, resolve_arch
from archsearch.records import THROUGHPUT_FILE, RunRecord, ThroughputRecord
from archsearch.records.throughput import read_throughput_record
from archsearch.search import model_fields
from archsearch.study.config import StudyConfig
from archsearch.throughput.config import ThroughputRunConfig

SWEEP_DIR = "sweep"
FINAL_DIR = "final"


@dataclass(frozen=True)
class Job:
    """One model to train at one budget.

    Attributes:
        name: unique within the study (also the run directory's name and the model's name).
        role: ``"sweep"``, or a final role: ``"baseline"``, ``"loss_optimal"``, ``"throughput"``.
        n_params: the budget's N; ``request``: the (x, r, g) asked for (empty for given shapes).
        run: the full training config; ``run_dir``: where its records go.
    """

    name: str
    role: str
    n_params: int
    request: dict[str, float]
    run: RunConfig
    run_dir: Path

    def spec(self) -> ArchSpec:
        """The concrete shape (raises ArchError when whole heads cannot reach the request)."""
        return resolve_arch(self.run.model, self.run.budget, self.run.data.vocab_size).spec


def _budget(cfg: StudyConfig, n_params: int) -> BudgetConfig:
    return BudgetConfig(
        name=f"n{n_params}", n_params=n_params, tokens_per_param=cfg.grid.tokens_per_param
    )


def knob_job(
    cfg: StudyConfig, role: str, name: str, n_params: int, x: float, r: float, g: int, root: Path
) -> Job:
    """A job whose shape is derived from the budget through the paper's knobs (x, r, g)."""
    model = replace(
        cfg.run.model,
        name=name,
        d_model=None,
        d_over_sqrt_n=x,
        r_mlp_attn=r,
        gqa_group=g,
        d_ff=None,
        n_heads=None,
        n_kv_heads=None,
    )
    run = replace(cfg.run, model=model, budget=_budget(cfg, n_params), name=name)
    return Job(name, role, n_params, {"x": x, "r": r, "g": g}, run, root / name)


def spec_job(cfg: StudyConfig, role: str, name: str, spec: ArchSpec, n_params: int) -> Job:
    """A job that trains a given shape (a search pick) at budget ``n_params``."""
    model = ModelConfig(**{**model_fields(spec), "name": name}, rope_theta=spec.rope_theta)
    run = replace(cfg.run, model=model, budget=_budget(cfg, n_params), name=name)
    return Job(name, role, n_params, {}, run, cfg.out_dir / FINAL_DIR / name)


def sweep_jobs(cfg: StudyConfig) -> tuple[list[Job], list[str]]:
    """Every feasible sweep job, smallest budget first, and a note per skipped request.

    Requests that resolve to a shape already in the sweep at that budget are dropped too.
    """
    grid = cfg.grid
    points = [(x, grid.r_center, grid.group) for x in grid.d_over_sqrt_n]
    points += [(grid.x_center, r, grid.group) for r in grid.r_mlp_attn]
    points += [(grid.x_center, grid.r_center, g) for g in grid.gqa_groups]
    jobs: list[Job] = []
    skipped: list[str] = []
    for n_params in sorted(grid.scales):
        seen: dict[ArchSpec, str] = {}
        for x, r, g in dict.fromkeys(points):
            name = f"n{n_params}_x{x:g}_r{r:g}_g{g}"
            job = knob_job(cfg, "sweep", name, n_params, x, r, g, cfg.out_dir / SWEEP_DIR)
            try:
                spec = replace(job.spec(), name="")
            except ArchError as e:
                skipped.append(f"{name}: {e}")
                continue
            if spec in seen:
                skipped.append(f"{name}: same shape as {seen[spec]}")
                continue
            seen[spec] = name
            jobs.append(job)
    return jobs, skipped


# Config groups that decide a run's result; a finished record must match the job on these.
RESULT_GROUPS = ("model", "budget", "data", "optim")


def train_job(job: Job) -> RunRecord:
    """Train the job (or return its finished record at once).

    Raises:
        ValueError: when the run directory holds a record of a different model, budget, data
            or optimizer (the study's config changed under the same name).
    """
    from archsearch.train import train

    record = train(job.run, job.run_dir)
    wanted = asdict(job.run)
    changed = [g for g in RESULT_GROUPS if record.config.get(g) != wanted[g]]
    if changed:
        raise ValueError(
            f"{job.run_dir} holds a run with different {', '.join(changed)} settings: the study's "
            "config changed; give it a new name= (or delete that directory) to retrain"
        )
    return record


def throughput_config(cfg: StudyConfig, spec: ArchSpec, run_dir: Path) -> ThroughputRunConfig:
    """The decode benchmark of a trained shape, written beside its ``record.json``."""
    model = spec_job(cfg, "", spec.name, spec, 0).run.model
    return ThroughputRunConfig(
        model=model,
        budget=BudgetConfig(name="own", n_params=None),
        throughput=cfg.throughput,
        run_dir=str(run_dir),
        vocab_size=spec.vocab_size,
        device=cfg.run.train.device,
        name=f"{spec.name}_throughput",
    )


def measure_job(cfg: StudyConfig, job: Job, record: RunRecord) -> ThroughputRecord:
    """Measure the trained shape's decode throughput (or read the finished measurement)."""
    if (job.run_dir / THROUGHPUT_FILE).exists():
        return read_throughput_record(job.run_dir)
    from archsearch.throughput.runner import run_throughput

    spec = ArchSpec.from_dict(record.arch)
    return run_throughput(throughput_config(cfg, spec, job.run_dir), job.run_dir)
