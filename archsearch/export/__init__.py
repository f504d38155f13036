"""Hugging Face export of a trained run: ``config.json``, ``model.safetensors`` and the tokenizer.

``hf_config`` is pure (no torch): the same config serves the export and the vLLM throughput path.
``export_run`` (``archsearch.export.hf``, needs torch and safetensors) writes a directory that
``transformers`` loads with ``AutoModelForCausalLM.from_pretrained``.

The architecture written is ``LlamaForCausalLM`` when ``d_model == n_heads * head_dim``. For the
shapes the paper proposes where it is not (Surefire-1B: d_model 2560 with 36 heads of 64),
transformers' ``LlamaConfig`` accepts an explicit ``head_dim`` from 4.45.0 through 5.3.0 only; from
5.4.0 (checked up to 5.24.0) its validation refuses any ``hidden_size`` that is not a multiple of
the heads, although ``LlamaAttention`` itself sizes its projections from ``head_dim``. Those shapes
are therefore written as ``MistralForCausalLM``: the same layers, weight names and computation
(RMSNorm, RoPE, SwiGLU, grouped-query attention, no biases; ``sliding_window`` null), accepted by
every transformers >= 4.45 and by vLLM. ``architecture="llama"`` forces the Llama name (for
transformers 4.45 - 5.3).
"""

from __future__ import annotations

from typing import Any

from archsearch.arch import ArchSpec

ARCHITECTURES = ("auto", "llama", "mistral")


def hf_architecture(spec: ArchSpec, architecture: str = "auto") -> str:
    """``llama`` or ``mistral``: ``auto`` picks Llama unless ``d_model != n_heads * head_dim``."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture={architecture!r} is unknown: use one of {ARCHITECTURES}")
    if architecture != "auto":
        return architecture
    return "llama" if spec.d_model == spec.n_heads * spec.head_dim else "mistral"


def hf_config(
    spec: ArchSpec,
    max_len: int,
    dtype: str = "bfloat16",
    eos_token_id: int | None = None,
    architecture: str = "auto",
) -> dict[str, Any]:
    """A Hugging Face causal-LM ``config.json`` for ``spec`` (``max_len`` positions, ``dtype``).

    RoPE is written both ways transformers reads it: ``rope_theta`` (4.x) and
    ``rope_parameters`` (5.x).
    """
    name = hf_architecture(spec, architecture)
    config: dict[str, Any] = {
        "architectures": ["LlamaForCausalLM" if name == "llama" else "MistralForCausalLM"],
        "model_type": name,
        "hidden_size": spec.d_model,
        "intermediate_size": spec.d_ff,
        "num_hidden_layers": spec.n_layers,
        "num_attention_heads": spec.n_heads,
        "num_key_value_heads": spec.n_kv_heads,
        "head_dim": spec.head_dim,
        "vocab_size": spec.vocab_size,
        "tie_word_embeddings": spec.tie_embeddings,
        "rope_theta": spec.rope_theta,
        "rope_parameters": {"rope_type": "default", "rope_theta": spec.rope_theta},
        "rms_norm_eps": spec.norm_eps,
        "max_position_embeddings": max_len,
        "hidden_act": "silu",
        "attention_bias": False,
        "torch_dtype": dtype,
        "bos_token_id": eos_token_id,
        "eos_token_id": eos_token_id,
    }
    if name == "llama":
        config["mlp_bias"] = False
    else:
        config["sliding_window"] = None
    return config


def hf_weight_name(name: str) -> str:
    """The Hugging Face Llama/Mistral name of an ``archsearch.model.Transformer`` parameter."""
    top = {
        "tok_embeddings.weight": "model.embed_tokens.weight",
        "norm.weight": "model.norm.weight",
        "output.weight": "lm_head.weight",
    }
    if name in top:
        return top[name]
    prefix, index, rest = name.split(".", 2)
    if prefix != "layers":
        raise ValueError(f"no Hugging Face name for parameter {name!r}")
    per_layer = {
        "attention_norm.weight": "input_layernorm.weight",
        "attention.wq.weight": "self_attn.q_proj.weight",
        "attention.wk.weight": "self_attn.k_proj.weight",
        "attention.wv.weight": "self_attn.v_proj.weight",
        "attention.wo.weight": "self_attn.o_proj.weight",
        "mlp_norm.weight": "post_attention_layernorm.weight",
        "mlp.w1.weight": "mlp.gate_proj.weight",
        "mlp.w3.weight": "mlp.up_proj.weight",
        "mlp.w2.weight": "mlp.down_proj.weight",
    }
    if rest not in per_layer:
        raise ValueError(f"no Hugging Face name for parameter {name!r}")
    return f"model.layers.{index}.{per_layer[rest]}"


__all__ = ["ARCHITECTURES", "hf_architecture", "hf_config", "hf_weight_name"]
