"""``python -m archsearch.throughput``: a single run beside a training record, and a multirun."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

from archsearch.records.throughput import read_throughput_record

TINY = [
    "model=debug",
    "throughput.prompt_tokens=16",
    "throughput.new_tokens=4",
    "throughput.repeats=5",
    "throughput.num_threads=1",
    "device=cpu",
]


def run_cli(repo: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(repo)}
    return subprocess.run(
        [sys.executable, "-m", "archsearch.throughput", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )


def test_writes_beside_a_training_run(repo: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "train_run"
    run_dir.mkdir()
    (run_dir / "record.json").write_text(json.dumps({"run_id": "model=debug"}))
    result = run_cli(repo, tmp_path, *TINY, "throughput.batch_sizes=[1,2]", f"run_dir={run_dir}")
    record = read_throughput_record(run_dir)
    assert record.run_id == "model=debug"
    assert record.batch_sizes == [1, 2] and record.repeats == 5
    assert record.arch["d_model"] == 64 and record.dtype == "fp32"
    assert record.roofline_profile is not None  # calibrated on this CPU
    assert all(b.roofline_fraction for b in record.batches)
    for b in record.batches:  # process CPU time beside the wall clock (CPU)
        assert b.decode_cpu_s is not None and len(b.decode_cpu_s) == 5
        assert b.prefill_cpu_s is not None and len(b.prefill_cpu_s) == 5
        cpu = b.rates("cpu_time_median")
        assert cpu is not None and all(math.isfinite(v) and v > 0 for v in cpu)
        assert b.cpu_time_tokens_per_s_min <= b.cpu_time_tokens_per_s <= b.cpu_time_tokens_per_s_max
    assert "cpu tok/s" in result.stdout
    assert "tokens/s" in result.stdout


def test_multirun_writes_table_and_plot(repo: Path, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    run_cli(
        repo,
        tmp_path,
        "-m",
        *TINY,
        "model.n_kv_heads=1,4",
        "throughput.batch_sizes=[1]",
        "throughput.profile=null",
        f"hydra.sweep.dir={sweep}",
    )
    assert len(list(sweep.rglob("throughput.json"))) == 2
    table = (sweep / "throughput_table.txt").read_text()
    assert "h4/1" in table and "h4/4" in table
    assert (sweep / "throughput.png").stat().st_size > 0
