"""Config schema of the fit entry point (``base_fit`` and group ``law``). Pure: no Hydra import.

Registered in Hydra's ConfigStore by ``archsearch.fit``; values live in ``conf/fit.yaml`` and
``conf/law/*.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class LawConfig:
    """One law fit: form, fitter and their settings (see ``archsearch.law.fit_law``)."""

    form: str = "multiplicative"
    # "lm" (the paper's) or "huber" (Huber on log loss); null: the form's default, as fit_law
    fitter: str | None = None
    l_opt: str = "best_observed"  # or "chinchilla"
    huber_delta: float = 1e-3
    r_min: float | None = 0.5  # the paper's filter; null on either bound disables it
    r_max: float | None = 5.0
    top_k: int | None = None  # starts refined; null: the fitter's default
    n_bootstrap: int = 100
    bootstrap_unit: str = "auto"  # resample whole "run"s or "shape"s, or "row"s (fit_law)
    seed: int = 0

    @property
    def r_range(self) -> tuple[float, float] | None:
        if self.r_min is None or self.r_max is None:
            return None
        return (self.r_min, self.r_max)

    def fit_settings(self) -> dict[str, Any]:
        """The keyword arguments ``fit_law``, ``progressive`` and ``compare`` share."""
        return dict(
            fitter=self.fitter,
            l_opt=self.l_opt,
            delta=self.huber_delta,
            r_range=self.r_range,
            top_k=self.top_k,
        )


@dataclass
class ColumnsConfig:
    """CSV column names of the LawData fields (null: a column named like the field, if any).

    ``C`` (training FLOPs) stands in for ``D`` when there is no token column: D = C / (6 N).
    """

    N: str | None = None
    D: str | None = None
    C: str | None = None
    loss: str | None = None
    x: str | None = None
    r: str | None = None
    d_model: str | None = None
    n_layers: str | None = None
    scale: str | None = None
    run_id: str | None = None

    def mapping(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass
class FitConfig:
    """``python -m archsearch.fit input=<sweep dir or csv> law=<form> ...``.

    The input is ``input``, not ``data``: ``data`` is the training data config group in conf/.
    """

    input: str = ""  # a sweep directory of record.json files, or a CSV
    columns: ColumnsConfig = field(default_factory=ColumnsConfig)
    # Row filters, CSV column -> required value; add keys with ``+where.<column>=<value>``.
    where: dict[str, str] = field(default_factory=dict)
    fit_rows: dict[str, str] = field(default_factory=dict)  # like where, for the fit only
    loss_field: str = "final_val_loss"  # RunRecord field used as loss
    law: LawConfig = field(default_factory=LawConfig)
    evaluate: bool = False  # progressive + leave-one-scale-out table
    # the held-out scale's L_opt: "training_scales", or "best_observed_peeking" (the paper's)
    held_out_l_opt: str = "training_scales"
    compare_forms: list[str] = field(default_factory=lambda: ["multiplicative", "additive"])
    plots: bool = True
