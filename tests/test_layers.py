"""The pure layers import no torch, Hydra, wandb, submitit, megatron or (until a plot is drawn)
matplotlib (DESIGN.md section 3)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "hydra", "omegaconf", "wandb", "submitit", "megatron", "matplotlib")
PURE = (
    "archsearch.arch",
    "archsearch.records",
    "archsearch.config",
    "archsearch.law",
    "archsearch.law.config",
    "archsearch.law.plots",
    "archsearch.plotting",
    "archsearch.search",
    "archsearch.search.config",
    "archsearch.search.report",
    "archsearch.throughput.hardware",
    "archsearch.throughput.roofline",
    "archsearch.study.config",
)


@pytest.mark.parametrize("module", PURE)
def test_pure_layer_imports_nothing_heavy(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        f"heavy = [m for m in sys.modules if m.split('.')[0] in {HEAVY!r}]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_sweeper_plugin_imports_no_training_code() -> None:
    """The sweeper drives arch/law/search/records only; jobs import training where they run."""
    code = (
        "import sys, hydra_plugins.archsearch_sweeper._impl\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'wandb', 'megatron')\n"
        "       or m.startswith(('archsearch.train', 'archsearch.model', 'archsearch.data'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
