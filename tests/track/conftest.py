"""Every tracker test runs wandb offline, away from the network and the user's home directory."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _wandb_offline(wandb_offline: None) -> None:
    """The shared ``wandb_offline`` fixture for every test here."""
