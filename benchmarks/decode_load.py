"""Decode throughput on a loaded CPU: wall clock against process CPU time.

Run: ``python benchmarks/decode_load.py [--busy 2] [--repeats 5] [--x 0.19 0.38]``

Shapes at the CPU study's search scale (N = 200k, r = 1, g = 2, 4 layers, head_dim 4, a tied
257-token vocabulary; one per ``--x``) are measured with the project's protocol
(``measure_decode``, one thread, batch 32, T_in 128, T_out 32) as quietly as the machine allows,
then again while ``--busy`` processes spin on the cores. Printed: decode tokens/s by wall clock and
by process CPU time (median [slowest, fastest] repeat) per shape and condition, each measure's
loaded/quiet ratio per shape, and each shape's speed relative to the first one per condition (what
a ranking sees). A measure robust to load keeps the loaded/quiet ratio near 1 and the relative
speeds unchanged; the search ranks CPU measurements by CPU time
(``archsearch.search.ThroughputModel``) because the wall-clock figure falls with the load. Busy
loops take turns on the cores; other jobs that also share the caches and memory bandwidth (a
training run) can slow the CPU-time figure too.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import torch

from archsearch.arch import ArchSpec, shape_for
from archsearch.records.throughput import CPU_TIME_MEDIAN, WALL_MEDIAN, BatchThroughput
from archsearch.throughput.config import DecodeConfig
from archsearch.throughput.decode import measure_decode

CPU = torch.device("cpu")
MEASURES = {WALL_MEDIAN: "wall", CPU_TIME_MEDIAN: "cpu time"}


def study_shape(x: float) -> ArchSpec:
    """A shape of the CPU study's search scale: N 200k, d_model / sqrt(N) = ``x``, r 1, g 2."""
    return shape_for(
        200_000,
        4,
        4,
        1.0,
        2,
        257,
        d_over_sqrt_n_target=x,
        tie_embeddings=True,
        d_model_multiple=8,
        d_ff_multiple=4,
        name=f"x{x}",
    ).spec


def measure(specs: list[ArchSpec], cfg: DecodeConfig, busy: int) -> list[BatchThroughput]:
    """Each of ``specs`` decoded under ``cfg``, in turn, beside ``busy`` spinning processes."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
    try:
        time.sleep(0.5 if busy else 0.0)  # let the spinners reach the cores
        timings = [measure_decode(spec, cfg, CPU, "fp32", "none")[0] for spec in specs]
    finally:
        for spinner in spinners:
            spinner.terminate()
        for spinner in spinners:
            spinner.wait()
    return [t.throughput(cfg.new_tokens) for t in timings]


def rates(batch: BatchThroughput, measure_name: str) -> tuple[float, float, float]:
    """(median, min, max) tokens/s by ``measure_name``; both measures exist on CPU."""
    found = batch.rates(measure_name)
    assert found is not None
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", type=int, default=os.cpu_count() or 1, help="spinning processes")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per measurement")
    parser.add_argument("--x", type=float, nargs="+", default=[0.19, 0.38], help="d_model/sqrt(N)")
    parser.add_argument("--batch-size", type=int, default=32, help="B (the study's search batch)")
    parser.add_argument("--prompt-tokens", type=int, default=128, help="T_in")
    parser.add_argument("--new-tokens", type=int, default=32, help="T_out")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = DecodeConfig(
        prompt_tokens=args.prompt_tokens,
        new_tokens=args.new_tokens,
        batch_sizes=[args.batch_size],
        repeats=args.repeats,
        warmup=1,
        num_threads=1,
    )
    specs = [study_shape(x) for x in args.x]
    print(
        f"B {args.batch_size}, T_in {args.prompt_tokens}, T_out {args.new_tokens}, "
        f"{args.repeats} repeats, 1 thread, {os.cpu_count()} cores; load average before: "
        f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )
    quiet, loaded = measure(specs, cfg, 0), measure(specs, cfg, args.busy)
    conditions = {"quiet": quiet, f"{args.busy} busy": loaded}
    print(
        f"{'shape':<34} {'condition':<9}"
        + "".join(f" {label + ' tok/s [min, max]':>31}" for label in MEASURES.values())
    )
    for i, spec in enumerate(specs):
        label = f"{spec.name} d{spec.d_model} h{spec.n_heads}/{spec.n_kv_heads} ff{spec.d_ff}"
        for name, batches in conditions.items():
            cells = [rates(batches[i], m) for m in MEASURES]
            print(
                f"{label:<34} {name:<9}"
                + "".join(f" {m:>15.0f} [{lo:>6.0f}, {hi:>6.0f}]" for m, lo, hi in cells)
            )
    for i, spec in enumerate(specs):
        ratios = [
            f"{label} {rates(loaded[i], m)[0] / rates(quiet[i], m)[0]:.2f}"
            for m, label in MEASURES.items()
        ]
        print(f"{spec.name} loaded / quiet median: {', '.join(ratios)}")
    for i, spec in enumerate(specs[1:], 1):
        for name, batches in conditions.items():
            relative = [
                f"{label} {rates(batches[i], m)[0] / rates(batches[0], m)[0]:.2f}"
                for m, label in MEASURES.items()
            ]
            print(f"{spec.name} / {specs[0].name} {name}: {', '.join(relative)}")


if __name__ == "__main__":
    main()
