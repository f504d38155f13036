"""python -m archsearch.fit input=<sweep dir or csv> [law=<form>]: fit a scaling law to runs.

Reads every record.json below a sweep directory (or a CSV with one row per run), fits the law and
writes fit.json, u_curves.png and predicted_vs_observed.png into outputs/fits/<form>_<fitter>/<time>
and prints the runs it used and dropped, the parameters with bootstrap intervals and the optimum.

Main options:
  law=multiplicative|additive|chinchilla|chinchilla_tied|joint|aspect_ratio (conf/law/)
  law.fitter=lm|huber  law.l_opt=best|chinchilla  law.n_bootstrap=200  evaluate=true (progressive)
  columns={N: n_params, D: tokens, loss: final_loss}  (CSV column names; x, r optional)

Examples:
  python -m archsearch.fit input=outputs/sweeps/train/model.d_model law=multiplicative
  python -m archsearch.fit input=runs.csv law=chinchilla 'columns={N: n_params, D: tokens}'
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

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


def list_runs(data: LawData, used_run_ids: list[str], r_range: tuple[float, float] | None) -> str:
    """The runs read, each marked used or dropped (with why), and the (N, D) groups they form:
    runs of one scale trained on different D show up as separate groups."""
    used = set(used_run_ids)
    lines = [f"{'N':>13} {'D':>15} {'x':>7} {'r':>6} {'loss':>8}  {'used':<22} run"]
    for i in range(len(data)):
        if data.run_id[i] in used:
            why = "yes"
        elif r_range is not None and not r_range[0] <= data.r[i] <= r_range[1]:
            why = f"no: r outside [{r_range[0]:g}, {r_range[1]:g}]"
        else:
            why = "no"
        lines.append(
            f"{data.N[i]:>13,.0f} {data.D[i]:>15,.0f} {data.x[i]:7.3f} {data.r[i]:6.2f} "
            f"{data.loss[i]:8.4f}  {why:<22} {data.run_id[i]}"
        )
    groups = data.select(np.isin(data.run_id, list(used))).groups()
    counts = {g: int((groups == g).sum()) for g in np.unique(groups)}
    lines.append(
        f"{len(used)} of {len(data)} runs used, in (scale | D) groups: "
        + ", ".join(f"{g} ({n} runs)" for g, n in counts.items())
    )
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
    used = [str(run) for run in result.data.get("run_id", [])]
    print(list_runs(fit_data, used, settings.get("r_range")))
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
    cli.run("fit", main, __doc__ or "")
