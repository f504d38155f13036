"""Outputs of a search: the table, proposal YAMLs for ``conf/model``, and the two plots. Pure
(matplotlib is imported inside the plot functions, Agg backend).

The plots follow figure 1 of arXiv 2510.18245: the Pareto front of (predicted loss, decode
throughput), and the predicted loss over (d_model, r) at the budget with throughput contours.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from archsearch.plotting import pyplot, save
from archsearch.search.algorithm import Scored, SearchResult
from archsearch.search.space import Candidate, model_fields


def picks(result: SearchResult, n_front: int = 0) -> list[tuple[str, Candidate]]:
    """The shapes worth writing out, each once, with its role.

    Roles: ``fastest_meeting_target`` (Algorithm 1, step 2), ``loss_optimal`` (loss optimum),
    ``gqa`` (the local search's choice, when it differs), ``to_train`` (GQA variants whose
    measured loss would decide) and ``front`` (``n_front`` Pareto points spread along the front).
    """
    out: list[tuple[str, Candidate]] = []
    if result.fastest_meeting_target is not None:
        out.append(("fastest_meeting_target", result.fastest_meeting_target.candidate))
    out.append(("loss_optimal", result.loss_optimal.candidate))
    out.append(("gqa", result.gqa.chosen))
    out += [("to_train", c) for c in result.gqa.to_train]
    if n_front and result.front:
        idx = np.unique(np.linspace(0, len(result.front) - 1, n_front).round().astype(int))
        out += [("front", result.front[i].candidate) for i in idx]
    seen: set[str] = set()
    return [(role, c) for role, c in out if not (c.name in seen or seen.add(c.name))]


def model_yaml(cand: Candidate, outside: list[str] | None = None) -> str:
    """A ``conf/model`` preset (``defaults: [base_model, _self_]`` then explicit fields);
    ``outside``: the law's domain bounds the shape passes, written into the header."""
    lines = [
        f"# Proposed by archsearch.search: N = {cand.n_params:,} ({cand.n_params_rel_error:+.2%}"
        f" of budget), x = {cand.x:.4f}, r = {cand.r:.3f}, GQA group {cand.gqa_group}.",
        *(
            [f"# OUTSIDE the law's validity domain ({', '.join(outside)}): an extrapolation."]
            if outside
            else []
        ),
        "defaults:",
        "  - base_model",
        "  - _self_",
    ]
    for key, value in model_fields(cand.spec).items():
        text = "null" if value is None else str(value).lower() if isinstance(value, bool) else value
        lines.append(f"{key}: {text}")
    return "\n".join(lines) + "\n"


def write_proposals(
    roles: list[tuple[str, Candidate]], out_dir: str | Path, result: SearchResult | None = None
) -> list[Path]:
    """Write each shape to ``<out_dir>/model/<name>.yaml``; returns the paths. With ``result``,
    a shape outside the law's domain says so in its header."""
    model_dir = Path(out_dir) / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    outside = {s.candidate.name: s.outside for s in (result.scored if result else [])}
    paths = []
    for _, cand in roles:
        path = model_dir / f"{cand.name}.yaml"
        path.write_text(model_yaml(cand, outside.get(cand.name)))
        paths.append(path)
    return paths


ROLE_WIDTH = 24


def _shape_cols(role: str, c: Candidate, mark: str = "") -> str:
    return (
        f"{role:<{ROLE_WIDTH}}{c.name + mark:<31}{c.n_params / 1e6:>8.1f}"
        f"{c.n_params_rel_error:>+7.2%}{c.x:>7.4f}{c.r:>6.2f}{c.gqa_group:>4}"
    )


