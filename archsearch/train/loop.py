"""``train(cfg, run_dir) -> RunRecord``: one run, readable top to bottom, resumable by construction.

A run directory holds ``fingerprint.json`` (the config that made it and a hash of its result
fields), ``checkpoint.pt`` (latest state, written atomically; the one before as
``checkpoint.prev.pt``), ``metrics.jsonl`` and, once finished or diverged, ``record.json``.
Calling ``train`` again on the same directory resumes from the checkpoint, returns the record at
once, or refuses when another config made the directory; batches depend only on (seed, step), so
a resumed run follows the uninterrupted one's loss sequence to the last digit.
"""

from __future__ import annotations

import datetime
import importlib.util
import math
import os
import shutil
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm import tqdm

from archsearch.arch import describe, steps_for, train_flops, train_flops_per_token
from archsearch.config import (
    NOT_RESULT_FIELDS,
    ResolvedArch,
    RunConfig,
    check_run_config,
    resolve_arch,
    run_fields,
)
from archsearch.data import Corpus, prepare
from archsearch.data.batches import eval_batches, train_batch
from archsearch.errors import ConfigError, StateError
from archsearch.model import Transformer
from archsearch.records import (
    METRICS_FILE,
    RECORD_FILE,
    RunRecord,
    read_record,
    remove_orphaned_temporaries,
    write_record,
)
from archsearch.records.state import (
    FINGERPRINT_FILE,
    check_fingerprint,
    fingerprint_of,
    locked,
    raise_other_config,
    result_fields,
)
from archsearch.track import make_tracker
from archsearch.train.checkpoint import (
    CHECKPOINT_FILE,
    PREVIOUS_FILE,
    RESTART,
    first_line,
    load_checkpoint,
    save_checkpoint,
)
from archsearch.train.megatron_train import CKPT_DIR as MEGATRON_CKPT_DIR
from archsearch.train.schedule import lr_at
from archsearch.train.setup import (
    autocast_for,
    check_memory,
    git_revision,
    make_optimizer,
    micro_batches_per_step,
    pick_device,
    prepare_model,
    resolve_perf,
)
from archsearch.train.speed import Speedometer, peak_flops_per_s

WAYS_OUT = (
    "give this run a new name=, or rerun with train.resume=restart to discard it and train from "
    "step 0"
)
RUN_FILES = (RECORD_FILE, METRICS_FILE, FINGERPRINT_FILE, CHECKPOINT_FILE, PREVIOUS_FILE)
Batches = list[tuple[torch.Tensor, torch.Tensor]]
LossFn = Callable[..., torch.Tensor]  # Transformer.loss, possibly compiled


def train(cfg: RunConfig, run_dir: str | Path) -> RunRecord:
    """Train ``cfg``'s model on its budget and write ``record.json`` into ``run_dir``.

    The directory is locked for the run and fingerprinted by ``cfg``'s result fields: a rerun
    under another config is refused (unless ``train.resume=restart``, which discards the old run).

    Returns:
        The run's record; the finished (or diverged) record at once if ``run_dir`` holds one.

    Raises:
        StateError: the directory is in use, was made by another config, or its state is damaged.
        ConfigError: a setting that cannot work (the message names it).
    """
    run_dir = Path(run_dir)
    check_run_config(cfg)
    if _rank() != 0:  # megatron's other ranks: rank 0 holds the lock and checks the state
        return _train_checked(cfg, run_dir, fingerprint_of(run_fields(cfg)))
    with locked(run_dir, "run directory"):
        remove_orphaned_temporaries(run_dir)
        if cfg.train.resume == "restart" or not _holds_results(run_dir):
            _discard(run_dir)  # nothing trained yet (e.g. refused before step 1): nothing to keep
        config = asdict(cfg)
        fingerprint = check_fingerprint(run_dir, config, run_fields(cfg), WAYS_OUT)
        if (run_dir / RECORD_FILE).exists():
            record = read_record(run_dir)
            made_by = result_fields(record.config, NOT_RESULT_FIELDS)
            if fingerprint_of(made_by) != fingerprint:
                raise_other_config(run_dir / RECORD_FILE, made_by, run_fields(cfg), WAYS_OUT)
            return record
        return _train_checked(cfg, run_dir, fingerprint)


