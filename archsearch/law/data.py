"""LawData: the table a law is fitted on, read from run records or a CSV. Pure: numpy only.

Columns (one array per field, one row per trained model): ``N`` non-embedding parameters (or the
data set's own convention), ``D`` training tokens, ``loss`` in nats/token, ``x = d_model/sqrt(N)``,
``r = r_mlp_attn``, ``d_model``, ``n_layers``, ``scale`` (a label for the model size class, used by
progressive evaluation and best-observed L_opt) and ``l_opt`` (L_opt(N, D), filled in by
``with_l_opt``). Missing architecture columns are NaN.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from archsearch.errors import RecordError
from archsearch.records import RunRecord, scan_records

NUMERIC = ("N", "D", "loss", "x", "r", "d_model", "n_layers", "l_opt")


@dataclass(frozen=True)
class LawData:
    """A column table of fit inputs; every array has one entry per row (see module docstring)."""

    N: np.ndarray
    D: np.ndarray
    loss: np.ndarray
    x: np.ndarray
    r: np.ndarray
    d_model: np.ndarray
    n_layers: np.ndarray
    scale: np.ndarray
    l_opt: np.ndarray
    run_id: np.ndarray

    def __len__(self) -> int:
        return len(self.loss)

    @classmethod
    def from_columns(cls, **cols: object) -> LawData:
        """Build from any subset of columns; needs ``N``, ``D`` and ``loss``.

        ``x`` defaults to ``d_model/sqrt(N)``; ``scale`` to N rounded to 2 significant digits.
        """
        n = np.asarray(cols["N"], dtype=float)
        full: dict[str, np.ndarray] = {}
        for f in fields(cls):
            value = cols.get(f.name)
            if value is None:
                full[f.name] = np.full(len(n), np.nan)
            elif f.name in NUMERIC:
                full[f.name] = np.asarray(value, dtype=float)
            else:
                full[f.name] = np.asarray(value, dtype=str)
        if cols.get("x") is None:
            full["x"] = full["d_model"] / np.sqrt(n)
        if cols.get("scale") is None:
            full["scale"] = np.array([f"{v:.2g}" for v in n])
        if cols.get("run_id") is None:
            full["run_id"] = np.array([str(i) for i in range(len(n))])
        return cls(**full)

    def columns(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def select(self, mask: np.ndarray) -> LawData:
        """Rows where ``mask`` (bool or index array) holds."""
        return replace(self, **{k: v[mask] for k, v in self.columns().items()})

    def scales(self) -> list[str]:
        """Scale labels ordered by their median N (smallest first)."""
        labels = np.unique(self.scale)
        return sorted(labels, key=lambda s: float(np.median(self.N[self.scale == s])))

    def groups(self) -> np.ndarray:
        """Group keys for L_opt: rows share a group when they share scale and D (3 significant
        digits), i.e. the same nominal training budget (N, D)."""
        return np.array([f"{s}|{d:.3g}" for s, d in zip(self.scale, self.D, strict=True)])

    def filter_r(self, r_min: float, r_max: float) -> LawData:
        """Keep ``r_min <= r <= r_max`` (the paper: 0.5 <= r <= 5; Sec. 4, arXiv 2510.18245)."""
        return self.select((self.r >= r_min) & (self.r <= r_max))

    def with_l_opt(self, l_opt: np.ndarray) -> LawData:
        return replace(self, l_opt=np.asarray(l_opt, dtype=float))

    def check_losses(self, lines: Sequence[str] | None = None) -> LawData:
        """Raise unless every loss is finite and positive, naming the first bad row.

        Args:
            lines: where each row comes from (e.g. ``runs.csv:5``), to name the bad one.
        """
        bad = np.flatnonzero(~(np.isfinite(self.loss) & (self.loss > 0)))
        if len(bad):
            i = int(bad[0])
            where = lines[i] if lines is not None else f"row {i}"
            raise ValueError(
                f"losses must be finite and positive (nats/token): {where} (run_id "
                f"{str(self.run_id[i])!r}) has loss {self.loss[i]}"
                + (f"; {len(bad) - 1} more rows like it" if len(bad) > 1 else "")
            )
        return self

    def bootstrap_groups(self, unit: str = "auto") -> tuple[np.ndarray, str]:
        """Resampling units for the bootstrap: a key per row, and the unit's name.

        Rows of one run (checkpoints, or the same ``run_id`` repeated) or of one shape (seeds)
        are not independent: resampling them one by one gives intervals that are too narrow.

        Args:
            unit: ``"row"``, ``"run"`` (rows sharing ``run_id``), ``"shape"`` (rows sharing
                scale, D, x, r, d_model and n_layers) or ``"auto"`` (``"run"`` when any
                ``run_id`` repeats, else ``"shape"`` when any shape repeats, else ``"row"``).
        """
        keys = {
            "row": np.arange(len(self)).astype(str),
            "run": self.run_id.astype(str),
            "shape": np.array(
                [
                    f"{s}|{d:.4g}|{x:.4g}|{r:.4g}|{m:.6g}|{n:.4g}"
                    for s, d, x, r, m, n in zip(
                        self.scale, self.D, self.x, self.r, self.d_model, self.n_layers, strict=True
                    )
                ]
            ),
        }
        if unit == "auto":
            repeats = [u for u in ("run", "shape") if len(np.unique(keys[u])) < len(self)]
            unit = repeats[0] if repeats else "row"
        if unit not in keys:
            raise ValueError(f"bootstrap unit must be auto, row, run or shape; got {unit!r}")
        return keys[unit], unit


def best_observed(data: LawData) -> dict[str, float]:
    """The lowest loss in each (N, D) group (``LawData.groups``): the paper's practical L_opt."""
    keys = data.groups()
    return {k: float(data.loss[keys == k].min()) for k in np.unique(keys)}


