"""Segment ETL flow: extract → transform → upload → load, four concurrent tasks over one segment.

Chunk k+1 is scanned while chunk k is transformed, uploaded and loaded; at most ``max_in_flight``
chunks are between extract and the end of their load, so memory is bounded by chunks in flight, not
segment size. The Prefect work per run (task runs, slot leases, artifact updates) does not grow with
the number of chunks.
"""

from __future__ import annotations

import time
from contextlib import nullcontext, suppress
from datetime import UTC, datetime
from typing import Any, Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from arm_etl.config import require_table, snapshot_for
from arm_etl.config import target_schema as default_target
from arm_etl.extract import Throttle
from arm_etl.limits import LOAD_LIMIT, READ_LIMIT
from arm_etl.memory import limit_malloc_arenas, quiet_gc
from arm_etl.pipeline import Pipeline, Progress
from arm_etl.report import SegmentReport
from arm_etl.segment import RunOptions, SegmentError, SegmentPlan, SegmentRun, Stats, plan_segment, ready_storage
from arm_etl.upload import PartStore
from deployments.limits import occupy
from flows.logs import route_core_logs
from flows.resources import Resources
from flows.retries import retry_transient
from flows.schema import artifact_key

Phases = Literal["all", "extract", "load"]


@task(name="phase", task_run_name="{phase}", cache_policy=NO_CACHE)
def run_phase(pipeline: Pipeline, phase: str) -> None:
    """One phase of the segment for the whole run (it retries its own failed chunk, transient errors only).

    The extract holds a slot of the DynamoDB read limit and the load one of the warehouse load limit for
    the run: read pressure and concurrent COPYs stay bounded across all segments, with two slot leases
    per segment run instead of two per chunk.
    """
    with occupy(_LIMITS[phase]) if phase in _LIMITS else nullcontext():
        pipeline.stage(phase)()


