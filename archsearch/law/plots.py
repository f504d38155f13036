"""Plots of a fit: U-curves of loss against x and r per scale, and predicted against observed.

matplotlib (Agg backend) is imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from archsearch.law.data import LawData
from archsearch.law.forms import get_form
from archsearch.law.result import FitResult
from archsearch.plotting import pyplot, save


def plot_u_curves(result: FitResult, data: LawData, path: str | Path) -> Path | None:
    """Loss against x and against r, one colour per (scale, D) group, with the fitted curve
    through the group's median of the other variable (named in the legend) and median L_opt.
    None for forms without x and r."""
    law = get_form(result.form)
    if not {"x", "r"} <= set(law.columns):
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    groups = data.groups()
    keys = sorted(np.unique(groups), key=lambda k: float(np.median(data.N[groups == k])))
    colours = plt.cm.viridis(np.linspace(0, 0.9, len(keys)))
    for colour, key in zip(colours, keys, strict=True):
        rows = data.select(groups == key)
        name = f"N~{rows.scale[0]}, D~{np.median(rows.D):.3g}"
        for ax, var, other in ((axes[0], "x", "r"), (axes[1], "r", "x")):
            vals = getattr(rows, var)
            at = float(np.median(getattr(rows, other)))
            ax.scatter(vals, rows.loss, color=colour, s=18, label=name)
            grid = np.geomspace(vals.min() / 1.2, vals.max() * 1.2, 100)
            curve = result.predict(
                np.median(rows.N),
                np.median(rows.D),
                l_opt=np.median(rows.l_opt),
                **{var: grid, other: at},
            )
            ax.plot(grid, curve, color=colour, lw=1.2, label=f"fit at {other} = {at:.3g}")
    for ax, label in zip(
        axes, ("x = d_model / sqrt(N)", "r = MLP / attention params"), strict=True
    ):
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("loss (nats/token)")
        ax.legend(fontsize=7)
    fig.suptitle(f"{result.form} law ({result.fitter})")
    return save(fig, path)


def plot_predicted_vs_observed(result: FitResult, data: LawData, path: str | Path) -> Path:
    """Scatter of predicted against observed loss with the identity line."""
    plt = pyplot()
    pred = result.predict_data(data)
    fig, ax = plt.subplots(figsize=(4.8, 4.5))
    for scale in data.scales():
        mask = data.scale == scale
        ax.scatter(data.loss[mask], pred[mask], s=16, label=str(scale))
    lo, hi = np.nanmin([data.loss, pred]), np.nanmax([data.loss, pred])
    ax.plot([lo, hi], [lo, hi], color="k", lw=0.8)
    ax.set_xlabel("observed loss (nats/token)")
    ax.set_ylabel("predicted loss (nats/token)")
    ax.set_title(f"{result.form}: MSE {np.mean((pred - data.loss) ** 2):.2e}")
    if len(data.scales()) <= 12:
        ax.legend(fontsize=7)
    return save(fig, path)