def _row(role: str, s: Scored, result: SearchResult) -> str:
    c = s.candidate
    interval = "" if np.isnan(s.loss_low) else f" [{s.loss_low:.4f}, {s.loss_high:.4f}]"
    p = "-" if s.p_meets is None else f"{s.p_meets:.2f}"
    ref = result.target.scored if result.target else None
    gain = f"{s.speed.tokens_per_s / ref.speed.tokens_per_s - 1:+.1%}" if ref else "-"
    fits = {True: "", False: "!", None: "?"}[s.speed.fits_memory]
    return (
        f"{_shape_cols(role, c, '' if s.in_domain else '*')}  {s.loss:.4f}{interval:<19}{p:>6}"
        f"{s.speed.tokens_per_s:>10.0f}{fits:1} {s.speed.source[:4]:<5}{gain:>8}"
    )


def format_table(result: SearchResult, max_front: int = 12) -> str:
    """The picks, the target and a sample of the Pareto front as a text table."""
    scored = {s.candidate.name: s for s in result.scored}
    steps = {s.candidate.name: s for s in result.gqa.steps}
    lo = (1 - result.level) / 2
    domain = ", ".join(f"{k} [{a:.4g}, {b:.4g}]" for k, (a, b) in result.domain.items())
    lines = [
        f"budget N = {result.n_params:,}, D = {result.train_tokens:,}; throughput: "
        f"{result.setting.describe()}, measured by {result.throughput_measure or 'none'}; "
        f"L_opt: {result.l_opt_note}",
        f"law domain: {domain}"
        + ("; extrapolating ('*': outside it)" if result.extrapolate else "; shapes inside only"),
        f"{len(result.scored)} shapes ({result.n_grid_points} grid points, {result.n_infeasible}"
        f" infeasible); Pareto front {len(result.front)}; constraint quantile "
        f"{result.constraint_quantile}; interval {lo:.0%}-{1 - lo:.0%}",
    ]
    lines += [f"law warning: {w}" for w in result.law.warnings]
    if result.target is not None:
        lines.append(f"target {result.target.name}: {result.target.describe()}")
    lines.append(
        f"{'role':<{ROLE_WIDTH}}{'shape':<31}{'N (M)':>8}{'dN':>7}{'x':>7}{'r':>6}{'g':>4}  "
        f"{'pred. loss [interval]':<25}{'P<=Lt':>6}{'tok/s':>10}  {'src':<5}{'gain':>7}"
    )
    if result.target is not None and result.target.scored is not None:
        lines.append(_row("target", result.target.scored, result))
    for role, cand in picks(result):
        if cand.name in scored:
            lines.append(_row(role, scored[cand.name], result))
        else:  # a GQA variant outside the space: the law cannot tell groups apart
            step = steps[cand.name]
            measured = "-" if step.measured_loss is None else f"{step.measured_loss:.4f}"
            lines.append(
                f"{_shape_cols(role, cand)}  measured {measured:<23}"
                f"{step.speed.tokens_per_s:>10.0f}  {step.speed.source[:4]:<5}"
            )
    step = max(1, len(result.front) // max_front)
    lines += [_row("front", s, result) for s in result.front[::step]]
    lines.append(
        "gqa search: "
        + ", ".join(f"g={s.candidate.gqa_group} {s.status}" for s in result.gqa.steps)
    )
    lines += [f"note: {n}" for n in result.notes]
    lines.append("tok/s: '!' = weights + KV cache exceed the device memory, '?' = unknown")
    if any(not s.in_domain for s in result.scored):
        lines.append("shape '*': outside the law's validity domain, an extrapolation")
    return "\n".join(lines)


def _mark_picks(ax, result: SearchResult, x_of, y_of) -> None:  # noqa: ANN001
    """The picks and the target; a pick outside the law's domain is drawn hollow, labelled."""
    marks = [
        ("loss_optimal", result.loss_optimal, "*", "tab:green"),
        ("fastest_meeting_target", result.fastest_meeting_target, "D", "tab:red"),
    ]
    if result.target is not None and result.target.scored is not None:
        marks.append((result.target.name, result.target.scored, "X", "black"))
    for label, s, marker, color in marks:
        if s is None:
            continue
        style = {"color": color, "edgecolors": "white"}
        if not s.in_domain:
            label = f"{label} (OUTSIDE the law's domain)"
            style = {"facecolors": "none", "edgecolors": color, "linewidths": 1.5}
        ax.scatter([x_of(s)], [y_of(s)], marker=marker, s=120, label=label, zorder=5, **style)


def plot_pareto(result: SearchResult, path: str | Path) -> Path:
    """Predicted loss against decode throughput, every candidate and the front; returns the path."""
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7, 5))
    tps = np.array([s.speed.tokens_per_s for s in result.scored])
    loss = np.array([s.rank_loss for s in result.scored])
    inside = np.array([s.in_domain for s in result.scored])
    ax.scatter(tps[inside], loss[inside], s=6, color="0.7", label="candidates")
    if not inside.all():
        ax.scatter(
            tps[~inside], loss[~inside], s=6, color="tab:orange", label="outside the law's domain"
        )
    ax.plot(
        [s.speed.tokens_per_s for s in result.front],
        [s.rank_loss for s in result.front],
        "o-",
        color="tab:blue",
        ms=3,
        label="Pareto front",
    )
    if result.target is not None:
        ax.axhline(result.target.loss, color="black", ls="--", lw=1, label="L_t")
    _mark_picks(ax, result, lambda s: s.speed.tokens_per_s, lambda s: s.rank_loss)
    ax.set_xlabel(f"decode tokens/s ({result.setting.describe()})")
    ax.set_ylabel("predicted loss (nats/token)")
    ax.legend(fontsize=8)
    save(fig, path)
    return Path(path)


