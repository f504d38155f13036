"""``train(cfg, run_dir) -> RunRecord``: one run, readable top to bottom, resumable by construction.

A run directory holds ``checkpoint.pt`` (latest state, written atomically), ``metrics.jsonl`` and,
once finished, ``record.json``. Calling ``train`` again on the same directory resumes from the
checkpoint, or returns the finished record at once; batches depend only on (seed, step), so a
resumed run follows the uninterrupted one's loss sequence.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm import tqdm

from archsearch.arch import describe, steps_for, train_flops, train_flops_per_token
from archsearch.config import ResolvedArch, RunConfig, resolve_arch
from archsearch.data import Corpus, prepare
from archsearch.data.batches import eval_batches, train_batch
from archsearch.errors import ConfigError
from archsearch.model import Transformer
from archsearch.records import RECORD_FILE, RunRecord, read_record, write_record
from archsearch.track import make_tracker
from archsearch.train.checkpoint import load_checkpoint, save_checkpoint
from archsearch.train.schedule import lr_at
from archsearch.train.setup import (
    autocast_for,
    git_revision,
    make_optimizer,
    micro_batches_per_step,
    pick_device,
    prepare_model,
    resolve_perf,
)
from archsearch.train.speed import Speedometer, peak_flops_per_s

Batches = list[tuple[torch.Tensor, torch.Tensor]]
LossFn = Callable[..., torch.Tensor]  # Transformer.loss, possibly compiled


def train(cfg: RunConfig, run_dir: str | Path) -> RunRecord:
    """Train ``cfg``'s model on its budget and write ``record.json`` into ``run_dir``.

    Returns:
        The run's record; the finished record at once if ``run_dir`` already holds one.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if (run_dir / RECORD_FILE).exists():
        return read_record(run_dir)
    if cfg.backend.name not in ("torch", "megatron"):
        raise ConfigError(f"backend={cfg.backend.name!r} is unknown: use backend=torch or megatron")
    tcfg = cfg.train
    if tcfg.num_threads:
        torch.set_num_threads(tcfg.num_threads)
    corpus = prepare(cfg.data)
    arch = resolve_arch(cfg.model, cfg.budget, corpus.vocab_size)
    if arch.spec.vocab_size != corpus.vocab_size:
        raise ConfigError(
            f"model.vocab_size={arch.spec.vocab_size} differs from the tokenizer's "
            f"{corpus.vocab_size}: set model.vocab_size=null or data.vocab_size to match"
        )
    if cfg.backend.name == "megatron":
        from archsearch.train.megatron_train import train_megatron

        return train_megatron(cfg, run_dir, corpus, arch)
    device = pick_device(tcfg)
    perf = resolve_perf(cfg.perf, device)
    micro_batches = micro_batches_per_step(tcfg)
    tokens_per_step = micro_batches * tcfg.batch_size * tcfg.seq_len
    total_steps = steps_for(arch.train_tokens, tokens_per_step)
    torch.manual_seed(tcfg.seed)
    model = prepare_model(Transformer(arch.spec).to(device), perf, cfg.backend, device)
    optimizer = make_optimizer(model, cfg.optim, fused=bool(perf.fused_adamw))
    step, elapsed_s, row = _restore(run_dir, model, optimizer)
    loss_fn = torch.compile(model.loss) if perf.compile else model.loss
    tracker = make_tracker(cfg.tracker, run_dir, resume_step=step)
    validation = eval_batches(corpus.val, tcfg.batch_size, tcfg.seq_len, tcfg.eval_tokens)
    autocast = autocast_for(tcfg, device)
    speed = Speedometer(
        train_flops_per_token(arch.spec, tcfg.seq_len),
        peak_flops_per_s(device, fp8=cfg.backend.fp8 is not None),
    )
    bar = tqdm(
        total=total_steps,
        initial=step,
        disable=not tcfg.progress,
        unit="step",
        desc=f"{arch.spec.name} N={arch.budget_n_params:,}",
    )
    started = time.perf_counter()
    while step < total_steps:
        lr = lr_at(step, total_steps, cfg.optim)
        inputs, targets = train_batch(
            corpus.train, micro_batches * tcfg.batch_size, tcfg.seq_len, tcfg.seed, step
        )
        with speed.timing(tokens_per_step, device):
            loss, grad_norm = _train_step(
                model,
                loss_fn,
                optimizer,
                inputs.split(tcfg.batch_size),
                targets.split(tcfg.batch_size),
                lr,
                cfg.optim.grad_clip,
                perf.loss_chunk_tokens,
                autocast,
                device,
            )
        step += 1
        row = {
            "step": step,
            "tokens": step * tokens_per_step,
            "train_loss": loss,
            "lr": lr,
            "grad_norm": grad_norm,
        }
        if step % tcfg.eval_every_steps == 0 or step == total_steps:
            row["val_loss"] = evaluate(model, loss_fn, validation, autocast, device)
        if step % tcfg.log_every_steps == 0 or "val_loss" in row:
            row |= {"elapsed_s": elapsed_s + time.perf_counter() - started, **speed.read()}
            tracker.log(row)
            bar.set_postfix(speed.postfix(row))
        bar.update(1)
        if step % tcfg.ckpt_every_steps == 0 or step == total_steps:
            save_checkpoint(
                run_dir,
                {
                    "model": model.state_dict(),
                    "step": step,
                    "optimizer": optimizer.state_dict(),
                    "elapsed_s": elapsed_s + time.perf_counter() - started,
                    "row": row,
                },
            )
    bar.close()
    elapsed_s += time.perf_counter() - started
    record = make_record(
        cfg, arch, corpus, run_dir, total_steps * tokens_per_step, row, elapsed_s, device, speed
    )
    write_record(run_dir, record)
    tracker.summary(record.to_dict())
    tracker.close()
    return record


