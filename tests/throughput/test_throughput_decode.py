"""Decode with the KV cache: same logits as a full forward pass, and the benchmark protocol."""

from __future__ import annotations

import math

import pytest
import torch

from archsearch.arch import ArchSpec
from archsearch.model import CachedStep, KVCache, Transformer
from archsearch.throughput.config import DecodeConfig
from archsearch.throughput.decode import (
    Decoder,
    build_model,
    check_memory,
    measure_decode,
    measure_interleaved,
)

CPU = torch.device("cpu")


def spec_with(n_kv_heads: int) -> ArchSpec:
    return ArchSpec(64, 2, 4, n_kv_heads, 16, 96, 101, name=f"kv{n_kv_heads}")


@pytest.mark.parametrize("n_kv_heads", [4, 2, 1])  # MHA, GQA, MQA
@pytest.mark.parametrize("static", [False, True])  # int positions, or tensors (CUDA-graph path)
def test_cached_decode_matches_full_forward(n_kv_heads: int, static: bool) -> None:
    spec = spec_with(n_kv_heads)
    torch.manual_seed(0)
    model = Transformer(spec).eval()
    tokens = torch.randint(spec.vocab_size, (3, 14))
    with torch.inference_mode():
        full = model(tokens)
        cache = KVCache.allocate(spec, 3, 16)
        pieces = [model(tokens[:, :6], cache, 0), model(tokens[:, 6:9], cache, 6)]  # prefill, chunk
        for t in range(9, 14):
            pos = torch.tensor(t) if static else t
            pieces.append(model(tokens[:, t : t + 1], cache, pos))
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=1e-4, atol=1e-5)


def test_last_logits_only() -> None:
    spec = spec_with(2)
    model = Transformer(spec).eval()
    tokens = torch.randint(spec.vocab_size, (2, 7))
    with torch.inference_mode():
        torch.testing.assert_close(model(tokens, last_logits_only=True), model(tokens)[:, -1:])


@pytest.mark.parametrize("prompt_tokens", [1, 5])
def test_decoder_generates_exactly_the_greedy_tokens(prompt_tokens: int) -> None:
    spec = spec_with(2)
    model = build_model(spec, CPU, "fp32", seed=1)
    prompts = torch.randint(spec.vocab_size, (3, prompt_tokens))
    decoder = Decoder(model, 3, prompt_tokens, 6, "none", prefill_chunk_tokens=8)  # 2-row chunks
    generated, prefill, decode = decoder.run(prompts)
    assert generated.shape == (3, 6) and min(decode) > 0 and min(prefill) >= 0
    sequence = prompts
    with torch.inference_mode():
        for _ in range(6):  # greedy without a cache: recompute the whole sequence each time
            sequence = torch.cat([sequence, model(sequence)[:, -1:].argmax(-1)], dim=1)
    assert torch.equal(generated, sequence[:, prompt_tokens:])
    again, _, _ = decoder.run(prompts)  # the cache is reused across repeats
    assert torch.equal(again, generated)


def test_measure_decode_protocol_and_memory_limit() -> None:
    spec = spec_with(1)
    cfg = DecodeConfig(prompt_tokens=8, new_tokens=4, batch_sizes=[1, 2], repeats=5, warmup=1)
    timings = measure_decode(spec, cfg, CPU, "fp32", "none")
    assert [t.batch_size for t in timings] == [1, 2]
    for t in timings:  # wall and process CPU seconds of every timed repeat (CPU)
        assert t.decode_cpu_s is not None and t.prefill_cpu_s is not None
        for times in (t.prefill_s, t.decode_s, t.prefill_cpu_s, t.decode_cpu_s):
            assert len(times) == 5 and all(math.isfinite(s) and s > 0 for s in times)
    with pytest.raises(MemoryError, match="max_memory_gb=1e-06"):
        check_memory(spec, 64, 1024, "fp32", 1e-6)
    with pytest.raises(MemoryError, match="batch 2"):
        measure_decode(spec, DecodeConfig(batch_sizes=[2], max_memory_gb=1e-6), CPU, "fp32", "none")


def test_interleaved_measurement_takes_every_shape_in_turns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    specs = [spec_with(4), spec_with(2), spec_with(1)]
    calls: list[int] = []
    run = Decoder.run

    def spy(self: Decoder, prompts: torch.Tensor) -> tuple[torch.Tensor, object, object]:
        calls.append(self.model.spec.n_kv_heads)
        return run(self, prompts)

    monkeypatch.setattr(Decoder, "run", spy)
    cfg = DecodeConfig(prompt_tokens=6, new_tokens=3, repeats=4, warmup=1)
    timings = measure_interleaved(specs, cfg, 2, CPU, "fp32", "none")
    assert calls[:3] == [4, 2, 1]  # one warm-up each, then 4 rounds, the order rotated each round
    rounds = [calls[3 + 3 * k : 6 + 3 * k] for k in range(4)]
    assert rounds == [[4, 2, 1], [2, 1, 4], [1, 4, 2], [4, 2, 1]]
    assert [t.batch_size for t in timings] == [2, 2, 2]
    for t in timings:
        assert t.decode_cpu_s is not None and len(t.decode_s) == len(t.decode_cpu_s) == 4
    with pytest.raises(MemoryError, match="max_memory_gb"):
        measure_interleaved(specs, DecodeConfig(max_memory_gb=1e-6), 2, CPU, "fp32", "none")


@pytest.mark.parametrize("static", [False, True])
def test_lean_step_gives_the_module_forward_bit_for_bit(static: bool) -> None:
    spec = spec_with(2)
    model = build_model(spec, CPU, "fp32", seed=2)
    tokens = torch.randint(spec.vocab_size, (2, 9))
    lean = CachedStep(model)
    with torch.inference_mode():
        caches = [KVCache.allocate(spec, 2, 12) for _ in range(2)]
        for cache in caches:
            model(tokens[:, :5], cache, 0)
        for t in range(5, 9):
            pos = torch.tensor(t) if static else t
            step = tokens[:, t : t + 1]
            assert torch.equal(lean(step, caches[0], pos), model(step, caches[1], pos))
        chunk = tokens[:, 6:9]  # several tokens at once need the causal mask
        assert torch.equal(lean(chunk, caches[0], 6), model(chunk, caches[1], 6))
