"""The study's Pareto plot: the search's candidates and front from ``search/search.json``, with the
trained shapes at their predicted and achieved loss. matplotlib is imported lazily.

``archsearch.search.report.plot_pareto`` draws a SearchResult alone; this one also marks what
training achieved, which only the study knows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archsearch.plotting import pyplot, save


def plot_pareto(
    search: dict[str, Any], finals: list[dict[str, Any]], batch: str, path: Path
) -> Path:
    """Predicted loss against measured throughput of every candidate, the front, and the trained
    shapes at their predicted (hollow) and achieved (filled) loss."""
    plt = pyplot()

    scored = search["scored"]
    front = set(search["front"])
    fig, ax = plt.subplots(figsize=(7, 4.8))
    ax.scatter(
        [s["speed"]["tokens_per_s"] for s in scored],
        [s["rank_loss"] for s in scored],
        s=10,
        color="0.6",
        label="candidates (predicted)",
    )
    on_front = sorted(
        (s for s in scored if s["candidate"]["spec"]["name"] in front),
        key=lambda s: s["speed"]["tokens_per_s"],
    )
    ax.plot(
        [s["speed"]["tokens_per_s"] for s in on_front],
        [s["rank_loss"] for s in on_front],
        color="k",
        lw=1,
        marker="o",
        ms=3,
        label="Pareto front",
    )
    if search["target"]:
        ax.axhline(search["target"]["loss"], color="C3", ls=":", lw=1, label="L_t (baseline)")
    for i, row in enumerate(finals):
        colour = f"C{i}"
        speed = row["tokens_per_s"][batch]
        if row["predicted_loss"] is not None:
            ax.scatter(speed, row["predicted_loss"], s=70, facecolors="none", edgecolors=colour)
        ax.scatter(speed, row["loss"], s=45, color=colour, label=f"{row['role']} (achieved)")
    ax.set_xlabel(f"measured decode tokens/s at batch {batch}")
    ax.set_ylabel("loss (nats/token)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    save(fig, path)
    return path