def _train_step(
    model: Transformer,
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    inputs: tuple[torch.Tensor, ...],
    targets: tuple[torch.Tensor, ...],
    lr: float,
    grad_clip: float,
    chunk_tokens: int | None,
    autocast: AbstractContextManager[object],
    device: torch.device,
) -> tuple[float, float]:
    """One optimizer step over equal micro-batches (gradient accumulation); (mean loss, norm)."""
    total = torch.zeros((), device=device)
    for micro_inputs, micro_targets in zip(inputs, targets, strict=True):
        with autocast:
            loss = loss_fn(micro_inputs.to(device), micro_targets.to(device), chunk_tokens)
        (loss / len(inputs)).backward()
        total += loss.detach()
    for group in optimizer.param_groups:
        group["lr"] = lr
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return (total / len(inputs)).item(), grad_norm.item()


@torch.no_grad()
def evaluate(
    model: Transformer,
    loss_fn: LossFn,
    batches: Batches,
    autocast: AbstractContextManager[object],
    device: torch.device,
) -> float:
    """Mean next-token loss in nats over the fixed validation windows."""
    model.eval()
    total = 0.0
    for inputs, targets in batches:
        with autocast:
            total += loss_fn(inputs.to(device), targets.to(device)).item() * len(inputs)
    model.train()
    return total / sum(len(inputs) for inputs, _ in batches)


def _restore(
    run_dir: Path, model: Transformer, optimizer: torch.optim.Optimizer
) -> tuple[int, float, dict[str, float]]:
    """Load the run directory's checkpoint if any; returns (step, elapsed seconds so far, the
    metrics row of that step: the record's figures when the checkpoint is the last step's)."""
    state = load_checkpoint(run_dir)
    if state is None:
        return 0, 0.0, {}
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return state["step"], state["elapsed_s"], state["row"]


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
) -> RunRecord:
    """The run's record (shared by the torch and megatron backends)."""
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
        final_val_loss=last_row["val_loss"],
        final_train_loss=last_row["train_loss"],
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
        created_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        config=asdict(cfg),
    )
