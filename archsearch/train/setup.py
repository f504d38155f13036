"""Run set-up helpers: device and precision choice, optimizer, run metadata."""

from __future__ import annotations

import os
import subprocess
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from pathlib import Path

import torch

from archsearch.arch import ArchSpec, count_params
from archsearch.config import BackendConfig, OptimConfig, PerfConfig, TrainConfig
from archsearch.errors import ConfigError
from archsearch.train.distributed import launched_processes, local_rank


def pick_device(cfg: TrainConfig) -> torch.device:
    """``train.device``: auto picks CUDA when present, else CPU; with several processes each
    takes the GPU of its local rank (modulo the GPUs it sees)."""
    if cfg.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"train.device={cfg.device} but no CUDA device here: use train.device=cpu"
        )
    if device.type == "cuda" and device.index is None and launched_processes() > 1:
        device = torch.device("cuda", local_rank() % torch.cuda.device_count())
    return device


def autocast_for(cfg: TrainConfig, device: torch.device) -> AbstractContextManager[object]:
    """bf16 autocast (fp32 master weights) on CUDA by default; plain fp32 on CPU."""
    precision = cfg.precision
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    if precision == "fp32":
        return nullcontext()
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    raise ConfigError(f"train.precision={cfg.precision!r} is unknown: use auto, fp32 or bf16")


def make_optimizer(
    model: torch.nn.Module, cfg: OptimConfig, fused: bool = False
) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only (not norms); ``fused`` for the CUDA kernel."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(
        groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, fused=fused or None
    )


def resolve_perf(cfg: PerfConfig, device: torch.device) -> PerfConfig:
    """Fill the auto (None) knobs: on for CUDA, off elsewhere."""
    on_cuda = device.type == "cuda"
    return replace(
        cfg,
        compile=on_cuda if cfg.compile is None else cfg.compile,
        fused_adamw=on_cuda if cfg.fused_adamw is None else cfg.fused_adamw,
    )


def prepare_model(
    model: torch.nn.Module, perf: PerfConfig, backend: BackendConfig, device: torch.device
) -> torch.nn.Module:
    """Apply the speed knobs that change modules (TF32, activation checkpointing, FP8)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = perf.tf32
        torch.backends.cudnn.allow_tf32 = perf.tf32
    model.activation_checkpointing = perf.activation_checkpointing
    if backend.fp8 is not None:
        if backend.fp8 != "torchao":
            raise ConfigError(
                f"backend.fp8={backend.fp8!r} is Transformer Engine FP8, for backend=megatron; "
                "the torch backend's FP8 is fp8=torchao"
            )
        from archsearch.train.fp8 import convert_to_fp8

        model = convert_to_fp8(model, backend.fp8_recipe, device)
    return model


def memory_estimate_bytes(
    spec: ArchSpec, cfg: TrainConfig, perf: PerfConfig, device: torch.device
) -> dict[str, int]:
    """A lower estimate of training memory: fp32 weights, gradients and AdamW's two moments
    (16 bytes a parameter) and the activations kept for the backward pass of one micro-batch."""
    params = count_params(spec).total
    tokens = cfg.batch_size * cfg.seq_len
    bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda")
    value_bytes = 2 if bf16 else 4
    # per token and layer: the block input (all that activation checkpointing keeps), else norms,
    # q/k/v, attention output and residuals (~8 d_model) plus SwiGLU's gate, up and product
    per_layer = spec.d_model if perf.activation_checkpointing else 8 * spec.d_model + 3 * spec.d_ff
    logit_tokens = min(tokens, perf.loss_chunk_tokens or tokens)
    return {
        "weights, gradients and AdamW state": 16 * params,
        "activations": tokens * spec.n_layers * per_layer * value_bytes,
        "logits and their gradient": 2 * 4 * logit_tokens * spec.vocab_size,
    }


def device_memory_bytes(device: torch.device) -> int | None:
    """The device's total memory (CUDA), the machine's RAM (CPU), or None where unknown."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    if device.type == "cpu":
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return None


def check_memory(spec: ArchSpec, cfg: TrainConfig, perf: PerfConfig, device: torch.device) -> None:
    """Refuse, before building the model, a run whose memory estimate exceeds the device.

    Raises:
        ConfigError: with the estimate, its parts and the device's memory.
    """
    available = device_memory_bytes(device)
    parts = memory_estimate_bytes(spec, cfg, perf, device)
    needed = sum(parts.values())
    if available is None or needed <= available:
        return
    listed = ", ".join(f"{v / 2**30:,.1f} GiB {k}" for k, v in parts.items())
    raise ConfigError(
        f"{spec.name} ({count_params(spec).total:,} parameters) needs at least "
        f"{needed / 2**30:,.1f} GiB to train ({listed}) at train.batch_size={cfg.batch_size} x "
        f"train.seq_len={cfg.seq_len}, but {device} has {available / 2**30:,.1f} GiB: choose a "
        "smaller model, or lower train.batch_size (train.global_batch_tokens keeps the step's "
        "tokens) or set perf.activation_checkpointing=true"
    )


def micro_batches_per_step(cfg: TrainConfig) -> int:
    """Gradient-accumulation factor k = global_batch_tokens / (batch_size x seq_len)."""
    micro_tokens = cfg.batch_size * cfg.seq_len
    if cfg.global_batch_tokens is None:
        return 1
    k, rest = divmod(cfg.global_batch_tokens, micro_tokens)
    if k < 1 or rest:
        raise ConfigError(
            f"train.global_batch_tokens={cfg.global_batch_tokens:,} must be a whole multiple of "
            f"a micro-batch, train.batch_size x train.seq_len = {micro_tokens:,}"
        )
    return k


def git_revision() -> str:
    """The archsearch checkout's commit (with ``-dirty`` if modified), or ``unknown``."""
    root = Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return rev or "unknown"
