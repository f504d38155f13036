"""Architecture search (Algorithm 1 of arXiv 2510.18245): which shapes are accurate and fast at a
budget. Pure: numpy, arch, law, records and the roofline; no torch, no Hydra.

Public API:

- Space: ``SearchSpaceConfig`` (x and r ranges, grids, GQA groups, multiples, tolerance: the one
  shared by the search entry, the sweeper and the study), ``space_from_config(cfg, n_params,
  n_layers, head_dim, vocab_size, gqa_group, ...) -> SearchSpace``, ``enumerate_space(n_params,
  n_layers, head_dim, vocab_size, d_models, r_values, gqa_groups, ...)``, ``d_model_grid``,
  ``r_grid``, ``Candidate``, ``candidate_for(spec, n_params)``, ``model_fields(spec)``.
- Measures: ``DecodeSetting(profile, batch_size, prompt_tokens, new_tokens, dtype)``,
  ``ThroughputModel(setting, throughput_records, measure="auto")`` (roofline or measured
  tokens/s; CPU measurements ranked by process CPU time),
  ``measured_losses(run_records, train_tokens)``.
- Algorithm 1: ``search(law, space, n_params, train_tokens, speed, target=..., extrapolate=False,
  ...) -> SearchResult`` (``fastest_meeting_target``, ``loss_optimal``, ``front``, ``gqa``,
  ``domain``), ``Target`` (L_t: given, measured or predicted), ``search_domain(law)``,
  ``gqa_search``, ``law_at_budget``, ``pareto_front(loss, tokens_per_s)``.
- Ask/tell: ``SearchState`` (``to_dict``/``from_dict``), ``propose(state, n) -> [Proposal]``,
  ``update(state, records) -> SearchState``.
- Outputs: ``archsearch.search.report`` (``format_table``, ``write_proposals``, ``plot_pareto``,
  ``plot_contour``). Entry point: ``python -m archsearch.search law=<fit.json> budget=<preset>
  target=<preset or L_t>``.
"""

from archsearch.search.algorithm import (
    GQASearch,
    Scored,
    SearchResult,
    gqa_search,
    law_at_budget,
    search,
)
from archsearch.search.asktell import Proposal, SearchState, propose, update
from archsearch.search.config import SearchSpaceConfig
from archsearch.search.domain import outside_domain, search_domain
from archsearch.search.measures import DecodeSetting, Speed, ThroughputModel, measured_losses
from archsearch.search.pareto import dominates, pareto_front
from archsearch.search.space import (
    Candidate,
    SearchSpace,
    candidate_for,
    d_model_grid,
    enumerate_space,
    model_fields,
    r_grid,
    space_from_config,
    spec_key,
)
from archsearch.search.target import Target

__all__ = [
    "Candidate",
    "DecodeSetting",
    "GQASearch",
    "Proposal",
    "Scored",
    "SearchResult",
    "SearchSpace",
    "SearchSpaceConfig",
    "SearchState",
    "Speed",
    "Target",
    "ThroughputModel",
    "candidate_for",
    "d_model_grid",
    "dominates",
    "enumerate_space",
    "gqa_search",
    "law_at_budget",
    "measured_losses",
    "model_fields",
    "outside_domain",
    "pareto_front",
    "propose",
    "r_grid",
    "search",
    "search_domain",
    "space_from_config",
    "spec_key",
    "update",
]
