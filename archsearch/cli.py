"""Hydra glue shared by every entry point: schema registration and typed configs.

Entry points (``python -m archsearch.train`` and friends) register their dataclass schemas, call
``run(config_name, task)``, and hand ``task`` a typed dataclass: library code never sees a
DictConfig.
Only entry points import this module (it imports Hydra).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import OmegaConfBaseException

from archsearch.config import check_known_keys
from archsearch.errors import UserError

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"

T = TypeVar("T")

# Run directory names: an override whose value has other characters than these, or is longer
# than ITEM_CHARS, is named by a hash of its value; a name longer than NAME_CHARS is cut and hashed.
# The full overrides stay in the run's .hydra/overrides.yaml and config.yaml.
_SAFE_VALUE = re.compile(r"[A-Za-z0-9._,+:@%\[\]-]*")
ITEM_CHARS = 48
NAME_CHARS = 120


class UserInputError(CompactHydraException):
    """A user-input error: Hydra prints its message alone, without a traceback
    (``HYDRA_FULL_ERROR=1`` shows the traceback and its cause)."""


# The optional extra that installs each module (``pip install 'archsearch[<extra>]'``).
EXTRA_OF_MODULE = {
    "wandb": "wandb",
    "submitit": "slurm",
    "hydra_plugins.hydra_submitit_launcher": "slurm",
    "megatron": "megatron",
    "torchao": "fp8",
    "torch": "train",
    "tokenizers": "train",
    "matplotlib": "train",
}
# The submitit launcher plugin behind hydra/launcher=submitit_* and every conf/hydra/launcher
# profile (they extend submitit_slurm), and the extra that installs it.
SUBMITIT_PLUGIN = "hydra_plugins.hydra_submitit_launcher"


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def _safe_item(override: str) -> str:
    key, _, value = override.partition("=")
    if _SAFE_VALUE.fullmatch(value) and len(override) <= ITEM_CHARS:
        return override
    return f"{key}=sha{_digest(value)}"


def run_id(task_overrides: Sequence[str], exclude_keys: Sequence[str] = ()) -> str:
    """A run directory's name: its overrides sorted by key, short and safe whatever the values
    (a value with a path or other characters, or a long one, becomes ``key=sha<hash>``), or
    ``default`` when there are none."""
    items = sorted(
        _safe_item(o)
        for o in task_overrides
        if o.partition("=")[0].lstrip("+~") not in set(exclude_keys)
    )
    name = ",".join(items)
    if len(name) > NAME_CHARS:
        name = f"{name[: NAME_CHARS - 12]},sha{_digest(name)}"
    return name or "default"


def sweep_id(task_overrides: Sequence[str], exclude_keys: Sequence[str] = ()) -> str:
    """A sweep directory's name: its swept keys (``model.d_model,model.gqa_group``), so unrelated
    sweeps never share a directory; the other overrides name each job's subdirectory."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(task_overrides))
    swept = sorted({o.key_or_group for o in parsed if o.is_sweep_override()})
    if not swept:
        return run_id(task_overrides, exclude_keys)
    return run_id(swept) if len(",".join(swept)) > NAME_CHARS else ",".join(swept)


OmegaConf.register_new_resolver("run_id", run_id, replace=True)
OmegaConf.register_new_resolver("sweep_id", sweep_id, replace=True)


class SweepDirCallback(Callback):
    """Resolve ``hydra.sweep.dir`` once, from the command line's overrides, for every job.

    Each job composes its config again from its own overrides, under which ``${sweep_id:...}``
    would name another directory; an override of the resolved value keeps them all in one.
    Registered first in ``hydra.callbacks`` of every entry point that sweeps.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = str(config.hydra.sweep.dir)
        quoted = sweep_dir.replace("\\", "\\\\").replace("'", "\\'")
        with read_write(config), open_dict(config):
            config.hydra.sweep.dir = sweep_dir
            config.hydra.overrides.hydra.append(f"hydra.sweep.dir='{quoted}'")


def register(name: str, node: type, group: str | None = None) -> None:
    """Store a dataclass schema in Hydra's ConfigStore (``base_*`` nodes that YAML files extend)."""
    ConfigStore.instance().store(group=group, name=name, node=node)


