"""``python -m archsearch.evaluate <run dir> [--tasks a,b] [--limit N]``: write ``eval.json``.

Scores a finished torch-backend run with lm-evaluation-harness, offline, and prints each task's
accuracy. ``--tasks`` defaults to the shipped tasks (``sotu_word_order,sotu_next_sentence``);
standard lm-eval task names (``arc_easy,hellaswag,piqa``) work where their datasets are in the
local Hugging Face cache. Needs the ``eval`` extra (``pip install 'archsearch[eval]'``).
"""

from __future__ import annotations

import argparse

from archsearch.evaluate.tasks import TASKS


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m archsearch.evaluate", description=__doc__)
    parser.add_argument("run_dir", help="a finished training run's directory (record.json)")
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated task names")
    parser.add_argument("--limit", type=int, default=None, help="items per task (default: all)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-len", type=int, default=None, help="default: training seq_len")
    args = parser.parse_args(argv)
    from archsearch.evaluate.harness import EVAL_FILE, evaluate_run

    record = evaluate_run(
        args.run_dir, args.tasks.split(","), args.limit, args.batch_size, args.device, args.max_len
    )
    for task, metrics in record["tasks"].items():
        print(
            f"{task:<24} acc {metrics['acc']:.3f} +- {metrics.get('acc_stderr', float('nan')):.3f}"
            f"  ({int(metrics['n_items'])} items)"
        )
    print(f"wrote {args.run_dir}/{EVAL_FILE}")


if __name__ == "__main__":
    main()
