"""Hugging Face export: transformers loads the export and computes the project's logits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from archsearch.arch import ArchSpec  # noqa: E402
from archsearch.export import hf_config  # noqa: E402
from archsearch.export.hf import export_model  # noqa: E402
from archsearch.model import Transformer  # noqa: E402

# float32 on CPU: the two implementations order their float operations differently (RMSNorm in
# float32 vs the input dtype, SDPA vs eager attention), nothing more.
LOGITS_ATOL = 1e-5  # measured max |diff| 1.8e-7 (tiny), 3.6e-7 (Surefire-like)

TINY = ArchSpec(
    d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=16, d_ff=128, vocab_size=512
)
# Surefire-1B's kind of shape at toy size: d_model (80) is not n_heads x head_dim (6 x 16 = 96),
# tied embeddings, GQA group 3.
SUREFIRE_LIKE = ArchSpec(
    d_model=80,
    n_layers=2,
    n_heads=6,
    n_kv_heads=2,
    head_dim=16,
    d_ff=192,
    vocab_size=512,
    tie_embeddings=True,
)


def _hf_logits(model_dir: Path, tokens: torch.Tensor) -> torch.Tensor:
    hf_model = transformers.AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.float32, attn_implementation="eager"
    ).eval()
    with torch.no_grad():
        return hf_model(tokens).logits


@pytest.mark.parametrize("spec", [TINY, SUREFIRE_LIKE], ids=["tiny", "surefire-like"])
def test_exported_model_has_the_projects_logits(spec: ArchSpec, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = Transformer(spec).eval()
    with torch.no_grad():  # non-trivial norms, so a transposed or swapped weight shows
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.uniform_(0.5, 1.5)
    export_model(model, tmp_path, max_len=64)
    tokens = torch.randint(0, spec.vocab_size, (2, 37), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = model(tokens)
    theirs = _hf_logits(tmp_path, tokens)
    assert theirs.shape == ours.shape
    assert torch.allclose(theirs, ours, atol=LOGITS_ATOL, rtol=0)
    assert ours.std() > 100 * LOGITS_ATOL  # the tolerance is far below the logits' spread


def test_surefire_shapes_are_written_as_mistral_and_others_as_llama() -> None:
    assert hf_config(TINY, 64)["architectures"] == ["LlamaForCausalLM"]
    config = hf_config(SUREFIRE_LIKE, 64)
    assert config["architectures"] == ["MistralForCausalLM"]
    assert config["hidden_size"] != config["num_attention_heads"] * config["head_dim"]
    surefire = ArchSpec(
        d_model=2560,
        n_layers=16,
        n_heads=36,
        n_kv_heads=4,
        head_dim=64,
        d_ff=6144,
        vocab_size=128256,
    )
    hf = transformers.AutoConfig.for_model(**hf_config(surefire, 4096))
    assert (hf.hidden_size, hf.num_attention_heads, hf.head_dim) == (2560, 36, 64)


def test_exported_run_loads_with_its_tokenizer(trained_tiny_run: Path, tmp_path: Path) -> None:
    from archsearch.config import DataConfig
    from archsearch.data.shards import load_tokenizer, prepare
    from archsearch.export.__main__ import main
    from archsearch.export.hf import load_run_model

    main([str(trained_tiny_run), "--out", str(tmp_path)])
    assert {p.name for p in tmp_path.iterdir()} == {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    }
    model, config = load_run_model(trained_tiny_run)
    ours_tokenizer = load_tokenizer(prepare(DataConfig(**config["data"])))
    text = "The state of the Union is strong, and Congress shall assemble."
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path)
    ids = ours_tokenizer.encode(text).ids
    assert hf_tokenizer(text)["input_ids"] == ids
    assert hf_tokenizer.decode(ids) == text
    assert (
        hf_tokenizer.eos_token_id
        == json.loads((tmp_path / "config.json").read_text())["eos_token_id"]
        == ours_tokenizer.token_to_id("<|endoftext|>")
    )
    tokens = torch.tensor([ids])
    with torch.no_grad():
        ours = model(tokens)
    assert torch.allclose(_hf_logits(tmp_path, tokens), ours, atol=LOGITS_ATOL, rtol=0)
