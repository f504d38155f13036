"""Embedded corpus, cached tokenizer and shards, fixed validation split, user files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from archsearch.config import DataConfig
from archsearch.data import DataError, load_tokenizer, prepare, unigram_entropy
from archsearch.data.batches import eval_batches, train_batch
from archsearch.data.corpus import is_validation


def test_embedded_corpus_is_real_english_and_cached() -> None:
    corpus = prepare(DataConfig())
    assert len(corpus.train) > 2_000_000 and len(corpus.val) > 50_000
    text = load_tokenizer(corpus).decode(np.asarray(corpus.val[:200]).tolist())
    # real English: "the" is about one word in fifteen, and the text is a State of the Union's
    assert text.count(" the ") >= 5 and "Congress" in text
    meta = json.loads(corpus.path.joinpath("meta.json").read_text())
    assert (meta["train_tokens"], meta["val_tokens"]) == (len(corpus.train), len(corpus.val))
    again = prepare(DataConfig())
    assert again.path == corpus.path  # cached: the same folder, not rebuilt
    assert 5.5 < corpus.unigram_entropy < np.log(corpus.vocab_size)


def test_validation_split_is_fixed_by_content() -> None:
    docs = [f"document number {i}" for i in range(2000)]
    picks = [is_validation(d, 0.05) for d in docs]
    assert picks == [is_validation(d, 0.05) for d in reversed(docs)][::-1]
    assert 0.03 < sum(picks) / len(picks) < 0.07


def test_batches_depend_only_on_seed_and_step() -> None:
    tokens = np.arange(10_000, dtype=np.uint16)
    a, _ = train_batch(tokens, 4, 16, seed=1, step=7)
    b, _ = train_batch(tokens, 4, 16, seed=1, step=7)
    c, _ = train_batch(tokens, 4, 16, seed=1, step=8)
    assert a.equal(b) and not a.equal(c)
    inputs, targets = train_batch(tokens, 4, 16, seed=0, step=0)
    assert (targets - inputs).eq(1).all()  # next-token targets
    batches = eval_batches(tokens, batch_size=3, seq_len=16, max_tokens=160)
    assert sum(len(x) for x, _ in batches) == 10


def test_user_text_and_jsonl_files(tmp_path: Path) -> None:
    sentences = ["The quick brown fox jumps over the lazy dog.", "A stitch in time saves nine."]
    for i in range(60):
        (tmp_path / f"doc{i}.txt").write_text(" ".join(sentences * (i % 5 + 3)))
    rows = [json.dumps({"body": f"Line {i}: " + sentences[i % 2]}) for i in range(200)]
    (tmp_path / "more.jsonl").write_text("\n".join(rows))
    paths = [str(p) for p in sorted(tmp_path.glob("doc*.txt"))] + [str(tmp_path / "more.jsonl")]
    cfg = DataConfig(
        name="mine",
        source="files",
        paths=paths,
        text_field="body",
        vocab_size=300,
        val_fraction=0.2,
        cache_dir=str(tmp_path / "cache"),
    )
    corpus = prepare(cfg)
    assert corpus.vocab_size <= 300 and len(corpus.val) > 0
    assert corpus.unigram_entropy == pytest.approx(unigram_entropy(np.asarray(corpus.train), 300))


@pytest.mark.parametrize(
    ("cfg", "needle"),
    [
        (DataConfig(source="files", paths=[]), "needs data.paths"),
        (DataConfig(source="files", paths=["/nonexistent/x.txt"]), "does not exist"),
        (DataConfig(source="web"), "unknown"),
        (DataConfig(val_fraction=1.5), "val_fraction"),
    ],
)
def test_bad_data_configs_say_what_to_change(cfg: DataConfig, needle: str) -> None:
    with pytest.raises(DataError, match=needle):
        prepare(cfg)


def test_jsonl_without_the_text_field_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"text": "fine"}\n{"body": "no text key"}\n')
    cfg = DataConfig(source="files", paths=[str(path)], cache_dir=str(tmp_path))
    with pytest.raises(DataError, match=r"x.jsonl:2: .*data.text_field"):
        prepare(cfg)


def test_corpus_takes_its_name_from_the_config_not_the_shared_cache() -> None:
    first = prepare(DataConfig(name="alpha"))
    second = prepare(DataConfig(name="beta"))
    assert first.path == second.path  # same text and settings: one cache
    assert (first.name, second.name) == ("alpha", "beta")
