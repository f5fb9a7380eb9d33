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
from typing import Any, Literal

from arm_etl.cache import SchemaCache
from arm_etl.config import Namespaces, SegmentId
from arm_etl.dataschema import DataSchema
from arm_etl.errors import ArmEtlError
from arm_etl.extract import SegmentScanner, Throttle
from arm_etl.manifest import ChunkRecord, Manifest, Part, key_from_json, key_to_json
from arm_etl.transform import Transformer
from arm_etl.upload import PartStore
from arm_etl.warehouse import PartLoad, TableCopy, Warehouse, WarehouseError
from arm_etl.warehouse.bookkeeping import MARKER_COLUMNS, SEGMENT_MARKER, SegmentMarker

log = logging.getLogger("arm_etl.segment")


class SegmentError(ArmEtlError):
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
    """A chunk's CSV lines by table; ``items`` is counted here so the chunk's pages can be released."""

    __slots__ = ("chunk", "items", "lines", "reject_tables", "rejects")

    def __init__(self, chunk: Chunk, lines: dict[str, list[str]], rejects: Counter[str], reject_tables: Counter[str]):
        self.chunk, self.lines, self.rejects, self.reject_tables = chunk, lines, rejects, reject_tables
        self.items = len(chunk.items)


class Uploaded:
    """A chunk's parts in S3, with their uncompressed bytes kept until the load has streamed them."""

    __slots__ = ("data", "record")

    def __init__(self, record: ChunkRecord, data: dict[str, bytes] | None):
        self.record, self.data = record, data


Mode = Literal["fresh", "resume", "load"]


@dataclass(frozen=True)
class RunOptions:
    """What a segment run was asked to do: which segment, into which redshift-schemas, and how."""

    identity: SegmentId
    namespaces: Namespaces
    snapshot: str
    schema_version: str | None = None
    fresh: bool = False
    page_limit: int | None = None
    pages_per_chunk: int = 4
    part_size: int = 64 * 1024 * 1024

    @classmethod
    def of(cls, table: str, segment: int, total: int, target: str, snapshot: str, **how: Any) -> RunOptions:
        return cls(SegmentId(table, segment, total), Namespaces.of(target, segment), snapshot, **how)


@dataclass(frozen=True)
class SegmentPlan:
    """What a segment run does, decided once before any phase starts (:func:`plan_segment`).

    ``manifest`` is the run's checkpoint log: the upload appends its chunks to it in order, but which
    manifest, which mode and which data-schema never change during the run.
    """

    mode: Mode
    manifest: Manifest
    data_schema: DataSchema


def plan_segment(options: RunOptions, store: PartStore, cache: SchemaCache) -> SegmentPlan:
    """Decide ``load`` (upload complete), ``resume`` (same snapshot, partial) or ``fresh`` from the segment's
    manifest in S3. Reads only: a caller that refuses the plan (``--phases load`` without a completed upload)
    leaves S3 as it was; :func:`ready_storage` acts on an accepted one."""
    o, seg = options, options.identity
    old = store.read_manifest()
    if (
        old is not None
        and not o.fresh
        and old.snapshot == o.snapshot
        and old.total_segments == seg.total
        and (o.schema_version is None or o.schema_version == old.data_schema_version)
    ):
        data_schema = cache.require(old.data_schema_version)
        mode: Mode = "load" if old.complete else "resume"
        log.info("%s: %s from manifest (%d chunks committed, snapshot %s)", seg, mode, len(old.chunks), old.snapshot)
        return SegmentPlan(mode, old, data_schema)
    data_schema = cache.require(o.schema_version)
    manifest = Manifest(
        source_table=seg.table,
        segment=seg.segment,
        total_segments=seg.total,
        snapshot=o.snapshot,
        data_schema_version=data_schema.version,
        extracted_at=datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
    )
    return SegmentPlan("fresh", manifest, data_schema)


