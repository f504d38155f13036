"""The megatron-core backend: the same ArchSpec, data, eval set and record as the torch backend.

``transformer_config`` is the single translation from an ArchSpec to megatron-core. megatron's
defaults are GPT-2-like (LayerNorm, GeLU MLP of 4h, biases, dropout 0.1, learned positions), so
every LLaMA setting is given explicitly. ``build_gpt_model`` picks Transformer Engine's layer spec
when TE imports on a CUDA device and megatron's local spec otherwise; FP8 runs only with TE on a
Hopper or newer GPU. ``megatron_train.MegatronBackend`` trains on CUDA GPUs with megatron's DDP,
distributed optimizer, pipeline schedules and ``dist_checkpointing``, one process per GPU
(torchrun, or SLURM tasks). On CPU the model builds and runs forward and backward with the
workarounds in ``megatron_cpu``, which is how the tests check it against the torch model.

megatron (and Transformer Engine) are imported lazily, inside functions: never at package import.
megatron's vocabulary (hidden_size, num_layers, ffn_hidden_size, num_query_groups) stays here.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import torch
import torch.nn.functional as F

from archsearch.arch import ArchSpec
from archsearch.config import BackendConfig, RunConfig
from archsearch.errors import ConfigError
from archsearch.train.setup import autocast_for

INIT_STD = 0.02  # the torch model's Normal(0, 0.02); residual projections get 0.02 / sqrt(2 L)
FP8_FORMATS = ("e4m3", "hybrid")
FP8_RECIPES = ("delayed", "tensorwise", "mxfp8", "blockwise")
TRANSFORMER_IMPLS = ("auto", "transformer_engine", "local")


def te_available() -> bool:
    """Whether Transformer Engine's PyTorch extension imports here (it needs CUDA libraries)."""
    if importlib.util.find_spec("transformer_engine") is None:
        return False
    try:
        import transformer_engine.pytorch  # noqa: F401
    except Exception:  # without CUDA, TE fails with OSError or RuntimeError, not only ImportError
        return False
    return True


def resolve_impl(backend: BackendConfig, device: torch.device) -> str:
    """Choose the layer implementation, ``transformer_engine`` or ``local``, and check FP8.

    Raises:
        ConfigError: for an unknown ``backend.transformer_impl``, TE asked for where it cannot
            run, or FP8 asked for without TE, without a Hopper GPU, or with the local spec.
    """
    if backend.transformer_impl not in TRANSFORMER_IMPLS:
        raise ConfigError(
            f"backend.transformer_impl={backend.transformer_impl!r} is unknown: use one of "
            f"{', '.join(TRANSFORMER_IMPLS)}"
        )
    te_here = device.type == "cuda" and te_available()
    if backend.transformer_impl == "transformer_engine" and not te_here:
        raise ConfigError(
            "backend.transformer_impl=transformer_engine needs Transformer Engine on a CUDA device "
            f"(device {device}, TE importable: {te_available()}): install it on the GPU cluster "
            "(README, 'GPU clusters') or set backend.transformer_impl=auto"
        )
    impl = backend.transformer_impl
    if impl == "auto":
        impl = "transformer_engine" if te_here else "local"
    if backend.fp8 is not None:
        _check_fp8(backend, impl, device)
    return impl


def _check_fp8(backend: BackendConfig, impl: str, device: torch.device) -> None:
    """FP8 trains only through TE's layers on compute capability >= 9.0 (MXFP8: >= 10.0)."""
    if backend.fp8 not in FP8_FORMATS or backend.fp8_recipe not in FP8_RECIPES:
        raise ConfigError(
            f"backend.fp8={backend.fp8!r} / backend.fp8_recipe={backend.fp8_recipe!r}: use fp8 in "
            f"{FP8_FORMATS} (or null) and fp8_recipe in {FP8_RECIPES}"
        )
    if not te_available():
        raise ConfigError(
            f"backend.fp8={backend.fp8} needs Transformer Engine, which does not import here: "
            "install it on a CUDA machine (README, 'GPU clusters') or set backend.fp8=null for bf16"
        )
    if device.type != "cuda":
        raise ConfigError(
            f"backend.fp8={backend.fp8} needs a Hopper (sm_90) or newer GPU, but this run is on "
            f"{device}: set backend.fp8=null"
        )
    capability = torch.cuda.get_device_capability(device)
    needed = (10, 0) if backend.fp8_recipe == "mxfp8" else (9, 0)
    if capability < needed:
        raise ConfigError(
            f"backend.fp8={backend.fp8} with fp8_recipe={backend.fp8_recipe} needs compute "
            f"capability {needed[0]}.{needed[1]}, this GPU has {capability[0]}.{capability[1]}: "
            "set backend.fp8=null to train in bf16"
        )
    if impl != "transformer_engine":
        raise ConfigError(
            f"backend.fp8={backend.fp8} with backend.transformer_impl=local would train without "
            "FP8 (megatron's local layers ignore the FP8 context, silently): set "
            "backend.transformer_impl=auto or transformer_engine"
        )


