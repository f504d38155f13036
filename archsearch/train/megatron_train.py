"""Training with megatron-core on CUDA GPUs: process groups from SLURM, DDP, the distributed
optimizer and dist_checkpointing, with the torch backend's data, evaluation, record and resume.

The model itself (config translation, layer specs, FP8 guard) is in ``megatron_backend``; megatron
is imported inside functions only.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import torch

from archsearch.arch import ArchSpec, steps_for, train_flops_per_token
from archsearch.config import ResolvedArch, RunConfig
from archsearch.data import Corpus
from archsearch.data.batches import eval_batches, train_batch
from archsearch.errors import ConfigError
from archsearch.records import RunRecord, write_record, write_text_atomic
from archsearch.track import make_tracker
from archsearch.train.megatron_backend import build_gpt_model, forward
from archsearch.train.schedule import lr_at
from archsearch.train.setup import micro_batches_per_step
from archsearch.train.speed import Speedometer, peak_flops_per_s

CKPT_DIR = "megatron_ckpt"  # dist_checkpointing folders step_XXXXXXXX and a LATEST pointer


def init_distributed(cfg: RunConfig, spec: ArchSpec, device_type: str) -> torch.device:
    """Process group and megatron's TP/PP/DP state (reused if already set up); this rank's device.

    Rendezvous comes from the environment: torchrun's RANK/WORLD_SIZE, else SLURM's (through
    submitit's ``TorchDistributedEnvironment`` when installed), else a single local process.
    """
    import torch.distributed as dist
    from megatron.core import parallel_state, tensor_parallel

    _export_rendezvous_env()
    if device_type == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]) % torch.cuda.device_count())
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    _check_parallel(cfg, spec, dist.get_world_size())
    if not parallel_state.model_parallel_is_initialized():
        parallel_state.initialize_model_parallel(
            tensor_model_parallel_size=cfg.backend.tensor_parallel,
            pipeline_model_parallel_size=cfg.backend.pipeline_parallel,
        )
    if device_type == "cuda":
        tensor_parallel.model_parallel_cuda_manual_seed(cfg.train.seed)
    else:
        from archsearch.train import megatron_cpu

        megatron_cpu.install()
    return device


def _export_rendezvous_env() -> None:
    """Set MASTER_ADDR/PORT, RANK, WORLD_SIZE, LOCAL_RANK unless a launcher already did."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        os.environ.setdefault("LOCAL_RANK", "0")
        return
    if int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        try:
            from submitit.helpers import TorchDistributedEnvironment
        except ImportError as error:
            raise ConfigError(
                "backend=megatron under SLURM takes its rendezvous from submitit: "
                "pip install 'archsearch[slurm]' (or launch with torchrun)"
            ) from error
        # GPUs stay as SLURM bound them; the device index is LOCAL_RANK modulo the visible count
        TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0", WORLD_SIZE="1", LOCAL_RANK="0"
    )


def _check_parallel(cfg: RunConfig, spec: ArchSpec, world_size: int) -> None:
    """TP and PP must divide the world, the heads, the vocabulary, the layers and the batch."""
    tp, pp = cfg.backend.tensor_parallel, cfg.backend.pipeline_parallel
    dp = world_size // (tp * pp) if world_size % (tp * pp) == 0 else 0
    micro = _micro_batch(cfg, max(dp, 1))
    problems = [
        (dp == 0, f"tensor_parallel x pipeline_parallel = {tp * pp} must divide {world_size} GPUs"),
        (spec.n_kv_heads % tp != 0, f"tensor_parallel={tp} must divide n_kv_heads"),
        (spec.vocab_size % tp != 0, f"tensor_parallel={tp} must divide vocab_size"),
        (spec.n_layers % pp != 0, f"pipeline_parallel={pp} must divide n_layers"),
        (
            cfg.train.batch_size % (max(dp, 1) * micro) != 0,
            "data-parallel ranks x "
            f"micro_batch_size={micro} must divide train.batch_size={cfg.train.batch_size}",
        ),
    ]
    for failed, message in problems:
        if failed:
            raise ConfigError(f"backend={cfg.backend.name}: {message}")


