"""Every CPU workaround megatron-core 0.16 needs, in one place; for CPU tests and CPU runs only.

megatron-core assumes CUDA in four spots that a CPU forward and backward pass reach (gloo, world
size 1, TP = PP = 1, local layer spec):

1. Dropout RNG tracker: ``get_cuda_rng_tracker().fork()`` saves and restores the CUDA RNG state.
   The no-op tracker megatron ships for inference replaces it; nothing is lost because every
   dropout in ``megatron_backend.transformer_config`` is 0.
2. RoPE frequencies: ``RotaryEmbedding.get_emb`` moves ``inv_freq`` to ``cuda.current_device()``.
   ``adapt_model`` gives the model's rotary module a ``get_emb`` that stays on the CPU.
3. Attention score buffer: ``GlobalMemoryBuffer.get_tensor`` allocates on the current CUDA device.
   A buffer that allocates on the CPU replaces it.
4. Causal mask: without an explicit mask, the local attention builds one with ``device="cuda"``.
   ``causal_mask`` builds it on the CPU, to pass as ``attention_mask``.

Call ``install`` once after ``parallel_state.initialize_model_parallel`` and ``adapt_model`` on each
model built. megatron is imported lazily, only by these functions.
"""

from __future__ import annotations

import types
from typing import Any

import torch


def install() -> None:
    """Replace megatron's CUDA RNG tracker and attention-score buffer with CPU ones (1 and 3)."""
    from megatron.core import parallel_state
    from megatron.core.tensor_parallel.random import initialize_rng_tracker
    from megatron.core.utils import GlobalMemoryBuffer

    class CPUMemoryBuffer(GlobalMemoryBuffer):
        """Allocates each requested tensor on the CPU (reuse only saves CUDA allocator calls)."""

        def get_tensor(
            self, tensor_shape: Any, dtype: torch.dtype, name: str, mem_alloc_context: Any = None
        ) -> torch.Tensor:
            return torch.empty(tuple(tensor_shape), dtype=dtype)

    initialize_rng_tracker(inference_rng_tracker=True, force_reset=True)
    parallel_state._GLOBAL_MEMORY_BUFFER = CPUMemoryBuffer()


def adapt_model(model: torch.nn.Module) -> None:
    """Keep ``model``'s RoPE frequencies on the CPU (2); non-interleaved rotary only."""
    rotary = getattr(model, "rotary_pos_emb", None)
    if rotary is None:
        return
    if rotary.rotary_interleaved:
        raise ValueError("the CPU RoPE workaround supports non-interleaved rotary embeddings only")
    rotary.get_emb = types.MethodType(_rope_emb_on_cpu, rotary)


def _rope_emb_on_cpu(self: Any, max_seq_len: int, offset: int = 0) -> torch.Tensor:
    """``RotaryEmbedding.get_emb`` without the move to CUDA: (seq, 1, 1, kv_channels) angles."""
    freqs = self.get_freqs_non_repeated(max_seq_len, offset)
    return torch.cat((freqs, freqs), dim=-1)[:, None, None, :]


def causal_mask(seq_len: int) -> torch.Tensor:
    """(1, 1, seq_len, seq_len) boolean mask, True above the diagonal (megatron: True = masked)."""
    return torch.ones(seq_len, seq_len, dtype=torch.bool).triu(diagonal=1)[None, None]
