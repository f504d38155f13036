"""Typed configuration of the end-to-end study (``python -m archsearch.study``). Pure: no torch or
Hydra.

A study trains a sweep of shapes at several budgets, measures their decode throughput, fits the
conditional law on the smaller budgets, predicts the largest, searches at the largest budget
against a LLaMA-3.2-shaped baseline and trains the picks (``archsearch.study.pipeline``). Values
live in ``conf/study.yaml`` and ``conf/experiment/*.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from archsearch.config import RunConfig
from archsearch.law.config import LawConfig
from archsearch.search.config import SearchSpaceConfig
from archsearch.throughput.config import DecodeConfig


@dataclass
class GridConfig:
    """The sweep: the same cross-shaped grid of (x, r, g) at every budget.

    The x arm varies ``x = d_model / sqrt(N)`` at ``(r_center, group)``, the r arm varies
    ``r_mlp_attn`` at ``(x_center, group)`` and the GQA arm varies the group at
    ``(x_center, r_center)``; shapes that whole heads cannot reach are skipped and listed.

    Attributes:
        scales: budgets N (non-embedding parameters), smallest first; the largest is the target.
        tokens_per_param: D = tokens_per_param x N at every budget.
        d_model_search: when whole heads cannot reach a request at its rounded d_model, try
            up to this many ``d_model_multiple`` steps either side, nearest first (the shape's
            achieved x is what the report and the law use); 0: skip the request.
    """

    scales: list[int] = field(default_factory=lambda: [100_000, 200_000, 400_000])
    tokens_per_param: float = 4.0
    d_over_sqrt_n: list[float] = field(default_factory=lambda: [0.07, 0.1, 0.14, 0.2, 0.28])
    r_mlp_attn: list[float] = field(default_factory=lambda: [0.5, 1.0, 2.0, 4.0])
    gqa_groups: list[int] = field(default_factory=lambda: [1, 4])
    x_center: float = 0.14
    r_center: float = 1.0
    group: int = 2
    d_model_search: int = 0


@dataclass
class ChecksConfig:
    """Runs outside the law's fit that test the sweep's premises, at one budget.

    The learning-rate check trains ``lr_widths`` (x values of the x arm) at each ``lr_factors``
    multiple of ``run.optim.lr``, so a U in x is not an artefact of one learning rate; the seed
    check repeats the x arm with each of ``seeds`` (paired with seed ``run.train.seed``) to
    measure run-to-run noise. Empty lists switch a check off.

    Attributes:
        scale: the budget N they run at; null: the middle of ``grid.scales``.
    """

    scale: int | None = None
    lr_widths: list[float] = field(default_factory=list)
    lr_factors: list[float] = field(default_factory=lambda: [0.5, 2.0])
    seeds: list[int] = field(default_factory=list)


@dataclass
class BaselineConfig:
    """The reference shape: a model's per-layer proportions moved to the study's depth.

    ``r`` (MLP / attention parameters) and ``g`` (query heads per KV head) are ratios within a
    layer and transfer as they are. ``x = d_model / sqrt(N)`` does not: per-layer parameters
    over ``d_model^2`` equal ``1 / (n_layers x^2)``, so keeping that proportion at the study's
    depth L gives ``x_L = x sqrt(reference_n_layers / L)`` (``d_over_sqrt_n_at``). LLaMA-3.2-1B
    has x = 0.066, r = 4.80, g = 4 at 16 layers (arXiv 2510.18245, Sec. 2; DESIGN.md section 2);
    whole heads round these at a tiny budget and the report shows every step.
    """

    name: str = "llama3_2_shaped"
    d_over_sqrt_n: float = 0.066
    reference_n_layers: int = 16
    r_mlp_attn: float = 4.8
    gqa_group: int = 4

    def d_over_sqrt_n_at(self, n_layers: int) -> float:
        """x with the reference's per-layer proportions at ``n_layers`` layers."""
        return self.d_over_sqrt_n * (self.reference_n_layers / n_layers) ** 0.5