def train_megatron(cfg: RunConfig, run_dir: Path, corpus: Corpus, arch: ResolvedArch) -> RunRecord:
    """Train on CUDA GPUs with megatron-core; the same batches, eval set and record as ``train``.

    Every rank draws the global batch of ``train.batch_size`` rows from (seed, step) and keeps its
    data-parallel share; rank 0 writes ``metrics.jsonl`` and ``record.json``. Checkpoints
    (``dist_checkpointing``) go to ``run_dir/megatron_ckpt`` and a rerun resumes from the latest.
    """
    import torch.distributed as dist
    from megatron.core import parallel_state

    from archsearch.train.loop import make_record

    if not torch.cuda.is_available() or cfg.train.device == "cpu":
        raise ConfigError(
            "backend=megatron trains on CUDA GPUs (megatron's DDP, optimizer and checkpointing "
            "need CUDA): use backend=torch on this machine"
        )
    tcfg = cfg.train
    device = init_distributed(cfg, arch.spec, "cuda")
    try:
        model, optimizer = _build_training(arch.spec, cfg, device)
        step, elapsed_s, row = _load_latest(run_dir, model, optimizer)
        is_rank0 = dist.get_rank() == 0
        tracker = make_tracker(cfg.tracker, run_dir, resume_step=step) if is_rank0 else None
        validation = eval_batches(corpus.val, tcfg.batch_size, tcfg.seq_len, tcfg.eval_tokens)
        rows_per_step = micro_batches_per_step(tcfg) * tcfg.batch_size  # train.global_batch_tokens
        tokens_per_step = rows_per_step * tcfg.seq_len
        total_steps = steps_for(arch.train_tokens, tokens_per_step)
        speed = Speedometer(
            train_flops_per_token(arch.spec, tcfg.seq_len),
            peak_flops_per_s(device, fp8=cfg.backend.fp8 is not None),
        )
        started = time.perf_counter()
        while step < total_steps:
            lr = lr_at(step, total_steps, cfg.optim)
            for group in optimizer.param_groups:
                group["lr"] = lr
            model.zero_grad_buffer()
            optimizer.zero_grad()
            batch = train_batch(corpus.train, rows_per_step, tcfg.seq_len, tcfg.seed, step)
            with speed.timing(tokens_per_step, device):
                loss_sum, n_tokens = _run_batch(model, batch, cfg, device, False).tolist()
                _, grad_norm, _ = optimizer.step()
            step += 1
            row = {
                "step": step,
                "tokens": step * tokens_per_step,
                "train_loss": loss_sum / n_tokens,
                "lr": lr,
                "grad_norm": float(grad_norm or 0.0),
            }
            if step % tcfg.eval_every_steps == 0 or step == total_steps:
                row["val_loss"] = _evaluate(model, validation, cfg, device)
            if tracker is not None and (step % tcfg.log_every_steps == 0 or "val_loss" in row):
                row |= {"elapsed_s": elapsed_s + time.perf_counter() - started, **speed.read()}
                tracker.log(row)
            if step % tcfg.ckpt_every_steps == 0 or step == total_steps:
                now_s = elapsed_s + time.perf_counter() - started
                _save(run_dir, model, optimizer, step, now_s, row)
        elapsed_s += time.perf_counter() - started
        record = make_record(
            cfg, arch, corpus, run_dir, total_steps * tokens_per_step, row, elapsed_s, device, speed
        )
        if tracker is not None:
            write_record(run_dir, record)
            tracker.summary(record.to_dict())
            tracker.close()
        return record
    finally:
        parallel_state.destroy_model_parallel()
        dist.destroy_process_group()


def _build_training(spec: ArchSpec, cfg: RunConfig, device: torch.device) -> tuple[Any, Any]:
    """The GPTModel in megatron's Float16Module (bf16) and DDP, and its distributed AdamW."""
    from megatron.core.distributed import DistributedDataParallel, DistributedDataParallelConfig
    from megatron.core.distributed.finalize_model_grads import finalize_model_grads
    from megatron.core.optimizer import OptimizerConfig, get_megatron_optimizer
    from megatron.core.transformer.module import Float16Module

    torch.manual_seed(cfg.train.seed)
    gpt = build_gpt_model(spec, cfg, device)
    config = gpt.config
    if config.bf16:
        gpt = Float16Module(config, gpt)
    # megatron's DDP leaves gradients in param.main_grad: only its own optimizer reads them
    model = DistributedDataParallel(
        config,
        DistributedDataParallelConfig(grad_reduce_in_fp32=True, use_distributed_optimizer=True),
        gpt,
    )
    optim = cfg.optim
    optimizer = get_megatron_optimizer(
        OptimizerConfig(
            optimizer="adam",
            lr=optim.lr,
            min_lr=optim.lr * optim.min_lr_ratio,
            weight_decay=optim.weight_decay,  # 1-D params (norms) exempt, as in make_optimizer
            adam_beta1=optim.beta1,
            adam_beta2=optim.beta2,
            adam_eps=optim.eps,
            clip_grad=optim.grad_clip,
            bf16=config.bf16,
            params_dtype=config.params_dtype,
            use_distributed_optimizer=True,
        ),
        [model],
    )
    config.finalize_model_grads_func = finalize_model_grads
    config.no_sync_func = model.no_sync
    config.grad_scale_func = optimizer.scale_loss
    return model, optimizer


