"""Segment ETL flow: extract → transform → upload → load, concurrently over the chunks of one segment.

Chunk k+1 is scanned while chunk k is transformed, uploaded and loaded; at most ``max_in_flight``
chunks are between extract and commit, so memory is bounded by chunks in flight, not segment size.
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime
from typing import Any, Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture
from prefect.task_runners import ThreadPoolTaskRunner

from arm_etl.config import target_schema as default_target
from arm_etl.limits import LOAD_LIMIT, READ_LIMIT
from arm_etl.memory import limit_malloc_arenas
from arm_etl.segment import Chunk, Encoded, RunOptions, SegmentError, SegmentRun, Uploaded
from arm_etl.upload import PartStore
from deployments.limits import occupy
from flows.resources import Resources
from flows.retries import retry_transient
from flows.schema import artifact_key

Phases = Literal["all", "extract", "load"]


@task(
    name="extract", retries=3, retry_delay_seconds=[1, 5, 20], retry_condition_fn=retry_transient, cache_policy=NO_CACHE
)
def extract_chunk(run: SegmentRun, chunk_no: int, start_key: dict[str, Any] | None) -> Chunk:
    """Scan the next pages of the segment; a retry re-reads from the same ExclusiveStartKey.

    Holds a slot of the DynamoDB read limit, which bounds read pressure across all segments.
    """
    with occupy(READ_LIMIT):
        return run.extract(chunk_no, start_key)


@task(name="transform", cache_policy=NO_CACHE)
def transform_chunk(run: SegmentRun, chunk: Chunk) -> Encoded:
    return run.transform(chunk)


@task(
    name="upload", retries=3, retry_delay_seconds=[1, 5, 20], retry_condition_fn=retry_transient, cache_policy=NO_CACHE
)
def upload_chunk(run: SegmentRun, encoded: Encoded, keep_data: bool) -> Uploaded:
    """Write the chunk's gzip CSV parts; keys are deterministic, so a retry overwrites, never adds."""
    return run.upload(encoded, keep_data)


@task(name="load", retries=2, retry_delay_seconds=[5, 20], retry_condition_fn=retry_transient, cache_policy=NO_CACHE)
def load_chunk(run: SegmentRun, uploaded: Uploaded) -> int:
    """Stream the chunk's parts into the staging schema (each part one COPY transaction).

    Holds a slot of the warehouse load limit: too many concurrent COPYs exhausted Redshift's memory before.
    """
    with occupy(LOAD_LIMIT):
        return run.load(uploaded)


@task(
    name="finish-load", retries=1, retry_delay_seconds=[10], retry_condition_fn=retry_transient, cache_policy=NO_CACHE
)
def finish_load(run: SegmentRun) -> dict[str, int]:
    """Verify staging counts against the manifest, then swap staging in (Redshift: the COPYs run here)."""
    with occupy(LOAD_LIMIT):
        return run.finish()


def default_snapshot() -> str:
    """Runs of the same UTC day share a snapshot: a re-run that day resumes instead of rescanning."""
    return datetime.now(UTC).strftime("%Y%m%d")


@flow(name="segment-etl", task_runner=ThreadPoolTaskRunner(max_workers=12))  # type: ignore[arg-type]
def segment_etl(
    table: str,
    segment: int,
    total: int,
    target_schema: str | None = None,
    schema_version: str | None = None,
    snapshot: str | None = None,
    fresh: bool = False,
    phases: Phases = "all",
    page_limit: int | None = None,
    pages_per_chunk: int = 8,
    part_size_mb: float = 64,
    max_in_flight: int = 3,
    aws_credentials_block: str | None = None,
    redshift_block: str | None = None,
    data_bucket: str | None = None,
    cache_bucket: str | None = None,
) -> dict[str, Any]:
    """Copy segment ``segment`` of ``total`` of DynamoDB ``table`` into redshift-schema ``<target>_part_<segment>``.

    Resumes from the S3 manifest when the same ``snapshot`` (default: today, UTC) was started before;
    ``fresh=True`` rescans. ``phases="load"`` only reloads a completed upload; ``"extract"`` stops after S3.

    Args:
        table: DynamoDB source table name.
        segment: This run's parallel-scan segment, 0 … total-1.
        total: Number of parallel-scan segments.
        target_schema: Production redshift-schema; the segment loads into <target>_part_<segment>.
        schema_version: Pin a cached data-schema version; empty: latest.
        snapshot: Run identity for resuming; empty: today's UTC date.
        fresh: Rescan even if this snapshot was started or completed.
        phases: "all"; "load" reloads a completed upload without scanning; "extract" stops after S3.
        page_limit: Scan Limit per page; empty: DynamoDB's 1 MB pages.
        pages_per_chunk: Scan pages per chunk (the unit of concurrency and of resume).
        part_size_mb: Uncompressed size at which a table's CSV part is rotated.
        max_in_flight: Chunks between extract and commit at once (bounds memory).
        aws_credentials_block: Name of a prefect-aws AwsCredentials block; empty: boto3's environment.
        redshift_block: Name of a RedshiftCredentials block; empty: ARM_ETL_WAREHOUSE_URL.
        data_bucket: S3 bucket of CSV parts and manifests; empty: ARM_ETL_DATA_BUCKET (observes.etl-data).
        cache_bucket: S3 bucket of cached data-schemas; empty: ARM_ETL_CACHE_BUCKET (observes.cache).
    """
    log = get_run_logger()
    limit_malloc_arenas()  # before the phase threads start: RSS then stays flat however large the segment
    res = Resources(aws_credentials_block, redshift_block, data_bucket, cache_bucket)
    target = default_target(table, target_schema)
    options = RunOptions(
        table=table,
        segment=segment,
        total=total,
        target=target,
        snapshot=snapshot or default_snapshot(),
        schema_version=schema_version,
        fresh=fresh,
        page_limit=page_limit,
        pages_per_chunk=pages_per_chunk,
        part_size=max(1, int(part_size_mb * 1024 * 1024)),
    )
    store = PartStore(res.s3, res.data_bucket, table, segment)
    # The configured warehouse decides the CSV dialect and COPY manifests even when this run only extracts.
    loading = phases != "extract"
    warehouse = res.require_warehouse() if loading else res.warehouse
    run = SegmentRun(options, res.dynamodb, store, res.schema_cache(table), warehouse)
    mode = run.prepare()
    manifest = run.manifest
    assert manifest is not None
    if phases == "load" and mode != "load":
        raise SegmentError(
            f"segment {segment} of {table}: --phases load needs a completed upload for snapshot {options.snapshot}, "
            f"but the manifest is {'incomplete' if manifest.chunks else 'absent'}: run the segment without --phases"
        )
    log.info(
        "segment %d/%d of %s: %s (snapshot %s, data-schema %s)",
        segment,
        total,
        table,
        mode,
        options.snapshot,
        manifest.data_schema_version,
    )

    loads: list[PrefectFuture[int]] = []
    if loading:
        run.begin_load()
        loads += [load_chunk.submit(run, Uploaded(rec, None)) for rec in list(manifest.chunks)]

    if mode != "load":
        _pipeline(run, max_in_flight, loading)

    for f in loads:
        f.result()
    counts: dict[str, int] = {}
    if loading:
        counts = finish_load.submit(run).result()
    summary = _summary(run, mode, counts)
    create_table_artifact(
        table=summary["tables"],
        key=artifact_key(f"segment-{segment}", table),
        description=f"segment {segment}/{total} of {table}: {mode}, snapshot {options.snapshot}",
    )
    log.info("segment %d of %s done: %s", segment, table, summary["totals"])
    return summary


