"""Run records: the schema, atomic read/write, scanning a sweep directory. Pure: no torch."""

from archsearch.records.io import (
    append_jsonl,
    atomic_writer,
    read_jsonl,
    remove_orphaned_temporaries,
    write_json_atomic,
    write_jsonl_atomic,
    write_text_atomic,
)
from archsearch.records.schema import (
    METRICS_FILE,
    RECORD_FILE,
    RecordError,
    RunRecord,
    read_record,
    scan_records,
    write_record,
)
from archsearch.records.throughput import (
    THROUGHPUT_FILE,
    BatchThroughput,
    ThroughputRecord,
    read_throughput_record,
    scan_throughput_records,
    write_throughput_record,
)

__all__ = [
    "THROUGHPUT_FILE",
    "BatchThroughput",
    "ThroughputRecord",
    "read_throughput_record",
    "scan_throughput_records",
    "write_throughput_record",
    "METRICS_FILE",
    "RECORD_FILE",
    "RecordError",
    "RunRecord",
    "append_jsonl",
    "atomic_writer",
    "read_jsonl",
    "remove_orphaned_temporaries",
    "read_record",
    "scan_records",
    "write_json_atomic",
    "write_jsonl_atomic",
    "write_text_atomic",
    "write_record",
]
