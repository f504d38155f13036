"""``python -m archsearch.throughput [overrides]``: measure decode throughput (throughput.json).

Examples:
    python -m archsearch.throughput                                     # tiny model on this machine
    python -m archsearch.throughput model=llama3_2_1b throughput.batch_sizes=[1,16,64] \
        throughput.prompt_tokens=4096 throughput.new_tokens=1024          # the paper's protocol
    python -m archsearch.throughput run_dir=outputs/runs/train/default     # beside a training run
    python -m archsearch.throughput -m model.gqa_group=1,2,4             # sweep: table + plot
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
    cli.run("throughput", main)
