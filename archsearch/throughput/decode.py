"""Measured decode benchmark: a random-weight model, a pre-allocated GQA-aware KV cache. Torch.

Protocol (DESIGN.md section 2): B prompts of T_in random tokens; the first ``T_in - 1`` are
prefilled (in row chunks of at most ``prefill_chunk_tokens`` tokens), then exactly T_out greedy
decode steps each produce one generated token (step j feeds position ``T_in - 1 + j``, the prompt's
last token first). Prefill and generation are timed separately with device synchronisation; a
warm-up precedes the timed repeats. Each phase is timed by the wall clock and, on CPU, also by the
process's CPU time (``time.process_time``): blind to time spent waiting while other processes hold
the cores (not to their sharing of caches and memory bandwidth), so it ranks shapes the same on a
loaded machine; with one intra-op thread it is the work of the step. Step modes: "none" (eager,
exact-length attention), "cuda_graph" (static shapes, the whole step replayed as one CUDA graph)
and "compile" (``torch.compile`` of the step, captured in a CUDA graph on CUDA).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

import torch

from archsearch.arch import ArchSpec
from archsearch.model import CachedStep, KVCache, Transformer
from archsearch.records.throughput import BatchThroughput
from archsearch.throughput.config import DecodeConfig
from archsearch.throughput.roofline import DecodeEstimate, memory_bytes

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
STEP_MODES = ("none", "cuda_graph", "compile")

Step = Callable[[torch.Tensor, int], torch.Tensor]
Clock = Callable[[], float]
T = TypeVar("T")


class Lap(NamedTuple):
    """Seconds one phase took: wall clock, and the process's CPU time."""

    wall_s: float
    cpu_s: float


@dataclass(frozen=True)
class BatchTiming:
    """Times of the timed repeats at one batch size, in seconds: wall clock, and on CPU the
    process's CPU time (None where it means nothing: GPUs, vLLM)."""

    batch_size: int
    prefill_s: list[float]
    decode_s: list[float]
    prefill_cpu_s: list[float] | None = None
    decode_cpu_s: list[float] | None = None

    def throughput(
        self, new_tokens: int, roofline: DecodeEstimate | None = None
    ) -> BatchThroughput:
        """The summary record of these repeats (``BatchThroughput.from_times``) for
        ``new_tokens`` (T_out) generated per row, with the roofline's prediction where given."""
        return BatchThroughput.from_times(
            self.batch_size,
            new_tokens,
            self.prefill_s,
            self.decode_s,
            roofline.tokens_per_s if roofline else None,
            roofline.end_to_end_tokens_per_s if roofline else None,
            self.prefill_cpu_s,
            self.decode_cpu_s,
        )


def resolve_device(name: str) -> torch.device:
    """``"auto"`` is CUDA when available, else CPU; anything else is passed to torch."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def resolve_dtype(name: str, device: torch.device) -> str:
    """``"auto"`` is bf16 on CUDA and fp32 on CPU; returns a key of ``DTYPES``."""
    if name == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    if name not in DTYPES:
        raise ValueError(f"throughput.dtype={name!r}; choose auto or one of {sorted(DTYPES)}")
    return name


def resolve_step_mode(name: str, device: torch.device) -> str:
    """``"auto"`` is "cuda_graph" on CUDA and "none" on CPU; returns one of ``STEP_MODES``."""
    if name == "auto":
        return "cuda_graph" if device.type == "cuda" else "none"
    if name not in STEP_MODES:
        raise ValueError(f"throughput.compile={name!r}; choose auto or one of {STEP_MODES}")
    if name == "cuda_graph" and device.type != "cuda":
        raise ValueError("throughput.compile=cuda_graph needs a CUDA device; use none or compile")
    return name


def synchronize(device: torch.device) -> None:
    """Wait for queued device work so that wall-clock timing is honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(
    device: torch.device, work: Callable[[], T], clocks: Sequence[Clock]
) -> tuple[T, list[float]]:
    """``work()`` between device synchronisations; its result and the seconds each clock saw."""
    synchronize(device)
    starts = [clock() for clock in clocks]
    result = work()
    synchronize(device)
    return result, [clock() - start for clock, start in zip(clocks, starts, strict=True)]


def build_model(spec: ArchSpec, device: torch.device, dtype: str, seed: int) -> Transformer:
    """A seeded random-weight model in eval mode on ``device`` in ``dtype``."""
    torch.manual_seed(seed)
    return Transformer(spec).to(device=device, dtype=DTYPES[dtype]).eval()


class _GraphStep:
    """One decode step captured as a CUDA graph; call it with new tokens and a position."""

    def __init__(
        self,
        step: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        tokens: torch.Tensor,
        pos: int,
    ) -> None:
        self.tokens, self.pos = tokens.clone(), torch.tensor(pos, device=tokens.device)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up (and compilation) outside the capture
            for _ in range(2):
                step(self.tokens, self.pos)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.out = step(self.tokens, self.pos)

    def __call__(self, tokens: torch.Tensor, pos: int) -> torch.Tensor:
        self.tokens.copy_(tokens)
        self.pos.fill_(pos)
        self.graph.replay()
        return self.out.clone()  # the next replay overwrites ``out``


