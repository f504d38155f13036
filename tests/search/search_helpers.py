"""Shared helpers for the search tests: the paper's Task-3 law, synthetic runs and records."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from archsearch.arch import ArchSpec
from archsearch.law import FitResult
from archsearch.records import RunRecord
from archsearch.search import Proposal

ROOT = Path(__file__).resolve().parents[2]

# Task 3 of arXiv 2510.18245 (multiplicative law, as printed) and the Chinchilla L_opt of Epoch
# AI's replication (DESIGN.md section 5).
TASK3 = {"a0": 2.697, "a1": 0.0974, "a2": 0.0078, "b0": 0.387, "b1": 0.0063, "b2": 0.0065}
CHINCHILLA = {"E": 1.8172, "A": 477.8, "B": 2143.0, "alpha": 0.3473, "beta": 0.3672}
LLAMA_N = 973_078_528  # LLaMA-3.2-1B non-embedding parameters (conf/budget/llama1b_20x.yaml)
LLAMA_D = 20 * LLAMA_N
LLAMA = ArchSpec(2048, 16, 32, 8, 64, 8192, 128256, tie_embeddings=True, name="llama3_2_1b")

# A synthetic "true" law: x* = 0.0789, r* = 1.0625.
TRUE = {"a0": 1.04, "a1": 0.038, "a2": 0.003, "b1": 0.016, "b2": 0.017}


def task3_law() -> FitResult:
    return FitResult.from_params("multiplicative", TASK3, l_opt=CHINCHILLA)


def true_law(l_opt: float | dict[str, float] = 2.5) -> FitResult:
    return FitResult.from_params("multiplicative", TRUE, l_opt=l_opt)


def record_for(p: Proposal, loss: float, train_tokens: int, status: str = "completed") -> RunRecord:
    """A RunRecord of a (pretend) finished run of proposal ``p``."""
    n = p.n_params
    return RunRecord(
        run_id=p.name,
        arch=p.arch,
        n_params=n,
        total_params=n,
        embedding_params=0,
        r_mlp_attn=p.r,
        d_over_sqrt_n=p.x,
        gqa_group=p.gqa_group,
        train_tokens=train_tokens,
        train_flops=6.0 * n * train_tokens,
        steps=1,
        final_val_loss=loss,
        final_train_loss=loss,
        wall_time_s=1.0,
        tokens_per_s=1.0,
        seed=0,
        backend="torch",
        device="cpu",
        dataset="synthetic",
        status=status,
    )


def write_synthetic_csv(path: Path, seed: int = 0, noise: float = 0.002) -> Path:
    """Runs at 4 scales x 2 token budgets x a 3x3 (x, r) grid from ``true_law`` with a
    Chinchilla L_opt, plus Gaussian noise (nats)."""
    rng = np.random.default_rng(seed)
    law = true_law(CHINCHILLA)
    rows = []
    for n in (50e6, 100e6, 200e6, 400e6):
        for tpp in (10, 20):
            for x in (0.04, 0.08, 0.16):
                for r in (0.6, 1.2, 4.0):
                    loss = law.predict(n, tpp * n, x=x, r=r)[0] + rng.normal(0, noise)
                    d_model = round(x * np.sqrt(n))
                    rows.append(
                        {
                            "N": n,
                            "D": tpp * n,
                            "loss": loss,
                            "x": x,
                            "r": r,
                            "d_model": d_model,
                            "n_layers": 8,
                        }
                    )
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python <args>`` from the repository root."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
