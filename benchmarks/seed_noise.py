"""Run-to-run noise of the CPU study's training against the number of optimizer steps.

Run: ``python benchmarks/seed_noise.py [--batch 16 8 4] [--seeds 0 1 2] [--x 0.19]
[--workers 2] [--out /tmp/seed_noise] [study overrides, e.g. experiment=cpu_full]``

Trains the study's centre shape (x ``--x`` at the study's ``r_center`` and ``group``, at the
checks' budget: N = 100k, D = 20 N in ``cpu_full``) with every seed at every micro-batch size
(sequences of ``run.train.seq_len`` tokens per optimizer step: the same tokens in more steps when
smaller), and prints per batch size the optimizer steps, each seed's final validation loss, their
standard deviation and the mean training time. A U in loss over x of a few hundredths of a nat
(arXiv 2510.18245, Fig. 3) is only visible when this spread is well below it. Finished runs in
``--out`` are read back, so a second call prints at once.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import replace
from pathlib import Path

from hydra import compose, initialize_config_dir

from archsearch import cli
from archsearch.study.config import StudyConfig
from archsearch.study.jobs import Job, knob_job
from archsearch.study.pipeline import train_stage

CONF = Path(__file__).resolve().parents[1] / "conf"


def study_config(overrides: list[str]) -> StudyConfig:
    """The study's typed config (``conf/study.yaml``) with Hydra ``overrides``."""
    import archsearch.study.__main__  # noqa: F401  (registers the study's schemas)

    with initialize_config_dir(str(CONF), version_base=None):
        return cli.to_typed(compose("study", overrides=overrides))


def noise_jobs(
    cfg: StudyConfig, x: float, batches: list[int], seeds: list[int], out: Path
) -> list[Job]:
    """One job per (batch size, seed): the centre shape at the checks' budget."""
    g, n = cfg.grid, cfg.checks_n_params
    base = knob_job(cfg, "centre", n, x, g.r_center, g.group, out)
    jobs = []
    for batch in batches:
        for seed in seeds:
            name = f"n{n}_x{x}_b{batch}_seed{seed}"
            train = replace(base.run.train, batch_size=batch, seed=seed)
            run = replace(base.run, train=train, name=name)
            jobs.append(replace(base, name=name, run=run, run_dir=out / name))
    return jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[16, 8, 4])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--x", type=float, default=0.19)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("/tmp/seed_noise"))
    args, overrides = parser.parse_known_args()
    if len(args.seeds) < 2:
        sys.exit("--seeds needs at least two seeds to measure a spread")
    cfg = study_config(overrides)
    jobs: list[Job] = noise_jobs(cfg, args.x, args.batch, args.seeds, args.out)
    records = train_stage(jobs, print, "noise", args.workers)
    seq = cfg.run.train.seq_len
    print(f"\nN = {cfg.checks_n_params:,}, x {args.x}, {seq}-token sequences, seeds {args.seeds}")
    print("batch  steps  final validation loss per seed        sd      mean train s")
    for batch in args.batch:
        runs = [r for j, r in zip(jobs, records, strict=True) if j.run.train.batch_size == batch]
        losses = [r.final_val_loss for r in runs]
        steps = runs[0].train_tokens // (batch * seq)
        print(
            f"{batch:5d}  {steps:5d}  {' '.join(f'{v:.4f}' for v in losses):34s}  "
            f"{statistics.stdev(losses):.4f}  {statistics.mean(r.wall_time_s for r in runs):8.0f}"
        )


if __name__ == "__main__":
    main()
