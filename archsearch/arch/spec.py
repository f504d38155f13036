"""ArchSpec: the decoder shape every other layer is built from. Pure: no torch."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from archsearch.errors import ArchError


@dataclass(frozen=True)
class ArchSpec:
    """A LLaMA-style decoder (RMSNorm, RoPE, SwiGLU, grouped-query attention).

    ``n_heads * head_dim`` need not equal ``d_model`` (Surefire-1B: 2560 with 36 x 64).
    """

    d_model: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    d_ff: int
    vocab_size: int
    tie_embeddings: bool = False
    rope_theta: float = 500_000.0
    norm_eps: float = 1e-5
    name: str = ""

    def __post_init__(self) -> None:
        for field in (
            "d_model",
            "n_layers",
            "n_heads",
            "n_kv_heads",
            "head_dim",
            "d_ff",
            "vocab_size",
        ):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ArchError(f"{field} must be a positive integer, got {value!r}")
        if self.n_heads % self.n_kv_heads:
            divisors = [k for k in range(1, self.n_heads + 1) if self.n_heads % k == 0]
            raise ArchError(
                f"n_kv_heads={self.n_kv_heads} must divide n_heads={self.n_heads}; "
                f"choose n_kv_heads from {divisors}"
            )
        if self.head_dim % 2:
            raise ArchError(f"head_dim={self.head_dim} must be even for RoPE; use e.g. 64 or 128")
        if self.rope_theta <= 0 or self.norm_eps <= 0:
            raise ArchError("rope_theta and norm_eps must be positive")

    @property
    def gqa_group(self) -> int:
        """Queries per KV head, g = n_heads / n_kv_heads (LLaMA-3.2-1B: 4)."""
        return self.n_heads // self.n_kv_heads

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArchSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ArchError(f"unknown ArchSpec fields {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data)
