"""Typed configuration of ``python -m archsearch.throughput``. Pure: no torch or Hydra.

``DecodeConfig`` is the benchmark protocol (DESIGN.md section 2, "Throughput protocol"):
B prompts of ``prompt_tokens`` (T_in) tokens, then exactly ``new_tokens`` (T_out) generated tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archsearch.config import BudgetConfig, ModelConfig, TrackerConfig


@dataclass
class DecodeConfig:
    """The measured-decode protocol and the roofline profile it is compared with.

    Attributes:
        prompt_tokens: T_in, tokens per prompt (paper: 4096).
        new_tokens: T_out, tokens generated per prompt (paper: 1024).
        batch_sizes: B values, each measured separately.
        repeats: timed runs per batch size (after ``warmup`` untimed ones).
        backend: "torch" (this package's decode loop) or "vllm" (GPU clusters with vLLM).
        dtype: "auto" (bf16 on CUDA, fp32 on CPU), "fp32" or "bf16".
        compile: "auto" (CUDA graph on CUDA, none on CPU), "none", "cuda_graph" or "compile"
            (``torch.compile`` of the decode step; on CUDA it also captures CUDA graphs).
        max_memory_gb: refuse a batch whose weights plus KV cache exceed this (GB, 1e9 bytes).
        prefill_chunk_tokens: prompt tokens per prefill forward (rows are prefilled in chunks).
        profile: the profile of the prediction stored beside the measurement: "auto" (this
            machine's cached calibration for the device, dtype, step mode and threads, else a
            known GPU's measured or datasheet profile, else a calibration made now and cached),
            "calibrate" (calibrate now), a profile name (``hardware.get_profile``), or null
            (no prediction).
        seed: seeds the random weights and prompts.
        num_threads: CPU intra-op threads; null keeps torch's default.
    """

    prompt_tokens: int = 128
    new_tokens: int = 32
    batch_sizes: list[int] = field(default_factory=lambda: [1, 4])
    repeats: int = 5
    warmup: int = 1
    backend: str = "torch"
    dtype: str = "auto"
    compile: str = "auto"
    max_memory_gb: float = 8.0
    prefill_chunk_tokens: int = 16_384
    profile: str | None = "auto"
    seed: int = 0
    num_threads: int | None = None


@dataclass
class ThroughputRunConfig:
    """Everything ``python -m archsearch.throughput`` needs.

    Attributes:
        run_dir: a training run's directory; when set, ``throughput.json`` is written there
            (beside its ``record.json``) instead of the Hydra output directory.
        vocab_size: the random-weight model's vocabulary when ``model.vocab_size`` is null.
        device: "auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
        tracker: ``tracker.kind=wandb`` mirrors a multirun's table and plot to wandb (offline
            unless ``tracker.mode=online``); the default ``none`` keeps them local only.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    throughput: DecodeConfig = field(default_factory=DecodeConfig)
    run_dir: str | None = None
    vocab_size: int = 4096
    device: str = "auto"
    tracker: TrackerConfig = field(default_factory=lambda: TrackerConfig(kind="none"))
    name: str = "throughput"
