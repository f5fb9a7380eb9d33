"""The warehouse's own bookkeeping tables: what a loaded segment and a merge progress row record.

``_etl_segment`` (one row, in each segment redshift-schema) says which manifest the segment was loaded
from; ``_etl_merged`` (in ``T_loading``, then production) records each table a centralization moved,
so a crash between two merges resumes exactly. Timestamps are bound parameters taken on the worker:
NOW() is a leader-node-only function on Redshift and fails in an INSERT into a user table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Final

Columns = list[tuple[str, str]]

SEGMENT_MARKER: Final = "_etl_segment"
MARKER_COLUMNS: Final[Columns] = [
    ("source_table", "VARCHAR(1024)"),
    ("segment", "INTEGER"),
    ("total_segments", "INTEGER"),
    ("snapshot", "VARCHAR(64)"),
    ("data_schema_version", "VARCHAR(64)"),
    ("items", "BIGINT"),
    ("loaded_at", "TIMESTAMPTZ"),
]

MERGED_TABLE: Final = "_etl_merged"
MERGED_COLUMNS: Final[Columns] = [
    ("segment", "INTEGER"),
    ("snapshot", "VARCHAR(64)"),
    ("data_schema_version", "VARCHAR(64)"),
    ("table_name", "VARCHAR(512)"),
    ("rows", "BIGINT"),
    ("merged_at", "TIMESTAMPTZ"),
]


@dataclass(frozen=True)
class SegmentMarker:
    """The row of ``_etl_segment``: the manifest a segment redshift-schema was loaded from."""

    source_table: str
    segment: int
    total_segments: int
    snapshot: str
    data_schema_version: str
    items: int
    loaded_at: datetime

    def values(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MergedRow:
    """A row of ``_etl_merged``: one table of one segment moved into the loading redshift-schema."""

    segment: int
    snapshot: str
    data_schema_version: str
    table_name: str
    rows: int
    merged_at: datetime

    def values(self) -> dict[str, Any]:
        return asdict(self)


def column_names(columns: Columns) -> tuple[str, ...]:
    return tuple(name for name, _ in columns)
