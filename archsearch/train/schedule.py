"""Learning-rate schedules: linear warmup, then cosine or warmup-stable-decay (WSD)."""

from __future__ import annotations

import math

from archsearch.config import OptimConfig


def lr_at(step: int, total_steps: int, cfg: OptimConfig) -> float:
    """Learning rate for optimizer step ``step`` (0-based) of ``total_steps``."""
    warmup = max(1, round(cfg.warmup_fraction * total_steps))
    floor = cfg.lr * cfg.min_lr_ratio
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    if cfg.schedule == "cosine":
        progress = (step - warmup) / max(1, total_steps - warmup)
        return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    if cfg.schedule == "wsd":
        decay_start = total_steps - round(cfg.decay_fraction * total_steps)
        if step < decay_start:
            return cfg.lr
        progress = (step - decay_start) / max(1, total_steps - decay_start)
        return cfg.lr + (floor - cfg.lr) * min(1.0, progress)
    raise ValueError(f"optim.schedule={cfg.schedule!r} is unknown: use cosine or wsd")
