"""Hydra glue shared by every entry point: schema registration and typed configs.

Entry points (``python -m archsearch.train`` and friends) register their dataclass schemas, call
``run(config_name, task)``, and hand ``task`` a typed dataclass: library code never sees a
DictConfig.
Only entry points import this module (it imports Hydra).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"

T = TypeVar("T")


def _run_id(override_dirname: str) -> str:
    """The run directory's name: its overrides, or ``default`` when there are none."""
    return override_dirname or "default"


OmegaConf.register_new_resolver("run_id", _run_id, replace=True)


def register(name: str, node: type, group: str | None = None) -> None:
    """Store a dataclass schema in Hydra's ConfigStore (``base_*`` nodes that YAML files extend)."""
    ConfigStore.instance().store(group=group, name=name, node=node)


def to_typed(cfg: DictConfig) -> Any:
    """Resolve and convert a composed config into its dataclass objects."""
    return OmegaConf.to_object(cfg)


def output_dir() -> Path:
    """The Hydra run (or multirun job) directory of the current job."""
    return Path(HydraConfig.get().runtime.output_dir)


# The product card's words for config fields: alias -> field.
ALIASES = {"model.hidden": "model.d_model"}


def load_model_preset(path: Path) -> Any:
    """A ``conf/model`` YAML (or one like it) as a typed ``ModelConfig``, outside a Hydra app."""
    from archsearch.config import ModelConfig

    values = OmegaConf.load(path)
    values.pop("defaults", None)
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(ModelConfig), values))


def alias_overrides(overrides: list[str]) -> list[str]:
    """Rewrite aliased keys (``model.hidden=1024,2048`` -> ``model.d_model=1024,2048``).

    Raises:
        SystemExit: when an alias and its field are both given with different values.
    """
    seen: dict[str, str] = {}
    result = []
    for override in overrides:
        key, sep, value = override.partition("=")
        bare = key.lstrip("+~")
        field = ALIASES.get(bare, bare)
        if sep and field in ALIASES.values():
            if field in seen and seen[field] != value:
                raise SystemExit(
                    f"{override!r} disagrees with {field}={seen[field]}: "
                    f"{', '.join(a for a, f in ALIASES.items() if f == field)} and {field} "
                    "name the same field, give one"
                )
            if field in seen:
                continue
            seen[field] = value
            override = key[: len(key) - len(bare)] + field + sep + value
        result.append(override)
    return result


def run(config_name: str, task: Callable[[Any], T]) -> T | None:
    """Compose ``conf/<config_name>.yaml`` with the command line and call ``task(typed_cfg)``."""
    sys.argv[1:] = alias_overrides(sys.argv[1:])
    if not CONF_DIR.is_dir():
        raise FileNotFoundError(
            f"config directory {CONF_DIR} not found: install archsearch from a checkout with "
            "`pip install -e .` so that conf/ sits beside the package"
        )

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=config_name)
    def _main(cfg: DictConfig) -> T:
        return task(to_typed(cfg))

    return _main()


def register_run_groups() -> None:
    """Register the training config groups (``base_model``, ``base_data``, ...) and ``base_run``."""
    from archsearch import config

    groups = {
        "model": config.ModelConfig,
        "data": config.DataConfig,
        "budget": config.BudgetConfig,
        "optim": config.OptimConfig,
        "train": config.TrainConfig,
        "perf": config.PerfConfig,
        "tracker": config.TrackerConfig,
        "backend": config.BackendConfig,
    }
    for group, node in groups.items():
        register(f"base_{group}", node, group=group)
    register("base_run", config.RunConfig)
