"""megatron-core backend on CPU: the translation, parameter count, parity with the torch model,
a backward pass, and the FP8 / Transformer Engine switches and their errors.

Skipped where megatron-core is not installed (``pip install 'archsearch[megatron]'``).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

pytest.importorskip("megatron.core")

from archsearch.arch import ArchSpec, count_params  # noqa: E402
from archsearch.config import BackendConfig, RunConfig, TrainConfig  # noqa: E402
from archsearch.errors import ConfigError  # noqa: E402
from archsearch.model import Transformer  # noqa: E402
from archsearch.train import megatron_backend as mb  # noqa: E402
from archsearch.train import megatron_train as mt  # noqa: E402
from archsearch.train.distributed import World, export_rendezvous_env  # noqa: E402

CONF = Path(__file__).resolve().parents[2] / "conf" / "model"
TINY = ArchSpec(
    d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=16, d_ff=96, vocab_size=128
)
SEQ_LEN = 16
CPU = torch.device("cpu")
CUDA = torch.device("cuda")


def _preset(name: str) -> ArchSpec:
    fields = OmegaConf.to_container(OmegaConf.load(CONF / f"{name}.yaml"))
    fields.pop("defaults")
    return ArchSpec(**fields)


def _run_cfg(**backend: object) -> RunConfig:
    return RunConfig(
        train=TrainConfig(seq_len=SEQ_LEN, device="cpu"), backend=BackendConfig(**backend)
    )


@pytest.fixture(scope="module")
def megatron_cpu() -> Iterator[None]:
    """A one-process gloo group and megatron's TP = PP = 1 state, with the CPU workarounds."""
    import torch.distributed as dist
    from megatron.core import parallel_state

    saved = dict(os.environ)
    export_rendezvous_env()
    dist.init_process_group("gloo")
    mt.init_model_parallel(_run_cfg(name="megatron"), TINY, CPU)
    yield
    parallel_state.destroy_model_parallel()
    dist.destroy_process_group()
    os.environ.clear()
    os.environ.update(saved)


@pytest.mark.parametrize("name", ["llama3_2_1b", "llama3_2_3b", "surefire_1b"])
def test_translation_sets_every_llama_field(name: str) -> None:
    spec = _preset(name)
    config = mb.transformer_config(spec, BackendConfig(name="megatron"), bf16=True)
    expected = {
        "num_layers": spec.n_layers,
        "hidden_size": spec.d_model,
        "num_attention_heads": spec.n_heads,
        "num_query_groups": spec.n_kv_heads,
        "kv_channels": spec.head_dim,
        "ffn_hidden_size": spec.d_ff,
        "normalization": "RMSNorm",
        "layernorm_epsilon": spec.norm_eps,
        "gated_linear_unit": True,
        "activation_func": F.silu,
        "add_bias_linear": False,
        "add_qkv_bias": False,
        "qk_layernorm": False,
        "rotary_interleaved": False,
        "hidden_dropout": 0.0,
        "attention_dropout": 0.0,
        "softmax_scale": spec.head_dim**-0.5,
        "apply_query_key_layer_scaling": False,
        "layernorm_zero_centered_gamma": False,
        "apply_residual_connection_post_layernorm": False,
        "init_method_std": 0.02,
        "embedding_init_method_std": 0.02,
        "bf16": True,
        "fp16": False,
        "params_dtype": torch.bfloat16,
        "fp8": None,
        "tensor_model_parallel_size": 1,
        "pipeline_model_parallel_size": 1,
    }
    assert {key: getattr(config, key) for key in expected} == expected
    model_kwargs = mb.gpt_model_kwargs(spec, seq_len=2048)
    assert model_kwargs["position_embedding_type"] == "rope"
    assert model_kwargs["rotary_base"] == spec.rope_theta == 500_000.0
    assert model_kwargs["rotary_percent"] == 1.0
    assert model_kwargs["share_embeddings_and_output_weights"] is spec.tie_embeddings is True
    assert model_kwargs["vocab_size"] == spec.vocab_size


def test_translation_keeps_d_ff_when_it_is_not_4h() -> None:
    """megatron's default FFN is 4 * hidden; Surefire-1B's 6144 must survive."""
    config = mb.transformer_config(_preset("surefire_1b"), BackendConfig(name="megatron"))
    assert config.ffn_hidden_size == 6144 != 4 * config.hidden_size


@pytest.mark.parametrize("tied", [True, False])
def test_gpt_model_matches_the_parameter_accounting(megatron_cpu: None, tied: bool) -> None:
    spec = replace(TINY, tie_embeddings=tied)
    model = mb.build_gpt_model(spec, _run_cfg(name="megatron"), CPU)
    assert sum(p.numel() for p in model.parameters()) == count_params(spec).total


