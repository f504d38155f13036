"""The study's jobs: which shapes are trained where, and running one (train, then throughput).

Imports torch (through ``archsearch.train`` and ``archsearch.throughput``). A job whose directory
already holds ``record.json`` (training) or ``throughput.json`` (decode) is not run again, so a
re-run of the study resumes where it stopped.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from archsearch.arch import ArchError, ArchSpec
from archsearch.config import BudgetConfig, ModelConfig, RunConfig, resolve_arch
from archsearch.errors import StateError
from archsearch.records import THROUGHPUT_FILE, RunRecord, ThroughputRecord
from archsearch.records.throughput import read_throughput_record
from archsearch.search import model_fields, spec_key
from archsearch.study.config import StudyConfig
from archsearch.throughput.config import ThroughputRunConfig

SWEEP_DIR = "sweep"
CHECKS_DIR = "checks"
FINAL_DIR = "final"


@dataclass(frozen=True)
class Job:
    """One model to train at one budget.

    Attributes:
        name: unique within the study (also the run directory's name and the model's name).
        n_params: the budget's N.
        run: the full training config; ``run_dir``: where its records go.
        request: the (x, r, g) the grid asked for (None: a given shape); the shape may sit at a
            neighbouring d_model when whole heads cannot reach the request (``reachable``).
    """

    name: str
    n_params: int
    run: RunConfig
    run_dir: Path
    request: tuple[float, float, int] | None = None

    def spec(self) -> ArchSpec:
        """The concrete shape (raises ArchError when whole heads cannot reach the request)."""
        return resolve_arch(self.run.model, self.run.budget, self.run.data.vocab_size).spec


def _budget(cfg: StudyConfig, n_params: int) -> BudgetConfig:
    return BudgetConfig(
        name=f"n{n_params}", n_params=n_params, tokens_per_param=cfg.grid.tokens_per_param
    )


def knob_job(
    cfg: StudyConfig,
    name: str,
    n_params: int,
    x: float,
    r: float,
    g: int,
    root: Path,
    lr: float | None = None,
    seed: int | None = None,
) -> Job:
    """A job whose shape is derived from the budget through the paper's knobs (x, r, g), with
    the study's learning rate and seed unless ``lr`` or ``seed`` replace them."""
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
    optim = replace(cfg.run.optim, lr=cfg.run.optim.lr if lr is None else lr)
    train = replace(cfg.run.train, seed=cfg.run.train.seed if seed is None else seed)
    run = replace(
        cfg.run, model=model, budget=_budget(cfg, n_params), optim=optim, train=train, name=name
    )
    return Job(name, n_params, run, root / name, (x, r, g))


def reachable(cfg: StudyConfig, job: Job) -> Job:
    """``job`` (a ``knob_job``), or, when whole heads cannot reach its (x, r, g) at the rounded
    d_model, the same request at the nearest d_model multiple that can, at most
    ``grid.d_model_search`` multiples away (attention comes in units of g + 1 heads, coarse at
    tiny budgets; the job keeps the requested x in ``request``, its shape and record the
    achieved one, which the law uses).

    Raises:
        ArchError: the request's own error when no neighbour within the search reaches it.
    """
    try:
        job.spec()
        return job
    except ArchError as e:
        error = e
    step, root_n = cfg.run.model.d_model_multiple, math.sqrt(job.n_params)
    exact = job.run.model.d_over_sqrt_n * root_n
    base = round(exact / step) * step
    near = [base + k * step for k in range(-cfg.grid.d_model_search, cfg.grid.d_model_search + 1)]
    for d_model in sorted((d for d in near if d > 0 and d != base), key=lambda d: abs(d - exact)):
        model = replace(job.run.model, d_over_sqrt_n=d_model / root_n)
        other = replace(job, run=replace(job.run, model=model))
        try:
            other.spec()
        except ArchError:
            continue
        return other
    raise error


def model_config(spec: ArchSpec, name: str) -> ModelConfig:
    """The explicit model config of a shape (``search.model_fields`` and its RoPE base)."""
    return ModelConfig(**{**model_fields(spec), "name": name}, rope_theta=spec.rope_theta)


