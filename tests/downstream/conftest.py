"""A tiny model trained once for the export and downstream-evaluation tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def trained_tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The debug shape trained on the bundled corpus (one thread, a few seconds)."""
    pytest.importorskip("torch")
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from archsearch import cli
    from archsearch.train import train

    cli.register_run_groups()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(cli.CONF_DIR), version_base="1.3"):
        cfg = cli.to_typed(
            compose(config_name="train", overrides=["model=debug", "budget=debug", "train=debug"])
        )
    run_dir = tmp_path_factory.mktemp("tiny-run")
    train(cfg, run_dir)
    return run_dir
