"""Row-by-row checks shared by the fault and bad-input catalogues: a segment schema against the oracle.

``check_segment`` compares every table of ``<target>_part_<i>`` (and its ``_etl_rejects``, reassembled
from chunks byte for byte) with what ``tests/oracle.py`` computes from the segment's raw source items,
and checks the bookkeeping around it: the manifest is complete, its chunks are numbered 0…n-1, its
row counts equal the loaded tables, the marker names the snapshot, no staging schema or orphan S3 object
is left. It returns the list of problems (empty when exact).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import boto3
from psycopg2 import sql

from arm_etl.config import segment_schema, staging_schema
from arm_etl.dataschema import REJECTS_TABLE, DataSchema
from arm_etl.manifest import Manifest
from arm_etl.upload import PartStore
from arm_etl.warehouse.bookkeeping import SEGMENT_MARKER
from tests import oracle
from tests.test_segment_exact import compare_rejects, compare_rows, fetch, scan_segment


def ensure_buckets(stack: Any) -> None:
    """(Re)create the stack's buckets (idempotent). A guard: any in-process ``moto.mock_aws`` in the session
    resets moto's state, and with it the session's moto server (same process), buckets included."""
    from botocore.exceptions import ClientError

    s3 = boto3.client("s3", endpoint_url=stack.endpoint)
    env = stack.env()
    for bucket in (env["ARM_ETL_DATA_BUCKET"], env["ARM_ETL_CACHE_BUCKET"]):
        try:
            s3.create_bucket(Bucket=bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise


def raw_segment(endpoint: str, table: str, segment: int, total: int) -> list[dict[str, Any]]:
    """The segment's items as a raw parallel scan returns them now (an independent client, no retries)."""
    client = boto3.client("dynamodb", endpoint_url=endpoint)
    return scan_segment(client, table, segment, total)


def schema_tables(pg: Any, schema: str) -> set[str]:
    with pg.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))
        return {r[0] for r in cur.fetchall()}


def schema_exists(pg: Any, schema: str) -> bool:
    with pg.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
        return cur.fetchone() is not None


def table_counts(pg: Any, schema: str) -> dict[str, int]:
    out = {}
    with pg.cursor() as cur:
        for name in sorted(schema_tables(pg, schema)):
            cur.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(name)))
            out[name] = cur.fetchone()[0]
    return out


def check_manifest(manifest: Manifest | None, snapshot: str, items: int) -> list[str]:
    if manifest is None:
        return ["no manifest"]
    problems = []
    if not manifest.complete or manifest.position is not None:
        problems.append(f"manifest not complete (position {manifest.position})")
    if manifest.snapshot != snapshot:
        problems.append(f"manifest snapshot {manifest.snapshot!r}, expected {snapshot!r}")
    if [c.no for c in manifest.chunks] != list(range(len(manifest.chunks))):
        problems.append(f"manifest chunks {[c.no for c in manifest.chunks]} are not 0..n-1")
    if manifest.items != items:
        problems.append(f"manifest counts {manifest.items} items, the segment has {items}")
    return problems


def check_segment(
    pg: Any,
    schema: DataSchema,
    store: PartStore,
    target: str,
    segment: int,
    items: list[dict[str, Any]],
    snapshot: str,
) -> list[str]:
    """Every row, value and reject of ``<target>_part_<segment>`` against the oracle for ``items``."""
    manifest = store.read_manifest()
    problems = check_manifest(manifest, snapshot, len(items))
    if manifest is None:
        return problems
    part = segment_schema(target, segment)
    if not schema_exists(pg, part):
        return [*problems, f"schema {part} missing"]
    if schema_exists(pg, staging_schema(target, segment)):
        problems.append(f"staging schema {staging_schema(target, segment)} left behind")
    want = oracle.expected(schema, items, segment, datetime.fromisoformat(manifest.extracted_at))
    expected_tables = {t.name for t in schema.tables} | {REJECTS_TABLE, SEGMENT_MARKER}
    loaded_tables = schema_tables(pg, part)
    if loaded_tables != expected_tables:
        problems.append(
            f"tables differ: missing {expected_tables - loaded_tables}, extra {loaded_tables - expected_tables}"
        )
    for t in schema.tables:
        key_cols = list(t.key_columns) + [c.name for c in t.columns if c.path is None]
        problems += compare_rows(t.name, key_cols, want.rows[t.name], fetch(pg, part, t.name))
    problems += compare_rejects(
        want.rejects, fetch(pg, part, REJECTS_TABLE), segment, datetime.fromisoformat(manifest.extracted_at)
    )
    loaded = {t: n for t, n in table_counts(pg, part).items() if t != SEGMENT_MARKER and n}
    if loaded != manifest.table_rows():
        problems.append(f"loaded counts {loaded} differ from the manifest {manifest.table_rows()}")
    markers = fetch(pg, part, SEGMENT_MARKER)
    if [(m["snapshot"], m["items"], m["data_schema_version"]) for m in markers] != [
        (snapshot, len(items), manifest.data_schema_version)
    ]:
        problems.append(f"marker rows {markers}")
    referenced = {p.key for p in manifest.parts()} | {store.manifest_key}
    referenced |= set(manifest.copy_manifests.values())
    orphans = set(store.list_keys()) - referenced
    if orphans:
        problems.append(f"orphan objects in S3: {sorted(orphans)[:5]}")
    return [f"{part}: {p}" for p in problems]


def check_production(
    pg: Any, schema: DataSchema, stores: list[PartStore], target: str, items_by_segment: list[list[dict[str, Any]]]
) -> list[str]:
    """Every row, value and reject of production ``target`` against the oracle over all segments' items."""
    problems: list[str] = []
    want_rows: dict[str, list[dict[str, Any]]] = {t.name: [] for t in schema.tables}
    rejects = fetch(pg, target, REJECTS_TABLE)
    for i, (store, items) in enumerate(zip(stores, items_by_segment, strict=True)):
        manifest = store.read_manifest()
        if manifest is None:
            return [f"segment {i}: no manifest"]
        at = datetime.fromisoformat(manifest.extracted_at)
        want = oracle.expected(schema, items, i, at)
        for name, rows in want.rows.items():
            want_rows[name] += rows
        problems += compare_rejects(want.rejects, [r for r in rejects if r["_segment"] == i], i, at)
    for t in schema.tables:
        key_cols = list(t.key_columns) + [c.name for c in t.columns if c.path is None]
        problems += compare_rows(t.name, key_cols, want_rows[t.name], fetch(pg, target, t.name))
    return [f"{target}: {p}" for p in problems]
