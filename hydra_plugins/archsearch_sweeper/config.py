"""Schema of ``hydra/sweeper=archsearch``, registered in Hydra's ConfigStore."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from archsearch.search.config import SearchSpaceConfig


@dataclass
class ArchsearchSweeperConf:
    """Rounds of ask/tell over architectures at the task's budget.

    Each round proposes ``jobs_per_round`` shapes (``archsearch.search.propose``) from ``space``,
    launches them through the configured launcher as ``model.d_model / model.r_mlp_attn /
    model.gqa_group`` overrides, reads each job's RunRecord, refits the law
    (``archsearch.search.update``) and saves the state into the sweep directory, so an
    interrupted sweep resumes where it stopped.

    Attributes:
        space: the shapes proposals come from (the search space shared with the search entry
            and the study).
        form: the law refitted after each round.
        l_opt: ``"best_observed"`` or ``"chinchilla"``; ``l_opt_value``: a known constant
            L_opt(N, D) in nats/token instead.
        n_initial: observations before the first fit (space-filling proposals until then).
        n_bootstrap: bootstrap fits per refit (their spread drives exploration).
        kappa: weight of the bootstrap std in the lower confidence bound.
        min_distance: least distance between one round's proposals in normalised (ln x, ln r).
    """

    _target_: str = "hydra_plugins.archsearch_sweeper.archsearch_sweeper.ArchsearchSweeper"
    max_rounds: int = 3
    jobs_per_round: int = 4
    max_train_tokens: int | None = None  # stop before a round would pass this many trained tokens
    max_failures: int = 2  # failed jobs tolerated over the whole sweep
    tolerance: float = 0.02  # stop when the predicted optimum (x*, r*) moves less than this
    seed: int = 0
    space: SearchSpaceConfig = field(default_factory=lambda: SearchSpaceConfig(n_r=30))
    form: str = "multiplicative"
    l_opt: str = "best_observed"
    l_opt_value: float | None = None
    n_initial: int = 8
    n_bootstrap: int = 20
    kappa: float = 1.0
    min_distance: float = 0.08

    def __post_init__(self) -> None:
        # Hydra hands nested nodes over as DictConfig: make the space a typed, plain dataclass.
        if isinstance(self.space, DictConfig):
            self.space = SearchSpaceConfig(**OmegaConf.to_container(self.space, resolve=True))
        elif isinstance(self.space, Mapping):
            self.space = SearchSpaceConfig(**self.space)


ConfigStore.instance().store(
    group="hydra/sweeper", name="archsearch", node=ArchsearchSweeperConf, provider="archsearch"
)
