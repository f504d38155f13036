"""One quick study (``python -m archsearch.study --quick``) run twice, shared by every test file
of tests/study: the first run does everything, the second must skip every finished job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from archsearch.evaluate.harness import EVAL_FILE
from archsearch.records import RECORD_FILE, THROUGHPUT_FILE
from archsearch.study.pipeline import HEAD_TO_HEAD_FILE


def _run(output_root: Path, repo: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "archsearch.study", "--quick", f"output_root={output_root}"],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="session")
def study(tmp_path_factory: pytest.TempPathFactory, repo: Path) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("study")
    first_log = _run(root, repo)
    out = root / "cpu_quick"
    produced = sorted(
        p
        for name in (RECORD_FILE, THROUGHPUT_FILE, EVAL_FILE, HEAD_TO_HEAD_FILE)
        for p in out.rglob(name)
    )
    mtimes = {p: p.stat().st_mtime_ns for p in produced}
    second_log = _run(root, repo)
    return {
        "out": out,
        "first_log": first_log,
        "second_log": second_log,
        "mtimes": mtimes,
        "report": json.loads((out / "report" / "report.json").read_text()),
        "markdown": (out / "report" / "report.md").read_text(),
    }
