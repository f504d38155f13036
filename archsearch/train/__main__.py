"""``python -m archsearch.train [overrides]``: train one model (``-m`` for a multirun sweep).

Examples:
    python -m archsearch.train                                  # tiny model on the bundled corpus
    python -m archsearch.train -m model.d_model=96,128,192      # sweep x at the budget's N
    python -m archsearch.train -m model.r_mlp_attn=1,2,4 model.gqa_group=1,2
"""

from __future__ import annotations

from archsearch import cli
from archsearch.config import RunConfig
from archsearch.records import RunRecord


def main(cfg: RunConfig) -> RunRecord:
    from archsearch.train import train

    record = train(cfg, cli.output_dir())
    if record.status == "diverged":
        print(
            f"{record.run_id}: diverged at step {record.diverged_at_step} (last finite training "
            f"loss {record.last_finite_loss}): recorded as status diverged; lower optim.lr and "
            "train under a new name="
        )
        return record
    entropy = record.unigram_entropy or float("nan")
    print(
        f"{record.run_id}: N={record.n_params:,} D={record.train_tokens:,} "
        f"val_loss={record.final_val_loss:.4f} nats (unigram entropy {entropy:.4f}), "
        f"{record.wall_time_s:.0f} s, {record.tokens_per_s:,.0f} tokens/s"
    )
    return record


cli.register_run_groups()

if __name__ == "__main__":
    cli.run("train", main)
