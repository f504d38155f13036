"""The same decode protocol run through vLLM (GPU clusters), for numbers comparable with the paper.

vLLM is imported only inside ``measure_decode_vllm``; without it the call raises an ImportError
that says how to install it. The model is a Hugging Face causal-LM config with dummy (random)
weights, prompts are token ids (no tokenizer), and every request generates exactly T_out tokens
(``min_tokens = max_tokens``, EOS ignored). vLLM does not expose prefill and generation
separately, so ``prefill_s`` is the wall time of the same batch with ``max_tokens=1`` and
``decode_s`` is the full run minus it. The config is the Hugging Face export's
(``archsearch.export.hf_config``): shapes whose ``d_model`` is not ``n_heads * head_dim``
(Surefire-1B) are written as ``MistralForCausalLM``, which recent transformers accept.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from archsearch.arch import ArchSpec
from archsearch.export import hf_config
from archsearch.throughput.config import DecodeConfig
from archsearch.throughput.decode import BatchTiming, check_memory


def measure_decode_vllm(spec: ArchSpec, cfg: DecodeConfig) -> list[BatchTiming]:
    """Time vLLM generating T_out tokens for B prompts of T_in random tokens, per batch size.

    Args:
        spec: the architecture (dummy weights).
        cfg: the protocol; ``compile`` and ``prefill_chunk_tokens`` do not apply.

    Returns:
        One BatchTiming per batch size (warm-up excluded).

    Raises:
        ImportError: when vLLM is not installed.
    """
    try:
        from vllm import LLM, SamplingParams
        from vllm.inputs import TokensPrompt
    except ImportError as e:
        raise ImportError(
            "throughput.backend=vllm needs vLLM (`pip install vllm` on a CUDA machine); "
            "use throughput.backend=torch elsewhere"
        ) from e
    max_len = cfg.prompt_tokens + cfg.new_tokens
    for batch_size in cfg.batch_sizes:
        check_memory(spec, batch_size, max_len, "bf16", cfg.max_memory_gb)
    rng = random.Random(cfg.seed)
    with tempfile.TemporaryDirectory() as model_dir:
        (Path(model_dir) / "config.json").write_text(json.dumps(hf_config(spec, max_len)))
        llm = LLM(
            model=model_dir,
            load_format="dummy",
            skip_tokenizer_init=True,
            dtype="bfloat16",
            max_model_len=max_len,
            max_num_seqs=max(cfg.batch_sizes),
            seed=cfg.seed,
            enable_prefix_caching=False,  # repeats reuse prompts: caching would skip prefill
        )
        full = SamplingParams(
            max_tokens=cfg.new_tokens, min_tokens=cfg.new_tokens, ignore_eos=True, temperature=0.0
        )
        first = SamplingParams(max_tokens=1, ignore_eos=True, temperature=0.0)
        timings = []
        for batch_size in cfg.batch_sizes:
            prompts = [
                TokensPrompt(
                    prompt_token_ids=[
                        rng.randrange(spec.vocab_size) for _ in range(cfg.prompt_tokens)
                    ]
                )
                for _ in range(batch_size)
            ]

            def wall_s(params: Any, prompts: list[Any] = prompts) -> float:
                start = time.perf_counter()
                llm.generate(prompts, params, use_tqdm=False)
                return time.perf_counter() - start

            for _ in range(cfg.warmup):
                wall_s(full)
            prefill = [wall_s(first) for _ in range(cfg.repeats)]
            total = [wall_s(full) for _ in range(cfg.repeats)]
            decode = [t - p for t, p in zip(total, prefill, strict=True)]
            timings.append(BatchTiming(batch_size, prefill, decode))
    return timings
