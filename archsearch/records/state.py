"""Self-checking stored state: a directory's config fingerprint and its advisory lock. Pure.

A directory that holds results (a training run, a sweep) stores the config that made it and a hash
of the fields that decide its result. A rerun under another config is refused with the fields that
differ, instead of silently resuming or returning state that another config made.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from archsearch.errors import StateError
from archsearch.records.io import read_json_in, write_json_atomic

FINGERPRINT_FILE = "fingerprint.json"
LOCK_FILE = ".lock"


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``: one dotted key per leaf, as on the command line."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat |= flatten(value, f"{name}.")
        else:
            flat[name] = value
    return flat


def result_fields(config: Mapping[str, Any], ignored: tuple[str, ...]) -> dict[str, Any]:
    """The flattened ``config`` less the keys (or key prefixes ending in ``.``) in ``ignored``."""
    return {
        k: v
        for k, v in flatten(config).items()
        if not any(k == i or (i.endswith(".") and k.startswith(i)) for i in ignored)
    }


def fingerprint_of(fields: Mapping[str, Any]) -> str:
    """A short hash of ``fields`` (key order does not matter)."""
    text = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def differing_fields(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """``key: stored -> current`` for every key whose value differs (missing shown as ``unset``)."""
    return [
        f"{k}: {stored.get(k, 'unset')} -> {current.get(k, 'unset')}"
        for k in sorted(set(stored) | set(current))
        if stored.get(k, "unset") != current.get(k, "unset")
    ]


def check_fingerprint(
    directory: Path, config: Mapping[str, Any], fields: Mapping[str, Any], ways_out: str
) -> str:
    """Refuse ``directory`` when its stored fingerprint is another config's; store ours if none.

    Args:
        config: the fully resolved config, stored beside the hash for the record.
        fields: the flat fields that decide the result (``result_fields``); they are hashed.
        ways_out: what the user can do instead, appended to the refusal.

    Returns:
        The fingerprint of ``fields``.

    Raises:
        StateError: the directory was made by a config whose result fields differ.
    """
    fingerprint = fingerprint_of(fields)
    path = directory / FINGERPRINT_FILE
    if path.exists():
        path, stored = read_json_in(path, FINGERPRINT_FILE)
        if not isinstance(stored, dict) or "fields" not in stored:
            raise StateError(f"{path}: not a fingerprint file; {ways_out}")
        if stored.get("fingerprint") != fingerprint:
            raise_other_config(directory, stored["fields"], fields, ways_out)
        return fingerprint
    write_json_atomic(path, {"fingerprint": fingerprint, "fields": dict(fields), "config": config})
    return fingerprint


def raise_other_config(
    directory: Path, stored: Mapping[str, Any], current: Mapping[str, Any], ways_out: str
) -> None:
    """The refusal for a directory made by another config, naming the fields that differ."""
    changed = differing_fields(stored, current)
    raise StateError(f"{directory} was made by another config ({'; '.join(changed)}): {ways_out}")


@contextlib.contextmanager
def locked(directory: Path, what: str) -> Iterator[None]:
    """Hold an advisory lock on ``directory`` (``.lock``) for the block.

    Raises:
        StateError: another process holds it; the message says which (pid, host, since when).
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = path.read_text().strip() or "another process"
            raise StateError(
                f"{what} {directory} is in use by {holder}: wait for it to finish or stop it, "
                "or give this one a new name="
            ) from None
        since = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since {since}\n".encode())
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
