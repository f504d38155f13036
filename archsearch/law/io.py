"""Fit JSON read/write (atomic). Pure.

A fit JSON holds ``{"schema_version", "fit": FitResult.to_dict(), "evaluation": [...]}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from archsearch.law.result import FitResult
from archsearch.records import write_json_atomic
from archsearch.records.io import read_json_in

FIT_FILE = "fit.json"
FIT_SCHEMA_VERSION = 1


def _plain(value: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, NaN/inf to None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def write_fit(
    path: str | Path, result: FitResult, evaluation: list[dict[str, Any]] | None = None
) -> Path:
    """Write a fit (and optional evaluation rows) to ``path``, or ``path/fit.json`` for a dir."""
    path = Path(path)
    if path.is_dir():
        path = path / FIT_FILE
    payload = {
        "schema_version": FIT_SCHEMA_VERSION,
        "fit": result.to_dict(),
        "evaluation": evaluation or [],
    }
    write_json_atomic(path, _plain(payload))
    return path


def read_fit(path: str | Path) -> FitResult:
    """Load the FitResult from a fit JSON (or a directory holding ``fit.json``)."""
    _, payload = read_json_in(path, FIT_FILE)
    fit = _restore_nan(payload["fit"])
    for key in ("optimum", "metrics"):  # NaN (e.g. no interior optimum) was written as null
        fit[key] = {k: float("nan") if v is None else v for k, v in fit[key].items()}
    return FitResult.from_dict(fit)


def _restore_nan(value: Any) -> Any:
    """JSON ``null`` inside numeric lists back to NaN (data columns with missing values)."""
    if isinstance(value, dict):
        return {k: _restore_nan(v) for k, v in value.items()}
    if isinstance(value, list) and any(isinstance(v, float | int) for v in value):
        return [float("nan") if v is None else v for v in value]
    if isinstance(value, list):
        return [_restore_nan(v) for v in value]
    return value
