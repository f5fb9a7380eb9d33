"""Full refresh: determination if the cached data-schema is stale → every segment → centralization."""

from __future__ import annotations

import contextvars
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from arm_etl.centralize import CentralizeError, segment_remedy
from arm_etl.config import require_table
from arm_etl.manifest import Manifest
from arm_etl.upload import PartStore
from flows.centralize import centralize
from flows.logs import route_core_logs
from flows.resources import Resources
from flows.schema import artifact_key, determine_schema
from flows.segment import default_snapshot, segment_etl

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun


def schema_age(res: Resources, table: str) -> timedelta | None:
    cached = res.schema_cache(table).read()
    if cached is None:
        return None
    return datetime.now(UTC) - datetime.fromisoformat(cached.created_at)


@flow(name="full-refresh", flow_run_name="{table}-refresh-{total}")
def full_refresh(
    table: str,
    total: int,
    target_schema: str | None = None,
    max_schema_age_hours: float = 168.0,
    routing: list[str | dict[str, Any]] | None = None,
    page_limit: int | None = None,
    max_concurrent_segments: int = 4,
    segment_deployment: str | None = None,
    centralization_deployment: str | None = None,
    approve: bool = False,
    aws_credentials_block: str | None = None,
    redshift_block: str | None = None,
    data_bucket: str | None = None,
    cache_bucket: str | None = None,
    grants: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """Refresh ``table`` end to end. Segments run as runs of ``segment_deployment`` (one per worker) when
    given, else as subflows here; any failed segment stops the refresh before centralization.

    Args:
        table: DynamoDB source table name.
        total: Number of parallel-scan segments.
        target_schema: Production redshift-schema; empty: dynamodb_<table>.
        max_schema_age_hours: Re-run the data-schema determination when the cached one is older than this.
        routing: Routing rules for a determination ("sk:#" routes by the prefix of sk before #).
        page_limit: Scan Limit per page; empty: DynamoDB's 1 MB pages.
        max_concurrent_segments: Segment deployment runs in flight at once.
        segment_deployment: "segment-etl/segment-etl" to run each segment on a worker; empty: subflows here.
        centralization_deployment: "centralization/centralization" to centralize on a worker as its own run,
            which suspends (holding no worker) while it waits for approval; this run then ends, linking it.
            Empty: a subflow here, which pauses in this run.
        approve: Swap into production without an operator's approval.
        aws_credentials_block: Name of a prefect-aws AwsCredentials block; empty: boto3's environment.
        redshift_block: Name of a RedshiftCredentials block; empty: ARM_ETL_WAREHOUSE_URL.
        data_bucket: S3 bucket of CSV parts and manifests; empty: ARM_ETL_DATA_BUCKET (observes.etl-data).
        cache_bucket: S3 bucket of cached data-schemas; empty: ARM_ETL_CACHE_BUCKET (observes.cache).
        grants: Readers of production, as dbt's grants: {"select": ["analyst", "role:bi"]} (see centralization).
    """
    log = get_run_logger()
    route_core_logs()
    table = require_table(table)
    blocks: dict[str, Any] = {
        "aws_credentials_block": aws_credentials_block,
        "redshift_block": redshift_block,
        "cache_bucket": cache_bucket,
    }
    res = Resources(aws_credentials_block, redshift_block, data_bucket, cache_bucket)
    age = schema_age(res, table)
    if age is None or age > timedelta(hours=max_schema_age_hours):
        log.info("data-schema of %s is %s: determining it", table, "missing" if age is None else f"{age} old")
        determine_schema(table, total=total, routing=routing, page_limit=page_limit, **blocks)

    snapshot = default_snapshot()
    params = {
        "table": table,
        "total": total,
        "target_schema": target_schema,
        "snapshot": snapshot,
        "page_limit": page_limit,
        "data_bucket": data_bucket,
        **blocks,
    }
    if segment_deployment:
        runs = _segment_deployment_runs(segment_deployment, params, total, max_concurrent_segments)
    else:
        runs = [_segment_subflow(i, params) for i in range(total)]
    stores = [PartStore(res.s3, res.data_bucket, table, i) for i in range(total)]
    rollup = Rollup(table, total, snapshot, runs, [s.read_manifest() for s in stores])
    failed = [r for r in runs if not r.completed]

    def again(segment: int) -> str:  # the same snapshot, so the re-run resumes this refresh's upload
        return segment_remedy(table, segment, total, {"snapshot": snapshot})

    if failed:
        rollup.publish("stopped before centralization: a segment failed")
        raise CentralizeError(
            f"full refresh of {table} stopped before centralization; failed segments:\n  "
            + "\n  ".join(f"segment {r.segment}: {r.describe()}; {again(r.segment)} (it resumes)" for r in failed)
        )
    central: dict[str, Any] = {
        "target_schema": target_schema,
        "approve": approve,
        "data_bucket": data_bucket,
        "grants": grants,
    }
    if centralization_deployment:
        run = _centralization_deployment_run(
            centralization_deployment, {"table": table, "total": total, **central, **blocks}
        )
        rollup.centralization = run
        if run.completed:
            msg = f"{table} refreshed: {total} segments centralized by {run.name}"
        elif run.waiting:
            msg = f"{table}: {total} segments loaded; centralization {run.name} waits for approval at {run.url}"
        else:
            rollup.publish(f"centralization {run.state}")
            raise CentralizeError(f"full refresh of {table}: centralization {run.describe()}; see {run.url}")
        rollup.publish(msg)
        log.info(msg)
        return {"message": msg, "centralization": {"run": run.name, "state": run.state}, "snapshot": snapshot}
    out = centralize(table, total, **central, **blocks)
    rollup.publish(out["message"])
    return {"message": out["message"], "centralization": out, "snapshot": snapshot}


@dataclass
class RunOutcome:
    """How one child run of the refresh ended, with the link an operator follows."""

    segment: int
    name: str
    state: str  # the state's name, as the UI shows it
    completed: bool  # by the state's type: a run completed under another name (e.g. "Declined") counts
    waiting: bool  # Paused or Suspended: waiting for an operator
    message: str = ""
    url: str = ""

    def describe(self) -> str:
        return f"flow run {self.name} ended {self.state}" + (f" ({self.message})" if self.message else "")

    def link(self) -> str:
        return f"[{self.name}]({self.url})" if self.url else f"`{self.name}`"


def _outcome(segment: int, run: Any) -> RunOutcome:
    from prefect.utilities.urls import url_for

    state = run.state
    return RunOutcome(
        segment,
        run.name,
        state.name if state else "?",
        bool(state and state.is_completed()),
        bool(state and state.is_paused()),
        (state.message or "") if state and not state.is_completed() else "",
        url_for(run) or "",
    )


def _segment_subflow(i: int, params: dict[str, Any]) -> RunOutcome:
    from prefect.client.orchestration import get_client

    state = segment_etl(segment=i, return_state=True, **params)
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)  # type: ignore[arg-type]  # set for a run
    return _outcome(i, run)


