"""Run records: the schema, atomic read/write, scanning a sweep directory. Pure: no torch."""

from archsearch.records.io import append_jsonl, read_jsonl, write_json_atomic, write_jsonl_atomic
from archsearch.records.schema import (
    METRICS_FILE,
    RECORD_FILE,
    RecordError,
    RunRecord,
    read_record,
    scan_records,
    write_record,
)

__all__ = [
    "METRICS_FILE",
    "RECORD_FILE",
    "RecordError",
    "RunRecord",
    "append_jsonl",
    "read_jsonl",
    "read_record",
    "scan_records",
    "write_json_atomic",
    "write_jsonl_atomic",
    "write_record",
]
