"""Shared fixtures: a private tokenizer/shard cache for the session, the repo root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep prepared corpora out of the user's ~/.cache, shared by every test of the session."""
    os.environ.setdefault("ARCHSEARCH_CACHE", str(tmp_path_factory.mktemp("archsearch-cache")))