def _segment_deployment_runs(name: str, params: dict[str, Any], total: int, workers: int) -> list[RunOutcome]:
    """One run of the segment deployment per segment, ``workers`` at a time, linked to this run."""
    from prefect.deployments import run_deployment

    def run_one(i: int) -> RunOutcome:
        run = run_deployment(
            name=name,
            parameters={**params, "segment": i},
            timeout=None,
            flow_run_name=f"{params['table']}-seg{i}of{total}",
        )
        return _outcome(i, run)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        # Each thread gets a copy of this flow run's context, so the segment runs link to the refresh run.
        futures = [pool.submit(contextvars.copy_context().run, run_one, i) for i in range(total)]
        return [f.result() for f in futures]


def _centralization_deployment_run(name: str, params: dict[str, Any], poll_s: float = 2.0) -> RunOutcome:
    """Start the centralization on a worker and wait until it ends or waits for approval: a run that
    waits for an operator is suspended and holds no worker, so this run does not wait with it."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    run: FlowRun = run_deployment(  # type: ignore[assignment]  # sync context: a FlowRun
        name=name,
        parameters=params,
        timeout=0,
        flow_run_name=f"{params['table']}-centralize-{params['total']}",
        as_subflow=False,  # Prefect suspends only top-level runs; the roll-up links it instead
    )
    with get_client(sync_client=True) as client:
        while run.state is None or not (run.state.is_final() or run.state.is_paused()):
            time.sleep(poll_s)
            run = client.read_flow_run(run.id)
    return _outcome(-1, run)


@dataclass
class Rollup:
    """The refresh's artifact: every segment run (linked), what its manifest holds, and the centralization."""

    table: str
    total: int
    snapshot: str
    runs: list[RunOutcome]
    manifests: list[Manifest | None]
    centralization: RunOutcome | None = None

    def markdown(self, verdict: str) -> str:
        lines = [
            f"# Full refresh of `{self.table}`, snapshot `{self.snapshot}`",
            "",
            verdict,
            "",
            "| segment | run | state | items | rows | rejects | upload |",
            "|---:|---|---|---:|---:|---:|---|",
        ]
        for r, m in zip(self.runs, self.manifests, strict=True):
            ours = m is not None and m.snapshot == self.snapshot
            items, rows, rejects = (
                (m.items, sum(m.table_rows().values()), sum(m.rejects().values())) if m and ours else ("", "", "")
            )
            upload = "complete" if m and ours and m.complete else "incomplete" if ours else "none"
            lines.append(f"| {r.segment} | {r.link()} | {r.state} | {items} | {rows} | {rejects} | {upload} |")
        if self.centralization is not None:
            lines += ["", f"Centralization: {self.centralization.link()}, {self.centralization.state}"]
        return "\n".join(lines) + "\n"

    def publish(self, verdict: str) -> None:
        create_markdown_artifact(
            markdown=self.markdown(verdict),
            key=artifact_key("full-refresh", self.table),
            description=f"full refresh of {self.table}: {self.total} segment runs",
        )


if __name__ == "__main__":
    import sys

    print(full_refresh(sys.argv[1], int(sys.argv[2]))["message"])