def _micro_batch(cfg: RunConfig, data_parallel: int) -> int:
    """Rows per micro-batch on one rank: backend.micro_batch_size, else train.batch_size split
    over the data-parallel ranks (a step of several micro-batches when global_batch_tokens asks)."""
    return cfg.backend.micro_batch_size or max(cfg.train.batch_size // data_parallel, 1)


def _run_batch(
    model: Any,
    batch: tuple[torch.Tensor, torch.Tensor],
    cfg: RunConfig,
    device: torch.device,
    forward_only: bool,
) -> torch.Tensor:
    """Forward (and backward) this rank's share of a batch; returns (loss sum, tokens), world-wide.

    A data-parallel rank's share is split into micro-batches of ``backend.micro_batch_size``
    (micro-batches of one row where it does not divide a ragged last validation batch).
    """
    from megatron.core import parallel_state
    from megatron.core.pipeline_parallel import get_forward_backward_func

    dp_rank = parallel_state.get_data_parallel_rank()
    inputs, targets = (
        t.tensor_split(parallel_state.get_data_parallel_world_size())[dp_rank] for t in batch
    )
    micro = _micro_batch(cfg, parallel_state.get_data_parallel_world_size())
    micro = micro if len(inputs) % micro == 0 else 1
    chunks = iter(list(zip(inputs.split(micro), targets.split(micro), strict=True)))

    def forward_step(data_iterator: Any, step_model: Any) -> tuple[torch.Tensor, Any]:
        tokens, labels = (t.to(device, non_blocking=True) for t in next(data_iterator))
        return forward(step_model, tokens, labels), _loss_sum

    outputs = get_forward_backward_func()(
        forward_step_func=forward_step,
        data_iterator=chunks,
        model=[model],
        num_microbatches=len(inputs) // micro,
        seq_length=inputs.shape[1],
        micro_batch_size=micro,
        forward_only=forward_only,
    )
    # Only last-stage ranks hold losses, each TP rank the same: the TP copies cancel in sum / count.
    total = torch.zeros(2, dtype=torch.float64, device=device)
    for out in outputs:
        total += out["lm_loss"]
    torch.distributed.all_reduce(total)
    return total


def _loss_sum(
    per_token: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Summed next-token loss and token count of a micro-batch; the schedule takes the mean."""
    loss = per_token.float().sum()
    count = torch.tensor(per_token.numel(), dtype=torch.int, device=per_token.device)
    return loss, count, {"lm_loss": torch.stack((loss.detach(), count.float())).double()}


@torch.no_grad()
def _evaluate(
    model: Any,
    batches: list[tuple[torch.Tensor, torch.Tensor]],
    cfg: RunConfig,
    device: torch.device,
) -> float:
    """Mean next-token loss over the torch backend's fixed validation windows."""
    model.eval()
    total = sum(_run_batch(model, batch, cfg, device, forward_only=True) for batch in batches)
    model.train()
    return (total[0] / total[1]).item()


def _sharded_state(model: Any, optimizer: Any, is_loading: bool) -> dict[str, Any]:
    """The model's and optimizer's sharded state dicts, for ``dist_checkpointing``."""
    from megatron.core.utils import unwrap_model

    model_state = unwrap_model(model).sharded_state_dict()
    return {
        "model": model_state,
        "optimizer": optimizer.sharded_state_dict(model_state, is_loading=is_loading),
    }


def _save(
    run_dir: Path, model: Any, optimizer: Any, step: int, elapsed_s: float, row: dict[str, float]
) -> None:
    """Write a ``dist_checkpointing`` folder, then point ``LATEST`` at it (atomic rename)."""
    import torch.distributed as dist
    from megatron.core import dist_checkpointing

    root = run_dir / CKPT_DIR
    folder = root / f"step_{step:08d}"
    if dist.get_rank() == 0:
        shutil.rmtree(folder, ignore_errors=True)  # a save cut off before LATEST moved
        folder.mkdir(parents=True)
    dist.barrier()
    state = _sharded_state(model, optimizer, is_loading=False)
    dist_checkpointing.save(
        {**state, "step": step, "elapsed_s": elapsed_s, "row": row}, str(folder)
    )
    dist.barrier()
    if dist.get_rank() == 0:
        write_text_atomic(root / "LATEST", folder.name)
        for old in root.glob("step_*"):
            if old != folder:
                shutil.rmtree(old, ignore_errors=True)


def _load_latest(run_dir: Path, model: Any, optimizer: Any) -> tuple[int, float, dict[str, float]]:
    """Resume from ``LATEST`` if there is one; returns (step, elapsed seconds so far, that
    step's metrics row), as ``loop._restore`` does."""
    from megatron.core import dist_checkpointing
    from megatron.core.utils import unwrap_model

    pointer = run_dir / CKPT_DIR / "LATEST"
    if not pointer.exists():
        return 0, 0.0, {}
    template = _sharded_state(model, optimizer, is_loading=True)
    state = dist_checkpointing.load(template, str(pointer.parent / pointer.read_text().strip()))
    unwrap_model(model).load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return state["step"], state["elapsed_s"], state["row"]
