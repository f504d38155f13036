"""Summarise a throughput sweep: a table and a plot of tokens/s against batch size per shape.

``report(sweep_dir)`` scans for ``throughput.json`` files; ``ReportCallback`` runs it at the end of
a Hydra multirun of ``python -m archsearch.throughput -m ...`` (set in ``conf/throughput.yaml``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from archsearch.arch import ArchSpec
from archsearch.plotting import pyplot, save
from archsearch.records.throughput import (
    THROUGHPUT_FILE,
    ThroughputRecord,
    scan_throughput_records,
)
from archsearch.throughput.hardware import HardwareProfile, profile_for_device
from archsearch.throughput.roofline import estimate_decode
from archsearch.track.results import mirror_throughput

TABLE_FILE = "throughput_table.txt"
PLOT_FILE = "throughput.png"


def shape_label(record: ThroughputRecord) -> str:
    """A short name for a record's shape: name, d_model, heads/KV heads, d_ff, r."""
    arch = record.arch
    return (
        f"{arch['name'] or record.run_id} d{arch['d_model']} "
        f"h{arch['n_heads']}/{arch['n_kv_heads']} ff{arch['d_ff']} "
        f"r{record.counts['r_mlp_attn']:.2f}"
    )


def bound_profile(record: ThroughputRecord) -> HardwareProfile | None:
    """The roofline bound of a record's device: its datasheet profile, else the record's
    prediction profile without fixed costs (``HardwareProfile.bound``), else None."""
    datasheet = profile_for_device(record.device)
    if datasheet is not None and record.dtype in datasheet.peak_flops_per_s:
        return datasheet
    if record.roofline_profile is None:
        return None
    return HardwareProfile.from_dict(record.roofline_profile).bound()


def _rate(value: float | None, width: int = 10) -> str:
    return f"{value:{width}.1f}" if value else f"{'-':>{width}}"


def format_table(records: list[ThroughputRecord]) -> str:
    """One row per (shape, batch size): measured median [min, max] tokens/s by wall clock and, on
    CPU, by process CPU time, the prediction of the record's profile (named per record),
    measured (wall) / predicted, and the roofline bound."""
    header = (
        f"{'shape':<44} {'B':>5} {'tokens/s':>10} {'min':>10} {'max':>10} "
        f"{'cpu tok/s':>10} {'cpu min':>10} {'cpu max':>10} "
        f"{'predicted':>10} {'ratio':>6} {'bound':>10}"
    )
    rows = [header, "-" * len(header)]
    for record in records:
        bound = bound_profile(record)
        spec = ArchSpec.from_dict(record.arch)
        for b in record.batches:
            ratio = f"{b.roofline_fraction:6.2f}" if b.roofline_fraction else f"{'-':>6}"
            ceiling = None
            if bound is not None:
                ceiling = estimate_decode(
                    spec, bound, b.batch_size, record.prompt_tokens, record.new_tokens, record.dtype
                ).tokens_per_s
            rates = [b.tokens_per_s, b.tokens_per_s_min, b.tokens_per_s_max]
            rates += [
                b.cpu_time_tokens_per_s,
                b.cpu_time_tokens_per_s_min,
                b.cpu_time_tokens_per_s_max,
            ]
            rows.append(
                f"{shape_label(record):<44} {b.batch_size:>5} "
                f"{' '.join(_rate(r) for r in rates)} {_rate(b.roofline_tokens_per_s)} {ratio} "
                f"{_rate(ceiling)}"
            )
    profiles = sorted({r.roofline_profile["name"] for r in records if r.roofline_profile})
    note = f"predicted: {', '.join(profiles) or 'none'}; bound: no fixed costs, full bandwidth"
    cpu = "cpu: process CPU time (blind to other processes sharing the cores; CPU only)"
    return "\n".join([*rows, note, cpu])


def protocol(records: list[ThroughputRecord]) -> str:
    """The measurement protocol of the records, for a plot title (each distinct one once)."""
    seen = dict.fromkeys(
        f"{r.prompt_tokens} prompt + {r.new_tokens} new tokens, median of {r.repeats}, "
        f"{r.dtype} on {r.device}"
        for r in records
    )
    return "; ".join(seen)


def plot(records: list[ThroughputRecord], path: str | Path) -> Path:
    """Draw measured tokens/s (error bars: min/max) and, where recorded, the roofline (crosses
    on a dashed line) per shape; the title states the protocol."""
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7, 4.5))
    dashed = False
    for record in records:
        sizes = [b.batch_size for b in record.batches]
        median = [b.tokens_per_s for b in record.batches]
        spread = [
            [m - b.tokens_per_s_min for m, b in zip(median, record.batches, strict=True)],
            [b.tokens_per_s_max - m for m, b in zip(median, record.batches, strict=True)],
        ]
        line = ax.errorbar(sizes, median, yerr=spread, marker="o", label=shape_label(record))
        roof = [b.roofline_tokens_per_s for b in record.batches]
        if all(roof):
            ax.plot(sizes, roof, "x--", color=line[0].get_color(), alpha=0.6)
            dashed = True
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("decode tokens/s" + (" (x, dashed: roofline)" if dashed else ""))
    ax.set_title(protocol(records), fontsize=8)
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    save(fig, path)
    return Path(path)


def report(sweep_dir: str | Path) -> str:
    """Write the table and plot of every record below ``sweep_dir`` into it; return the table."""
    records = scan_throughput_records(sweep_dir)
    if not records:
        return f"no {THROUGHPUT_FILE} below {sweep_dir}"
    table = format_table(records)
    (Path(sweep_dir) / TABLE_FILE).write_text(table + "\n")
    plot(records, Path(sweep_dir) / PLOT_FILE)
    return table


class ReportCallback(Callback):
    """Hydra callback: print and save the sweep's table and plot when a multirun ends (and mirror
    them to wandb with ``tracker.kind=wandb``)."""

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        print(report(sweep_dir))
        print(f"table and plot written to {sweep_dir}")
        mirror_throughput(config, sweep_dir, sweep_dir / PLOT_FILE)
