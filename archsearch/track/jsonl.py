"""The trackers that need nothing beyond the run directory: ``none`` and ``jsonl``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from archsearch.records import METRICS_FILE, append_jsonl, read_jsonl, write_jsonl_atomic


class Tracker(Protocol):
    def log(self, row: dict[str, Any]) -> None: ...
    def summary(self, record: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


class NullTracker:
    """Keeps nothing beyond record.json."""

    def log(self, row: dict[str, Any]) -> None:
        pass

    def summary(self, record: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


class JsonlTracker(NullTracker):
    """Appends each row to ``metrics.jsonl``; on resume drops rows past the checkpoint's step."""

    def __init__(self, run_dir: Path, resume_step: int) -> None:
        self.path = run_dir / METRICS_FILE
        if self.path.exists():
            kept = [row for row in read_jsonl(self.path) if row.get("step", 0) <= resume_step]
            write_jsonl_atomic(self.path, kept)  # always: also drops a torn last line

    def log(self, row: dict[str, Any]) -> None:
        append_jsonl(self.path, row)
