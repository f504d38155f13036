"""Config schemas of the search: the search space every consumer shares (``SearchSpaceConfig``,
used by ``python -m archsearch.search``, the sweeper and the study) and the search entry's own
(``base_search``). Pure: no Hydra import.

Registered in Hydra's ConfigStore by ``archsearch.search.__main__``; values in ``conf/search.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archsearch.config import BudgetConfig


@dataclass
class SearchSpaceConfig:
    """The candidate shapes at a budget (Algorithm 1 of arXiv 2510.18245 searches (d_model, r)).

    Attributes:
        x_min, x_max: range of ``x = d_model / sqrt(N)``; d_model takes every
            ``d_model_multiple`` inside it. Achieved x must lie inside it.
        r_min, r_max, n_r: ``n_r`` geometric ``r_mlp_attn`` targets in ``[r_min, r_max]`` (the
            paper keeps 0.5 <= r <= 5: Sec. 4). Achieved r must lie inside the range itself.
        d_ff_multiple: d_ff is rounded to a multiple of it.
        gqa_groups: GQA groups enumerated (null: the model's own group; the law has no GQA term,
            so other groups are the local search's business).
        r_mlp_attn_tolerance: accepted ``|r_achieved / r_target - 1|`` when a grid point is
            rounded to whole heads (the achieved r still has to be inside ``[r_min, r_max]``).
    """

    x_min: float = 0.03
    x_max: float = 0.2
    d_model_multiple: int = 64
    d_ff_multiple: int = 64
    r_min: float = 0.5
    r_max: float = 5.0
    n_r: int = 60
    gqa_groups: list[int] | None = None
    r_mlp_attn_tolerance: float = 0.25

    def __post_init__(self) -> None:
        if not (0 < self.x_min <= self.x_max and 0 < self.r_min <= self.r_max):
            raise ValueError(
                f"search space: need 0 < x_min <= x_max and 0 < r_min <= r_max, got x "
                f"[{self.x_min}, {self.x_max}], r [{self.r_min}, {self.r_max}]"
            )


@dataclass
class SearchRunConfig:
    """``python -m archsearch.search law=<fit.json> budget=<preset> target=<L_t>``.

    Attributes:
        law_file: the fit JSON (``law=<path>.json`` on the command line is rewritten to this).
        target: L_t of Eq. 4, a measured loss: a number in nats/token, a ``record.json`` (or a
            run directory holding one), or a ``conf/model`` preset (or a path to such a YAML)
            whose trained record is found under ``records_dir``/``throughput_dir`` at the
            budget's D. A preset without a record falls back to the law's prediction for that
            shape, labelled so; null: no constraint.
        budget: N and D (``budget`` group).
        n_layers, head_dim, gqa_group, vocab_size, tie_embeddings: fixed shape fields.
        space: the candidate shapes (``SearchSpaceConfig``).
        extrapolate: score shapes outside the law's validity domain too (and past r = 5), each
            marked in the table, the JSON and the plots; default: only shapes inside it.
        batch_size, prompt_tokens, new_tokens, hardware, dtype: the throughput measure I(P);
            ``hardware`` is a profile name (``h100_sxm`` ranks with the measured H100 profile,
            ``local`` with this machine's cached calibration, others with their datasheet bound).
        throughput_dir: sweep dir with ``throughput.json`` (measured tokens/s replace the
            roofline) and ``record.json`` files (measured losses); "" none.
        records_dir: another dir of ``record.json`` files (the target's trained run, GQA
            variants); "" none.
        constraint_quantile: 0.5 uses point predictions; e.g. 0.9 asks the constraint to hold
            in 90% of bootstrap fits.
        interval_level: central probability of the printed loss interval.
        l_opt: known L_opt(N, D) in nats/token; null: the fit's own, else Chinchilla on its data.
        n_front_proposals: Pareto-front shapes written as proposals beside the picks.
        plots: draw the Pareto front and the (d_model, r) contour.
    """

    law_file: str = ""
    target: str | None = None
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    n_layers: int = 16
    head_dim: int = 64
    gqa_group: int = 4
    vocab_size: int = 128256
    tie_embeddings: bool = True
    space: SearchSpaceConfig = field(default_factory=SearchSpaceConfig)
    extrapolate: bool = False
    batch_size: int = 64
    prompt_tokens: int = 4096
    new_tokens: int = 1024
    hardware: str = "a100_40gb"
    dtype: str = "bf16"
    throughput_dir: str = ""
    records_dir: str = ""
    constraint_quantile: float = 0.5
    interval_level: float = 0.9
    l_opt: float | None = None
    n_front_proposals: int = 3
    plots: bool = True
    name: str = "search"
