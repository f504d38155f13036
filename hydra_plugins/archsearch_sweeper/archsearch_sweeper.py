"""The Sweeper Hydra instantiates; a thin shell over ``_impl`` (imported when a sweep starts)."""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from hydra_plugins.archsearch_sweeper.config import ArchsearchSweeperConf


class ArchsearchSweeper(Sweeper):
    def __init__(self, **settings: Any) -> None:
        from hydra_plugins.archsearch_sweeper._impl import ArchsearchSweeperImpl

        self.impl = ArchsearchSweeperImpl(ArchsearchSweeperConf(**settings))

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.impl.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        return self.impl.sweep(arguments)
