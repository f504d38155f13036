"""The torch backend's speed knobs change speed, not results (issue 10, CPU part)."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from archsearch.arch import ArchSpec
from archsearch.config import BackendConfig, PerfConfig, TrainConfig
from archsearch.errors import ConfigError
from archsearch.model import Transformer
from archsearch.train.fp8 import check_fp8_dims, convert_to_fp8
from archsearch.train.setup import micro_batches_per_step, prepare_model
from archsearch.train.speed import Speedometer, peak_flops_per_s

SPEC = ArchSpec(
    d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=16, d_ff=128, vocab_size=512
)


def _model() -> Transformer:
    torch.manual_seed(0)
    return Transformer(SPEC)


def _batch(rows: int = 8, length: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    tokens = torch.randint(
        0, SPEC.vocab_size, (rows, length + 1), generator=torch.Generator().manual_seed(1)
    )
    return tokens[:, :-1], tokens[:, 1:]


def _grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter's gradient by name (``assert_close`` compares such dicts key by key)."""
    return {n: p.grad.clone() for n, p in model.named_parameters()}


def test_chunked_cross_entropy_equals_the_full_one() -> None:
    inputs, targets = _batch()
    full, chunked = _model(), _model()
    a = full.loss(inputs, targets)
    b = chunked.loss(inputs, targets, chunk_tokens=48)  # 256 tokens: 5 chunks + a remainder
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    a.backward()
    b.backward()
    torch.testing.assert_close(_grads(full), _grads(chunked), rtol=1e-5, atol=1e-6)


def test_activation_checkpointing_gives_the_same_gradients() -> None:
    inputs, targets = _batch()
    plain, recomputed = _model(), _model()
    recomputed.activation_checkpointing = True
    plain.loss(inputs, targets).backward()
    recomputed.loss(inputs, targets).backward()
    torch.testing.assert_close(_grads(plain), _grads(recomputed), rtol=1e-5, atol=1e-7)


def test_gradient_accumulation_equals_one_big_batch() -> None:
    inputs, targets = _batch(rows=8)
    big, accumulated = _model(), _model()
    big.loss(inputs, targets).backward()
    for micro_in, micro_t in zip(inputs.split(2), targets.split(2), strict=True):
        (accumulated.loss(micro_in, micro_t) / 4).backward()
    torch.testing.assert_close(_grads(big), _grads(accumulated), rtol=1e-5, atol=1e-7)
    assert (
        micro_batches_per_step(TrainConfig(batch_size=2, seq_len=32, global_batch_tokens=256)) == 4
    )
    with pytest.raises(ConfigError, match="whole multiple of a micro-batch"):
        micro_batches_per_step(TrainConfig(batch_size=3, seq_len=32, global_batch_tokens=256))


@pytest.mark.slow
def test_compiled_and_eager_models_give_the_same_loss() -> None:
    """torch.compile on CPU (inductor, C++): same loss within 1e-5 and same gradients (1e-4)."""
    inputs, targets = _batch()
    eager, compiled = _model(), _model()
    a = eager.loss(inputs, targets, 64)
    b = torch.compile(compiled.loss)(inputs, targets, 64)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    a.backward()
    b.backward()
    torch.testing.assert_close(_grads(eager), _grads(compiled), rtol=1e-4, atol=1e-5)


def test_fp8_on_cpu_is_a_clear_error_not_a_silent_bf16_run() -> None:
    with pytest.raises(ConfigError, match="needs a CUDA GPU of compute capability >= 8.9"):
        convert_to_fp8(_model(), "tensorwise", torch.device("cpu"))
    with pytest.raises(ConfigError, match="fp8_recipe='delayed' for torchao"):
        convert_to_fp8(_model(), "delayed", torch.device("cpu"))
    with pytest.raises(ConfigError, match="Transformer Engine FP8, for backend=megatron"):
        prepare_model(_model(), PerfConfig(), BackendConfig(fp8="hybrid"), torch.device("cpu"))


def test_fp8_misaligned_dims_name_the_layer() -> None:
    check_fp8_dims(_model())  # every Linear but the head is a multiple of 16
    odd = Transformer(ArchSpec(**{**SPEC.to_dict(), "d_ff": 120}))
    with pytest.raises(ConfigError, match=r"layer layers.0.mlp.w1 is 64 -> 120"):
        check_fp8_dims(odd)
    head_only_odd = Transformer(ArchSpec(**{**SPEC.to_dict(), "vocab_size": 500}))
    check_fp8_dims(head_only_odd)  # the head stays in bf16, so its size does not matter


def test_speedometer_reports_mfu_only_against_a_known_peak() -> None:
    assert peak_flops_per_s(torch.device("cpu")) is None
    speed = Speedometer(flops_per_token=1_000, peak_flops_per_s=1e6)
    with speed.timing(500, torch.device("cpu")):
        pass
    window = speed.read()
    assert window["achieved_flops_per_s"] == pytest.approx(window["tokens_per_s"] * 1_000)
    assert window["mfu"] == pytest.approx(window["achieved_flops_per_s"] / 1e6)
    assert speed.read() == {}  # the window was reset
    assert "MFU" in Speedometer.postfix({"train_loss": 1.0, **window})
    no_peak = Speedometer(1_000, None)
    with no_peak.timing(10, torch.device("cpu")):
        pass
    assert "mfu" not in no_peak.summary()


def test_copy_of_model_is_unchanged_by_prepare_on_cpu() -> None:
    model = _model()
    reference = copy.deepcopy(model)
    prepared = prepare_model(model, PerfConfig(tf32=True), BackendConfig(), torch.device("cpu"))
    inputs, targets = _batch()
    torch.testing.assert_close(prepared.loss(inputs, targets), reference.loss(inputs, targets))


def test_training_benchmark_runs_on_a_tiny_shape(repo: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "benchmarks/bench_train.py",
            "--models",
            "debug",
            "--device",
            "cpu",
            "--seq-len",
            "32",
            "--tokens",
            "256",
            "--steps",
            "2",
            "--warmup",
            "1",
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    row = next(line for line in out.splitlines() if line.startswith("debug"))
    precision, tokens_per_s, tflops, mfu = row.split()[1:]
    assert precision == "fp32" and float(tokens_per_s.replace(",", "")) > 0
    assert float(tflops) >= 0 and mfu == "-"  # no MFU without a datasheet peak
