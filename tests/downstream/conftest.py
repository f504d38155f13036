"""A tiny model trained once for the export and downstream-evaluation tests."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing may come from a hub
os.environ["HF_DATASETS_OFFLINE"] = "1"
# lm-eval's datasets cache out of the user's ~/.cache; set before `datasets` is first imported
os.environ.setdefault("HF_DATASETS_CACHE", tempfile.mkdtemp(prefix="archsearch-hf-datasets-"))


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
