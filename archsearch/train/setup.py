"""Run set-up helpers: device and precision choice, optimizer, run metadata."""

from __future__ import annotations

import subprocess
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import torch

from archsearch.config import OptimConfig, TrainConfig


class ConfigError(ValueError):
    """A training setting that cannot work here; the message says what to change."""


def pick_device(cfg: TrainConfig) -> torch.device:
    """``train.device``: auto picks CUDA when present, else CPU."""
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"train.device={cfg.device} but no CUDA device here: use train.device=cpu"
        )
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


def make_optimizer(model: torch.nn.Module, cfg: OptimConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only (not norms)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)


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