def _pipeline(run: SegmentRun, max_in_flight: int, loading: bool) -> None:
    """Extract one chunk ahead while earlier chunks transform, upload and load; commit uploads in order.

    A chunk leaves the window only once committed and loaded, so its items and gzip bytes are released:
    memory is bounded by ``max_in_flight`` chunks, whatever the segment's size.
    """
    progress_id: Any = create_progress_artifact(
        progress=0.0, description="share of the segment's approximate item count scanned"
    )
    approx = _approx_items(run)
    chunk_no = run.next_chunk_no
    extracting = extract_chunk.submit(run, chunk_no, run.start_key)
    in_flight: deque[tuple[Chunk, PrefectFuture[Uploaded], PrefectFuture[int] | None]] = deque()
    scanned = run.manifest.items if run.manifest else 0
    done = False
    while not done or in_flight:
        if not done:
            chunk = extracting.result()
            scanned += len(chunk.items)
            done = chunk.last
            if not done:
                extracting = extract_chunk.submit(run, chunk.no + 1, chunk.end_key)
            encoded = transform_chunk.submit(run, chunk)
            uploaded = upload_chunk.submit(run, encoded, loading)  # type: ignore[call-overload]
            in_flight.append((chunk, uploaded, load_chunk.submit(run, uploaded) if loading else None))
            if progress_id is not None:
                update_progress_artifact(progress_id, min(99.0, 100.0 * scanned / approx) if approx else 50.0)
        while in_flight and (done or len(in_flight) >= max_in_flight):
            head, fut, load = in_flight.popleft()
            run.commit(fut.result(), head.end_key)
            head.items = []
            if load is not None:
                load.result()
    if progress_id is not None:
        update_progress_artifact(progress_id, 100.0)


def _approx_items(run: SegmentRun) -> int:
    """DynamoDB's approximate item count per segment (refreshed every ~6 h), for the progress bar only."""
    from arm_etl.extract import describe_keys

    try:
        _, count = describe_keys(run.scanner.client, run.o.table)
    except Exception:
        return 0
    return max(1, count // max(1, run.o.total))


def _summary(run: SegmentRun, mode: str, counts: dict[str, int]) -> dict[str, Any]:
    m = run.manifest
    assert m is not None
    rows = m.table_rows()
    nbytes = m.table_bytes()
    parts: dict[str, int] = {}
    for p in m.parts():
        parts[p.table] = parts.get(p.table, 0) + 1
    rejects = m.rejects()
    by_table = m.reject_tables()
    tables = [
        {
            "table": t,
            "rows": rows.get(t, 0),
            "bytes": nbytes.get(t, 0),
            "parts": parts.get(t, 0),
            "rejects": by_table.get(t, 0),
            "loaded": counts.get(t),
        }
        for t in sorted(rows.keys() | by_table.keys())
    ]
    return {
        "table": run.o.table,
        "segment": run.o.segment,
        "schema": run.final,
        "mode": mode,
        "snapshot": m.snapshot,
        "data_schema_version": m.data_schema_version,
        "tables": tables,
        "rejects": rejects,
        "totals": {
            "items": m.items,
            "rows": sum(rows.values()),
            "rejects": sum(rejects.values()),
            "chunks": len(m.chunks),
            "chunks_reused": run.stats.chunks_reused,
            "chunks_extracted": run.stats.chunks_extracted,
            "items_extracted": run.stats.items_extracted,
        },
        "phase_seconds": {k: round(v, 3) for k, v in run.stats.phase_seconds.items()},
    }


if __name__ == "__main__":
    import sys

    print(segment_etl(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))["totals"])
