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
    """Rotation tables of shape (len(positions), head_dim), in float32, for ``apply_rope``.

    ``cos`` is (cos, cos) and ``sin`` is (-sin, sin) over the two halves of the head, so that a
    rotation is two multiplies and an add.
    """
    inv_freq = 1.0 / theta ** (
        torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim
    )
    angles = positions.to(torch.float32)[:, None] * inv_freq[None, :]
    cos, sin = angles.cos(), angles.sin()
    return torch.cat((cos, cos), dim=-1), torch.cat((-sin, sin), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (first half, second half) of the last dim; x is (B, heads, T, head_dim).

    ``x * cos + roll(x) * sin`` with the tables of ``rope_tables``: the first half is
    ``x1 cos - x2 sin`` and the second ``x2 cos + x1 sin`` (exactly, in IEEE arithmetic).
    """
    if x.dtype == torch.float32:
        return x * cos + x.roll(x.shape[-1] // 2, dims=-1) * sin
    wide = x.float()
    return (wide * cos + wide.roll(x.shape[-1] // 2, dims=-1) * sin).to(x.dtype)


@dataclass
class KVCache:
    """Pre-allocated keys and values, one (B, n_kv_heads, max_len, head_dim) pair per layer, and
    the RoPE tables of its ``max_len`` positions (``rope_tables``), computed once, not per step."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    cos: torch.Tensor
    sin: torch.Tensor

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
        positions = torch.arange(max_len, device=device)
        cos, sin = rope_tables(spec.head_dim, positions, spec.rope_theta)
        return cls(
            keys=[torch.zeros(shape, device=device, dtype=dtype) for _ in range(spec.n_layers)],
            values=[torch.zeros(shape, device=device, dtype=dtype) for _ in range(spec.n_layers)],
            cos=cos,
            sin=sin,
        )

    def rows(self, rows: slice) -> KVCache:
        """The cache of some batch rows: views of the same storage, the same tables."""
        return KVCache(
            [k[rows] for k in self.keys], [v[rows] for v in self.values], self.cos, self.sin
        )

    @property
    def max_len(self) -> int:
        return self.keys[0].shape[2]


def attend_cached(
    grouped: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cache: tuple[torch.Tensor, torch.Tensor],
    start_pos: int | torch.Tensor,
    mask: torch.Tensor | None,
) -> torch.Tensor:
    """Write k, v at ``start_pos`` and attend over the cache, reading each KV head once.

    The ``g`` query heads sharing a KV head are folded into the query length, so attention runs
    on (B, n_kv_heads, g * T, head_dim) queries and the cache is never repeated. With a tensor of
    positions the whole cache is read and ``mask`` hides later positions.

    Args:
        grouped: queries (B, n_kv_heads, g * T, head_dim), row ``j * T + t`` the query head
            ``kv * g + j`` at token t (``q.reshape`` of (B, n_heads, T, head_dim) queries).
        k, v: (B, n_kv_heads, T, head_dim); RoPE applied to queries and keys.
        cache: one layer's (keys, values), each (B, n_kv_heads, max_len, head_dim).
        start_pos, mask: as ``Transformer.cached_tables`` returns them (``where``, ``mask``).

    Returns:
        (B, n_kv_heads, g * T, head_dim), laid out as ``grouped``.
    """
    length = k.shape[2]
    if isinstance(start_pos, torch.Tensor):
        cache[0].index_copy_(2, start_pos, k)
        cache[1].index_copy_(2, start_pos, v)
        keys, values = cache
    else:
        end = start_pos + length
        keys, values = cache[0][:, :, :end], cache[1][:, :, :end]
        keys[:, :, start_pos:] = k
        values[:, :, start_pos:] = v
    return F.scaled_dot_product_attention(grouped, keys, values, attn_mask=mask)


class Attention(nn.Module):
    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = spec.n_heads, spec.n_kv_heads, spec.head_dim
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
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attention of ``x`` at positions from ``start_pos`` (an int, or a tensor holding every
        position of ``x``, which keeps shapes static); ``mask`` as ``Transformer.cached_tables``."""
        batch, length, _ = x.shape
        q = self.wq(x).view(batch, length, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.wk(x).view(batch, length, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.wv(x).view(batch, length, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None and not (isinstance(start_pos, int) and start_pos == 0):
            grouped = q.reshape(batch, self.n_kv_heads, -1, self.head_dim)
            out = attend_cached(grouped, k, v, cache, start_pos, mask)
            out = out.view(batch, self.n_heads, length, self.head_dim)
        else:
            if cache is not None:  # a prefill from position 0 needs only its own keys
                cache[0][:, :, :length] = k
                cache[1][:, :, :length] = v
            out = F.scaled_dot_product_attention(
                q, k, v, is_causal=length > 1, enable_gqa=self.n_heads != self.n_kv_heads
            )
        return self.wo(out.transpose(1, 2).reshape(batch, length, -1))


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
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = x + self.attention(self.attention_norm(x), cos, sin, cache, start_pos, mask)
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
        if cache is None:
            positions = start_pos + torch.arange(length, device=tokens.device)
            cos, sin = rope_tables(self.spec.head_dim, positions, self.spec.rope_theta)
            x = self.tok_embeddings(tokens)
            for layer in self.layers:
                if self.activation_checkpointing and self.training:
                    x = checkpoint(layer, x, cos, sin, use_reentrant=False)
                else:
                    x = layer(x, cos, sin)
            return self.norm(x)
        cos, sin, where, mask = self.cached_tables(cache, start_pos, length)
        x = self.tok_embeddings(tokens)
        for layer, keys, values in zip(self.layers, cache.keys, cache.values, strict=True):
            x = layer(x, cos, sin, (keys, values), where, mask)
        return self.norm(x)

    def cached_tables(
        self, cache: KVCache, start_pos: int | torch.Tensor, length: int
    ) -> tuple[torch.Tensor, torch.Tensor, int | torch.Tensor, torch.Tensor | None]:
        """What every layer of a cached forward shares, computed once: RoPE rows, positions, mask.

        Returns:
            (cos, sin, where, mask): ``where`` is ``start_pos`` when an int, else the tensor of
            the ``length`` positions; ``mask`` (g * length, keys) is True where a query may see a
            key, None for one token at an int position (it sees every key up to its own).

        Raises:
            ValueError: when an int ``start_pos`` runs past the cache (a tensor one is not
                checked: that would synchronise).
        """
        if isinstance(start_pos, int):
            end = start_pos + length
            if end > cache.max_len:
                raise ValueError(f"positions up to {end} exceed the KV cache of {cache.max_len}")
            cos, sin = cache.cos[start_pos:end], cache.sin[start_pos:end]
            if length == 1:
                return cos, sin, start_pos, None
            positions, n_keys = start_pos + torch.arange(length, device=cos.device), end
        else:
            positions = start_pos + torch.arange(length, device=start_pos.device)
            cos, sin, n_keys = cache.cos[positions], cache.sin[positions], cache.max_len
        keys = torch.arange(n_keys, device=positions.device)
        mask = (positions[:, None] >= keys[None, :]).repeat(self.spec.gqa_group, 1)
        return cos, sin, start_pos if isinstance(start_pos, int) else positions, mask

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


class CachedStep:
    """The lean decode step: ``Transformer.forward`` with a cache, without per-step module calls.

    Every weight is referenced once, at construction, and a step is the arithmetic of
    ``Block.forward`` in the same order (so the logits are the same bits): no ``nn.Module`` call,
    attribute lookup or table rebuilt per step, and a single token's query heads come out of
    ``wq`` already grouped by KV head (no transposes). RoPE tables, positions and the mask come
    from ``Transformer.cached_tables``, once per step for all layers. Works with int and tensor
    positions (CUDA graphs, ``torch.compile``).
    """

    def __init__(self, model: Transformer) -> None:
        spec = model.spec
        self.model, self.eps, self.shape = model, spec.norm_eps, (spec.d_model,)
        self.heads, self.kv_heads, self.head_dim = spec.n_heads, spec.n_kv_heads, spec.head_dim
        self.embedding, self.norm, self.output = (
            model.tok_embeddings.weight,
            model.norm.weight,
            model.output.weight,
        )
        self.layers = [
            (
                b.attention_norm.weight,
                b.attention.wq.weight,
                b.attention.wk.weight,
                b.attention.wv.weight,
                b.attention.wo.weight,
                b.mlp_norm.weight,
                b.mlp.w1.weight,
                b.mlp.w3.weight,
                b.mlp.w2.weight,
            )
            for b in model.layers
        ]

    def __call__(
        self, tokens: torch.Tensor, cache: KVCache, start_pos: int | torch.Tensor
    ) -> torch.Tensor:
        """Logits (B, T, vocab_size) of ``tokens`` (B, T) at positions from ``start_pos``."""
        batch, length = tokens.shape
        hd = self.head_dim
        cos, sin, where, mask = self.model.cached_tables(cache, start_pos, length)
        x = F.embedding(tokens, self.embedding)
        for (an, wq, wk, wv, wo, mn, w1, w3, w2), keys, values in zip(
            self.layers, cache.keys, cache.values, strict=True
        ):
            h = F.rms_norm(x, self.shape, an, self.eps)
            if length == 1:  # one token: its heads come out of wq grouped by KV head already
                q = apply_rope(F.linear(h, wq).view(batch, self.kv_heads, -1, hd), cos, sin)
                k = apply_rope(F.linear(h, wk).view(batch, self.kv_heads, 1, hd), cos, sin)
                v = F.linear(h, wv).view(batch, self.kv_heads, 1, hd)
                out = attend_cached(q, k, v, (keys, values), where, mask).reshape(batch, 1, -1)
            else:
                q = F.linear(h, wq).view(batch, length, self.heads, hd).transpose(1, 2)
                k = F.linear(h, wk).view(batch, length, self.kv_heads, hd).transpose(1, 2)
                v = F.linear(h, wv).view(batch, length, self.kv_heads, hd).transpose(1, 2)
                q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
                grouped = q.reshape(batch, self.kv_heads, -1, hd)
                out = attend_cached(grouped, k, v, (keys, values), where, mask)
                out = out.view(batch, self.heads, length, hd).transpose(1, 2)
                out = out.reshape(batch, length, -1)
            x = x + F.linear(out, wo)
            h = F.rms_norm(x, self.shape, mn, self.eps)
            x = x + F.linear(F.silu(F.linear(h, w1)) * F.linear(h, w3), w2)
        return F.linear(F.rms_norm(x, self.shape, self.norm, self.eps), self.output)
