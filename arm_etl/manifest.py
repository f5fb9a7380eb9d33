"""The segment manifest: the run's checkpoint, which every phase reads.

It records the parts written (key, rows, bytes) chunk by chunk, the scan position reached, the data-schema
version and whether the run completed; centralization checks its row counts before the swap. Stored as
``<table>/part_<i>/manifest.json`` beside the parts (:class:`arm_etl.upload.PartStore`).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

MANIFEST_FORMAT = 1


@dataclass
class Part:
    """One uploaded gzip CSV part of one table."""

    table: str
    key: str
    rows: int
    bytes: int  # compressed
    raw_bytes: int

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "key": self.key,
            "rows": self.rows,
            "bytes": self.bytes,
            "raw_bytes": self.raw_bytes,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Part:
        return cls(d["table"], d["key"], int(d["rows"]), int(d["bytes"]), int(d["raw_bytes"]))


def key_to_json(key: dict[str, Any] | None) -> dict[str, Any] | None:
    """A DynamoDB key (botocore form, binary as bytes) as JSON (binary as base64)."""
    if key is None:
        return None
    out: dict[str, Any] = {}
    for attr, av in key.items():
        ((tag, v),) = av.items()
        out[attr] = {tag: base64.b64encode(v).decode() if isinstance(v, (bytes, bytearray)) else v}
    return out


def key_from_json(key: dict[str, Any] | None) -> dict[str, Any] | None:
    """The inverse of :func:`key_to_json`: the ExclusiveStartKey a resumed scan starts from."""
    if key is None:
        return None
    out: dict[str, Any] = {}
    for attr, av in key.items():
        ((tag, v),) = av.items()
        out[attr] = {tag: base64.b64decode(v) if tag == "B" else v}
    return out


@dataclass
class ChunkRecord:
    """One committed chunk: what it read and which parts it wrote."""

    no: int
    items: int
    scanned: int
    parts: list[Part]
    rejects: dict[str, int] = field(default_factory=dict)  # by reason
    reject_tables: dict[str, int] = field(default_factory=dict)  # by table

    def to_json(self) -> dict[str, Any]:
        return {
            "no": self.no,
            "items": self.items,
            "scanned": self.scanned,
            "rejects": self.rejects,
            "reject_tables": self.reject_tables,
            "parts": [p.to_json() for p in self.parts],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ChunkRecord:
        return cls(
            int(d["no"]),
            int(d["items"]),
            int(d["scanned"]),
            [Part.from_json(p) for p in d["parts"]],
            dict(d.get("rejects") or {}),
            dict(d.get("reject_tables") or {}),
        )


@dataclass
class Manifest:
    """The segment run's checkpoint; written after every committed chunk and at completion."""

    source_table: str
    segment: int
    total_segments: int
    snapshot: str
    data_schema_version: str
    extracted_at: str
    position: dict[str, Any] | None = None  # ExclusiveStartKey of the next chunk (JSON form)
    chunks: list[ChunkRecord] = field(default_factory=list)
    complete: bool = False
    copy_manifests: dict[str, str] = field(default_factory=dict)

    def table_rows(self) -> dict[str, int]:
        rows: dict[str, int] = {}
        for c in self.chunks:
            for p in c.parts:
                rows[p.table] = rows.get(p.table, 0) + p.rows
        return rows

    def table_bytes(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.chunks:
            for p in c.parts:
                out[p.table] = out.get(p.table, 0) + p.bytes
        return out

    def parts(self) -> list[Part]:
        return [p for c in self.chunks for p in c.parts]

    @property
    def items(self) -> int:
        return sum(c.items for c in self.chunks)

    def rejects(self) -> dict[str, int]:
        """Rejected values by reason."""
        return _sum(c.rejects for c in self.chunks)

    def reject_tables(self) -> dict[str, int]:
        """Rejected values by the table whose row held them."""
        return _sum(c.reject_tables for c in self.chunks)

    def to_json(self) -> dict[str, Any]:
        nbytes = self.table_bytes()
        return {
            "format": MANIFEST_FORMAT,
            "source_table": self.source_table,
            "segment": self.segment,
            "total_segments": self.total_segments,
            "snapshot": self.snapshot,
            "data_schema_version": self.data_schema_version,
            "extracted_at": self.extracted_at,
            "complete": self.complete,
            "scan": {"position": self.position, "chunks": len(self.chunks), "items": self.items},
            "tables": {t: {"rows": r, "bytes": nbytes.get(t, 0)} for t, r in sorted(self.table_rows().items())},
            "rejects": self.rejects(),
            "copy_manifests": self.copy_manifests,
            "chunks": [c.to_json() for c in self.chunks],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Manifest:
        return cls(
            source_table=d["source_table"],
            segment=int(d["segment"]),
            total_segments=int(d["total_segments"]),
            snapshot=d["snapshot"],
            data_schema_version=d["data_schema_version"],
            extracted_at=d["extracted_at"],
            position=(d.get("scan") or {}).get("position"),
            chunks=[ChunkRecord.from_json(c) for c in d.get("chunks") or ()],
            complete=bool(d.get("complete")),
            copy_manifests=dict(d.get("copy_manifests") or {}),
        )


def _sum(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in counts:
        for k, n in c.items():
            out[k] = out.get(k, 0) + n
    return out
