"""python -m archsearch.throughput [-m] [overrides]: measure decode throughput (throughput.json).

The paper's protocol on a random-weight model of the configured shape: B prompts of
prompt_tokens, prefill, then exactly new_tokens generated with a KV cache; tokens/s is the median
of the timed repeats (with min and max) beside the roofline. -m sweeps shapes and ends with a
table and a plot (throughput_table.txt, throughput.png in the sweep directory).

Main options:
  model=<preset> budget=<preset>  throughput.batch_sizes=[1,16,64]  throughput.prompt_tokens=4096
  throughput.new_tokens=1024  throughput.repeats=5  device=auto|cpu|cuda  run_dir=<training run>

Examples:
  python -m archsearch.throughput                                     # tiny model on this machine
  python -m archsearch.throughput -m model.gqa_group=1,2              # sweep: table + plot
"""

from __future__ import annotations

from archsearch import cli
from archsearch.records.throughput import ThroughputRecord
from archsearch.throughput.config import ThroughputRunConfig


def main(cfg: ThroughputRunConfig) -> ThroughputRecord:
    from archsearch.throughput.report import format_table
    from archsearch.throughput.runner import run_throughput

    record = run_throughput(cfg, cli.output_dir())
    print(format_table([record]))
    return record


cli.register_run_groups()
cli.register("base_throughput", ThroughputRunConfig)

if __name__ == "__main__":
    cli.run("throughput", main, __doc__ or "")
