"""Two fits started together write two directories: neither result is lost."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from subprocess import PIPE

from law_helpers import MORPH_CSV

ROOT = Path(__file__).resolve().parents[2]


def test_fits_started_in_the_same_second_do_not_collide(tmp_path: Path) -> None:
    args = [
        sys.executable, "-m", "archsearch.fit", f"input={MORPH_CSV}", "law=aspect_ratio",
        "columns.N=N_total", "columns.D=D_tokens", "columns.scale=size_class",
        "law.n_bootstrap=0", "plots=false",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(args, cwd=tmp_path, env=env, stdout=PIPE, stderr=PIPE) for _ in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
    fits = sorted(tmp_path.glob("outputs/fits/aspect_ratio_*/*/fit.json"))
    assert len(fits) == 2, fits
