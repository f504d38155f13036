"""The wandb mirror: each run's metrics, summary and record, plus throughput sweeps as tables.

``metrics.jsonl`` stays the source of truth (``WandbTracker`` writes it first, then mirrors each
row). Offline by default: the wandb files live in ``<run_dir>/wandb`` and can be uploaded later
with ``wandb sync <run_dir>/wandb/offline-run-*``; ``tracker.mode=online`` streams them instead.
A requeued run resumes the same wandb run: its id is kept in ``<run_dir>/wandb_run_id``.

``read_history`` reads an offline run's logged rows back from its ``run-<id>.wandb`` files, so
tests (and users without a wandb server) can check the mirror against ``metrics.jsonl``.

wandb is imported only inside the functions that need it; this module imports no torch.
"""

from __future__ import annotations

import json
import secrets
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from archsearch.config import TrackerConfig
from archsearch.records import RECORD_FILE, read_jsonl, write_text_atomic
from archsearch.track.jsonl import JsonlTracker

RUN_ID_FILE = "wandb_run_id"
WANDB_DIR = "wandb"


class WandbTracker(JsonlTracker):
    """Writes ``metrics.jsonl`` and mirrors rows, summary and ``record.json`` to a wandb run."""

    def __init__(self, cfg: TrackerConfig, run_dir: Path, resume_step: int) -> None:
        super().__init__(run_dir, resume_step)
        self.run_dir = run_dir
        self.run = open_run(cfg, run_dir, job_type="train")
        # A preempted attempt's wandb writer may die before its rows reach disk (or the server):
        # replay the rows metrics.jsonl kept, so the mirror never lacks what the source holds.
        if resume_step > 0 and self.path.exists():
            for row in read_jsonl(self.path):
                self._mirror(row)

    def log(self, row: dict[str, Any]) -> None:
        super().log(row)
        self._mirror(row)

    def _mirror(self, row: dict[str, Any]) -> None:
        # wandb's own step is the training step, so a resumed run's rows line up with the first
        # attempt's; rows past the checkpoint are re-logged with the same values.
        self.run.log({k: v for k, v in row.items() if k != "step"}, step=row["step"])

    def summary(self, record: dict[str, Any]) -> None:
        self.run.config.update(record.get("config", {}), allow_val_change=True)
        self.run.summary.update({k: v for k, v in record.items() if is_scalar(v)})
        self.run.save(str(self.run_dir / RECORD_FILE), base_path=str(self.run_dir), policy="now")

    def close(self) -> None:
        finish(self.run)


def open_run(cfg: TrackerConfig, run_dir: Path, job_type: str) -> Any:
    """Start (or resume) the wandb run of ``run_dir``.

    Args:
        cfg: project, entity, group and mode (``offline`` or ``online``).
        run_dir: the run directory; wandb writes into ``run_dir/wandb``.
        job_type: wandb's job type (``train``, ``throughput``).

    Returns:
        The ``wandb.Run``; call ``finish()`` when done.
    """
    import wandb

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / WANDB_DIR).mkdir(exist_ok=True)
    return wandb.init(
        project=cfg.project,
        entity=cfg.entity,
        group=cfg.group or sweep_id(),
        name=run_dir.name,
        id=_run_id(run_dir),
        resume="allow",
        job_type=job_type,
        dir=str(run_dir),
        mode=cfg.mode,
        settings=wandb.Settings(
            console="off", x_disable_stats=True, disable_git=True, save_code=False, silent=True
        ),
    )


def log_throughput_sweep(
    rows: list[dict[str, Any]], cfg: TrackerConfig, out_dir: Path, name: str = "throughput"
) -> None:
    """Mirror a throughput sweep to wandb as one Table (the local results stay the source).

    Args:
        rows: one dict per measurement, e.g. ``{"shape": "llama3_2_1b", "batch_size": 64,
            "tokens_per_s": 15900.0}``; the columns are the first row's keys.
        cfg: the tracker config (project, entity, group, mode).
        out_dir: the sweep's output directory; wandb writes into ``out_dir/wandb``.
        name: the table's key in the wandb run.
    """
    import wandb

    if not rows:
        raise ValueError("log_throughput_sweep needs at least one row")
    columns = list(rows[0])
    table = wandb.Table(columns=columns, data=[[row.get(c) for c in columns] for row in rows])
    run = open_run(cfg, out_dir, job_type="throughput")
    run.log({name: table})
    finish(run)


def finish(run: Any) -> None:
    """End a wandb run with its files whole on disk.

    ``finish()`` can return before wandb's service has written the run's last records; its
    teardown waits for them.
    """
    import wandb

    run.finish()
    wandb.teardown()


