"""Shared fixtures: a private tokenizer/shard cache for the session, the repo root, wandb offline.

Nothing may come from a model or dataset hub: lm-eval (downstream tests, the study's downstream
stage) runs offline, its datasets cache out of the user's ~/.cache (set before ``datasets`` is
first imported, and inherited by the subprocesses tests start).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("HF_DATASETS_CACHE", tempfile.mkdtemp(prefix="archsearch-hf-datasets-"))


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep prepared corpora out of the user's ~/.cache, shared by every test of the session."""
    os.environ.setdefault("ARCHSEARCH_CACHE", str(tmp_path_factory.mktemp("archsearch-cache")))


@pytest.fixture
def wandb_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """wandb runs offline: nothing reaches the network or the user's home directory."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb-data"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
