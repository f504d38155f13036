"""The whole plain-PyTorch LLaMA-style decoder, built only from an ArchSpec.

RMSNorm, rotary position embeddings, grouped-query attention through
``scaled_dot_product_attention`` (K/V are never repeated), SwiGLU MLP, optional tied embeddings and
an optional pre-allocated KV cache for decoding. ``sum(p.numel())`` equals
``archsearch.arch.count_params(spec).total``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from archsearch.arch import ArchSpec


def rope_tables(
    head_dim: int, positions: torch.Tensor, theta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables of shape (len(positions), head_dim // 2), in float32."""
    inv_freq = 1.0 / theta ** (
        torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim
    )
    angles = positions.to(torch.float32)[:, None] * inv_freq[None, :]
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (first half, second half) of the last dim; x is (B, heads, T, head_dim)."""
    x1, x2 = x.float().chunk(2, dim=-1)
    rotated = torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return rotated.to(x.dtype)


@dataclass
class KVCache:
    """Pre-allocated keys and values, one (B, n_kv_heads, max_len, head_dim) pair per layer."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]

    @classmethod
    def allocate(
        cls,
        spec: ArchSpec,
        batch_size: int,
        max_len: int,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> KVCache:
        shape = (batch_size, spec.n_kv_heads, max_len, spec.head_dim)
        return cls(
            keys=[torch.zeros(shape, device=device, dtype=dtype) for _ in range(spec.n_layers)],
            values=[torch.zeros(shape, device=device, dtype=dtype) for _ in range(spec.n_layers)],
        )

    @property
    def max_len(self) -> int:
        return self.keys[0].shape[2]


class Attention(nn.Module):
    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = spec.n_heads, spec.n_kv_heads, spec.head_dim
        self.group = spec.gqa_group
        self.wq = nn.Linear(spec.d_model, spec.n_heads * spec.head_dim, bias=False)
        self.wk = nn.Linear(spec.d_model, spec.n_kv_heads * spec.head_dim, bias=False)
        self.wv = nn.Linear(spec.d_model, spec.n_kv_heads * spec.head_dim, bias=False)
        self.wo = nn.Linear(spec.n_heads * spec.head_dim, spec.d_model, bias=False)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        cache: tuple[torch.Tensor, torch.Tensor] | None = None,
        start_pos: int | torch.Tensor = 0,
    ) -> torch.Tensor:
        batch, length, _ = x.shape
        q = self.wq(x).view(batch, length, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.wk(x).view(batch, length, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.wv(x).view(batch, length, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None and not (isinstance(start_pos, int) and start_pos == 0):
            out = self._attend_cached(q, k, v, cache, start_pos)
        else:
            if cache is not None:  # a prefill from position 0 needs only its own keys
                cache[0][:, :, :length] = k
                cache[1][:, :, :length] = v
            out = F.scaled_dot_product_attention(
                q, k, v, is_causal=length > 1, enable_gqa=self.n_heads != self.n_kv_heads
            )
        return self.wo(out.transpose(1, 2).reshape(batch, length, -1))

    def _attend_cached(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        cache: tuple[torch.Tensor, torch.Tensor],
        start_pos: int | torch.Tensor,
    ) -> torch.Tensor:
        """Write k, v at ``start_pos`` and attend over the cache, reading each KV head once.

        The ``g`` query heads sharing a KV head are folded into the query length, so attention
        runs on (B, n_kv_heads, g * T, head_dim) queries and the cache is never repeated. A
        tensor ``start_pos`` keeps every shape static (CUDA graphs, ``torch.compile``): the
        whole cache is read and later positions are masked.
        """
        batch, _, length, _ = q.shape
        positions = start_pos + torch.arange(length, device=q.device)
        if isinstance(start_pos, torch.Tensor):
            cache[0].index_copy_(2, positions, k)
            cache[1].index_copy_(2, positions, v)
            keys, values = cache
        else:
            end = start_pos + length
            cache[0][:, :, start_pos:end] = k
            cache[1][:, :, start_pos:end] = v
            keys, values = cache[0][:, :, :end], cache[1][:, :, :end]
        mask = None
        if isinstance(start_pos, torch.Tensor) or length > 1:
            key_positions = torch.arange(keys.shape[2], device=q.device)
            mask = (positions[:, None] >= key_positions[None, :]).repeat(self.group, 1)
        grouped = q.reshape(batch, self.n_kv_heads, self.group * length, self.head_dim)
        out = F.scaled_dot_product_attention(grouped, keys, values, attn_mask=mask)
        return out.view(batch, self.n_heads, length, self.head_dim)


class SwiGLU(nn.Module):
    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        self.w1 = nn.Linear(spec.d_model, spec.d_ff, bias=False)  # gate
        self.w3 = nn.Linear(spec.d_model, spec.d_ff, bias=False)  # up
        self.w2 = nn.Linear(spec.d_ff, spec.d_model, bias=False)  # down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        self.attention_norm = nn.RMSNorm(spec.d_model, eps=spec.norm_eps)
        self.attention = Attention(spec)
        self.mlp_norm = nn.RMSNorm(spec.d_model, eps=spec.norm_eps)
        self.mlp = SwiGLU(spec)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        cache: tuple[torch.Tensor, torch.Tensor] | None = None,
        start_pos: int | torch.Tensor = 0,
    ) -> torch.Tensor:
        x = x + self.attention(self.attention_norm(x), cos, sin, cache, start_pos)
        return x + self.mlp(self.mlp_norm(x))


class Transformer(nn.Module):
    """Decoder-only LM; ``forward(tokens) -> logits`` of shape (B, T, vocab_size)."""

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        self.spec = spec
        self.tok_embeddings = nn.Embedding(spec.vocab_size, spec.d_model)
        self.layers = nn.ModuleList(Block(spec) for _ in range(spec.n_layers))
        self.norm = nn.RMSNorm(spec.d_model, eps=spec.norm_eps)
        self.output = nn.Linear(spec.d_model, spec.vocab_size, bias=False)
        if spec.tie_embeddings:
            self.output.weight = self.tok_embeddings.weight
        self.activation_checkpointing = False  # set from outside (archsearch.train.setup)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Normal(0, 0.02) weights; residual output projections scaled by 1/sqrt(2 n_layers)."""
        residual_std = 0.02 / math.sqrt(2 * self.spec.n_layers)
        for name, param in self.named_parameters():
            if param.dim() == 1:
                nn.init.ones_(param)
            else:
                std = residual_std if name.endswith(("wo.weight", "w2.weight")) else 0.02
                nn.init.normal_(param, mean=0.0, std=std)

    def forward(
        self,
        tokens: torch.Tensor,
        cache: KVCache | None = None,
        start_pos: int | torch.Tensor = 0,
        last_logits_only: bool = False,
    ) -> torch.Tensor:
        """Logits for ``tokens`` (B, T) at positions ``start_pos .. start_pos + T - 1``.

        With a ``cache``, keys and values are written into it and attention reads the prefix.
        A 0-dim integer tensor ``start_pos`` keeps shapes static for CUDA graphs (no bounds check:
        that would synchronise). ``last_logits_only`` returns (B, 1, vocab_size) logits for the
        last position only (a prefill needs no more).
        """
        x = self.hidden(tokens, cache, start_pos)
        return self.output(x[:, -1:] if last_logits_only else x)

    def hidden(
        self,
        tokens: torch.Tensor,
        cache: KVCache | None = None,
        start_pos: int | torch.Tensor = 0,
    ) -> torch.Tensor:
        """Final-normed hidden states (B, T, d_model); ``forward`` without the output head."""
        length = tokens.shape[1]
        if cache is not None and isinstance(start_pos, int) and start_pos + length > cache.max_len:
            raise ValueError(
                f"positions up to {start_pos + length} exceed the KV cache of {cache.max_len}"
            )
        positions = start_pos + torch.arange(length, device=tokens.device)
        cos, sin = rope_tables(self.spec.head_dim, positions, self.spec.rope_theta)
        x = self.tok_embeddings(tokens)
        for i, layer in enumerate(self.layers):
            if self.activation_checkpointing and self.training and cache is None:
                x = checkpoint(layer, x, cos, sin, use_reentrant=False)
            else:
                layer_cache = None if cache is None else (cache.keys[i], cache.values[i])
                x = layer(x, cos, sin, layer_cache, start_pos)
        return self.norm(x)

    def loss(
        self, tokens: torch.Tensor, targets: torch.Tensor, chunk_tokens: int | None = None
    ) -> torch.Tensor:
        """Mean next-token cross-entropy in nats; ``targets`` is (B, T).

        ``chunk_tokens`` computes the head and the loss that many tokens at a time, recomputing
        each chunk's logits in the backward pass, so (B x T x vocab_size) logits never exist.
        """
        hidden = self.hidden(tokens).flatten(0, 1)
        targets = targets.flatten()
        if chunk_tokens is None:
            return F.cross_entropy(self.output(hidden).float(), targets)
        total = sum(
            checkpoint(
                _summed_cross_entropy,
                hidden[i : i + chunk_tokens],
                self.output.weight,
                targets[i : i + chunk_tokens],
                use_reentrant=False,
            )
            for i in range(0, len(targets), chunk_tokens)
        )
        return total / len(targets)


def _summed_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    return F.cross_entropy(F.linear(hidden, weight).float(), targets, reduction="sum")
