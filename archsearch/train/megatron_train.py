"""The megatron-core backend's training (CUDA GPUs): TP/PP state, megatron's DDP, the distributed
optimizer and ``dist_checkpointing``, behind the loop's ``Backend`` protocol.

The model itself (config translation, layer specs, FP8 guard) is in ``megatron_backend``; the
process group comes from ``archsearch.train.distributed``, as for the torch backend; megatron is
imported inside functions only.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from archsearch.arch import ArchSpec
from archsearch.config import ResolvedArch, RunConfig
from archsearch.errors import ConfigError
from archsearch.records import write_text_atomic
from archsearch.train.backend import Batches, Progress
from archsearch.train.distributed import World
from archsearch.train.megatron_backend import build_gpt_model, forward

CKPT_DIR = "megatron_ckpt"  # dist_checkpointing folders step_XXXXXXXX and a LATEST pointer


def init_model_parallel(cfg: RunConfig, spec: ArchSpec, device: torch.device) -> None:
    """megatron's TP/PP/DP state over the joined process group (reused if already set up).

    On CPU (tests only: training refuses it) the workarounds of ``megatron_cpu`` are installed.
    """
    import torch.distributed as dist
    from megatron.core import parallel_state, tensor_parallel

    _check_parallel(cfg, spec, dist.get_world_size())
    if not parallel_state.model_parallel_is_initialized():
        parallel_state.initialize_model_parallel(
            tensor_model_parallel_size=cfg.backend.tensor_parallel,
            pipeline_model_parallel_size=cfg.backend.pipeline_parallel,
        )
    if device.type == "cuda":
        tensor_parallel.model_parallel_cuda_manual_seed(cfg.train.seed)
    else:
        from archsearch.train import megatron_cpu

        megatron_cpu.install()


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


class MegatronBackend:
    """megatron-core GPTModel in its DDP with the distributed AdamW, on CUDA GPUs.

    Every rank receives the whole global batch of ``train.batch_size`` rows (times the
    micro-batches of a step) and keeps its data-parallel share; losses are reduced world-wide.
    Checkpoints (``dist_checkpointing``) go to ``run_dir/megatron_ckpt``.
    """

    def __init__(
        self, cfg: RunConfig, arch: ResolvedArch, device: torch.device, world: World
    ) -> None:
        if device.type != "cuda":
            raise ConfigError(
                "backend=megatron trains on CUDA GPUs (megatron's DDP, optimizer and checkpointing "
                "need CUDA): use backend=torch on this machine"
            )
        self.cfg, self.world = cfg, world
        self.device = torch.device("cuda", torch.cuda.current_device())  # set by ``joined``
        init_model_parallel(cfg, arch.spec, self.device)
        try:
            self.model, self.optimizer = _build_training(arch.spec, cfg, self.device)
        except BaseException:
            self.close()
            raise

    def step(self, inputs: torch.Tensor, targets: torch.Tensor, lr: float) -> tuple[float, float]:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.zero_grad_buffer()
        self.optimizer.zero_grad()
        loss_sum, n_tokens = _run_batch(
            self.model, (inputs, targets), self.cfg, self.device, False
        ).tolist()
        _, grad_norm, _ = self.optimizer.step()
        return loss_sum / n_tokens, float(grad_norm or 0.0)

    @torch.no_grad()
    def evaluate(self, batches: Batches) -> float:
        """Mean next-token loss over the torch backend's fixed validation windows."""
        self.model.eval()
        total = sum(
            _run_batch(self.model, batch, self.cfg, self.device, forward_only=True)
            for batch in batches
        )
        self.model.train()
        return (total[0] / total[1]).item()

    def save(self, run_dir: Path, fingerprint: str, progress: Progress) -> None:
        _save(run_dir, self.model, self.optimizer, progress)

    def load(self, run_dir: Path, fingerprint: str) -> Progress | None:
        return _load_latest(run_dir, self.model, self.optimizer)

    def close(self) -> None:
        from megatron.core import parallel_state

        parallel_state.destroy_model_parallel()


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


def _sharded_state(model: Any, optimizer: Any, is_loading: bool) -> dict[str, Any]:
    """The model's and optimizer's sharded state dicts, for ``dist_checkpointing``."""
    from megatron.core.utils import unwrap_model

    model_state = unwrap_model(model).sharded_state_dict()
    return {
        "model": model_state,
        "optimizer": optimizer.sharded_state_dict(model_state, is_loading=is_loading),
    }


def _save(run_dir: Path, model: Any, optimizer: Any, progress: Progress) -> None:
    """Write a ``dist_checkpointing`` folder, then point ``LATEST`` at it (atomic rename)."""
    import torch.distributed as dist
    from megatron.core import dist_checkpointing

    step, elapsed_s, row = progress
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


def _load_latest(run_dir: Path, model: Any, optimizer: Any) -> Progress | None:
    """Resume from ``LATEST`` if there is one; returns (step, elapsed seconds so far, that
    step's metrics row)."""
    from megatron.core import dist_checkpointing
    from megatron.core.utils import unwrap_model

    pointer = run_dir / CKPT_DIR / "LATEST"
    if not pointer.exists():
        return None
    template = _sharded_state(model, optimizer, is_loading=True)
    state = dist_checkpointing.load(template, str(pointer.parent / pointer.read_text().strip()))
    unwrap_model(model).load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return state["step"], state["elapsed_s"], state["row"]
