"""``python -m archsearch.search law=<fit.json> budget=<preset> target=<preset or L_t>``.

Runs Algorithm 1 of arXiv 2510.18245 at the budget, prints the table, and writes into the Hydra run
directory: ``search.json``, ``model/<name>.yaml`` per proposal (train one with
``python -m archsearch.train --config-dir <run dir> model=<name> budget=<preset>``),
``pareto.png`` and ``contour.png``.

Main options: law=<fit.json>  budget=<preset>  target=<preset or loss>  batch_size=64
hardware=a100_40gb|a100_80gb|h100_sxm|h200  n_layers, head_dim, gqa_group (the searched family).

``law`` is also the fit entry's config group, so ``law=<file>`` (a ``.json`` path or an existing
file or directory) is rewritten to ``law_file=<file>`` before Hydra sees it.

Examples:
    python -m archsearch.search law=outputs/fits/multiplicative_lm/<time>/fit.json
    python -m archsearch.search law=fit.json target=2.55 batch_size=256 hardware=h100_sxm
"""

from __future__ import annotations

import sys
from pathlib import Path

from archsearch import cli
from archsearch.arch import ArchSpec
from archsearch.config import BudgetConfig, resolve_arch
from archsearch.law import read_fit
from archsearch.records import scan_records, scan_throughput_records, write_json_atomic
from archsearch.search import (
    DecodeSetting,
    SearchResult,
    ThroughputModel,
    d_model_grid,
    enumerate_space,
    measured_losses,
    r_grid,
    search,
)
from archsearch.search.config import SearchRunConfig
from archsearch.search.report import (
    format_table,
    picks,
    plot_contour,
    plot_pareto,
    write_proposals,
)
from archsearch.throughput.hardware import get_profile


def law_file_overrides(overrides: list[str]) -> list[str]:
    """Rewrite ``law=<fit file>`` to ``law_file=<fit file>`` (``law`` names a config group)."""
    out = []
    for override in overrides:
        key, sep, value = override.partition("=")
        if sep and key == "law" and (value.endswith(".json") or Path(value).exists()):
            override = f"law_file={value}"
        out.append(override)
    return out


def budget_tokens(budget: BudgetConfig) -> tuple[int, int]:
    """(N, D) of a budget preset."""
    if budget.n_params is None:
        raise ValueError("the search needs budget.n_params (choose a budget preset)")
    return budget.n_params, budget.train_tokens_at(budget.n_params)


def load_target(cfg: SearchRunConfig) -> ArchSpec | float | None:
    """L_t from ``cfg.target``: a number, a ``conf/model`` preset name, or a model YAML path."""
    if cfg.target is None or cfg.target == "":
        return None
    try:
        return float(cfg.target)
    except ValueError:
        pass
    path = Path(cfg.target)
    if not path.is_file():
        path = cli.CONF_DIR / "model" / f"{cfg.target}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (cli.CONF_DIR / "model").glob("*.yaml"))
        raise ValueError(f"target={cfg.target!r} is no number, file or model preset ({known})")
    return resolve_arch(cli.load_model_preset(path), cfg.budget, cfg.vocab_size).spec


def main(cfg: SearchRunConfig) -> SearchResult:
    if not cfg.law_file:
        raise ValueError("give the fitted law: law=<fit.json> (from python -m archsearch.fit)")
    n_params, train_tokens = budget_tokens(cfg.budget)
    setting = DecodeSetting(
        get_profile(cfg.hardware), cfg.batch_size, cfg.prompt_tokens, cfg.new_tokens, cfg.dtype
    )
    throughput_records, run_records = [], []
    if cfg.throughput_dir:
        throughput_records = scan_throughput_records(cfg.throughput_dir)
        run_records = scan_records(cfg.throughput_dir)
    space = enumerate_space(
        n_params,
        cfg.n_layers,
        cfg.head_dim,
        cfg.vocab_size,
        d_model_grid(n_params, cfg.x_min, cfg.x_max, cfg.d_model_multiple),
        r_grid(cfg.r_min, cfg.r_max, cfg.n_r),
        cfg.gqa_groups or [cfg.gqa_group],
        tie_embeddings=cfg.tie_embeddings,
        d_ff_multiple=cfg.d_ff_multiple,
        n_params_tolerance=cfg.budget.n_params_tolerance,
        r_mlp_attn_tolerance=cfg.r_mlp_attn_tolerance,
    )
    result = search(
        read_fit(cfg.law_file),
        space,
        n_params,
        train_tokens,
        ThroughputModel(setting, throughput_records),
        target=load_target(cfg),
        target_name=cfg.target or "",
        constraint_quantile=cfg.constraint_quantile,
        level=cfg.interval_level,
        l_opt=cfg.l_opt,
        measured_loss=measured_losses(run_records, train_tokens),
    )
    print(format_table(result))
    out = cli.output_dir()
    write_json_atomic(out / "search.json", {"law_file": cfg.law_file, **result.to_dict()})
    roles = picks(result, cfg.n_front_proposals)
    print(f"proposals in {out / 'model'} (train one with the command beside it):")
    for (role, cand), path in zip(roles, write_proposals(roles, out), strict=True):
        print(
            f"  {role:<9}{path.name:<36}python -m archsearch.train --config-dir {out} "
            f"model={cand.name} budget={cfg.budget.name}"
        )
    if cfg.plots:
        print(
            f"plots: {plot_pareto(result, out / 'pareto.png')}, "
            f"{plot_contour(result, out / 'contour.png')}"
        )
    return result


cli.register("base_search", SearchRunConfig)
cli.register("base_budget", BudgetConfig, group="budget")

if __name__ == "__main__":
    sys.argv[1:] = law_file_overrides(sys.argv[1:])
    cli.run("search", main, __doc__ or "")
