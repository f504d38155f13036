"""Every YAML composes into typed objects; shapes resolve; bad configs give clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from archsearch import cli
from archsearch.arch import ArchError, non_embedding_params
from archsearch.config import BudgetConfig, ModelConfig, RunConfig, resolve_arch

TRAIN_GROUPS = ["model", "data", "budget", "optim", "train", "perf", "tracker", "backend", "fp8"]


def _compose(overrides: list[str], config_name: str = "train") -> object:
    cli.register_run_groups()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(cli.CONF_DIR), version_base="1.3"):
        overrides = cli.alias_overrides(overrides)
        return cli.to_typed(compose(config_name=config_name, overrides=overrides))


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (cli.CONF_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize("override", [f"{g}={o}" for g in TRAIN_GROUPS for o in _options(g)])
def test_every_group_option_composes(override: str) -> None:
    cfg = _compose([override])
    assert isinstance(cfg, RunConfig)
    if cfg.model.d_ff is not None:  # an explicit shape trains at its own N
        cfg = _compose([override, "budget=chinchilla_20x"])
    group, option = override.split("=")
    if group == "fp8":  # the fp8 options set backend.fp8 (package backend)
        assert cfg.backend.fp8 == {"none": None, "te": "hybrid"}.get(option, "torchao")
    else:
        assert getattr(cfg, group) is not None
    if group == "model":
        spec = resolve_arch(cfg.model, cfg.budget, vocab_size=4096).spec
        assert spec.n_layers == cfg.model.n_layers


# groups of the other entry points -> the primary config that composes them
OTHER_GROUPS = {
    "law": "fit",
    "experiment": "study",
    "hydra/launcher": "train",
    "hydra/help": "train",  # every entry point's --help appends hydra/help=archsearch
}


def test_every_yaml_is_covered(repo: Path) -> None:
    """Every YAML composes: train groups in the test above, the rest here (primary configs
    and the other entry points' groups), so a broken or unparsable file fails."""
    import archsearch.fit  # noqa: F401  (each entry point registers its schema on import)
    import archsearch.search.__main__  # noqa: F401
    import archsearch.study.__main__  # noqa: F401
    import archsearch.throughput.__main__  # noqa: F401

    group_files = {p for g in TRAIN_GROUPS for p in (cli.CONF_DIR / g).glob("*.yaml")}
    others = sorted({p for p in cli.CONF_DIR.rglob("*.yaml")} - group_files)
    assert len(others) >= 15
    for path in others:
        group = path.parent.relative_to(cli.CONF_DIR).as_posix()
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(cli.CONF_DIR), version_base="1.3"):
            if group == ".":
                composed = compose(config_name=path.stem)
            else:
                assert group in OTHER_GROUPS, f"{path} is in no composition test"
                composed = compose(
                    config_name=OTHER_GROUPS[group],
                    overrides=[f"{group}={path.stem}"],
                    return_hydra_config=True,
                )
        assert composed, path


def test_default_resolves_to_the_budget() -> None:
    cfg = _compose([])
    arch = resolve_arch(cfg.model, cfg.budget, vocab_size=4096)
    assert abs(non_embedding_params(arch.spec) / cfg.budget.n_params - 1) <= 0.05
    assert arch.train_tokens == cfg.budget.tokens_per_param * cfg.budget.n_params
    assert arch.spec.gqa_group == cfg.model.gqa_group


def test_sweep_knobs_keep_n_at_the_budget() -> None:
    n_values = []
    for overrides in (
        ["model.d_model=96"],
        ["model.d_model=192"],
        ["model.r_mlp_attn=1.0"],
        ["model.gqa_group=4"],
        ["model.hidden=160"],
    ):
        arch = resolve_arch(*_parts(_compose(overrides)))
        n_values.append(non_embedding_params(arch.spec))
    assert all(abs(n / 500_000 - 1) <= 0.05 for n in n_values)


def _parts(cfg: RunConfig) -> tuple[ModelConfig, BudgetConfig, int]:
    return cfg.model, cfg.budget, 4096


def test_llama_preset_matches_the_paper() -> None:
    cfg = _compose(["model=llama3_2_1b", "budget=llama1b_20x"])
    arch = resolve_arch(*_parts(cfg))
    assert non_embedding_params(arch.spec) == 973_078_528
    assert arch.train_tokens == 20 * 973_078_528
    assert arch.spec.vocab_size == 128256


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (["model.r_mlp_attn=40"], "lower r_mlp_attn"),
        (["model.r_mlp_attn=-1"], "r_mlp_attn must be > 0"),
        (["model=llama3_2_1b", "budget=tiny"], "set budget.n_params=null"),
        (["budget.n_params=null"], "budget.n_params is null"),
        (["model.d_ff=512"], "all of model.d_ff, model.n_heads and model.n_kv_heads"),
    ],
)
def test_bad_configs_name_the_field(overrides: list[str], needle: str) -> None:
    cfg = _compose(overrides)
    with pytest.raises(ArchError, match=needle):
        resolve_arch(*_parts(cfg))


def test_hidden_is_the_card_word_for_d_model() -> None:
    assert cli.alias_overrides(["-m", "model.hidden=1024,2048", "x=1"]) == [
        "-m",
        "model.d_model=1024,2048",
        "x=1",
    ]
    assert cli.alias_overrides(["model.hidden=96", "model.d_model=96"]) == ["model.d_model=96"]
    assert _compose(["model.hidden=96"]).model.d_model == 96
    with pytest.raises(SystemExit, match="name the same field"):
        cli.alias_overrides(["model.d_model=128", "model.hidden=256"])


def test_unknown_keys_are_rejected_at_composition() -> None:
    with pytest.raises(Exception, match="d_modle"):
        _compose(["model.d_modle=128"])