def to_typed(cfg: DictConfig) -> Any:
    """Resolve and convert a composed config into its dataclass objects; keys its schema does
    not have (``+model.foo=1``) are a ConfigError, never silently dropped."""
    schema = OmegaConf.get_type(cfg)
    if dataclasses.is_dataclass(schema):
        check_known_keys(OmegaConf.to_container(cfg), schema)  # type: ignore[arg-type]
    return OmegaConf.to_object(cfg)


def output_dir() -> Path:
    """The Hydra run (or multirun job) directory of the current job."""
    return Path(HydraConfig.get().runtime.output_dir)


def task_overrides() -> list[str]:
    """The current job's command-line overrides (a multirun job's own values)."""
    return list(HydraConfig.get().overrides.task)


# The product card's words for config fields: alias -> field.
ALIASES = {"model.hidden": "model.d_model"}


def load_preset(path: Path, schema: type[T]) -> T:
    """A ``conf/<group>`` YAML (or one like it) as its typed dataclass, outside a Hydra app."""
    values = OmegaConf.load(path)
    values.pop("defaults", None)
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), values))  # type: ignore[return-value]


def load_model_preset(path: Path) -> Any:
    """A ``conf/model`` YAML (or one like it) as a typed ``ModelConfig``, outside a Hydra app."""
    from archsearch.config import ModelConfig

    return load_preset(path, ModelConfig)


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


def missing_extra(name: str) -> str:
    """One line naming the extra that installs module ``name``."""
    top = name if name in EXTRA_OF_MODULE else name.split(".")[0]
    extra = EXTRA_OF_MODULE.get(top)
    fix = f"pip install 'archsearch[{extra}]'" if extra else f"pip install {top}"
    return f"{name} is not installed: {fix}"


def needs_submitit(argv: list[str]) -> str | None:
    """The ``hydra/launcher=`` choice in ``argv`` that needs the submitit plugin, if any."""
    profiles = {p.stem for p in CONF_DIR.glob("hydra/launcher/*.yaml")}
    for arg in argv:
        key, _, value = arg.partition("=")
        if key.lstrip("+~") == "hydra/launcher" and (
            value in profiles or value.startswith("submitit")
        ):
            return arg
    return None


def _check_plugins(argv: list[str]) -> None:
    """Exit with one line when a launcher choice needs the submitit plugin and it is missing
    (Hydra would say only ``Could not load 'hydra/launcher/submitit_slurm'``)."""
    chosen = needs_submitit(argv)
    if chosen and importlib.util.find_spec(SUBMITIT_PLUGIN) is None:
        sys.exit(f"{chosen} needs the submitit launcher plugin: {missing_extra(SUBMITIT_PLUGIN)}")


def call_task(task: Callable[[Any], T], cfg: DictConfig) -> T:
    """``task(typed cfg)``, with user-input errors and missing extras raised as one-line
    ``UserInputError`` (Hydra then prints no traceback unless ``HYDRA_FULL_ERROR=1``)."""
    extra_modules = {m.split(".")[0] for m in EXTRA_OF_MODULE}
    try:
        return task(to_typed(cfg))
    except (UserError, OmegaConfBaseException) as e:
        raise UserInputError(f"{type(e).__name__}: {e}") from e
    except ModuleNotFoundError as e:
        if e.name is None or e.name.split(".")[0] not in extra_modules:
            raise
        raise UserInputError(missing_extra(e.name)) from e


def _print_help(help_text: str) -> None:
    """On ``--help``: the entry point's own text, then Hydra's with ``conf/hydra/help``'s
    template (the composed config, without Hydra's banner and unrelated groups)."""
    if any(a in ("--help", "-h") for a in sys.argv[1:]):
        print(help_text.strip() + "\n")
        sys.argv.append("hydra/help=archsearch")


def run(config_name: str, task: Callable[[Any], T], help_text: str = "") -> T | None:
    """Compose ``conf/<config_name>.yaml`` with the command line and call ``task(typed_cfg)``.

    ``--help`` prints ``help_text`` (the entry point's own: what it does, main options,
    examples) above Hydra's listing of the config; ``--hydra-help`` is Hydra's.
    """
    sys.argv[1:] = alias_overrides(sys.argv[1:])
    if not CONF_DIR.is_dir():
        raise FileNotFoundError(
            f"config directory {CONF_DIR} not found: install archsearch from a checkout with "
            "`pip install -e .` so that conf/ sits beside the package"
        )
    _check_plugins(sys.argv[1:])
    _print_help(help_text)

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=config_name)
    def _main(cfg: DictConfig) -> T:
        return call_task(task, cfg)

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
