"""Training speed: tokens/s, achieved model FLOP/s and MFU against the device's datasheet peak."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from archsearch.throughput.hardware import profile_for_device


def peak_flops_per_s(device: torch.device, fp8: bool = False) -> float | None:
    """Dense bf16 (or fp8) peak of a known CUDA device (issue 4's profiles); None on CPU."""
    if device.type != "cuda":
        return None
    profile = profile_for_device(torch.cuda.get_device_name(device))
    if profile is None:
        return None
    dtype = "fp8" if fp8 and "fp8" in profile.peak_flops_per_s else "bf16"
    return profile.peak_for(dtype)


class Speedometer:
    """Accumulates step wall times; ``read`` gives the window since the last read, then resets.

    Args:
        flops_per_token: model FLOPs per training token (``arch.train_flops_per_token``).
        peak_flops_per_s: the device's peak, or None where unknown (no MFU then).
    """

    def __init__(self, flops_per_token: int, peak_flops_per_s: float | None) -> None:
        self.flops_per_token, self.peak = flops_per_token, peak_flops_per_s
        self.window_tokens = self.window_s = self.total_tokens = self.total_s = 0.0

    @contextmanager
    def timing(self, tokens: int, device: torch.device) -> Iterator[None]:
        """Time one step of ``tokens`` tokens (synchronising CUDA so the time is real)."""
        start = time.perf_counter()
        yield
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
        self.window_tokens += tokens
        self.window_s += seconds
        self.total_tokens += tokens
        self.total_s += seconds

    def _figures(self, tokens: float, seconds: float) -> dict[str, float]:
        if seconds <= 0:
            return {}
        tokens_per_s = tokens / seconds
        figures = {
            "tokens_per_s": tokens_per_s,
            "achieved_flops_per_s": tokens_per_s * self.flops_per_token,
        }
        if self.peak:
            figures["mfu"] = figures["achieved_flops_per_s"] / self.peak
        return figures

    def read(self) -> dict[str, float]:
        """Speed over the steps since the previous read."""
        figures = self._figures(self.window_tokens, self.window_s)
        self.window_tokens = self.window_s = 0.0
        return figures

    def summary(self) -> dict[str, float]:
        """Speed over every step timed in this process (excludes evaluation and checkpoints)."""
        return self._figures(self.total_tokens, self.total_s)

    @staticmethod
    def postfix(row: dict[str, float]) -> dict[str, str]:
        """The progress bar's figures: losses, tokens/s, TFLOP/s and MFU where known."""
        shown = {k: f"{row[k]:.3f}" for k in ("train_loss", "val_loss") if k in row}
        if "tokens_per_s" in row:
            shown["tok/s"] = f"{row['tokens_per_s']:,.0f}"
            shown["TFLOP/s"] = f"{row['achieved_flops_per_s'] / 1e12:.3g}"
        if "mfu" in row:
            shown["MFU"] = f"{row['mfu']:.2f}"
        return shown
