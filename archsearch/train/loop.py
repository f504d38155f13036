"""``train(cfg, run_dir) -> RunRecord``: one run, readable top to bottom, resumable by construction.

A run directory holds ``fingerprint.json`` (the config that made it and a hash of its result
fields), ``checkpoint.pt`` (latest state, written atomically; the one before as
``checkpoint.prev.pt``), ``metrics.jsonl`` and, once finished or diverged, ``record.json``.
Calling ``train`` again on the same directory resumes from the checkpoint, returns the record at
once, or refuses when another config made the directory; batches depend only on (seed, step), so
a resumed run follows the uninterrupted one's loss sequence to the last digit.
"""

from __future__ import annotations

import importlib.util
import math
import shutil
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm import tqdm

from archsearch.arch import steps_for, train_flops_per_token
from archsearch.config import (
    ResolvedArch,
    RunConfig,
    check_run_config,
    resolve_arch,
    run_fields,
)
from archsearch.data import Corpus, prepare
from archsearch.data.batches import eval_batches, train_batch
from archsearch.errors import ConfigError
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
)
from archsearch.track import NullTracker, make_tracker
from archsearch.train.backend import Backend
from archsearch.train.checkpoint import CHECKPOINT_FILE, PREVIOUS_FILE
from archsearch.train.distributed import World, joined
from archsearch.train.megatron_train import CKPT_DIR as MEGATRON_CKPT_DIR
from archsearch.train.record import make_record
from archsearch.train.schedule import lr_at
from archsearch.train.setup import micro_batches_per_step, pick_device
from archsearch.train.speed import Speedometer, peak_flops_per_s
from archsearch.train.torch_backend import TorchBackend

WAYS_OUT = (
    "give this run a new name=, or rerun with train.resume=restart to discard it and train from "
    "step 0"
)
RUN_FILES = (RECORD_FILE, METRICS_FILE, FINGERPRINT_FILE, CHECKPOINT_FILE, PREVIOUS_FILE)
BACKENDS = ("torch", "megatron")


def train(cfg: RunConfig, run_dir: str | Path) -> RunRecord:
    """Train ``cfg``'s model on its budget and write ``record.json`` into ``run_dir``.

    Every process of a data-parallel run (torchrun, or SLURM tasks) calls this with the same
    arguments; rank 0 locks the directory and writes. The directory is fingerprinted by ``cfg``'s
    result fields: a rerun under another config is refused (unless ``train.resume=restart``,
    which discards the old run).

    Returns:
        The run's record; the finished (or diverged) record at once if ``run_dir`` holds one.

    Raises:
        StateError: the directory is in use, was made by another config, or its state is damaged.
        ConfigError: a setting that cannot work (the message names it).
    """
    run_dir, tcfg = Path(run_dir), cfg.train
    check_run_config(cfg)
    device = pick_device(tcfg)
    with (
        joined(device, always=cfg.backend.name == "megatron") as world,
        claimed(cfg, run_dir, world) as (fingerprint, finished),
    ):
        if finished is not None:
            return finished
        corpus, arch = _corpus_and_arch(cfg)
        tokens_per_step = micro_batches_per_step(tcfg) * tcfg.batch_size * tcfg.seq_len
        total_steps = steps_for(arch.train_tokens, tokens_per_step)
        with closing(make_backend(cfg, arch, device, world)) as backend:
            step, elapsed_s, row = backend.load(run_dir, fingerprint) or (0, 0.0, {})
            if step and world.writes:
                print(f"{run_dir}: resuming from step {step}", flush=True)
            tracker = make_tracker(cfg.tracker, run_dir, step) if world.writes else NullTracker()
            validation = eval_batches(corpus.val, tcfg.batch_size, tcfg.seq_len, tcfg.eval_tokens)
            speed = _speedometer(cfg, arch, device, world)
            bar = _progress_bar(cfg, arch, total_steps, step, world)
            started = time.perf_counter()
            last_finite_loss, diverged_at = row.get("train_loss"), None
            while step < total_steps:
                lr = lr_at(step, total_steps, cfg.optim)
                batch = train_batch(
                    corpus.train, tokens_per_step // tcfg.seq_len, tcfg.seq_len, tcfg.seed, step
                )
                with speed.timing(tokens_per_step, device):
                    loss, grad_norm = backend.step(*batch, lr)
                step += 1
                row = {"step": step, "tokens": step * tokens_per_step, "train_loss": loss}
                row |= {"lr": lr, "grad_norm": grad_norm}
                if step % tcfg.eval_every_steps == 0 or step == total_steps:
                    row["val_loss"] = backend.evaluate(validation)
                if not finite_losses(row):
                    diverged_at = step  # a result, not a crash: the record says so
                if step % tcfg.log_every_steps == 0 or "val_loss" in row or diverged_at:
                    row |= {"elapsed_s": elapsed_s + time.perf_counter() - started, **speed.read()}
                    tracker.log(row)
                    bar.set_postfix(speed.postfix(row))
                bar.update(1)
                if diverged_at:
                    break
                last_finite_loss = loss
                if step % tcfg.ckpt_every_steps == 0 or step == total_steps:
                    now_s = elapsed_s + time.perf_counter() - started
                    backend.save(run_dir, fingerprint, (step, now_s, row))
            bar.close()
        elapsed_s += time.perf_counter() - started
        record = make_record(
            cfg, arch, corpus, run_dir, step * tokens_per_step, row, elapsed_s, device, speed,
            diverged_at=diverged_at, last_finite_loss=last_finite_loss,
        )  # fmt: skip
        if world.writes:
            write_record(run_dir, record)
        tracker.summary(record.to_dict())
        tracker.close()
        return record