@dataclass
class SearchSettings:
    """Algorithm 1 at the target budget (arXiv 2510.18245): the candidate grid and the measure.

    Candidates are the feasible shapes of ``space`` (``archsearch.search.space_from_config``, the
    search space the search entry and the sweeper use too) inside the law's validity domain
    (all of them, marked, with ``extrapolate``). Throughput I(P) is measured decode tokens/s at
    ``batch_size`` under the study's throughput protocol (one of its batch sizes, so search and
    final measurements line up); ``level`` is the bootstrap interval of predicted losses.
    The finals are compared with the baseline by ``head_to_head_repeats`` rounds of decode at
    ``batch_size`` taken in turns (``archsearch.study.pipeline.head_to_head_stage``).
    """

    space: SearchSpaceConfig = field(
        default_factory=lambda: SearchSpaceConfig(
            x_min=0.05, x_max=0.4, d_model_multiple=16, n_r=6, gqa_groups=[1, 2, 4]
        )
    )
    extrapolate: bool = False
    batch_size: int = 4
    level: float = 0.9
    head_to_head_repeats: int = 9


@dataclass
class DownstreamSettings:
    """Downstream accuracy of the final models (baseline and picks), the paper's second measure
    beside the loss (arXiv 2510.18245 reports up to 2.1% higher accuracy than LLaMA-3.2).

    Each final run is scored by ``archsearch.evaluate.harness.evaluate_run`` (lm-evaluation-
    harness, offline), which writes ``eval.json`` beside its ``record.json``.

    Attributes:
        enabled: evaluate the finals (needs the ``eval`` extra).
        tasks: lm-eval task names. Default: the shipped next-sentence task; the shipped
            word-order task scores 1.0 for every trained model, so it cannot tell shapes apart.
        limit: the first ``limit`` items of each task (null: all of them).
    """

    enabled: bool = True
    tasks: list[str] = field(default_factory=lambda: ["sotu_next_sentence"])
    limit: int | None = None


@dataclass
class StudyConfig:
    """Everything the study needs.

    Attributes:
        name: the study's name; results go to ``<output_root>/<name>``.
        run: the training config every job starts from (model knobs, data, optimizer, loop);
            the pipeline sets each job's shape and budget.
        grid: the sweep; ``baseline``: the reference shape; ``search``: Algorithm 1 settings.
        checks: the learning-rate and seed checks (outside the fit).
        throughput: the decode protocol measured for every trained shape.
        law: the law form and fitter (``archsearch.law.fit_law``).
        downstream: the downstream evaluation of the final models.
        workers: training jobs run at once, each in its own process with
            ``run.train.num_threads`` threads (2 x 1 fills a 2-core machine).
    """

    name: str = "cpu_full"
    output_root: str = "outputs/study"
    run: RunConfig = field(default_factory=RunConfig)
    grid: GridConfig = field(default_factory=GridConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    checks: ChecksConfig = field(default_factory=ChecksConfig)
    search: SearchSettings = field(default_factory=SearchSettings)
    throughput: DecodeConfig = field(default_factory=DecodeConfig)
    law: LawConfig = field(default_factory=LawConfig)
    workers: int = 1
    downstream: DownstreamSettings = field(default_factory=DownstreamSettings)

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers={self.workers} must be at least 1")
        if len(set(self.grid.scales)) < 2:
            raise ValueError("grid.scales needs at least two budgets: fit on one, predict another")
        if self.search.batch_size not in self.throughput.batch_sizes:
            raise ValueError(
                f"search.batch_size={self.search.batch_size} must be one of "
                f"throughput.batch_sizes={self.throughput.batch_sizes} (compared at that size)"
            )

    @property
    def out_dir(self) -> Path:
        return Path(self.output_root) / self.name

    @property
    def checks_n_params(self) -> int:
        """The budget of the learning-rate and seed checks."""
        scales = sorted(self.grid.scales)
        return self.checks.scale or scales[len(scales) // 2]

    @property
    def target_n_params(self) -> int:
        """The largest budget: predicted by the law, searched and trained at."""
        return max(self.grid.scales)