def transformer_config_kwargs(
    spec: ArchSpec, backend: BackendConfig, *, bf16: bool, use_cpu_initialization: bool
) -> dict[str, Any]:
    """Every ``TransformerConfig`` field a LLaMA decoder needs, as plain data.

    Args:
        bf16: bf16 parameters and compute (megatron's mixed precision keeps fp32 main weights).
        use_cpu_initialization: initialise weights on the CPU (required without CUDA).
    """
    dtype = torch.bfloat16 if bf16 else torch.float32
    return {
        # shape
        "num_layers": spec.n_layers,
        "hidden_size": spec.d_model,
        "num_attention_heads": spec.n_heads,
        "num_query_groups": spec.n_kv_heads,
        "kv_channels": spec.head_dim,
        "ffn_hidden_size": spec.d_ff,  # megatron's default is 4 * hidden_size
        # LLaMA block: pre-RMSNorm, SwiGLU, no biases, no dropout, rotate-half RoPE
        "normalization": "RMSNorm",
        "layernorm_epsilon": spec.norm_eps,
        "layernorm_zero_centered_gamma": False,
        "apply_residual_connection_post_layernorm": False,
        "fp32_residual_connection": False,
        "gated_linear_unit": True,
        "activation_func": F.silu,
        "add_bias_linear": False,
        "add_qkv_bias": False,
        "qk_layernorm": False,
        "rotary_interleaved": False,
        "hidden_dropout": 0.0,
        "attention_dropout": 0.0,
        "softmax_scale": spec.head_dim**-0.5,
        "apply_query_key_layer_scaling": False,
        "attention_softmax_in_fp32": True,
        # initialisation as in archsearch.model.Transformer.reset_parameters
        "init_method_std": INIT_STD,
        "embedding_init_method_std": INIT_STD,
        "use_cpu_initialization": use_cpu_initialization,
        "perform_initialization": True,
        # parallelism
        "tensor_model_parallel_size": backend.tensor_parallel,
        "pipeline_model_parallel_size": backend.pipeline_parallel,
        "sequence_parallel": backend.tensor_parallel > 1,
        # precision
        "bf16": bf16,
        "fp16": False,
        "params_dtype": dtype,
        "pipeline_dtype": dtype,
        "fp8": backend.fp8,
        "fp8_recipe": backend.fp8_recipe,
        "fp8_margin": backend.fp8_margin,
        "fp8_amax_history_len": backend.fp8_amax_history_len,
        "fp8_amax_compute_algo": backend.fp8_amax_compute_algo,
        # fused kernels need CUDA extensions; TE fuses what matters in its own layers
        "bias_activation_fusion": False,
        "bias_dropout_fusion": False,
        "masked_softmax_fusion": False,
        "persist_layer_norm": False,
        "apply_rope_fusion": False,
        "gradient_accumulation_fusion": False,
    }


def transformer_config(
    spec: ArchSpec,
    backend: BackendConfig,
    *,
    bf16: bool = False,
    use_cpu_initialization: bool = False,
    impl: str = "local",
) -> Any:
    """The megatron-core ``TransformerConfig`` for ``spec`` (see ``transformer_config_kwargs``).

    Args:
        impl: ``transformer_engine`` (TE picks flash or fused attention) or ``local``.
    """
    from megatron.core.transformer import TransformerConfig
    from megatron.core.transformer.enums import AttnBackend

    backend_choice = AttnBackend.auto if impl == "transformer_engine" else AttnBackend.local
    kwargs = transformer_config_kwargs(
        spec, backend, bf16=bf16, use_cpu_initialization=use_cpu_initialization
    )
    return TransformerConfig(**kwargs, attention_backend=backend_choice)


