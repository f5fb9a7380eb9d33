"""One segment run: resume decisions, the four phase bodies, and the atomic finish.

The flow (``flows/segment.py``) runs the phases as concurrent tasks over chunks; this module holds
what they do, with no Prefect import. The manifest in S3 is the checkpoint: a chunk is committed
(in order) once its parts are uploaded, so a run that dies anywhere resumes after the last committed
chunk, and a segment whose upload completed goes straight to the load.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from arm_etl.cache import SchemaCache
from arm_etl.config import segment_schema, staging_schema
from arm_etl.dataschema import DataSchema
from arm_etl.extract import SegmentScanner, Throttle
from arm_etl.load import Warehouse, WarehouseError, schema_tables
from arm_etl.transform import Transformer
from arm_etl.upload import ChunkRecord, Manifest, PartStore, key_from_json, key_to_json

log = logging.getLogger("arm_etl.segment")

SEGMENT_MARKER = "_etl_segment"
MARKER_COLUMNS: list[tuple[str, str]] = [
    ("source_table", "VARCHAR(1024)"),
    ("segment", "INTEGER"),
    ("total_segments", "INTEGER"),
    ("snapshot", "VARCHAR(64)"),
    ("data_schema_version", "VARCHAR(64)"),
    ("items", "BIGINT"),
    ("loaded_at", "TIMESTAMPTZ"),
]


class SegmentError(Exception):
    """A segment run cannot proceed; the message says what to run."""


class Chunk:
    """Items of one chunk (a plain class: the orchestrator passes it around without walking it)."""

    __slots__ = ("end_key", "items", "no", "scanned")

    def __init__(self, no: int, items: list[dict[str, Any]], end_key: dict[str, Any] | None, scanned: int):
        self.no, self.items, self.end_key, self.scanned = no, items, end_key, scanned

    @property
    def last(self) -> bool:
        return self.end_key is None


class Encoded:
    __slots__ = ("chunk", "lines", "reject_tables", "rejects")

    def __init__(self, chunk: Chunk, lines: dict[str, list[str]], rejects: Counter[str], reject_tables: Counter[str]):
        self.chunk, self.lines, self.rejects, self.reject_tables = chunk, lines, rejects, reject_tables


class Uploaded:
    """A chunk's parts in S3, with their uncompressed bytes kept until the load has streamed them."""

    __slots__ = ("data", "record")

    def __init__(self, record: ChunkRecord, data: dict[str, bytes] | None):
        self.record, self.data = record, data


@dataclass
class RunOptions:
    table: str
    segment: int
    total: int
    target: str
    snapshot: str
    schema_version: str | None = None
    fresh: bool = False
    page_limit: int | None = None
    pages_per_chunk: int = 4
    part_size: int = 64 * 1024 * 1024


@dataclass
class Stats:
    chunks_extracted: int = 0
    items_extracted: int = 0
    chunks_reused: int = 0
    parts_loaded: int = 0
    phase_seconds: dict[str, float] = field(default_factory=dict)

    def add_time(self, phase: str, seconds: float) -> None:
        with _stats_lock:
            self.phase_seconds[phase] = self.phase_seconds.get(phase, 0.0) + seconds


_stats_lock = threading.Lock()