def plot_contour(result: SearchResult, path: str | Path, n_grid: int = 80) -> Path:
    """Predicted loss over (d_model, r) at the budget, throughput contours of the candidates."""
    plt = pyplot()

    cands = [s.candidate for s in result.scored]
    d = np.array([c.spec.d_model for c in cands], dtype=float)
    r = np.array([c.r for c in cands])
    dd, rr = np.meshgrid(
        np.linspace(d.min(), d.max(), n_grid), np.geomspace(r.min(), r.max(), n_grid)
    )
    n_layers = cands[0].spec.n_layers
    loss = result.law.predict(
        result.n_params,
        result.train_tokens,
        x=dd.ravel() / np.sqrt(result.n_params),
        r=rr.ravel(),
        d_model=dd.ravel(),
        n_layers=n_layers,
    ).reshape(dd.shape)
    fig, ax = plt.subplots(figsize=(7, 5))
    filled = ax.contourf(dd, rr, loss, levels=20, cmap="viridis_r")
    fig.colorbar(filled, ax=ax, label="predicted loss (nats/token)")
    tps = np.array([s.speed.tokens_per_s for s in result.scored])
    if len(cands) >= 3:
        lines = ax.tricontour(d, r, tps, levels=6, colors="white", linewidths=0.8)
        ax.clabel(lines, fmt=lambda v: f"{v / 1e3:.1f}k tok/s", fontsize=7)
    if {"x", "r"} <= set(result.domain):
        (x_low, x_high), (r_low, r_high) = result.domain["x"], result.domain["r"]
        root = np.sqrt(result.n_params)
        ax.add_patch(
            plt.Rectangle(
                (x_low * root, r_low),
                (x_high - x_low) * root,
                r_high - r_low,
                fill=False,
                ls="--",
                color="red",
                label="law's validity domain",
            )
        )
    _mark_picks(ax, result, lambda s: s.candidate.spec.d_model, lambda s: s.candidate.r)
    ax.set_yscale("log")
    ax.set_xlabel("d_model")
    ax.set_ylabel("r = MLP / attention params")
    ax.set_title(f"N = {result.n_params / 1e6:.0f}M, D = {result.train_tokens / 1e9:.1f}B")
    ax.legend(fontsize=8)
    save(fig, path)
    return Path(path)
