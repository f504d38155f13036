"""L_t of Eq. 4 (arXiv 2510.18245): a measured loss, or the law's labelled prediction. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from archsearch.arch import ArchSpec

if TYPE_CHECKING:
    from archsearch.search.algorithm import Scored

TARGET_SOURCES = ("given", "measured", "predicted")


@dataclass
class Target:
    """L_t of Eq. 4 (arXiv 2510.18245).

    Attributes:
        name: what the target is (a preset, a run, a number).
        loss: L_t in nats/token.
        source: ``"given"`` (a number), ``"measured"`` (a trained record) or ``"predicted"``
            (the law's prediction for ``spec``: the fallback when no record exists).
        detail: where the value comes from (the record's path, or why it is predicted).
        spec: the reference shape, if any (its throughput is the baseline of the gain column).
        samples: bootstrap predictions of a predicted target, for the paired constraint.
        scored: ``spec`` scored like a candidate.
    """

    name: str
    loss: float
    source: str = "given"
    detail: str = ""
    spec: ArchSpec | None = None
    samples: np.ndarray | None = None
    scored: Scored | None = None

    def __post_init__(self) -> None:
        if self.source not in TARGET_SOURCES:
            raise ValueError(f"target source must be one of {TARGET_SOURCES}: {self.source!r}")

    def describe(self) -> str:
        label = {
            "given": "given",
            "measured": "measured",
            "predicted": "PREDICTED by the law, a fallback",
        }[self.source]
        return f"L_t = {self.loss:.4f} ({label}{': ' + self.detail if self.detail else ''})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "loss": self.loss,
            "source": self.source,
            "detail": self.detail,
            "in_domain": None if self.scored is None else self.scored.in_domain,
        }
