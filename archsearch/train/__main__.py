"""python -m archsearch.train [-m] [overrides]: train a LLaMA-style model at a budget (N, D).

The shape is given outright by a model preset (model=llama3_2_1b) or derived from the budget's N
by the paper's knobs: width model.d_model (or model.hidden, or x = model.d_over_sqrt_n),
model.r_mlp_attn (MLP/attention params) and model.gqa_group, at fixed n_layers and head_dim.
Each run writes record.json (shape, N, D, FLOPs, losses), metrics.jsonl and checkpoint.pt into
outputs/runs/train/<overrides>; -m sweeps comma lists into outputs/sweeps/train/<swept keys>/,
checks every job's shape before any starts and ends with a table. The same command resumes a
killed run and skips finished ones.

Main options:
  model=tiny|debug|llama3_2_1b|...  budget=tiny|debug|llama1b_20x|...  (N and D)
  data=sotu|files data.paths=[...]  train=cpu|gpu|debug  train.num_threads=1  tracker=wandb
  hydra/launcher=local_slurm (pip install 'archsearch[slurm]')  name=<sweep or run name>

Examples:
  python -m archsearch.train                                # 0.5M params, 1M tokens, ~2.5 min
  python -m archsearch.train -m model.hidden=64,144,272     # a sweep of x at the budget's N
"""

from __future__ import annotations

from archsearch import cli, sweep
from archsearch.config import RunConfig
from archsearch.records import RECORD_FILE, RunRecord


def _use_corpus_vocabulary(cfg: RunConfig) -> None:
    """Train a preset with its own vocabulary (e.g. LLaMA's 128,256) on the corpus's tokenizer.

    N, x and r do not depend on the vocabulary; the record's ``arch.vocab_size`` states the one
    trained and the run's ``.hydra/config.yaml`` the preset's.
    """
    vocab = cfg.model.vocab_size
    if vocab is not None and vocab != cfg.data.vocab_size:
        print(
            f"model={cfg.model.name} has vocab_size {vocab:,}; training on the corpus's "
            f"{cfg.data.vocab_size:,}-token tokenizer instead (N, x and r do not depend on it; "
            f"data.vocab_size={vocab} trains a tokenizer of the preset's size)",
            flush=True,
        )
        cfg.model.vocab_size = None


def main(cfg: RunConfig) -> RunRecord:
    from archsearch.train import train

    overrides = cli.task_overrides()
    sweep.check_jobs([(overrides, cfg)], overrides, multirun=False)
    _use_corpus_vocabulary(cfg)
    run_dir = cli.output_dir()
    finished = (run_dir / RECORD_FILE).exists()
    record = train(cfg, run_dir)
    if record.status == "diverged":
        print(
            f"{record.run_id}: diverged at step {record.diverged_at_step} (last finite training "
            f"loss {record.last_finite_loss}): recorded as status diverged; lower optim.lr and "
            "train under a new name="
        )
        return record
    entropy = record.unigram_entropy or float("nan")
    status = "finished earlier, skipped" if finished else "trained"
    print(
        f"{record.run_id} ({status}): N={record.n_params:,} D={record.train_tokens:,} "
        f"val_loss={record.final_val_loss:.4f} nats (unigram entropy {entropy:.4f}), "
        f"{record.wall_time_s:.0f} s, {record.tokens_per_s:,.0f} tokens/s",
        flush=True,
    )
    return record


cli.register_run_groups()

if __name__ == "__main__":
    cli.run("train", main, __doc__ or "")
