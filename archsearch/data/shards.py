"""Tokenizer and token shards: train a byte-level BPE once, cache it with memmapped token arrays.

``prepare(cfg)`` returns a ``Corpus`` whose train and validation tokens are ``numpy.memmap`` arrays
in ``<cache>/<corpus_key>/``. Preparation is atomic (built in a temporary folder, then renamed), so
parallel sweep jobs and killed runs never see half a cache. The validation split is fixed by content
hash, identical across the runs of a sweep.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from archsearch.config import DataConfig
from archsearch.data.corpus import DataError, corpus_key, is_validation, iter_documents

EOS = "<|endoftext|>"


@dataclass(frozen=True)
class Corpus:
    """Prepared token arrays and their statistics."""

    path: Path
    train: np.ndarray
    val: np.ndarray
    vocab_size: int
    unigram_entropy: float  # nats per token, of the training split's token frequencies
    name: str


def cache_root(cfg: DataConfig) -> Path:
    """``data.cache_dir``, else ``$ARCHSEARCH_CACHE``, else ``~/.cache/archsearch``."""
    root = cfg.cache_dir or os.environ.get("ARCHSEARCH_CACHE") or "~/.cache/archsearch"
    return Path(root).expanduser()


def unigram_entropy(tokens: np.ndarray, vocab_size: int) -> float:
    """Entropy in nats of the empirical token distribution: the loss of a unigram model."""
    counts = np.bincount(tokens, minlength=vocab_size).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def _build(cfg: DataConfig, folder: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    docs = list(iter_documents(cfg))
    splits: dict[bool, list[str]] = {True: [], False: []}
    for doc in docs:
        splits[is_validation(doc, cfg.val_fraction)].append(doc)
    val_docs, train_docs = splits[True], splits[False]
    if not train_docs or not val_docs:
        raise DataError(
            f"{len(docs)} documents give {len(train_docs)} train / {len(val_docs)} validation: "
            "add documents or change data.val_fraction"
        )
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=cfg.vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(train_docs, trainer=trainer)
    tokenizer.save(str(folder / "tokenizer.json"))
    eos = tokenizer.token_to_id(EOS)
    dtype = np.uint16 if tokenizer.get_vocab_size() <= 2**16 else np.uint32
    stats: dict[str, int | float] = {}
    tokens: dict[str, np.ndarray] = {}
    for split, split_docs in (("train", train_docs), ("val", val_docs)):
        ids = [i for enc in tokenizer.encode_batch(split_docs) for i in (*enc.ids, eos)]
        tokens[split] = np.asarray(ids, dtype=dtype)
        tokens[split].tofile(folder / f"{split}.bin")
        stats[f"{split}_tokens"] = len(ids)
        stats[f"{split}_documents"] = len(split_docs)
    meta = {
        **stats,
        "vocab_size": tokenizer.get_vocab_size(),
        "dtype": np.dtype(dtype).name,
        "unigram_entropy": unigram_entropy(tokens["train"], tokenizer.get_vocab_size()),
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2))


def prepare(cfg: DataConfig) -> Corpus:
    """Tokenize ``cfg``'s documents once (cached by content) and open the shards."""
    if not 0 < cfg.val_fraction < 1:
        raise DataError(f"data.val_fraction must be in (0, 1), got {cfg.val_fraction}")
    if not 256 < cfg.vocab_size <= 2**20:
        raise DataError(f"data.vocab_size must be in (256, 2^20], got {cfg.vocab_size}")
    folder = cache_root(cfg) / corpus_key(cfg)
    if not (folder / "meta.json").exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
        try:
            _build(cfg, tmp)
            os.replace(tmp, folder)
        except OSError:
            if not (folder / "meta.json").exists():  # not a lost race with another job
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    meta = json.loads((folder / "meta.json").read_text())
    train, val = (
        np.memmap(folder / f"{split}.bin", dtype=meta["dtype"], mode="r")
        for split in ("train", "val")
    )
    # the name is the config's, not the cache's: configs naming the same text share one cache
    return Corpus(folder, train, val, meta["vocab_size"], meta["unigram_entropy"], cfg.name)


def load_tokenizer(corpus: Corpus):  # noqa: ANN201 (tokenizers is imported lazily)
    """The cached ``tokenizers.Tokenizer`` of a prepared corpus."""
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(corpus.path / "tokenizer.json"))
