"""``python -m archsearch.search law=<fit.json> budget=<preset> target=<L_t>``.

Runs Algorithm 1 of arXiv 2510.18245 at the budget, prints the table, and writes into the Hydra run
directory: ``search.json``, ``model/<name>.yaml`` per proposal (train one with
``python -m archsearch.train --config-dir <run dir> model=<name> budget=<preset>``),
``pareto.png`` and ``contour.png``. Only shapes inside the law's validity domain are scored
unless ``extrapolate=true``.

``target`` is Eq. 4's L_t, a measured loss: a number, a ``record.json`` (or its run directory), or
a ``conf/model`` preset whose trained record lies under ``records_dir`` or ``throughput_dir`` at
the budget's D; a preset without one falls back to the law's prediction, labelled as such.

Main options: law=<fit.json>  budget=<preset>  target=<preset or loss>  batch_size=64
hardware=a100_40gb|a100_80gb|h100_sxm|h200  n_layers, head_dim, gqa_group (the searched family).

``law`` is also the fit entry's config group, so ``law=<file>`` (a ``.json`` path or an existing
file or directory) is rewritten to ``law_file=<file>`` before Hydra sees it.

Examples:
    python -m archsearch.search law=outputs/fits/multiplicative_lm/<time>/fit.json
    python -m archsearch.search law=fit.json target=2.803 batch_size=256 hardware=h100_sxm
    python -m archsearch.search law=fit.json target=outputs/runs/train/llama/record.json
    python -m archsearch.search law=fit.json target=llama3_2_1b records_dir=outputs/runs
    python -m archsearch.search law=fit.json extrapolate=true space.x_max=0.3
"""

from __future__ import annotations

import sys
from pathlib import Path

from archsearch import cli
from archsearch.arch import ArchError, ArchSpec
from archsearch.config import BudgetConfig, resolve_arch
from archsearch.law import read_fit
from archsearch.records import (
    RunRecord,
    read_record,
    scan_records,
    scan_throughput_records,
    write_json_atomic,
)
from archsearch.search import (
    DecodeSetting,
    SearchResult,
    Target,
    ThroughputModel,
    measured_losses,
    search,
    space_from_config,
    spec_key,
)
from archsearch.search.config import SearchRunConfig
from archsearch.search.measures import records_at
from archsearch.search.report import (
    format_table,
    picks,
    plot_contour,
    plot_pareto,
    write_proposals,
)
from archsearch.throughput.hardware import profile_for_hardware


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


def load_target(
    cfg: SearchRunConfig, records: list[RunRecord], train_tokens: int
) -> Target | ArchSpec | None:
    """L_t (Eq. 4) from ``cfg.target``: a measured Target (a number, a record, or a preset's
    trained record in ``records`` at D = ``train_tokens``), or the preset's shape for the law
    to predict (the labelled fallback); None without a target."""
    if cfg.target is None or cfg.target == "":
        return None
    try:
        return Target(cfg.target, float(cfg.target), source="given")
    except ValueError:
        pass
    path = Path(cfg.target)
    if path.name == "record.json" or (path / "record.json").is_file():
        rec = read_record(path)
        detail = f"final_val_loss of {path} (D = {rec.train_tokens:,})"
        return Target(rec.run_id, rec.final_val_loss, "measured", detail, _spec_of(rec))
    if not path.is_file():
        path = cli.CONF_DIR / "model" / f"{cfg.target}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (cli.CONF_DIR / "model").glob("*.yaml"))
        raise ValueError(
            f"target={cfg.target!r} is no number, record.json, file or model preset ({known})"
        )
    spec = resolve_arch(cli.load_model_preset(path), cfg.budget, cfg.vocab_size).spec
    trained = [rec for key, rec in records_at(records, train_tokens) if key == spec_key(spec)]
    if not trained:
        return spec
    loss = sum(r.final_val_loss for r in trained) / len(trained)
    runs = ", ".join(r.run_id for r in trained)
    return Target(spec.name, loss, "measured", f"final_val_loss of run(s) {runs}", spec)


def _spec_of(rec: RunRecord) -> ArchSpec | None:
    try:
        return ArchSpec.from_dict(rec.arch)
    except (ArchError, TypeError):
        return None


def main(cfg: SearchRunConfig) -> SearchResult:
    if not cfg.law_file:
        raise ValueError("give the fitted law: law=<fit.json> (from python -m archsearch.fit)")
    n_params, train_tokens = budget_tokens(cfg.budget)
    profile = profile_for_hardware(cfg.hardware)
    print(f"throughput ranked with {profile.label}")
    setting = DecodeSetting(
        profile.profile, cfg.batch_size, cfg.prompt_tokens, cfg.new_tokens, cfg.dtype
    )
    throughput_records, run_records = [], []
    if cfg.throughput_dir:
        throughput_records = scan_throughput_records(cfg.throughput_dir)
        run_records = scan_records(cfg.throughput_dir)
    if cfg.records_dir:
        run_records += scan_records(cfg.records_dir)
    space = space_from_config(
        cfg.space,
        n_params,
        cfg.n_layers,
        cfg.head_dim,
        cfg.vocab_size,
        cfg.gqa_group,
        tie_embeddings=cfg.tie_embeddings,
        n_params_tolerance=cfg.budget.n_params_tolerance,
    )
    result = search(
        read_fit(cfg.law_file),
        space,
        n_params,
        train_tokens,
        ThroughputModel(setting, throughput_records),
        target=load_target(cfg, run_records, train_tokens),
        target_name=cfg.target or "",
        constraint_quantile=cfg.constraint_quantile,
        level=cfg.interval_level,
        l_opt=cfg.l_opt,
        measured_loss=measured_losses(run_records, train_tokens),
        extrapolate=cfg.extrapolate,
    )
    print(format_table(result))
    out = cli.output_dir()
    write_json_atomic(
        out / "search.json",
        {"law_file": cfg.law_file, "throughput_profile": profile.to_dict(), **result.to_dict()},
    )
    roles = picks(result, cfg.n_front_proposals)
    print(f"proposals in {out / 'model'} (train one with the command beside it):")
    for (role, cand), path in zip(roles, write_proposals(roles, out, result), strict=True):
        print(
            f"  {role:<23}{path.name:<36}python -m archsearch.train --config-dir {out} "
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