@pytest.mark.parametrize("tied", [True, False])
def test_same_weights_give_the_same_logits_and_loss(megatron_cpu: None, tied: bool) -> None:
    spec = replace(TINY, tie_embeddings=tied)
    torch.manual_seed(0)
    reference = Transformer(spec)
    model = mb.build_gpt_model(spec, _run_cfg(name="megatron"), CPU)
    model.load_state_dict(mb.megatron_state_dict(reference.state_dict(), spec), strict=True)
    tokens = torch.randint(
        0, spec.vocab_size, (3, SEQ_LEN), generator=torch.Generator().manual_seed(1)
    )
    targets = tokens.roll(-1, dims=1)
    with torch.no_grad():
        expected_logits = reference(tokens)
        expected_loss = reference.loss(tokens, targets)
        logits = mb.forward(model, tokens)
        loss = mb.forward(model, tokens, targets).mean()
    assert logits.shape == expected_logits.shape
    torch.testing.assert_close(logits, expected_logits, atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(loss, expected_loss, atol=2e-6, rtol=1e-6)


def test_backward_reaches_every_parameter(megatron_cpu: None) -> None:
    model = mb.build_gpt_model(TINY, _run_cfg(name="megatron"), CPU)
    tokens = torch.randint(0, TINY.vocab_size, (2, SEQ_LEN))
    mb.forward(model, tokens, tokens.roll(-1, dims=1)).mean().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_fp8_settings_reach_the_config() -> None:
    backend = BackendConfig(
        name="megatron",
        fp8="hybrid",
        fp8_recipe="tensorwise",
        fp8_margin=1,
        fp8_amax_history_len=16,
        fp8_amax_compute_algo="most_recent",
    )
    config = mb.transformer_config(TINY, backend, bf16=True, impl="transformer_engine")
    assert (config.fp8, config.fp8_recipe, config.fp8_margin) == ("hybrid", "tensorwise", 1)
    assert (config.fp8_amax_history_len, config.fp8_amax_compute_algo) == (16, "most_recent")


def test_local_spec_without_transformer_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "transformer_engine", None)  # as if not installed
    assert not mb.te_available()
    backend = BackendConfig(name="megatron")
    assert mb.resolve_impl(backend, CPU) == "local"


def test_transformer_engine_that_cannot_load_counts_as_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TE installed without its CUDA libraries fails on import with OSError, not ImportError."""
    package = tmp_path / "transformer_engine"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "pytorch.py").write_text("raise OSError('libcuda.so.1: cannot open')\n")
    for name in ("transformer_engine", "transformer_engine.pytorch"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert importlib.util.find_spec("transformer_engine") is not None
    assert not mb.te_available()


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        ({"fp8": "hybrid"}, "needs Transformer Engine"),
        ({"transformer_impl": "transformer_engine"}, "needs Transformer Engine on a CUDA"),
        ({"transformer_impl": "fast"}, "transformer_impl='fast' is unknown"),
    ],
)
def test_clear_errors_on_this_cpu_machine(backend: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        mb.resolve_impl(BackendConfig(name="megatron", **backend), CPU)


@pytest.mark.parametrize(
    ("capability", "backend", "result"),
    [
        ((9, 0), {"fp8": "hybrid"}, "transformer_engine"),
        ((9, 0), {"fp8": "e4m3", "transformer_impl": "transformer_engine"}, "transformer_engine"),
        ((8, 0), {"fp8": "hybrid"}, "needs compute capability 9.0, this GPU has 8.0"),
        ((9, 0), {"fp8": "hybrid", "fp8_recipe": "mxfp8"}, "needs compute capability 10.0"),
        ((9, 0), {"fp8": "hybrid", "transformer_impl": "local"}, "would train without FP8"),
        ((9, 0), {"fp8": "fp8"}, "use fp8 in"),
        ((9, 0), {}, "transformer_engine"),
    ],
)
def test_fp8_switch_on_a_simulated_gpu(
    monkeypatch: pytest.MonkeyPatch,
    capability: tuple[int, int],
    backend: dict[str, object],
    result: str,
) -> None:
    """The Hopper and local-spec guards, with TE and the GPU faked (no CUDA here)."""
    monkeypatch.setattr(mb, "te_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    cfg = BackendConfig(name="megatron", **backend)
    if result == "transformer_engine":
        assert mb.resolve_impl(cfg, CUDA) == result
    else:
        with pytest.raises(ConfigError, match=result):
            mb.resolve_impl(cfg, CUDA)


def test_fp8_on_cpu_with_transformer_engine_names_the_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mb, "te_available", lambda: True)
    with pytest.raises(ConfigError, match="Hopper.*backend.fp8=null"):
        mb.resolve_impl(BackendConfig(name="megatron", fp8="hybrid"), CPU)


def test_training_asks_for_a_gpu() -> None:
    with pytest.raises(ConfigError, match="CUDA GPUs.*backend=torch"):
        mt.MegatronBackend(_run_cfg(name="megatron"), arch=None, device=CPU, world=World())  # type: ignore[arg-type]


def test_parallel_sizes_must_divide_the_model() -> None:
    with pytest.raises(ConfigError, match="tensor_parallel=4 must divide n_kv_heads"):
        mt._check_parallel(_run_cfg(name="megatron", tensor_parallel=4), TINY, world_size=4)
    with pytest.raises(ConfigError, match="must divide 6 GPUs"):
        mt._check_parallel(_run_cfg(name="megatron", tensor_parallel=4), TINY, world_size=6)