def gpt_model_kwargs(spec: ArchSpec, seq_len: int) -> dict[str, Any]:
    """The ``GPTModel`` arguments beyond the config: vocabulary, RoPE and tied embeddings."""
    return {
        "vocab_size": spec.vocab_size,
        "max_sequence_length": seq_len,
        "position_embedding_type": "rope",
        "rotary_percent": 1.0,
        "rotary_base": spec.rope_theta,
        "rope_scaling": False,
        "share_embeddings_and_output_weights": spec.tie_embeddings,
        "parallel_output": True,
        "fp16_lm_cross_entropy": False,
    }


def build_gpt_model(spec: ArchSpec, cfg: RunConfig, device: torch.device) -> Any:
    """A megatron ``GPTModel`` for ``spec`` on ``device``; model-parallel state must be set up.

    bf16 follows ``train.precision`` (auto: bf16 on CUDA); on CPU the ``megatron_cpu``
    workarounds are applied to the model.
    """
    from megatron.core import parallel_state
    from megatron.core.models.gpt import GPTModel
    from megatron.core.models.gpt.gpt_layer_specs import (
        get_gpt_layer_local_spec,
        get_gpt_layer_with_transformer_engine_spec,
    )

    impl = resolve_impl(cfg.backend, device)
    bf16 = isinstance(autocast_for(cfg.train, device), torch.autocast)
    config = transformer_config(
        spec, cfg.backend, bf16=bf16, use_cpu_initialization=device.type == "cpu", impl=impl
    )
    if impl == "transformer_engine":
        layer_spec = get_gpt_layer_with_transformer_engine_spec()
    else:
        layer_spec = get_gpt_layer_local_spec(normalization="RMSNorm")
    model = GPTModel(
        config,
        layer_spec,
        pre_process=parallel_state.is_pipeline_first_stage(),
        post_process=parallel_state.is_pipeline_last_stage(),
        **gpt_model_kwargs(spec, cfg.train.seq_len),
    )
    if device.type == "cpu":
        from archsearch.train import megatron_cpu

        megatron_cpu.adapt_model(model)
    return model.to(device)


def megatron_state_dict(
    torch_state: dict[str, torch.Tensor], spec: ArchSpec
) -> dict[str, torch.Tensor]:
    """Map an ``archsearch.model.Transformer`` state dict onto a local-spec GPTModel (TP=PP=1).

    Q, K and V fuse into ``linear_qkv`` in megatron's per-query-group layout: for each KV head,
    its ``gqa_group`` query heads, then its key, then its value. Gate and up fuse into
    ``linear_fc1`` as ``[gate; up]`` (megatron's GLU applies the activation to the first half).
    """
    d, hd, kv = spec.d_model, spec.head_dim, spec.n_kv_heads
    out = {
        "embedding.word_embeddings.weight": torch_state["tok_embeddings.weight"],
        "decoder.final_layernorm.weight": torch_state["norm.weight"],
    }
    if not spec.tie_embeddings:
        out["output_layer.weight"] = torch_state["output.weight"]
    for i in range(spec.n_layers):
        src, dst = f"layers.{i}.", f"decoder.layers.{i}."
        q = torch_state[src + "attention.wq.weight"].view(kv, spec.gqa_group * hd, d)
        k = torch_state[src + "attention.wk.weight"].view(kv, hd, d)
        v = torch_state[src + "attention.wv.weight"].view(kv, hd, d)
        out[dst + "input_layernorm.weight"] = torch_state[src + "attention_norm.weight"]
        out[dst + "self_attention.linear_qkv.weight"] = torch.cat((q, k, v), dim=1).reshape(-1, d)
        out[dst + "self_attention.linear_proj.weight"] = torch_state[src + "attention.wo.weight"]
        out[dst + "pre_mlp_layernorm.weight"] = torch_state[src + "mlp_norm.weight"]
        out[dst + "mlp.linear_fc1.weight"] = torch.cat(
            (torch_state[src + "mlp.w1.weight"], torch_state[src + "mlp.w3.weight"]), dim=0
        )
        out[dst + "mlp.linear_fc2.weight"] = torch_state[src + "mlp.w2.weight"]
    return out


def forward(model: Any, tokens: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """Logits (B, T, vocab) or, with ``labels``, per-token losses (B, T) in nats."""
    seq_len = tokens.shape[1]
    positions = torch.arange(seq_len, device=tokens.device).expand_as(tokens)
    mask = None  # megatron builds the causal mask (TE: inside its attention kernels)
    if tokens.device.type == "cpu":
        from archsearch.train.megatron_cpu import causal_mask

        mask = causal_mask(seq_len)
    return model(tokens, positions, attention_mask=mask, labels=labels)