@contextmanager
def claimed(cfg: RunConfig, run_dir: Path, world: World) -> Iterator[tuple[str, RunRecord | None]]:
    """Hold ``run_dir`` for this run: (its config fingerprint, its record if already finished).

    Rank 0 locks the directory and checks it (discarding it on ``train.resume=restart`` or when
    nothing was trained yet) while the other ranks wait.

    Raises:
        StateError: the directory is in use or was made by another config.
    """
    if not world.writes:
        world.barrier()  # rank 0 holds the lock and has checked the directory
        record = read_record(run_dir) if (run_dir / RECORD_FILE).exists() else None
        yield fingerprint_of(run_fields(cfg)), record
        return
    with locked(run_dir, "run directory"):
        remove_orphaned_temporaries(run_dir)
        if cfg.train.resume == "restart" or not _holds_results(run_dir):
            _discard(run_dir)  # nothing trained yet (e.g. refused before step 1): nothing to keep
        fingerprint = check_fingerprint(run_dir, asdict(cfg), run_fields(cfg), WAYS_OUT)
        world.barrier()
        if not (run_dir / RECORD_FILE).exists():
            yield fingerprint, None
            return
        record = read_record(run_dir)
        made_by = run_fields(record.config)
        if fingerprint_of(made_by) != fingerprint:
            raise_other_config(run_dir / RECORD_FILE, made_by, run_fields(cfg), WAYS_OUT)
        yield fingerprint, record


def make_backend(cfg: RunConfig, arch: ResolvedArch, device: torch.device, world: World) -> Backend:
    """The backend ``cfg.backend.name`` names (megatron-core imported only for megatron)."""
    if cfg.backend.name == "torch":
        return TorchBackend(cfg, arch, device, world)
    if not _megatron_core_installed():
        raise ConfigError(
            "backend=megatron needs megatron-core: pip install 'archsearch[megatron]' "
            "(or train with backend=torch)"
        )
    from archsearch.train.megatron_train import MegatronBackend

    return MegatronBackend(cfg, arch, device, world)


def _speedometer(
    cfg: RunConfig, arch: ResolvedArch, device: torch.device, world: World
) -> Speedometer:
    """Tokens/s, FLOP/s and MFU against the peak of all the run's devices."""
    peak = peak_flops_per_s(device, fp8=cfg.backend.fp8 is not None)  # one device's
    flops_per_token = train_flops_per_token(arch.spec, cfg.train.seq_len)
    return Speedometer(flops_per_token, peak and world.size * peak)


def _progress_bar(
    cfg: RunConfig, arch: ResolvedArch, total_steps: int, step: int, world: World
) -> tqdm:
    """The steps' progress bar (rank 0's only), starting at ``step`` on resume."""
    return tqdm(
        total=total_steps,
        initial=step,
        disable=not (cfg.train.progress and world.writes),
        unit="step",
        desc=f"{arch.spec.name} N={arch.budget_n_params:,}",
    )


def finite_losses(row: dict[str, float]) -> bool:
    """Whether the metrics row's training and validation losses are finite (not diverged)."""
    return all(math.isfinite(row[k]) for k in ("train_loss", "val_loss") if k in row)


def _corpus_and_arch(cfg: RunConfig) -> tuple[Corpus, ResolvedArch]:
    """The tokenized corpus and the resolved shape (its vocabulary the tokenizer's)."""
    if cfg.backend.name not in BACKENDS:
        raise ConfigError(f"backend={cfg.backend.name!r} is unknown: use backend=torch or megatron")
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    corpus = prepare(cfg.data)
    arch = resolve_arch(cfg.model, cfg.budget, corpus.vocab_size)
    if arch.spec.vocab_size != corpus.vocab_size:
        raise ConfigError(
            f"model.vocab_size={arch.spec.vocab_size} differs from the tokenizer's "
            f"{corpus.vocab_size}: set model.vocab_size=null or data.vocab_size to match"
        )
    return corpus, arch


def _megatron_core_installed() -> bool:
    try:
        return importlib.util.find_spec("megatron.core") is not None
    except ModuleNotFoundError:  # no megatron package at all
        return False


def _holds_results(run_dir: Path) -> bool:
    """Whether the directory holds a checkpoint, metrics or a record (beyond its fingerprint)."""
    kept = [n for n in RUN_FILES if n != FINGERPRINT_FILE] + [MEGATRON_CKPT_DIR]
    return any((run_dir / name).exists() for name in kept)


def _discard(run_dir: Path) -> None:
    """``train.resume=restart``: remove the run's state so that it trains from step 0."""
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    shutil.rmtree(run_dir / MEGATRON_CKPT_DIR, ignore_errors=True)
