"""Full refresh: determination if the cached data-schema is stale → every segment → centralization."""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import flow, get_run_logger

from arm_etl.centralize import CentralizeError
from flows.centralize import centralize
from flows.resources import Resources
from flows.schema import determine_schema
from flows.segment import default_snapshot, segment_etl


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
    approve: bool = True,
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
        approve: Swap into production without pausing for approval.
        aws_credentials_block: Name of a prefect-aws AwsCredentials block; empty: boto3's environment.
        redshift_block: Name of a RedshiftCredentials block; empty: ARM_ETL_WAREHOUSE_URL.
        data_bucket: S3 bucket of CSV parts and manifests; empty: ARM_ETL_DATA_BUCKET (observes.etl-data).
        cache_bucket: S3 bucket of cached data-schemas; empty: ARM_ETL_CACHE_BUCKET (observes.cache).
        grants: Readers of production, as dbt's grants: {"select": ["analyst", "role:bi"]} (see centralization).
    """
    log = get_run_logger()
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
    failures: list[str] = []
    if segment_deployment:
        from prefect.deployments import run_deployment

        def run_one(i: int) -> tuple[int, Any]:
            return i, run_deployment(
                name=segment_deployment,
                parameters={**params, "segment": i},
                timeout=None,
                flow_run_name=f"{table}-segment-{i}-of-{total}",
            )

        with ThreadPoolExecutor(max_workers=max(1, max_concurrent_segments)) as pool:
            # Each thread gets a copy of this flow run's context, so the segment runs link to the refresh run.
            futures = [pool.submit(contextvars.copy_context().run, run_one, i) for i in range(total)]
            for fut in futures:
                i, run = fut.result()
                if run.state is None or not run.state.is_completed():
                    failures.append(f"segment {i}: flow run {run.name} ended {run.state.name if run.state else '?'}")
    else:
        for i in range(total):
            state = segment_etl(segment=i, return_state=True, **params)
            if not state.is_completed():
                failures.append(f"segment {i}: {state.name}: {state.message}")
    if failures:
        raise CentralizeError(
            f"full refresh of {table} stopped before centralization; failed segments:\n  "
            + "\n  ".join(failures)
            + f"\nre-run each with `arm-etl segment --table {table} --segment I --total {total}` (it resumes)"
        )
    out = centralize(
        table, total, target_schema=target_schema, approve=approve, data_bucket=data_bucket, grants=grants, **blocks
    )
    return {"message": out["message"], "centralization": out, "snapshot": snapshot}


if __name__ == "__main__":
    import sys

    print(full_refresh(sys.argv[1], int(sys.argv[2]))["message"])
