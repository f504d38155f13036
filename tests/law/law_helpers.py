"""Shared helpers for the law tests: data locations, true parameters and synthetic tables."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from archsearch.law import FitResult, LawData, LOpt, from_csv

TEST_DATA = Path(__file__).resolve().parents[1] / "data"
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"  # beside the checkout
MORPH_CSV = TEST_DATA / "open-lm-morph" / "morph_losses.csv"
GADRE_CSV = TEST_DATA / "gadre-overtraining" / "gadre_losses.csv"

CHINCHILLA_TRUE = {"E": 1.8, "A": 400.0, "B": 2000.0, "alpha": 0.34, "beta": 0.37}
L_OPT = LOpt("chinchilla", params=CHINCHILLA_TRUE)
TRUE = {
    "chinchilla": CHINCHILLA_TRUE,
    "chinchilla_tied": {"E": 1.8, "A": 300.0, "B": 900.0, "alpha": 0.3},
    "aspect_ratio": {"E": 2.4, "A": 5.0e4, "B": 7.0e5, "alpha": 0.6, "eps": 1.2e-3},
    "multiplicative": {"a0": 1.04, "a1": 0.038, "a2": 0.003, "b1": 0.016, "b2": 0.017},
    "additive": {"a0": 0.1, "a1": 0.09, "a2": 0.008, "b1": 0.04, "b2": 0.04},
    "joint": {"c0": 1.1, "cu": 0.08, "cv": -0.01, "cuu": 0.012, "cvv": 0.01, "cuv": 0.003},
}


def shared(name: str) -> Path:
    """A shared data set directory, or skip when the checkout has no ``shared/`` beside it."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"{path} not present (shared data is not part of the repository)")
    return path


def csv_column(path: Path, name: str, where: dict[str, str] | None = None) -> np.ndarray:
    """One CSV column as strings, rows filtered like ``from_csv``'s ``where``."""
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if all(r[k] == v for k, v in (where or {}).items())]
    return np.array([r[name] for r in rows])


def morph() -> tuple[LawData, np.ndarray]:
    """open-lm-morph rows (authors' N) and the mask of the 27 rows the authors fitted on."""
    data = from_csv(MORPH_CSV, {"N": "N_total", "D": "D_tokens", "scale": "size_class"})
    return data, csv_column(MORPH_CSV, "used_in_paper_fit") == "True"


def conditional_table(n_scales: int = 3, per_scale: int = 30, seed: int = 0) -> LawData:
    """Synthetic sweep: x in [0.04, 0.25], r in [0.4, 6] at N = 1e7..1e9, D = 20 N."""
    rng = np.random.default_rng(seed)
    n = np.repeat(np.geomspace(1e7, 1e9, n_scales), per_scale)
    return LawData.from_columns(
        N=n,
        D=20 * n,
        loss=np.ones_like(n),
        x=np.exp(rng.uniform(np.log(0.04), np.log(0.25), n.size)),
        r=np.exp(rng.uniform(np.log(0.4), np.log(6.0), n.size)),
        d_model=rng.choice([256.0, 512.0, 1024.0], n.size),
        n_layers=rng.choice([4.0, 8.0, 16.0], n.size),
        scale=np.repeat([f"s{i}" for i in range(n_scales)], per_scale),
    )


def sweep(seed: int = 3) -> LawData:
    """A synthetic sweep from the multiplicative law with noise, 3 scales."""
    data = conditional_table(n_scales=3, per_scale=25, seed=seed)
    clean = FitResult.from_params("multiplicative", TRUE["multiplicative"], L_OPT).predict_data(
        data
    )
    noise = np.random.default_rng(seed).normal(0, 5e-4, len(data))
    return LawData.from_columns(**{**data.columns(), "loss": clean * np.exp(noise)})
