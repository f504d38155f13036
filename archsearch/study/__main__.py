"""python -m archsearch.study [--quick] [experiment=cpu_full|cpu_quick] [overrides]: the study.

Trains the sweep, its checks and the baseline, measures throughput, fits and evaluates the law,
searches at the largest budget, trains and evaluates the picks, and writes
outputs/study/<name>/report/report.md. Re-running the same command skips finished jobs.
--quick stands for experiment=cpu_quick.

Main options:
  --quick (experiment=cpu_quick, minutes)  experiment=cpu_full (about 45 min on 2 CPU cores)
  output_root=outputs/study  name=<study name>  workers=2  run.train.num_threads=1

Examples:
  python -m archsearch.study --quick                  # cpu_quick, minutes on 2 quiet cores
  python -m archsearch.study experiment=cpu_quick output_root=/tmp/study
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from archsearch import cli
from archsearch.law.config import LawConfig
from archsearch.study.config import StudyConfig


def _log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


def main(cfg: StudyConfig) -> Path:
    from archsearch.study.run import run_study

    report = run_study(cfg, _log)
    _log(f"report: {report}")
    return report


def quick_flag(argv: list[str]) -> list[str]:
    """Rewrite a literal ``--quick`` into ``experiment=cpu_quick`` (before Hydra parses argv)."""
    return ["experiment=cpu_quick" if a == "--quick" else a for a in argv]


cli.register_run_groups()
cli.register("base_study", StudyConfig)
cli.register("base_law", LawConfig, group="law")

if __name__ == "__main__":
    sys.argv[1:] = quick_flag(sys.argv[1:])
    cli.run("study", main, __doc__ or "")