def make_step(
    model: Transformer, cache: KVCache, mode: str, first_token: torch.Tensor, pos: int
) -> Step:
    """A greedy decode step ``step(tokens (B, 1), position) -> next tokens (B, 1)``.

    Args:
        mode: one of ``STEP_MODES``.
        first_token: (B, 1) tokens on the model's device, used to warm up a captured step (the
            warm-up writes the cache at ``pos``, which the first real step overwrites).
        pos: the first decode position.
    """
    lean = CachedStep(model)

    def greedy(tokens: torch.Tensor, start: torch.Tensor | int) -> torch.Tensor:
        return lean(tokens, cache, start).argmax(dim=-1)

    if mode == "none":
        return greedy
    static = torch.compile(greedy, fullgraph=True, dynamic=False) if mode == "compile" else greedy
    if first_token.device.type == "cuda":
        return _GraphStep(static, first_token, pos)
    return lambda tokens, position: static(tokens, torch.tensor(position))


class Decoder:
    """Greedy decoding of B prompts with one pre-allocated cache (one Decoder per batch size)."""

    def __init__(
        self,
        model: Transformer,
        batch_size: int,
        prompt_tokens: int,
        new_tokens: int,
        mode: str,
        prefill_chunk_tokens: int = 16_384,
    ) -> None:
        param = next(model.parameters())
        self.model, self.device = model, param.device
        self.prompt_tokens, self.new_tokens = prompt_tokens, new_tokens
        with torch.inference_mode():
            self.cache = KVCache.allocate(
                model.spec, batch_size, prompt_tokens + new_tokens - 1, self.device, param.dtype
            )
        self.rows_per_chunk = max(1, prefill_chunk_tokens // max(1, prompt_tokens - 1))
        first = torch.zeros(batch_size, 1, dtype=torch.long, device=self.device)
        with torch.inference_mode():  # a captured step must see the tensors run() will use
            self.step = make_step(model, self.cache, mode, first, prompt_tokens - 1)

    def prefill(self, prompts: torch.Tensor) -> None:
        """Write the keys and values of ``prompts[:, :-1]`` into the cache, in row chunks."""
        if self.prompt_tokens == 1:
            return
        for row in range(0, prompts.shape[0], self.rows_per_chunk):
            rows = slice(row, row + self.rows_per_chunk)
            self.model(prompts[rows, :-1], self.cache.rows(rows), 0, last_logits_only=True)

    def run(self, prompts: torch.Tensor) -> tuple[torch.Tensor, Lap, Lap]:
        """Prefill then generate exactly T_out tokens per row.

        Args:
            prompts: (B, T_in) token ids on the model's device.

        Returns:
            (generated (B, T_out) token ids, prefill Lap, generation Lap): wall and process CPU
            seconds of each phase.
        """
        clocks = (time.perf_counter, time.process_time)
        with torch.inference_mode():
            _, prefill = timed(self.device, lambda: self.prefill(prompts), clocks)
            generated, decode = timed(
                self.device, lambda: self.decode_steps(prompts[:, -1:]), clocks
            )
        return generated, Lap(*prefill), Lap(*decode)

    def decode_steps(self, last: torch.Tensor) -> torch.Tensor:
        """The T_out greedy steps after a prefill, from the prompts' last tokens ``last`` (B, 1);
        returns the generated (B, T_out) token ids."""
        tokens = [last]
        for pos in range(self.prompt_tokens - 1, self.prompt_tokens - 1 + self.new_tokens):
            tokens.append(self.step(tokens[-1], pos))
        return torch.cat(tokens[1:], dim=1)

    def generate(
        self, last: torch.Tensor, clock: Clock = time.perf_counter
    ) -> tuple[torch.Tensor, float]:
        """The T_out decode steps after a prefill (repeatable: each run rewrites the same
        positions of the cache).

        Args:
            last: (B, 1) the prompts' last tokens.
            clock: what times the steps: wall clock, or ``time.process_time`` (the CPU time of
                this process, blind to other processes sharing the cores; CPU only).

        Returns:
            (generated (B, T_out) token ids, generation seconds).
        """
        with torch.inference_mode():
            generated, (seconds,) = timed(self.device, lambda: self.decode_steps(last), (clock,))
        return generated, seconds


def check_memory(
    spec: ArchSpec, batch_size: int, max_len: int, dtype: str, max_memory_gb: float
) -> None:
    """Refuse a batch whose weights plus KV cache would exceed ``max_memory_gb`` (1e9 bytes).

    Raises:
        MemoryError: naming the estimate, the limit and what to lower.
    """
    needed = memory_bytes(spec, batch_size, max_len, dtype)
    if needed > max_memory_gb * 1e9:
        raise MemoryError(
            f"batch {batch_size} x {max_len} positions of {spec.name or 'the model'} needs "
            f"{needed / 1e9:.2f} GB of weights + KV cache in {dtype}, over "
            f"throughput.max_memory_gb={max_memory_gb}: lower the batch size or lengths, or "
            "raise the limit"
        )


def measure_decode(
    spec: ArchSpec, cfg: DecodeConfig, device: torch.device, dtype: str, mode: str
) -> list[BatchTiming]:
    """Time prefill and generation for every batch size of ``cfg.batch_sizes``.

    Args:
        spec: the architecture (random weights seeded with ``cfg.seed``).
        cfg: the protocol (T_in, T_out, batch sizes, warm-up, repeats, memory limit).
        device: where to run.
        dtype: a key of ``DTYPES``.
        mode: one of ``STEP_MODES``.

    Returns:
        One BatchTiming per batch size, in order; process CPU times on CPU only.
    """
    if cfg.repeats < 1 or cfg.warmup < 0 or cfg.prompt_tokens < 1 or cfg.new_tokens < 1:
        raise ValueError("throughput: repeats, prompt_tokens, new_tokens >= 1 and warmup >= 0")
    max_len = cfg.prompt_tokens + cfg.new_tokens - 1
    for batch_size in cfg.batch_sizes:  # fail before spending time on the smaller batches
        check_memory(spec, batch_size, max_len, dtype, cfg.max_memory_gb)
    model = build_model(spec, device, dtype, cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    timings = []
    for batch_size in cfg.batch_sizes:
        prompts = torch.randint(
            spec.vocab_size, (batch_size, cfg.prompt_tokens), generator=generator
        ).to(device)
        decoder = Decoder(
            model, batch_size, cfg.prompt_tokens, cfg.new_tokens, mode, cfg.prefill_chunk_tokens
        )
        runs = [decoder.run(prompts)[1:] for _ in range(cfg.warmup + cfg.repeats)][cfg.warmup :]
        timings.append(_timing(batch_size, runs, device))
        del decoder
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return timings


def measure_interleaved(
    specs: Sequence[ArchSpec],
    cfg: DecodeConfig,
    batch_size: int,
    device: torch.device,
    dtype: str,
    mode: str,
) -> list[BatchTiming]:
    """Time several shapes' decode at one batch size in turns: repeat k runs every shape once,
    the order rotated by k, so a slow spell of the machine falls on all of them alike (a
    head-to-head comparison; separate measurements minutes apart can reverse close shapes).

    Args:
        specs: the shapes (random weights seeded with ``cfg.seed``, all resident at once).
        cfg: the protocol (T_in, T_out, warm-up and repeats per shape, memory limit).
        batch_size: B, in place of ``cfg.batch_sizes``.

    Returns:
        One BatchTiming per shape, in the order of ``specs``.
    """
    if cfg.repeats < 1 or cfg.warmup < 0 or cfg.prompt_tokens < 1 or cfg.new_tokens < 1:
        raise ValueError("throughput: repeats, prompt_tokens, new_tokens >= 1 and warmup >= 0")
    max_len = cfg.prompt_tokens + cfg.new_tokens - 1
    for spec in specs:
        check_memory(spec, batch_size, max_len, dtype, cfg.max_memory_gb)
    generator = torch.Generator().manual_seed(cfg.seed)
    runners = []
    for spec in specs:
        model = build_model(spec, device, dtype, cfg.seed)
        prompts = torch.randint(
            spec.vocab_size, (batch_size, cfg.prompt_tokens), generator=generator
        ).to(device)
        decoder = Decoder(
            model, batch_size, cfg.prompt_tokens, cfg.new_tokens, mode, cfg.prefill_chunk_tokens
        )
        for _ in range(cfg.warmup):
            decoder.run(prompts)
        runners.append((decoder, prompts))
    runs: list[list[tuple[Lap, Lap]]] = [[] for _ in specs]
    for k in range(cfg.repeats):
        for j in range(len(specs)):
            i = (k + j) % len(specs)
            decoder, prompts = runners[i]
            runs[i].append(decoder.run(prompts)[1:])
    return [_timing(batch_size, laps, device) for laps in runs]


def _timing(batch_size: int, runs: Sequence[tuple[Lap, Lap]], device: torch.device) -> BatchTiming:
    """The timed repeats' (prefill, generation) laps as a BatchTiming (CPU times on CPU)."""
    prefill, decode = zip(*runs, strict=True)
    cpu = device.type == "cpu"
    return BatchTiming(
        batch_size,
        [lap.wall_s for lap in prefill],
        [lap.wall_s for lap in decode],
        [lap.cpu_s for lap in prefill] if cpu else None,
        [lap.cpu_s for lap in decode] if cpu else None,
    )
