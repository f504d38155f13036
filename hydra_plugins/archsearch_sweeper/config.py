"""Schema of ``hydra/sweeper=archsearch``, registered in Hydra's ConfigStore."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore


@dataclass
class ArchsearchSweeperConf:
    """Rounds of ask/tell over architectures at the task's budget.

    Each round proposes ``jobs_per_round`` shapes (``archsearch.search.propose``), launches them
    through the configured launcher as ``model.d_model / model.r_mlp_attn / model.gqa_group``
    overrides, reads each job's RunRecord, refits the law (``archsearch.search.update``) and saves
    the state into the sweep directory, so an interrupted sweep resumes where it stopped.
    """

    _target_: str = "hydra_plugins.archsearch_sweeper.archsearch_sweeper.ArchsearchSweeper"
    max_rounds: int = 3
    jobs_per_round: int = 4
    max_train_tokens: int | None = None  # stop before a round would pass this many trained tokens
    max_failures: int = 2  # failed jobs tolerated over the whole sweep
    tolerance: float = 0.02  # stop when the predicted optimum (x*, r*) moves less than this
    seed: int = 0
    search: dict[str, Any] = field(default_factory=dict)  # extra settings for the search state


ConfigStore.instance().store(
    group="hydra/sweeper", name="archsearch", node=ArchsearchSweeperConf, provider="archsearch"
)
