"""``record.json``'s content for a finished or diverged run: the shape's counts (Sec. 2 of the
paper: non-embedding N, r_mlp_attn, d/sqrt(N)), the tokens and FLOPs (C = 6ND), losses and speed."""

from __future__ import annotations

import datetime
from dataclasses import asdict
from pathlib import Path

import torch

from archsearch.arch import describe, train_flops
from archsearch.config import ResolvedArch, RunConfig
from archsearch.data import Corpus
from archsearch.records import RunRecord
from archsearch.train.setup import git_revision
from archsearch.train.speed import Speedometer


def make_record(
    cfg: RunConfig,
    arch: ResolvedArch,
    corpus: Corpus,
    run_dir: Path,
    tokens: int,
    last_row: dict[str, float],
    elapsed_s: float,
    device: torch.device,
    speed: Speedometer,
    diverged_at: int | None = None,
    last_finite_loss: float | None = None,
) -> RunRecord:
    """The run's record, whichever backend trained it; ``diverged_at``: the step whose loss was
    not finite (the record then has status ``diverged`` and no final losses)."""
    derived = describe(arch.spec)
    timed = speed.summary()
    return RunRecord(
        run_id=run_dir.name,
        arch=arch.spec.to_dict(),
        n_params=int(derived["non_embedding_params"]),
        total_params=int(derived["total_params"]),
        embedding_params=int(derived["embedding_params"] + derived["lm_head_params"]),
        r_mlp_attn=derived["r_mlp_attn"],
        d_over_sqrt_n=derived["d_over_sqrt_n"],
        gqa_group=arch.spec.gqa_group,
        train_tokens=tokens,
        train_flops=train_flops(int(derived["non_embedding_params"]), tokens),
        steps=int(last_row["step"]),
        final_val_loss=None if diverged_at else last_row["val_loss"],
        final_train_loss=None if diverged_at else last_row["train_loss"],
        wall_time_s=elapsed_s,
        tokens_per_s=tokens / elapsed_s if elapsed_s > 0 else 0.0,
        model_flops_per_token=speed.flops_per_token,
        achieved_flops_per_s=timed.get("achieved_flops_per_s"),
        mfu=timed.get("mfu"),
        seed=cfg.train.seed,
        backend=cfg.backend.name,
        device=str(device),
        dataset=corpus.name,
        git_rev=git_revision(),
        unigram_entropy=corpus.unigram_entropy,
        status="diverged" if diverged_at else "completed",
        diverged_at_step=diverged_at,
        last_finite_loss=last_finite_loss if diverged_at else None,
        created_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        config=asdict(cfg),
    )