def from_records(sweep_dir: str | Path, loss_field: str = "final_val_loss") -> LawData:
    """Every completed ``record.json`` under ``sweep_dir`` as a LawData table (``records_data``)."""
    records = [r for r in scan_records(sweep_dir) if r.status == "completed"]
    if not records:
        raise ValueError(f"no completed record.json under {sweep_dir}")
    return records_data(records, loss_field)


def records_data(records: Sequence[RunRecord], loss_field: str = "final_val_loss") -> LawData:
    """Training records as a LawData table.

    The scale label is the budget's nominal N (``config.budget.n_params``) when the run was sized
    from a budget, else N to 2 significant digits.
    """

    def scale(rec: RunRecord) -> str:
        budget = rec.config.get("budget") or {}
        nominal = budget.get("n_params") if isinstance(budget, dict) else None
        return f"{float(nominal or rec.n_params):.2g}"

    return LawData.from_columns(
        N=[r.n_params for r in records],
        D=[r.train_tokens for r in records],
        loss=[getattr(r, loss_field) for r in records],
        x=[r.d_over_sqrt_n for r in records],
        r=[r.r_mlp_attn for r in records],
        d_model=[r.arch.get("d_model", np.nan) for r in records],
        n_layers=[r.arch.get("n_layers", np.nan) for r in records],
        scale=[scale(r) for r in records],
        run_id=[r.run_id for r in records],
    )


def from_csv(
    path: str | Path,
    columns: Mapping[str, str] | None = None,
    where: Mapping[str, str] | None = None,
) -> LawData:
    """Read a CSV with named columns.

    Args:
        path: the CSV file.
        columns: LawData field -> CSV column name (fields not named map to a column of the same
            name, if present). ``C`` (training FLOPs) may stand in for ``D``: D = C / (6 N).
        where: keep only rows whose CSV column equals the given string (e.g. ``{"train_dataset":
            "rpj"}``).

    Returns:
        The table, rows in file order.
    """
    with open(path, newline="") as f:
        numbered = [(i + 2, row) for i, row in enumerate(csv.DictReader(f))]  # line 1: header
    for col, want in (where or {}).items():
        numbered = [(line, row) for line, row in numbered if row[col] == str(want)]
    lines, rows = [line for line, _ in numbered], [row for _, row in numbered]
    if not rows:
        raise ValueError(f"{path}: no rows left after filtering {dict(where or {})}")
    mapping = dict(columns or {})
    cols: dict[str, list[str]] = {}
    for name in (*(f.name for f in fields(LawData)), "C"):
        source = mapping.get(name, name)
        if source in rows[0]:
            cols[name] = [row[source] or "nan" for row in rows]  # empty cell: missing
    missing = [name for name in ("N", "loss") if name not in cols]
    missing += [] if "D" in cols or "C" in cols else ["D (or C)"]
    if missing:
        raise RecordError(
            f"{path}: no column for {', '.join(missing)} (columns: {', '.join(rows[0])}); map "
            "yours with columns={N: <column>, D: <column>, loss: <column>}, e.g. "
            "'columns={N: params, D: tokens}' on the command line"
        )
    if "D" not in cols:
        n = np.asarray(cols["N"], dtype=float)
        cols["D"] = np.asarray(cols["C"], dtype=float) / (6.0 * n)
    cols.pop("C", None)
    return LawData.from_columns(**cols).check_losses(lines=[f"{path}:{n}" for n in lines])