@task(
    name="finish-load",
    task_run_name="finish-load-seg{run.o.identity.segment}",
    retries=1,
    retry_delay_seconds=[10],
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def finish_load(run: SegmentRun) -> dict[str, int]:
    """Verify staging counts against the manifest, then swap staging in (Redshift: the COPYs run here)."""
    with occupy(LOAD_LIMIT):
        return run.finish()


_LIMITS = {"extract": READ_LIMIT, "load": LOAD_LIMIT}
PROGRESS_STEP = 20.0  # percentage points between two updates of the progress artifact (during the pipeline)


def default_snapshot() -> str:
    """The UTC date of this flow run's scheduled start for a deployment run, else today's (``snapshot_for``)."""
    from prefect.runtime import deployment, flow_run

    scheduled = flow_run.scheduled_start_time if deployment.id else None
    return snapshot_for(scheduled, datetime.now(UTC))


@flow(
    name="segment-etl",
    flow_run_name="{table}-seg{segment}of{total}",
    task_runner=ThreadPoolTaskRunner(max_workers=12),  # type: ignore[arg-type]
)
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

    Resumes from the S3 manifest when the same ``snapshot`` (default: the scheduled start's UTC date) was
    started before;
    ``fresh=True`` rescans. ``phases="load"`` only reloads a completed upload; ``"extract"`` stops after S3.

    Args:
        table: DynamoDB source table name.
        segment: This run's parallel-scan segment, 0 … total-1.
        total: Number of parallel-scan segments.
        target_schema: Production redshift-schema; the segment loads into <target>_part_<segment>.
        schema_version: Pin a cached data-schema version; empty: latest.
        snapshot: Run identity for resuming; empty: the UTC date of the deployment run's scheduled start
            (a retry, a UI retry or a re-run after midnight resumes), or today's UTC date for a plain call.
        fresh: Rescan even if this snapshot was started or completed.
        phases: "all"; "load" reloads a completed upload without scanning; "extract" stops after S3.
        page_limit: Scan Limit per page; empty: DynamoDB's 1 MB pages.
        pages_per_chunk: Scan pages per chunk (the unit of concurrency and of resume).
        part_size_mb: Uncompressed size at which a table's CSV part is rotated.
        max_in_flight: Chunks between the start of their extract and the end of their load (bounds memory).
        aws_credentials_block: Name of a prefect-aws AwsCredentials block; empty: boto3's environment.
        redshift_block: Name of a RedshiftCredentials block; empty: ARM_ETL_WAREHOUSE_URL.
        data_bucket: S3 bucket of CSV parts and manifests; empty: ARM_ETL_DATA_BUCKET (observes.etl-data).
        cache_bucket: S3 bucket of cached data-schemas; empty: ARM_ETL_CACHE_BUCKET (observes.cache).
    """
    log = get_run_logger()
    route_core_logs()
    table = require_table(table)
    started = time.monotonic()
    limit_malloc_arenas()  # before the phase threads start: RSS then stays flat however large the segment
    res = Resources(aws_credentials_block, redshift_block, data_bucket, cache_bucket)
    options = RunOptions.of(
        table,
        segment,
        total,
        default_target(table, target_schema),
        snapshot or default_snapshot(),
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
    throttle = Throttle()
    plan: SegmentPlan | None = None
    run: SegmentRun | None = None
    counts: dict[str, int] = {}

    def report(error: BaseException | None = None) -> SegmentReport:
        """Written on success and on failure alike: the artifact is where the operator looks first."""
        r = SegmentReport(
            options,
            plan,
            run.stats if run else Stats(),
            throttle,
            counts,
            time.monotonic() - started,
            f"{type(error).__name__}: {error}" if error else None,
        )
        create_markdown_artifact(
            markdown=r.markdown(),
            key=artifact_key(f"segment-{segment}", table),
            description=f"segment {segment}/{total} of {table}: {r.status}, {r.mode or 'not started'}, "
            f"snapshot {options.snapshot}",
        )
        return r

    try:
        plan = plan_segment(options, store, res.schema_cache(table))
        if phases == "load" and plan.mode != "load":
            raise SegmentError(
                f"segment {segment} of {table}: --phases load needs a completed upload for snapshot "
                f"{options.snapshot}, but the manifest is {'incomplete' if plan.manifest.chunks else 'absent'}: "
                "run the segment without --phases"
            )
        log.info(
            "segment %d/%d of %s: %s (snapshot %s, data-schema %s)",
            segment,
            total,
            table,
            plan.mode,
            options.snapshot,
            plan.data_schema.version,
        )
        ready_storage(plan, store)
        run = SegmentRun(options, plan, res.dynamodb, store, warehouse, throttle)
        if loading:
            run.begin_load()
        progress = _pipeline(run, max_in_flight, loading)
        if loading:
            counts.update(finish_load.submit(run).result())
        progress.done()
    except Exception as exc:
        with suppress(Exception):  # the run's own error is the one to raise, not a failed artifact write
            report(exc)
        raise
    summary = report().to_dict()
    log.info("segment %d of %s done: %s", segment, table, summary["totals"])
    return summary


class LoadProgress:
    """The run's progress bar: the pipeline fills 0–90 %, the finish (Redshift's COPYs, the swap) the rest.

    The share is of the approximate item count whose rows are loaded (in S3 when not loading), updated
    only in steps of ``PROGRESS_STEP``: at most 6 updates per run however many chunks it has (every
    update is a request to the Prefect API).
    """

    PIPELINE_SHARE = 90.0

    def __init__(self, approx_items: int) -> None:
        self.approx = approx_items
        self.shown = 0.0
        self.id: Any = create_progress_artifact(
            progress=0.0, description="share of the segment's approximate item count loaded, finish included"
        )

    def _show(self, share: float) -> None:
        if self.id is not None:
            self.shown = share
            update_progress_artifact(self.id, share)

    def on_pipeline(self, p: Progress) -> None:
        share = self.PIPELINE_SHARE * min(1.0, p.done / self.approx) if self.approx else 0.0
        if share - self.shown >= PROGRESS_STEP:
            self._show(share)

    def pipeline_done(self) -> None:
        self._show(self.PIPELINE_SHARE)

    def done(self) -> None:
        self._show(100.0)


def _pipeline(run: SegmentRun, max_in_flight: int, loading: bool) -> LoadProgress:
    """The four phases as four concurrent tasks over the whole segment (``arm_etl.pipeline``)."""
    progress = LoadProgress(_approx_items(run))
    pipeline = Pipeline(run, max_in_flight=max_in_flight, loading=loading, on_progress=progress.on_pipeline)
    with quiet_gc():  # the same collector settings as Pipeline.run_threads (the benchmark's core row)
        futures = [run_phase.submit(pipeline, phase) for phase in pipeline.phases]
        for f in futures:
            f.wait()
    pipeline.raise_first()
    progress.pipeline_done()
    return progress


def _approx_items(run: SegmentRun) -> int:
    """DynamoDB's approximate item count per segment (refreshed every ~6 h), for the progress bar only."""
    from arm_etl.extract import describe_keys

    try:
        _, count = describe_keys(run.scanner.client, run.o.identity.table)
    except Exception:
        return 0
    return max(1, count // run.o.identity.total)


if __name__ == "__main__":
    import sys

    print(segment_etl(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))["totals"])
