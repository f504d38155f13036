"""Atomic JSON writes and appends. Pure: no torch."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from archsearch.errors import RecordError


def read_json_in(path: str | Path, filename: str) -> tuple[Path, Any]:
    """Load ``path`` (a JSON file, or the directory holding ``filename``); returns (file, data).

    Raises:
        RecordError: the file is missing or not valid JSON.
    """
    path = Path(path)
    if path.is_dir():
        path = path / filename
    if not path.exists():
        raise RecordError(f"no {filename} at {path}: has the run finished?")
    try:
        return path, json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise RecordError(f"{path}: not valid JSON ({e})") from e


def files_below(sweep_dir: str | Path, filename: str) -> list[Path]:
    """Every ``filename`` below ``sweep_dir``, in path order."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise RecordError(f"sweep directory {sweep_dir} does not exist")
    return sorted(sweep_dir.rglob(filename))


def dataclass_fields_in(cls: type, data: dict[str, Any], what: str) -> dict[str, Any]:
    """The entries of ``data`` that are fields of dataclass ``cls`` (unknown keys dropped).

    Raises:
        RecordError: ``data`` lacks a field without a default.
    """
    fields = dataclasses.fields(cls)
    required = {
        f.name
        for f in fields
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    missing = required - set(data)
    if missing:
        raise RecordError(f"{what} lacks fields {sorted(missing)}")
    known = {f.name for f in fields}
    return {k: v for k, v in data.items() if k in known}


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write JSON so that a reader sees the old file or the new one, never half of either."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_jsonl_atomic(path: str | Path, rows: list[dict[str, Any]]) -> None:
    """Replace a JSONL file with ``rows``, atomically."""
    write_text_atomic(path, "".join(_line(row) for row in rows))


def _line(row: dict[str, Any]) -> str:
    return json.dumps(row, sort_keys=True) + "\n"


@contextlib.contextmanager
def atomic_writer(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """A file to write ``path`` through: a hidden temporary file beside it, flushed to disk and
    renamed over ``path`` when the block ends; removed, leaving ``path`` untouched, on error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """Replace ``path`` with ``text``: readers see the old file or the new one."""
    with atomic_writer(path) as f:
        f.write(text)


def append_jsonl(path: str | Path, row: dict[str, Any]) -> None:
    """Append one JSON line and flush it to disk."""
    with open(path, "a") as f:
        f.write(_line(row))
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read every complete JSON line (a torn last line from a killed writer is skipped)."""
    rows = []
    for line in Path(path).read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows
