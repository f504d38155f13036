"""ThroughputRecord: round trip, statistics, and validation errors that name the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archsearch.arch import ArchSpec, describe
from archsearch.records.schema import RecordError
from archsearch.records.throughput import (
    THROUGHPUT_FILE,
    BatchThroughput,
    ThroughputRecord,
    read_throughput_record,
    scan_throughput_records,
    write_throughput_record,
)

SPEC = ArchSpec(64, 2, 4, 2, 16, 96, 101, name="tiny")


def make_record(**changes: object) -> ThroughputRecord:
    batches = [
        BatchThroughput.from_times(
            1, 10, [0.01] * 3, [0.5, 0.4, 0.25], 30.0, 25.0, [0.01] * 3, [0.2, 0.25, 0.5]
        ),
        BatchThroughput.from_times(4, 10, [0.02] * 3, [1.0, 1.0, 0.8]),
    ]
    fields = dict(
        run_id="r1",
        arch=SPEC.to_dict(),
        counts=describe(SPEC),
        prompt_tokens=16,
        new_tokens=10,
        batch_sizes=[1, 4],
        repeats=3,
        warmup=1,
        dtype="fp32",
        device="cpu",
        backend="torch",
        step_mode="none",
        batches=batches,
    )
    fields.update(changes)
    return ThroughputRecord(**fields)  # type: ignore[arg-type]


def test_statistics_from_times() -> None:
    batch = make_record().batches[0]
    assert batch.tokens_per_s == pytest.approx(25.0)  # median of 20, 25, 40 tokens/s
    assert (batch.tokens_per_s_min, batch.tokens_per_s_max) == pytest.approx((20.0, 40.0))
    assert batch.end_to_end_tokens_per_s == pytest.approx(10 / 0.41)
    assert batch.roofline_fraction == pytest.approx(25.0 / 30.0)
    assert make_record().batches[1].roofline_fraction is None


def test_cpu_time_statistics() -> None:
    timed, wall_only = make_record().batches
    assert timed.cpu_time_tokens_per_s == pytest.approx(40.0)  # median of 50, 40, 20 tokens/s
    assert timed.rates("cpu_time_median") == pytest.approx((40.0, 20.0, 50.0))
    assert timed.rates("wall_median") == pytest.approx((25.0, 20.0, 40.0))
    assert wall_only.rates("cpu_time_median") is None and wall_only.decode_cpu_s is None
    with pytest.raises(ValueError, match="throughput measure"):
        timed.rates("best")


def test_schema_1_record_loads_without_cpu_times(tmp_path: Path) -> None:
    data = make_record().to_dict()
    data["schema_version"] = 1
    for batch in data["batches"]:
        for key in [k for k in batch if "cpu" in k]:
            del batch[key]
    (tmp_path / THROUGHPUT_FILE).write_text(json.dumps(data))
    record = read_throughput_record(tmp_path)
    assert record.schema_version == 1
    assert [b.tokens_per_s for b in record.batches] == [
        b.tokens_per_s for b in make_record().batches
    ]
    for b in record.batches:
        assert b.cpu_time_tokens_per_s is None and b.decode_cpu_s is None
        assert b.rates("cpu_time_median") is None


def test_round_trip(tmp_path: Path) -> None:
    record = make_record()
    path = write_throughput_record(tmp_path / "run", record)
    assert path.name == THROUGHPUT_FILE
    assert read_throughput_record(tmp_path / "run") == record
    assert scan_throughput_records(tmp_path) == [record]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"new_tokens": 0}, "new_tokens"),
        ({"warmup": -1}, "warmup"),
        ({"batch_sizes": [1, 8]}, "batch_sizes"),
        ({"repeats": 5}, "prefill_s"),
        ({"arch": {"d_model": 64}}, "arch"),
    ],
)
def test_rejects_bad_values(changes: dict[str, object], field: str) -> None:
    with pytest.raises(RecordError, match=field):
        make_record(**changes)


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("tokens_per_s", -1.0, "batches\\[0\\].tokens_per_s"),
        ("tokens_per_s", float("nan"), "batches\\[0\\].tokens_per_s"),
        ("tokens_per_s_max", 1.0, "tokens_per_s must lie within"),
        ("decode_s", [0.5, 0.0, 0.1], "batches\\[0\\].decode_s"),
        ("roofline_tokens_per_s", 0.0, "batches\\[0\\].roofline_tokens_per_s"),
        ("cpu_time_tokens_per_s", None, "CPU-time fields"),
        ("cpu_time_tokens_per_s_min", 45.0, "cpu_time_tokens_per_s must lie within"),
        ("decode_cpu_s", [0.2, 0.25], "batches\\[0\\].decode_cpu_s"),
        ("prefill_cpu_s", [0.01, -0.01, 0.01], "batches\\[0\\].prefill_cpu_s"),
    ],
)
def test_rejects_bad_batches(tmp_path: Path, key: str, value: object, field: str) -> None:
    data = make_record().to_dict()
    data["batches"][0][key] = value
    (tmp_path / THROUGHPUT_FILE).write_text(json.dumps(data))
    with pytest.raises(RecordError, match=field):
        read_throughput_record(tmp_path)


def test_missing_fields_and_files(tmp_path: Path) -> None:
    data = make_record().to_dict()
    del data["dtype"]
    with pytest.raises(RecordError, match="dtype"):
        ThroughputRecord.from_dict(data)
    with pytest.raises(RecordError, match="no throughput.json"):
        read_throughput_record(tmp_path)
