"""``python -m archsearch.fit input=<sweep dir or csv> [law=<form>] [...]``: fit a scaling law.

Writes ``fit.json`` and plots into the Hydra run directory and prints the parameters; with
``evaluate=true`` also the progressive and leave-one-scale-out table for ``compare_forms``.

Examples:
    python -m archsearch.fit input=outputs/sweeps/x_sweep law=multiplicative
    python -m archsearch.fit input=runs.csv law=chinchilla law.fitter=huber 'columns={N: n_params}'
    python -m archsearch.fit input=outputs/sweeps/x_sweep evaluate=true
"""

from __future__ import annotations

from pathlib import Path

from archsearch import cli
from archsearch.law import (
    FitResult,
    LawData,
    compare,
    fit_law,
    format_table,
    from_csv,
    from_records,
    write_fit,
)
from archsearch.law.config import FitConfig, LawConfig
from archsearch.law.evaluate import to_rows
from archsearch.law.fit import metrics


def load(cfg: FitConfig, rows: dict[str, str] | None = None) -> LawData:
    """The LawData named by ``cfg.input`` (a CSV file or a sweep directory of records)."""
    path = Path(cfg.input)
    if not cfg.input:
        raise ValueError("give the data: input=<sweep dir or csv>")
    if path.suffix == ".csv":
        return from_csv(path, cfg.columns.mapping(), {**cfg.where, **(rows or {})})
    if cfg.where or cfg.fit_rows:
        raise ValueError(
            "where / fit_rows filter CSV columns; a sweep directory of records is used whole: "
            "drop them, or export the records to a CSV"
        )
    return from_records(path, cfg.loss_field)


def describe(result: FitResult) -> str:
    """Parameters with intervals, metrics and optimum as text."""
    lines = [
        f"{result.form} ({result.fitter}, L_opt: {result.l_opt.kind if result.l_opt else '-'})"
    ]
    for name, value in result.params.items():
        low, high = result.intervals.get(name, (None, None))
        ci = f"  [{low:.4g}, {high:.4g}]" if low is not None else ""
        lines.append(f"  {name:<8}{value:>14.6g}{ci}")
    for name, value in result.optimum.items():
        low, high = result.intervals.get(f"{name}*", (None, None))
        ci = f"  [{low:.4g}, {high:.4g}]" if low is not None else ""
        lines.append(f"  {name + '*':<8}{value:>14.6g}{ci}")
    lines.append("  " + ", ".join(f"{k} {v:.4g}" for k, v in result.metrics.items()))
    if result.domain:
        domain = ", ".join(f"{k} [{lo:.4g}, {hi:.4g}]" for k, (lo, hi) in result.domain.items())
        lines.append(f"  domain: {domain}")
    lines += [f"WARNING: {w}" for w in result.warnings]
    return "\n".join(lines)


def main(cfg: FitConfig) -> FitResult:
    law: LawConfig = cfg.law
    settings = law.fit_settings()
    data = load(cfg)
    fit_data = load(cfg, cfg.fit_rows) if cfg.fit_rows else data
    result = fit_law(
        fit_data,
        law.form,
        n_bootstrap=law.n_bootstrap,
        bootstrap_unit=law.bootstrap_unit,
        seed=law.seed,
        source=cfg.input,
        **settings,
    )
    print(describe(result))
    if cfg.fit_rows:
        all_rows = metrics(data.loss, result.predict_data(data))
        result.metrics.update({f"all_{k}": v for k, v in all_rows.items()})
        print("  all rows: " + ", ".join(f"{k} {v:.4g}" for k, v in all_rows.items()))
    evaluation = []
    if cfg.evaluate:
        steps = compare(data, cfg.compare_forms, held_out_l_opt=cfg.held_out_l_opt, **settings)
        print(format_table(steps))
        evaluation = to_rows(steps)
    out = cli.output_dir()
    print(f"wrote {write_fit(out / 'fit.json', result, evaluation)}")
    if cfg.plots:
        from archsearch.law.plots import plot_predicted_vs_observed, plot_u_curves

        used = LawData.from_columns(**result.data)
        plot_predicted_vs_observed(result, used, out / "predicted_vs_observed.png")
        plot_u_curves(result, used, out / "u_curves.png")
    return result


cli.register("base_fit", FitConfig)
cli.register("base_law", LawConfig, group="law")

if __name__ == "__main__":
    cli.run("fit", main)
