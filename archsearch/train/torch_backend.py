"""The torch backend: ``archsearch.model.Transformer`` with AdamW, data parallel through DDP.

``train.batch_size`` rows form a micro-batch of the whole run: each of W processes takes
``batch_size / W`` of them (so W must divide it), and PyTorch's ``DistributedDataParallel``
averages the gradients. A step of k micro-batches (``train.global_batch_tokens``) accumulates k of
them, reducing gradients on the last only. The weights are replicated, so the checkpoint is one
plain state dict that any number of processes loads. A single process uses no DDP at all.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from archsearch.config import ResolvedArch, RunConfig
from archsearch.errors import ConfigError, StateError
from archsearch.model import Transformer
from archsearch.train.backend import Batches, Progress
from archsearch.train.checkpoint import RESTART, first_line, load_checkpoint, save_checkpoint
from archsearch.train.distributed import World
from archsearch.train.setup import (
    autocast_for,
    check_memory,
    make_optimizer,
    prepare_model,
    resolve_perf,
)


class LossOf(nn.Module):
    """``Transformer.loss`` as a module's forward, for DDP, which reduces gradients of what its
    forward computed."""

    def __init__(self, model: Transformer) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, inputs: torch.Tensor, targets: torch.Tensor, chunk_tokens: int | None = None
    ) -> torch.Tensor:
        return self.model.loss(inputs, targets, chunk_tokens)


class TorchBackend:
    """One ``Transformer`` replica per process; rank 0 writes ``checkpoint.pt``."""

    def __init__(
        self, cfg: RunConfig, arch: ResolvedArch, device: torch.device, world: World
    ) -> None:
        if cfg.train.batch_size % world.size:
            raise ConfigError(
                f"train.batch_size={cfg.train.batch_size} rows must split evenly over "
                f"{world.size} processes: launch a number of processes that divides it"
            )
        self.cfg, self.device, self.world = cfg, device, world
        self.perf = resolve_perf(cfg.perf, device)
        check_memory(arch.spec, cfg.train, self.perf, device)
        torch.manual_seed(cfg.train.seed)
        self.model = prepare_model(
            Transformer(arch.spec).to(device), self.perf, cfg.backend, device
        )
        self.optimizer = make_optimizer(self.model, cfg.optim, fused=bool(self.perf.fused_adamw))
        self.autocast = autocast_for(cfg.train, device)
        self.loss_fn: Callable[..., torch.Tensor] = self.model.loss
        if world.size > 1:
            self.loss_fn = DistributedDataParallel(LossOf(self.model))
        if self.perf.compile:
            self.loss_fn = torch.compile(self.loss_fn)

    def step(self, inputs: torch.Tensor, targets: torch.Tensor, lr: float) -> tuple[float, float]:
        """Gradient accumulation over micro-batches of ``train.batch_size`` rows, each split
        over the processes; (mean loss, gradient norm)."""
        size = self.cfg.train.batch_size
        micro = list(zip(inputs.split(size), targets.split(size), strict=True))
        total = torch.zeros((), device=self.device)
        no_sync = getattr(self.loss_fn, "no_sync", None)  # DDP's: reduce on the last only
        for i, (micro_inputs, micro_targets) in enumerate(micro):
            last = i == len(micro) - 1
            with nullcontext() if last or no_sync is None else no_sync(), self.autocast:
                loss = self.loss_fn(
                    self._share(micro_inputs),
                    self._share(micro_targets),
                    self.perf.loss_chunk_tokens,
                )
            (loss / len(micro)).backward()
            total += loss.detach()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        grad_norm = torch.nn.utils.clip_grad_norm_(
            self.model.parameters(), self.cfg.optim.grad_clip
        )
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        mean = self.world.sum(total / len(micro)) / self.world.size
        return mean.item(), grad_norm.item()

    @torch.no_grad()
    def evaluate(self, batches: Batches) -> float:
        """Mean next-token loss in nats; each process scores its share of every window batch."""
        self.model.eval()
        total, count = 0.0, 0
        for inputs, targets in batches:
            inputs, targets = self._share(inputs), self._share(targets)
            if len(inputs):
                with self.autocast:
                    total += self.loss_fn(inputs, targets).item() * len(inputs)
                count += len(inputs)
        self.model.train()
        summed = self.world.sum(torch.tensor([total, count], dtype=torch.float64))
        return (summed[0] / summed[1]).item()

    def _share(self, rows: torch.Tensor) -> torch.Tensor:
        """This process's part of ``rows``, on its device."""
        return rows.tensor_split(self.world.size)[self.world.rank].to(self.device)

    def save(self, run_dir: Path, fingerprint: str, progress: Progress) -> None:
        if not self.world.writes:
            return
        step, elapsed_s, row = progress
        save_checkpoint(
            run_dir,
            {
                "fingerprint": fingerprint,
                "model": self.model.state_dict(),
                "step": step,
                "optimizer": self.optimizer.state_dict(),
                "elapsed_s": elapsed_s,
                "row": row,
            },
        )

    def load(self, run_dir: Path, fingerprint: str) -> Progress | None:
        """Load ``checkpoint.pt`` (every process reads the same file).

        Raises:
            StateError: the checkpoint holds another shape's weights (the message names the file).
        """
        state = load_checkpoint(run_dir, fingerprint)
        if state is None:
            return None
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise StateError(
                f"the checkpoint in {run_dir} does not fit this model ({first_line(e)}): {RESTART}"
            ) from e
        return state["step"], state["elapsed_s"], state["row"]

    def close(self) -> None:
        pass
