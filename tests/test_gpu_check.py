"""The GPU acceptance command (benchmarks/gpu_check.py) runs all its sections at tiny shapes on CPU,
so the one GPU run it exists for does not first meet its bugs there."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a CPU machine")
def test_without_a_gpu_it_says_so_and_names_the_cpu_smoke_run() -> None:
    done = _run()
    assert done.returncode == 2
    assert "no CUDA device here" in done.stderr and "--cpu-smoke" in done.stderr


@pytest.mark.slow
def test_cpu_smoke_run_fills_every_section(tmp_path: Path) -> None:
    done = _run("--cpu-smoke", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "gpu_check.json").read_text())
    sections = summary["sections"]
    assert list(sections) == ["train", "decode", "resume", "compile"]
    failed = [row for rows in sections.values() for row in rows if row["item"] == "failed"]
    assert not failed, failed
    assert sections["train"][0]["tokens_per_s"] > 0
    decode_items = [row["item"] for row in sections["decode"]]
    assert decode_items == [
        "debug B=1", "debug B=2", "tiny B=1", "tiny B=2", "tiny / debug B=1", "tiny / debug B=2"
    ]  # fmt: skip
    (resume,) = sections["resume"]
    assert resume["resumed"] and resume["steps"] == 20
    # the torch backend on CPU is deterministic: killed and resumed equals uninterrupted
    assert resume["val_loss"] == resume["torch_val_loss"]
    assert resume["train_loss"] == resume["torch_train_loss"]
    (compiled,) = sections["compile"]
    assert compiled["abs_diff"] < 1e-5
    for section in sections:  # the printed table names every section
        assert f"\n{section} " in done.stdout