def spec_job(cfg: StudyConfig, name: str, spec: ArchSpec, n_params: int) -> Job:
    """A job that trains a given shape (a search pick) at budget ``n_params``."""
    run = replace(cfg.run, model=model_config(spec, name), budget=_budget(cfg, n_params), name=name)
    return Job(name, n_params, run, cfg.out_dir / FINAL_DIR / name)


def sweep_jobs(cfg: StudyConfig) -> tuple[list[Job], list[str]]:
    """Every feasible sweep job, smallest budget first, and a note per skipped request.

    Requests that resolve to a shape already in the sweep at that budget are dropped too.
    """
    grid = cfg.grid
    points = x_arm(cfg)
    points += [(grid.x_center, r, grid.group) for r in grid.r_mlp_attn]
    points += [(grid.x_center, grid.r_center, g) for g in grid.gqa_groups]
    jobs: list[Job] = []
    skipped: list[str] = []
    for n_params in sorted(grid.scales):
        seen: dict[ArchSpec, str] = {}
        for x, r, g in dict.fromkeys(points):
            name = f"n{n_params}_x{x:g}_r{r:g}_g{g}"
            try:
                job = reachable(
                    cfg, knob_job(cfg, name, n_params, x, r, g, cfg.out_dir / SWEEP_DIR)
                )
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


def x_arm(cfg: StudyConfig) -> list[tuple[float, float, int]]:
    """The x arm's (x, r, g) requests, narrowest first."""
    grid = cfg.grid
    return [(x, grid.r_center, grid.group) for x in sorted(grid.d_over_sqrt_n)]


def check_jobs(cfg: StudyConfig) -> tuple[list[Job], list[str]]:
    """The learning-rate and seed checks (``ChecksConfig``), in ``checks/``, outside the fit,
    and a note per request whole heads cannot reach."""
    checks, grid, n = cfg.checks, cfg.grid, cfg.checks_n_params
    lr = cfg.run.optim.lr
    requests: list[tuple[str, float, float, int, float | None, int | None]] = [
        (f"n{n}_x{x:g}_lr{lr * f:g}", x, grid.r_center, grid.group, lr * f, None)
        for x in checks.lr_widths
        for f in checks.lr_factors
    ]
    requests += [
        (f"n{n}_x{x:g}_r{r:g}_g{g}_seed{seed}", x, r, g, None, seed)
        for seed in checks.seeds
        for x, r, g in x_arm(cfg)
    ]
    jobs, skipped = [], []
    for name, x, r, g, job_lr, seed in requests:
        try:
            job = knob_job(cfg, name, n, x, r, g, cfg.out_dir / CHECKS_DIR, job_lr, seed)
            jobs.append(reachable(cfg, job))
        except ArchError as e:
            skipped.append(f"{name}: {e}")
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


def measure(
    cfg: StudyConfig, spec: ArchSpec, out_dir: Path, batch_sizes: list[int] | None = None
) -> ThroughputRecord:
    """Decode throughput of ``spec`` under the study's protocol (``batch_sizes`` replacing its
    batch sizes), written to ``out_dir/throughput.json``; a finished measurement is read back.

    Raises:
        StateError: when ``out_dir`` holds a measurement of another shape or taken under another
            protocol (the study's settings changed under the same name).
    """
    protocol = cfg.throughput
    if batch_sizes is not None:
        protocol = replace(protocol, batch_sizes=batch_sizes)
    if (out_dir / THROUGHPUT_FILE).exists():
        record = read_throughput_record(out_dir)
        measured = spec_key(ArchSpec.from_dict(record.arch))
        if record.config.get("throughput") != asdict(protocol) or measured != spec_key(spec):
            raise StateError(
                f"{out_dir} holds a throughput measurement of another shape or protocol: "
                "the study's config changed; give it a new name= (or delete that file) to "
                "measure again"
            )
        return record
    from archsearch.throughput.runner import run_throughput

    tcfg = ThroughputRunConfig(
        model=model_config(spec, spec.name),
        budget=BudgetConfig(name="own", n_params=None),
        throughput=protocol,
        run_dir=str(out_dir),
        vocab_size=spec.vocab_size,
        device=cfg.run.train.device,
        name=f"{spec.name}_throughput",
    )
    return run_throughput(tcfg, out_dir)
