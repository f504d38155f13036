"""Write a trained run as a Hugging Face model directory (torch + safetensors)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from archsearch.arch import ArchSpec
from archsearch.config import DataConfig, run_fields
from archsearch.data.shards import EOS, load_tokenizer, prepare
from archsearch.export import hf_config, hf_weight_name
from archsearch.model import Transformer
from archsearch.records import read_record
from archsearch.records.state import fingerprint_of
from archsearch.train.checkpoint import load_checkpoint

EXPORT_DIR = "hf"  # inside the run directory, unless told otherwise
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def hf_state_dict(model: Transformer, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The model's weights under Hugging Face names; a tied output head is stored once."""
    return {
        hf_weight_name(name): param.detach().to(dtype).contiguous()
        for name, param in model.named_parameters()  # shared (tied) parameters appear once
    }


def export_model(
    model: Transformer,
    out_dir: str | Path,
    max_len: int,
    tokenizer_file: str | Path | None = None,
    dtype: str = "float32",
    architecture: str = "auto",
) -> Path:
    """Write ``config.json``, ``model.safetensors`` and (given one) the tokenizer into ``out_dir``.

    Returns:
        ``out_dir``.
    """
    from safetensors.torch import save_file

    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is unknown: use one of {sorted(DTYPES)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    eos_id = None
    if tokenizer_file is not None:
        shutil.copyfile(tokenizer_file, out_dir / "tokenizer.json")
        vocab = json.loads(Path(tokenizer_file).read_text())["added_tokens"]
        eos_id = next(token["id"] for token in vocab if token["content"] == EOS)
        tokenizer_config = {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "eos_token": EOS,
            "bos_token": EOS,
            "unk_token": EOS,
            "model_max_length": max_len,
            "add_bos_token": False,
            "add_eos_token": False,
        }
        (out_dir / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2))
    config = hf_config(model.spec, max_len, dtype, eos_id, architecture)
    (out_dir / "config.json").write_text(json.dumps(config, indent=2))
    save_file(hf_state_dict(model, DTYPES[dtype]), out_dir / "model.safetensors", {"format": "pt"})
    return out_dir


def load_run_model(run_dir: str | Path) -> tuple[Transformer, dict]:
    """The trained model of a torch-backend run directory (its last checkpoint) and its config."""
    run_dir = Path(run_dir)
    record = read_record(run_dir)
    # the checkpoint must be the one this record's config wrote (its fingerprint is inside)
    state = load_checkpoint(run_dir, fingerprint_of(run_fields(record.config)))
    if state is None:
        raise FileNotFoundError(
            f"{run_dir} has no checkpoint.pt: only torch-backend runs are exported "
            "(a megatron run keeps megatron_ckpt/)"
        )
    model = Transformer(ArchSpec.from_dict(record.arch))
    model.load_state_dict(state["model"])
    return model.eval(), record.config


def export_run(
    run_dir: str | Path,
    out_dir: str | Path | None = None,
    dtype: str = "float32",
    max_len: int | None = None,
    architecture: str = "auto",
) -> Path:
    """Export a finished run to ``out_dir`` (default ``<run_dir>/hf``) with its tokenizer.

    ``max_len`` defaults to the run's training sequence length.
    """
    model, config = load_run_model(run_dir)
    corpus = prepare(DataConfig(**config["data"]))
    load_tokenizer(corpus)  # fails early on a broken cache
    return export_model(
        model,
        Path(run_dir) / EXPORT_DIR if out_dir is None else out_dir,
        max_len or config["train"]["seq_len"],
        corpus.path / "tokenizer.json",
        dtype,
        architecture,
    )
