"""Config schema of the fit entry point (``base_fit`` and group ``law``). Pure: no Hydra import.

Registered in Hydra's ConfigStore by ``archsearch.fit``; values live in ``conf/fit.yaml`` and
``conf/law/*.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LawConfig:
    """One law fit: form, fitter and their settings (see ``archsearch.law.fit_law``)."""

    form: str = "multiplicative"
    fitter: str = "lm"  # "lm" (the paper's) or "huber" (Huber on log loss)
    l_opt: str = "best_observed"  # or "chinchilla"
    huber_delta: float = 1e-3
    r_min: float | None = 0.5  # the paper's filter; null on either bound disables it
    r_max: float | None = 5.0
    top_k: int | None = None  # starts refined; null: the fitter's default
    n_bootstrap: int = 100
    seed: int = 0

    @property
    def r_range(self) -> tuple[float, float] | None:
        if self.r_min is None or self.r_max is None:
            return None
        return (self.r_min, self.r_max)


@dataclass
class FitConfig:
    """``python -m archsearch.fit data=<sweep dir or csv> law=<form> ...``."""

    data: str = ""  # a sweep directory of record.json files, or a CSV
    columns: dict[str, str] = field(default_factory=dict)  # LawData field -> CSV column
    where: dict[str, str] = field(default_factory=dict)  # CSV column -> required value
    fit_rows: dict[str, str] = field(default_factory=dict)  # like where, for the fit only
    loss_field: str = "final_val_loss"  # RunRecord field used as loss
    law: LawConfig = field(default_factory=LawConfig)
    evaluate: bool = False  # progressive + leave-one-scale-out table
    compare_forms: list[str] = field(default_factory=lambda: ["multiplicative", "additive"])
    plots: bool = True