class SegmentRun:
    """State of one segment run, shared by its phase tasks (threads of one process)."""

    def __init__(
        self,
        options: RunOptions,
        dynamodb: Any,
        store: PartStore,
        cache: SchemaCache,
        warehouse: Warehouse | None,
        throttle: Throttle | None = None,
    ):
        self.o = options
        self.store = store
        self.cache = cache
        self.warehouse = warehouse
        self.scanner = SegmentScanner(
            dynamodb, options.table, options.segment, options.total, options.page_limit, throttle
        )
        self.schema: DataSchema | None = None
        self.manifest: Manifest | None = None
        self.mode = ""
        self.stats = Stats()
        self._transformer: Transformer | None = None
        self._transform_lock = threading.Lock()
        self._manifest_lock = threading.Lock()
        self._loaded_parts: set[str] = set()  # parts committed into the current staging schema
        self._columns: dict[str, list[str]] | None = None  # by warehouse table, from the data-schema

    # ------------------------------------------------------------------ planning

    def prepare(self) -> str:
        """Decide ``load`` (upload complete), ``resume`` (same snapshot, partial) or ``fresh``."""
        o = self.o
        old = self.store.read_manifest()
        if (
            old is not None
            and not o.fresh
            and old.snapshot == o.snapshot
            and old.total_segments == o.total
            and (o.schema_version is None or o.schema_version == old.data_schema_version)
        ):
            self.schema = self.cache.require(old.data_schema_version)
            self.manifest = old
            if old.complete:
                self.mode = "load"
            else:
                self.mode = "resume"
                self.store.delete_except(p.key for p in old.parts())
            self.stats.chunks_reused = len(old.chunks)
            log.info(
                "segment %d: %s from manifest (%d chunks committed, snapshot %s)",
                o.segment,
                self.mode,
                len(old.chunks),
                old.snapshot,
            )
        else:
            self.schema = self.cache.require(o.schema_version)
            self.manifest = Manifest(
                source_table=o.table,
                segment=o.segment,
                total_segments=o.total,
                snapshot=o.snapshot,
                data_schema_version=self.schema.version,
                extracted_at=datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
            )
            self.store.delete_except(())
            self.store.write_manifest(self.manifest)
            self.mode = "fresh"
        return self.mode

    @property
    def next_chunk_no(self) -> int:
        assert self.manifest is not None
        return len(self.manifest.chunks)

    @property
    def start_key(self) -> dict[str, Any] | None:
        assert self.manifest is not None
        return key_from_json(self.manifest.position)

    @property
    def transformer(self) -> Transformer:
        if self._transformer is None:
            assert self.schema is not None and self.manifest is not None
            csv = self.warehouse.csv if self.warehouse is not None else _default_csv()
            self._transformer = Transformer(self.schema, csv, self.o.segment, self.manifest.extracted_at)
        return self._transformer

    # ------------------------------------------------------------------ phases

    def extract(self, chunk_no: int, start_key: dict[str, Any] | None) -> Chunk:
        t0 = time.perf_counter()
        items, end_key, scanned = self.scanner.chunk(start_key, self.o.pages_per_chunk)
        self.stats.add_time("extract", time.perf_counter() - t0)
        with _stats_lock:
            self.stats.chunks_extracted += 1
            self.stats.items_extracted += len(items)
        return Chunk(chunk_no, items, end_key, scanned)

    def transform(self, chunk: Chunk) -> Encoded:
        t0 = time.perf_counter()
        with self._transform_lock:
            result = self.transformer.transform(chunk.items, chunk.no)
        self.stats.add_time("transform", time.perf_counter() - t0)
        return Encoded(chunk, result.lines, result.rejects, result.reject_tables)

    def upload(self, enc: Encoded, keep_data: bool = True) -> Uploaded:
        t0 = time.perf_counter()
        parts, data = self.store.upload_chunk(enc.chunk.no, enc.lines, self.o.part_size)
        record = ChunkRecord(
            enc.chunk.no, len(enc.chunk.items), enc.chunk.scanned, parts, dict(enc.rejects), dict(enc.reject_tables)
        )
        self.stats.add_time("upload", time.perf_counter() - t0)
        return Uploaded(record, data if keep_data else None)

    def commit(self, up: Uploaded, end_key: dict[str, Any] | None) -> None:
        """Record a chunk as uploaded (chunks commit in order); the manifest is the checkpoint."""
        assert self.manifest is not None
        with self._manifest_lock:
            if up.record.no != len(self.manifest.chunks):
                raise SegmentError(f"chunk {up.record.no} committed out of order")
            self.manifest.chunks.append(up.record)
            self.manifest.position = key_to_json(end_key)
            self.manifest.complete = end_key is None
            if self.manifest.complete and self.warehouse is not None and self.warehouse.dialect == "redshift":
                self.manifest.copy_manifests = self.store.write_copy_manifests(self.manifest)
            self.store.write_manifest(self.manifest)

    # ------------------------------------------------------------------ load

    @property
    def staging(self) -> str:
        return staging_schema(self.o.target, self.o.segment)

    @property
    def final(self) -> str:
        return segment_schema(self.o.target, self.o.segment)

    def _require_warehouse(self) -> Warehouse:
        if self.warehouse is None:
            raise SegmentError("no warehouse configured: set ARM_ETL_WAREHOUSE_URL or pass a redshift block")
        return self.warehouse

    def begin_load(self) -> None:
        """(Re)create the staging schema: a load always starts empty, so a re-run never duplicates."""
        wh = self._require_warehouse()
        assert self.schema is not None
        tables = [*schema_tables(self.schema), (SEGMENT_MARKER, MARKER_COLUMNS)]
        wh.recreate_schema(self.staging, tables)
        with _stats_lock:
            self._loaded_parts.clear()

    def columns(self, table: str) -> list[str]:
        """The warehouse columns of ``table``; the map is built once per run (this is called per part)."""
        assert self.schema is not None
        if self._columns is None:
            self._columns = {name: [c for c, _ in cols] for name, cols in schema_tables(self.schema)}
        cols = self._columns.get(table)
        if cols is None:
            raise SegmentError(f"part for unknown table {table!r} in data-schema {self.schema.version}")
        return cols

    def load(self, up: Uploaded) -> int:
        """PostgreSQL: stream this chunk's parts into staging. Redshift loads at finish (one COPY).

        Each part is its own COPY transaction; a retry after a failure (e.g. a dropped connection)
        skips the parts already committed, so it never loads a part twice.
        """
        wh = self._require_warehouse()
        if wh.dialect == "redshift":
            return 0
        t0 = time.perf_counter()
        rows = 0
        with wh.connection() as conn:
            for part in up.record.parts:
                with _stats_lock:
                    if part.key in self._loaded_parts:
                        rows += part.rows
                        continue
                data = up.data.get(part.key) if up.data else None  # uncompressed, kept by this run's upload
                compressed = data is None
                if data is None:
                    data = self.store.get(part.key)
                loaded = wh.copy_part(
                    self.staging, part.table, self.columns(part.table), data, self.store.url(part.key), conn, compressed
                )
                if loaded != part.rows:
                    raise WarehouseError(
                        f"{self.store.url(part.key)}: loaded {loaded} rows into {self.staging}.{part.table}, "
                        f"manifest says {part.rows}"
                    )
                with _stats_lock:
                    self._loaded_parts.add(part.key)
                rows += loaded
        up.data = None
        with _stats_lock:
            self.stats.parts_loaded += len(up.record.parts)
        self.stats.add_time("load", time.perf_counter() - t0)
        return rows

    def finish(self) -> dict[str, int]:
        """Verify staging against the manifest, mark it, and swap it in as the segment schema atomically."""
        wh = self._require_warehouse()
        m = self.manifest
        assert m is not None and self.schema is not None
        if not m.complete:
            raise SegmentError(f"segment {self.o.segment}: upload incomplete; cannot finish the load")
        t0 = time.perf_counter()
        if wh.dialect == "redshift":
            for table, key in sorted(m.copy_manifests.items()):
                wh.copy_manifest(self.staging, table, self.columns(table), self.store.url(key))
        expected = m.table_rows()
        names = [n for n, _ in schema_tables(self.schema)]
        actual = wh.counts(self.staging, names)
        wrong = {t: (actual.get(t, 0), expected.get(t, 0)) for t in names if actual.get(t, 0) != expected.get(t, 0)}
        if wrong:
            detail = ", ".join(f"{t}: {a} loaded vs {e} in manifest" for t, (a, e) in sorted(wrong.items()))
            raise SegmentError(f"segment {self.o.segment}: staging counts differ from the manifest ({detail})")
        from arm_etl.load import quote_ident

        marker = f"{quote_ident(self.staging)}.{quote_ident(SEGMENT_MARKER)}"
        with wh.transaction() as cur:
            # A retried finish (e.g. the swap lost its connection) marks staging again: exactly one row.
            wh.execute(cur, f"DELETE FROM {marker}")
            wh.execute(
                cur,
                f"INSERT INTO {marker} VALUES (%s, %s, %s, %s, %s, %s, now())",
                (m.source_table, m.segment, m.total_segments, m.snapshot, m.data_schema_version, m.items),
            )
        wh.replace_schema(self.staging, self.final)
        self.stats.add_time("load", time.perf_counter() - t0)
        return actual


def _default_csv() -> Any:
    from arm_etl.csvformat import POSTGRESQL

    return POSTGRESQL
