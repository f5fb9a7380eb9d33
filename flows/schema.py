"""Data-schema determination flow: scan every segment in parallel, infer, cache versioned JSON in S3."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from arm_etl.config import require_table
from arm_etl.dataschema import DataSchema, diff
from arm_etl.determination import infer_segment, settings
from arm_etl.extract import describe_keys
from arm_etl.inference import Partial, finalize, merge_all
from arm_etl.limits import READ_LIMIT
from arm_etl.names import REDSHIFT_MAX_BYTES
from arm_etl.routing import Router
from deployments.limits import occupy
from flows.logs import route_core_logs
from flows.resources import Resources
from flows.retries import retry_transient


@task(
    name="infer-segment",
    retries=3,
    retry_delay_seconds=[2, 10, 30],
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def infer_segment_task(
    res: Resources, table: str, segment: int, total: int, router: Router, page_limit: int | None
) -> Partial:
    """Partial inference of one segment; retried as a whole (it only reads). Holds a DynamoDB read slot."""
    with occupy(READ_LIMIT):
        return infer_segment(res.dynamodb, table, segment, total, router, page_limit)


def schema_markdown(schema: DataSchema, changes: list[str], url: str) -> str:
    lines = [
        f"# Data-schema `{schema.version}` of `{schema.source_table}`",
        "",
        f"{schema.items_scanned} items scanned; nested = `{schema.nested}`; cached at `{url}`.",
        "",
        "## Changes since the previous version",
        "",
        *[f"- {c}" for c in changes],
        "",
        "## Tables",
    ]
    for t in schema.tables:
        lines += [
            "",
            f"### `{t.name}`" + (f" (child of `{t.parent}`)" if t.parent else ""),
            "",
            "| column | type | path |",
            "|---|---|---|",
        ]
        for c in t.columns:
            path = ".".join("[]" if s is None else s for s in c.path) if c.path is not None else "(position)"
            lines.append(f"| `{c.name}` | {c.type} | `{path}` |")
    return "\n".join(lines)


def summary_text(schema: DataSchema) -> str:
    out = [
        f"data-schema {schema.version} of {schema.source_table}: {schema.items_scanned} items, "
        f"{len(schema.tables)} tables"
    ]
    for t in schema.tables:
        out.append(f"  {t.name}: {len(t.columns)} columns" + (f" (child of {t.parent})" if t.parent else ""))
    return "\n".join(out)


@flow(
    name="data-schema-determination",
    flow_run_name="{table}-data-schema",
    task_runner=ThreadPoolTaskRunner(max_workers=8),  # type: ignore[arg-type]
)
def determine_schema(
    table: str,
    total: int = 4,
    routing: list[str | dict[str, Any]] | None = None,
    nested: str | None = None,
    page_limit: int | None = None,
    name_limit: int | None = None,
    aws_credentials_block: str | None = None,
    redshift_block: str | None = None,
    cache_bucket: str | None = None,
) -> dict[str, Any]:
    """Scan ``table`` in ``total`` parallel segments, infer one data-schema per routed table, cache it.

    Args:
        table: DynamoDB source table name.
        total: Number of parallel-scan segments, scanned concurrently.
        routing: Rules like "sk:#" (prefix of sk before #) or "kind" (value of kind); not given: the cached
            data-schema's rules (none for a first determination); an empty list clears them.
        nested: "relational" (flattened maps, child tables) or "super" (one SUPER/JSONB column per map/list);
            not given: the cached data-schema's, else "relational".
        page_limit: Scan Limit per page; empty: DynamoDB's 1 MB pages.
        name_limit: Identifier bytes; empty: 63 for a PostgreSQL warehouse, else Redshift's 127.
        aws_credentials_block: Name of a prefect-aws AwsCredentials block; empty: boto3's environment.
        redshift_block: Name of a RedshiftCredentials block (its dialect sets the name limit).
        cache_bucket: S3 bucket of cached data-schemas; empty: ARM_ETL_CACHE_BUCKET (observes.cache).
    """
    log = get_run_logger()
    route_core_logs()
    table = require_table(table)
    res = Resources(aws_credentials_block, redshift_block, cache_bucket=cache_bucket)
    keys, approx = describe_keys(res.dynamodb, table)
    cache = res.schema_cache(table)
    previous = cache.read()
    rules, nested = settings(previous, routing, nested)
    router = Router(table, rules)
    log.info("scanning %s (~%d items) in %d segments", table, approx, total)
    futures = [infer_segment_task.submit(res, table, i, total, router, page_limit) for i in range(total)]
    partial = merge_all(f.result() for f in futures)
    if name_limit is None:
        wh = res.warehouse
        name_limit = wh.name_limit if wh is not None else REDSHIFT_MAX_BYTES
    schema = finalize(partial, table, keys, rules, nested, name_limit)
    changes = diff(previous, schema)
    key = cache.write(schema)
    url = f"s3://{res.cache_bucket}/{key}"
    create_markdown_artifact(
        markdown=schema_markdown(schema, changes, url),
        key=artifact_key("data-schema", table),
        description=f"data-schema {schema.version} of {table}",
    )
    log.info("%s\ncached at %s", summary_text(schema), url)
    return {
        "version": schema.version,
        "url": url,
        "items_scanned": schema.items_scanned,
        "tables": {t.name: [c.name for c in t.columns] for t in schema.tables},
        "changes": changes,
        "summary": summary_text(schema),
    }


def artifact_key(prefix: str, table: str) -> str:
    """Prefect artifact keys allow lower-case letters, digits and dashes only."""
    import re

    return re.sub(r"[^a-z0-9-]", "-", f"{prefix}-{table}".lower())[:100]


if __name__ == "__main__":
    import sys

    print(determine_schema(sys.argv[1] if len(sys.argv) > 1 else "arm-demo")["summary"])