def _megatron_core_installed() -> bool:
    try:
        return importlib.util.find_spec("megatron.core") is not None
    except ModuleNotFoundError:  # no megatron package at all
        return False


def _rank() -> int:
    return int(os.environ.get("RANK") or os.environ.get("SLURM_PROCID") or 0)


def _holds_results(run_dir: Path) -> bool:
    """Whether the directory holds a checkpoint, metrics or a record (beyond its fingerprint)."""
    kept = [n for n in RUN_FILES if n != FINGERPRINT_FILE] + [MEGATRON_CKPT_DIR]
    return any((run_dir / name).exists() for name in kept)


def _discard(run_dir: Path) -> None:
    """``train.resume=restart``: remove the run's state so that it trains from step 0."""
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    shutil.rmtree(run_dir / MEGATRON_CKPT_DIR, ignore_errors=True)


def _train_checked(cfg: RunConfig, run_dir: Path, fingerprint: str) -> RunRecord:
    """``train`` once the run directory is known to be this config's and unfinished."""
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
        if not _megatron_core_installed():
            raise ConfigError(
                "backend=megatron needs megatron-core: pip install 'archsearch[megatron]' "
                "(or train with backend=torch)"
            )
        from archsearch.train.megatron_train import train_megatron

        return train_megatron(cfg, run_dir, corpus, arch)
    device = pick_device(tcfg)
    perf = resolve_perf(cfg.perf, device)
    micro_batches = micro_batches_per_step(tcfg)
    tokens_per_step = micro_batches * tcfg.batch_size * tcfg.seq_len
    total_steps = steps_for(arch.train_tokens, tokens_per_step)
    check_memory(arch.spec, tcfg, perf, device)
    torch.manual_seed(tcfg.seed)
    model = prepare_model(Transformer(arch.spec).to(device), perf, cfg.backend, device)
    optimizer = make_optimizer(model, cfg.optim, fused=bool(perf.fused_adamw))
    step, elapsed_s, row = _restore(run_dir, fingerprint, model, optimizer)
    if step:
        print(f"{run_dir}: resuming from step {step} ({CHECKPOINT_FILE})", flush=True)
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
    last_finite_loss = row.get("train_loss")
    diverged_at = None
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
        if not finite_losses(row):
            diverged_at = step  # a result, not a crash: the record says so and reruns return it
        if step % tcfg.log_every_steps == 0 or "val_loss" in row or diverged_at:
            row |= {"elapsed_s": elapsed_s + time.perf_counter() - started, **speed.read()}
            tracker.log(row)
            bar.set_postfix(speed.postfix(row))
        bar.update(1)
        if diverged_at:
            break
        last_finite_loss = loss
        if step % tcfg.ckpt_every_steps == 0 or step == total_steps:
            save_checkpoint(
                run_dir,
                {
                    "fingerprint": fingerprint,
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
        cfg,
        arch,
        corpus,
        run_dir,
        step * tokens_per_step,
        row,
        elapsed_s,
        device,
        speed,
        diverged_at=diverged_at,
        last_finite_loss=last_finite_loss,
    )
    write_record(run_dir, record)
    tracker.summary(record.to_dict())
    tracker.close()
    return record


def finite_losses(row: dict[str, float]) -> bool:
    """Whether the metrics row's training and validation losses are finite (not diverged)."""
    return all(math.isfinite(row[k]) for k in ("train_loss", "val_loss") if k in row)


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
    run_dir: Path, fingerprint: str, model: Transformer, optimizer: torch.optim.Optimizer
) -> tuple[int, float, dict[str, float]]:
    """Load the run directory's checkpoint if any; returns (step, elapsed seconds so far, the
    metrics row of that step: the record's figures when the checkpoint is the last step's).

    Raises:
        StateError: the checkpoint holds another shape's weights (the message names the file).
    """
    state = load_checkpoint(run_dir, fingerprint)
    if state is None:
        return 0, 0.0, {}
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as e:
        raise StateError(
            f"the checkpoint in {run_dir} does not fit this model ({first_line(e)}): {RESTART}"
        ) from e
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
    diverged_at: int | None = None,
    last_finite_loss: float | None = None,
) -> RunRecord:
    """The run's record (shared by the torch and megatron backends); ``diverged_at``: the step
    whose loss was not finite (the record then has status ``diverged`` and no final losses)."""
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