def sweep_id() -> str | None:
    """The Hydra sweep directory's name inside a multirun job (the wandb group), else None."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode
    except ImportError:
        return None
    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return None
    return Path(hydra_cfg.sweep.dir).name


def read_history(run_dir: Path) -> list[dict[str, Any]]:
    """The rows an offline wandb run of ``run_dir`` logged, one dict per step, in step order.

    Every attempt of a requeued run (each ``offline-run-*`` directory) is read in time order and
    a later attempt's row replaces an earlier one of the same step, as in ``metrics.jsonl``.
    Keys are those logged plus ``step``; wandb's own ``_``-prefixed keys are dropped.
    """
    from wandb.proto import wandb_internal_pb2

    rows: dict[int, dict[str, Any]] = {}
    for path in sorted((run_dir / WANDB_DIR).glob("offline-run-*/run-*.wandb"), key=_attempt):
        for data in _log_records(path):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(data)
            if record.WhichOneof("record_type") != "history":
                continue
            row = {
                item.nested_key[0] if item.nested_key else item.key: json.loads(item.value_json)
                for item in record.history.item
            }
            step = row.get("_step", record.history.step.num)
            clean = {k: v for k, v in row.items() if not k.startswith("_")}
            rows[step] = {"step": step, **clean}
    return [rows[step] for step in sorted(rows)]


def read_summary(run_dir: Path) -> dict[str, Any]:
    """The summary an offline wandb run of ``run_dir`` ended with, over all its attempts (a later
    attempt's value of a key replaces an earlier one). wandb's own ``_``-prefixed keys are
    dropped."""
    from wandb.proto import wandb_internal_pb2

    summary: dict[str, Any] = {}
    for path in sorted((run_dir / WANDB_DIR).glob("offline-run-*/run-*.wandb"), key=_attempt):
        for data in _log_records(path):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(data)
            if record.WhichOneof("record_type") != "summary":
                continue
            for item in record.summary.update:
                key = "/".join(item.nested_key) if item.nested_key else item.key
                summary[key] = json.loads(item.value_json)
    return {k: v for k, v in summary.items() if not k.startswith("_")}


def read_run_fields(run_dir: Path) -> tuple[str, str]:
    """(group, job type) of the offline wandb run of ``run_dir``, from its first run file."""
    from wandb.proto import wandb_internal_pb2

    path = sorted((run_dir / WANDB_DIR).glob("offline-run-*/run-*.wandb"), key=_attempt)[0]
    for data in _log_records(path):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        if record.WhichOneof("record_type") == "run":
            return record.run.run_group, record.run.job_type
    raise ValueError(f"no run record in {path}")


# The .wandb file is a LevelDB-style log (wandb's former ``sdk/internal/datastore.py``): a 7-byte
# header, then 32 KiB blocks of records, each with a 7-byte header (crc32, length, type) and a
# payload that may be split across blocks (types FULL 1, or FIRST 2, MIDDLE 3..., LAST 4).
_FILE_HEADER = struct.Struct("<4sHB")
_RECORD_HEADER = struct.Struct("<IHB")
_BLOCK_LEN = 32768
_FULL, _LAST = 1, 4


def _log_records(path: Path) -> Iterator[bytes]:
    """The serialised protobuf records of one ``run-<id>.wandb`` file."""
    data = path.read_bytes()
    ident, magic, _ = _FILE_HEADER.unpack_from(data)
    if ident != b":W&B" or magic != 0xBEE1:
        raise ValueError(f"{path} is not a wandb run file")
    pos, parts = _FILE_HEADER.size, []
    while pos + _RECORD_HEADER.size <= len(data):
        left_in_block = _BLOCK_LEN - pos % _BLOCK_LEN
        if left_in_block < _RECORD_HEADER.size:  # zero padding at a block's end
            pos += left_in_block
            continue
        _, length, kind = _RECORD_HEADER.unpack_from(data, pos)
        pos += _RECORD_HEADER.size
        if kind == 0:  # an unwritten tail (the run is still open)
            break
        parts.append(data[pos : pos + length])
        pos += length
        if kind in (_FULL, _LAST):
            yield b"".join(parts)
            parts = []


def _attempt(path: Path) -> tuple[str, int]:
    """Sort key of a run file by start time: ``offline-run-<YYYYmmdd_HHMMSS>-<id>[-<n>]`` (wandb
    appends ``-<n>`` when a second attempt starts within the same second)."""
    _, _, stamp, *rest = path.parent.name.split("-")
    return stamp, int(rest[1]) if len(rest) > 1 else 0


def _run_id(run_dir: Path) -> str:
    """The wandb run id of ``run_dir``: created once, then reused by every resumed attempt."""
    path = run_dir / RUN_ID_FILE
    if path.exists():
        return path.read_text().strip()
    run_id = secrets.token_hex(6)  # wandb ids: lowercase letters and digits
    write_text_atomic(path, run_id + "\n")
    return run_id


def is_scalar(value: Any) -> bool:
    """A value wandb's summary keeps as is (tables, lists and dicts are not)."""
    return isinstance(value, str | int | float | bool) or value is None