def ready_storage(plan: SegmentPlan, store: PartStore) -> None:
    """Make the segment's S3 objects match the plan before any phase runs: a resume deletes what no committed
    chunk names; a fresh run deletes the segment's old objects and writes its empty manifest; a load keeps all."""
    if plan.mode == "resume":
        m = plan.manifest
        store.delete_except([*(p.key for p in m.parts()), *(store.checkpoint_key(c.no) for c in m.chunks)])
    elif plan.mode == "fresh":
        store.delete_except(())
        store.write_manifest(plan.manifest)


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
    """One segment run by its plan, shared by its phase tasks (threads of one process)."""

    def __init__(
        self,
        options: RunOptions,
        plan: SegmentPlan,
        dynamodb: Any,
        store: PartStore,
        warehouse: Warehouse | None,
        throttle: Throttle | None = None,
    ):
        self.o = options
        self.plan = plan
        self.store = store
        self.warehouse = warehouse
        self.scanner = SegmentScanner(dynamodb, options.identity, options.page_limit, throttle)
        self.stats = Stats(chunks_reused=len(plan.manifest.chunks))
        csv = warehouse.csv if warehouse is not None else _default_csv()
        self.transformer = Transformer(plan.data_schema, csv, options.identity.segment, plan.manifest.extracted_at)
        self._manifest_lock = threading.Lock()
        self._loaded_parts: set[str] = set()  # parts committed into the current staging redshift-schema
        # The warehouse columns by table (looked up per part), from the data-schema.
        self._columns = {name: [c for c, _ in cols] for name, cols in plan.data_schema.warehouse_tables()}

    @property
    def mode(self) -> Mode:
        return self.plan.mode

    @property
    def manifest(self) -> Manifest:
        return self.plan.manifest

    @property
    def next_chunk_no(self) -> int:
        return len(self.manifest.chunks)

    @property
    def start_key(self) -> dict[str, Any] | None:
        return key_from_json(self.manifest.position)

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
        result = self.transformer.transform(chunk.items)
        self.stats.add_time("transform", time.perf_counter() - t0)
        return Encoded(chunk, result.lines, result.rejects, result.reject_tables)

    def upload(self, enc: Encoded, keep_data: bool = True) -> Uploaded:
        t0 = time.perf_counter()
        parts, data = self.store.upload_chunk(enc.chunk.no, enc.lines, self.o.part_size)
        record = ChunkRecord(
            enc.chunk.no, enc.items, enc.chunk.scanned, parts, dict(enc.rejects), dict(enc.reject_tables)
        )
        self.stats.add_time("upload", time.perf_counter() - t0)
        return Uploaded(record, data if keep_data else None)

    def commit(self, up: Uploaded, end_key: dict[str, Any] | None) -> None:
        """Record a chunk as uploaded (chunks commit in order): its checkpoint object, or the whole manifest
        once the upload is complete. The manifest with its checkpoints is what a re-run resumes from."""
        with self._manifest_lock:
            if up.record.no != len(self.manifest.chunks):
                raise SegmentError(f"chunk {up.record.no} committed out of order")
            self.manifest.chunks.append(up.record)
            self.manifest.position = key_to_json(end_key)
            self.manifest.complete = end_key is None
            if not self.manifest.complete:
                self.store.write_checkpoint(up.record, self.manifest.position)
                return
            if self.warehouse is not None and self.warehouse.needs_copy_manifests:
                self.manifest.copy_manifests = self.store.write_copy_manifests(self.manifest)
            self.store.write_manifest(self.manifest)  # whole and complete: the checkpoints are now redundant
            self.store.delete_checkpoints()

    # ------------------------------------------------------------------ load

    def _require_warehouse(self) -> Warehouse:
        if self.warehouse is None:
            raise SegmentError("no warehouse configured: set ARM_ETL_WAREHOUSE_URL or pass a redshift block")
        return self.warehouse

    def begin_load(self) -> None:
        """(Re)create the staging schema: a load always starts empty, so a re-run never duplicates."""
        wh = self._require_warehouse()
        tables = [*self.plan.data_schema.warehouse_tables(), (SEGMENT_MARKER, MARKER_COLUMNS)]
        wh.recreate_schema(self.o.namespaces.staging, tables)
        with _stats_lock:
            self._loaded_parts.clear()

    def columns(self, table: str) -> list[str]:
        """The warehouse columns of ``table``."""
        cols = self._columns.get(table)
        if cols is None:
            raise SegmentError(f"part for unknown table {table!r} in data-schema {self.plan.data_schema.version}")
        return cols

    def _part_load(self, part: Part, data: dict[str, bytes] | None) -> PartLoad:
        kept = data.get(part.key) if data else None  # uncompressed, kept by this run's upload
        return PartLoad(
            key=part.key,
            table=part.table,
            columns=self.columns(part.table),
            rows=part.rows,
            origin=self.store.url(part.key),
            data=kept if kept is not None else self.store.get(part.key),
            compressed=kept is None,
        )

    def load(self, up: Uploaded) -> int:
        """Stream this chunk's parts into staging where the warehouse loads part by part (PostgreSQL).

        Each part is its own COPY transaction; a retry after a failure (e.g. a dropped connection)
        skips the parts already committed, so it never loads a part twice. Redshift loads nothing
        here: each table is one COPY from its manifest in :meth:`finish`.
        """
        wh = self._require_warehouse()
        t0 = time.perf_counter()
        rows = 0
        with _stats_lock:
            todo = [p for p in up.record.parts if p.key not in self._loaded_parts]
            rows += sum(p.rows for p in up.record.parts if p.key in self._loaded_parts)
        staging = self.o.namespaces.staging
        for part, loaded in wh.load_parts(staging, (self._part_load(p, up.data) for p in todo)):
            if loaded != part.rows:
                raise WarehouseError(
                    f"{part.origin}: loaded {loaded} rows into {staging}.{part.table}, manifest says {part.rows}"
                )
            with _stats_lock:
                self._loaded_parts.add(part.key)
                self.stats.parts_loaded += 1
            rows += loaded
        up.data = None
        self.stats.add_time("load", time.perf_counter() - t0)
        return rows

    def finish(self) -> dict[str, int]:
        """Verify staging against the manifest, mark it, and swap it in as the segment schema atomically."""
        wh = self._require_warehouse()
        m, staging = self.manifest, self.o.namespaces.staging
        if not m.complete:
            raise SegmentError(f"{self.o.identity}: upload incomplete; cannot finish the load")
        t0 = time.perf_counter()
        wh.load_tables(
            staging,
            [TableCopy(t, self.columns(t), self.store.url(key)) for t, key in sorted(m.copy_manifests.items())],
        )
        expected = m.table_rows()
        names = list(self._columns)
        actual = wh.counts(staging, names)
        wrong = {t: (actual.get(t, 0), expected.get(t, 0)) for t in names if actual.get(t, 0) != expected.get(t, 0)}
        if wrong:
            detail = ", ".join(f"{t}: {a} loaded vs {e} in manifest" for t, (a, e) in sorted(wrong.items()))
            raise SegmentError(f"{self.o.identity}: staging counts differ from the manifest ({detail})")
        marker = SegmentMarker(
            m.source_table, m.segment, m.total_segments, m.snapshot, m.data_schema_version, m.items, datetime.now(UTC)
        )
        wh.mark_segment(staging, marker)
        wh.replace_schema(staging, self.o.namespaces.segment)
        self.stats.add_time("load", time.perf_counter() - t0)
        return actual


def _default_csv() -> Any:
    from arm_etl.csvformat import POSTGRESQL

    return POSTGRESQL
