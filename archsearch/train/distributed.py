"""Processes of one run: rendezvous and process group, shared by the torch and megatron backends.

One process per device, started by ``torchrun`` (``RANK``/``WORLD_SIZE`` set) or as SLURM tasks
(``SLURM_NTASKS`` > 1; the rendezvous through submitit's ``TorchDistributedEnvironment``), else a
single local process. A single torch-backend process joins no group at all, so its arithmetic
is exactly that of a plain script.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

from archsearch.errors import ConfigError

RENDEZVOUS_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class World:
    """This process's place in the run: ``rank`` of ``size`` processes; rank 0 writes."""

    rank: int = 0
    size: int = 1

    @property
    def writes(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` summed over the processes (unchanged in a single process)."""
        if self.size > 1:
            dist.all_reduce(values)
        return values


def launched_processes() -> int:
    """How many processes the launcher started for this run (1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE") or os.environ.get("SLURM_NTASKS") or 1)


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK") or os.environ.get("SLURM_LOCALID") or 0)


@contextmanager
def joined(device: torch.device, always: bool = False) -> Iterator[World]:
    """Join the run's process group (gloo on CPU, NCCL on CUDA) for the block, then leave it.

    Args:
        always: join a group of one too (megatron-core needs one); otherwise a single process
            joins none.
    """
    if launched_processes() == 1 and not always:
        yield World()
        return
    before = {key: os.environ.get(key) for key in RENDEZVOUS_VARIABLES}
    export_rendezvous_env()
    owned = not dist.is_initialized()
    try:
        if owned:
            if device.type == "cuda":
                torch.cuda.set_device(device)
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        yield World(dist.get_rank(), dist.get_world_size())
    finally:
        if owned and dist.is_initialized():
            dist.destroy_process_group()
        for key, value in before.items():  # a later run in this process rendezvouses afresh
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def export_rendezvous_env() -> None:
    """Set MASTER_ADDR/PORT, RANK, WORLD_SIZE, LOCAL_RANK unless a launcher already did."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        os.environ.setdefault("LOCAL_RANK", "0")
        return
    if int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        try:
            from submitit.helpers import TorchDistributedEnvironment
        except ImportError as error:
            raise ConfigError(
                "several SLURM tasks take their rendezvous from submitit: "
                "pip install 'archsearch[slurm]' (or launch with torchrun)"
            ) from error
        # a plain ``srun`` task is a SLURM task too: read it as submitit reads its own jobs'
        os.environ.setdefault("SUBMITIT_EXECUTOR", "slurm")
        # GPUs stay as SLURM bound them; the device index is LOCAL_RANK modulo the visible count
        TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0", WORLD_SIZE="1", LOCAL_RANK="0"
    )
