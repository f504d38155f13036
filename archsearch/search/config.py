"""Config schema of ``python -m archsearch.search`` (``base_search``). Pure: no Hydra import.

Registered in Hydra's ConfigStore by ``archsearch.search.__main__``; values in ``conf/search.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archsearch.config import BudgetConfig


@dataclass
class SearchRunConfig:
    """``python -m archsearch.search law=<fit.json> budget=<preset> target=<preset or L_t>``.

    Attributes:
        law_file: the fit JSON (``law=<path>.json`` on the command line is rewritten to this).
        target: L_t: a ``conf/model`` preset name (the law's prediction for that shape at the
            same budget), a path to such a YAML, or a number in nats/token; null: no constraint.
        budget: N and D (``budget`` group).
        n_layers, head_dim, gqa_group, vocab_size, tie_embeddings: fixed shape fields.
        x_min, x_max: range of ``d_model / sqrt(N)``; d_model takes every ``d_model_multiple``.
        r_min, r_max, n_r: geometric grid of ``r_mlp_attn`` targets.
        gqa_groups: groups enumerated in the space (null: ``[gqa_group]``; the law has no GQA
            term, so other groups are the local search's business).
        r_mlp_attn_tolerance: accepted ``|r_achieved / r_target - 1|`` of a grid point.
        batch_size, prompt_tokens, new_tokens, hardware, dtype: the throughput measure I(P).
        throughput_dir: sweep dir with ``throughput.json`` (measured tokens/s replace the
            roofline) and ``record.json`` files (measured losses for the GQA search); "" none.
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
    x_min: float = 0.02
    x_max: float = 0.25
    d_model_multiple: int = 64
    d_ff_multiple: int = 64
    r_min: float = 0.5
    r_max: float = 5.0
    n_r: int = 60
    gqa_groups: list[int] | None = None
    r_mlp_attn_tolerance: float = 0.25
    batch_size: int = 64
    prompt_tokens: int = 4096
    new_tokens: int = 1024
    hardware: str = "a100_40gb"
    dtype: str = "bf16"
    throughput_dir: str = ""
    constraint_quantile: float = 0.5
    interval_level: float = 0.9
    l_opt: float | None = None
    n_front_proposals: int = 3
    plots: bool = True
    name: str = "search"
