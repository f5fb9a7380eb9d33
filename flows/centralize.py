"""Centralization flow: an operator's button. Verify every segment, merge, approve, swap atomically."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.flow_runs import pause_flow_run, suspend_flow_run
from prefect.input import RunInput
from prefect.states import Completed

from arm_etl.approval import approval_markdown, counts_table
from arm_etl.centralize import CentralizeError, Centralizer, SegmentCheck
from arm_etl.config import require_table
from arm_etl.config import target_schema as default_target
from arm_etl.status import status
from arm_etl.upload import PartStore
from flows.logs import route_core_logs
from flows.resources import Resources
from flows.retries import retry_transient
from flows.schema import artifact_key


class Approval(RunInput):
    """The operator's decision, entered in the Prefect UI when the run pauses before the swap."""

    approve: bool = False
    comment: str = ""


@task(
    name="merge-segment",
    task_run_name="merge-seg{check.segment}",
    retries=1,
    retry_delay_seconds=[10],
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def merge_segment(c: Centralizer, check: SegmentCheck) -> dict[str, int]:
    """Move one segment's tables into the loading schema; progress is recorded per table, exactly once."""
    return c.merge(check)


def declined(message: str, result: dict[str, Any]) -> Any:
    """A declined swap ends the run *Completed*, named "Declined" in the UI with the operator's reason: not a
    fault, so no failure alert fires. A flow returning a state takes it as its final state, and a caller of
    the flow receives the state's data, ``result``, as with any other return."""
    return Completed(name="Declined", message=message, data=result)


def wait_for_approval(form: str, timeout_s: int) -> Approval:
    """Ask the operator in the UI. A deployment run *suspends*: its process exits and its worker is free
    while the run waits; resumed with input it runs again from the top, every step before this one being
    idempotent (merges recorded per table), and this call then returns the stored decision (same key).
    A run of no deployment (CLI, a subflow in-process) cannot be resubmitted, so it pauses in its process.
    """
    ask = Approval.with_initial_data(description=form, approve=False)
    ctx = FlowRunContext.get()
    if ctx is not None and ctx.flow_run is not None and ctx.flow_run.deployment_id is not None:
        return suspend_flow_run(wait_for_input=ask, timeout=timeout_s, key="approval")
    return pause_flow_run(wait_for_input=ask, timeout=timeout_s, key="approval")


@flow(name="centralization", flow_run_name="{table}-centralize-{total}")
def centralize(
    table: str,
    total: int,
    target_schema: str | None = None,
    approve: bool = False,
    approval_timeout_s: int = 24 * 3600,
    aws_credentials_block: str | None = None,
    redshift_block: str | None = None,
    data_bucket: str | None = None,
    cache_bucket: str | None = None,
    grants: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """Glue ``<target>_part_0 … _part_{total-1}`` into ``<target>``, keeping the previous one as ``<target>_backup``.

    Production ``<target>`` is a redshift-schema of views over ``<target>_live``: its views, and the
    privileges readers hold on them, stay the same objects across swaps, so readers' own views keep
    reading the new rows. Refuses (changing nothing) unless every segment is present and its row counts
    equal its manifest, or if a reader's view depends on a production view whose columns must change.
    Unless ``approve`` is true the run pauses before the swap, showing row counts old vs new, for an
    operator to approve in the UI. Running it again when everything is merged changes nothing.

    Args:
        table: DynamoDB source table name.
        total: Number of segments the table was extracted in (segments 0 … total-1 must all be loaded).
        target_schema: Production redshift-schema; empty: dynamodb_<table>.
        approve: Swap without pausing for an operator's approval.
        approval_timeout_s: How long a paused run waits for the operator before failing (seconds).
        aws_credentials_block: Name of a prefect-aws AwsCredentials block; empty: boto3's environment.
        redshift_block: Name of a RedshiftCredentials block; empty: ARM_ETL_WAREHOUSE_URL.
        data_bucket: S3 bucket of CSV parts and manifests; empty: ARM_ETL_DATA_BUCKET (observes.etl-data).
        cache_bucket: S3 bucket of cached data-schemas; empty: ARM_ETL_CACHE_BUCKET (observes.cache).
        grants: Readers of production, as dbt's grants: {"select": ["analyst", "role:bi", "group:g", "PUBLIC"]};
            each gets USAGE on it and SELECT on its views (new tables included). Privileges already held are
            kept whatever this says.
    """
    log = get_run_logger()
    route_core_logs()
    table = require_table(table)
    res = Resources(aws_credentials_block, redshift_block, data_bucket, cache_bucket)
    target = default_target(table, target_schema)
    stores = [PartStore(res.s3, res.data_bucket, table, i) for i in range(total)]
    c = Centralizer(table, total, target, res.require_warehouse(), stores, res.schema_cache(table), grants)

    checks = c.inspect()
    if c.already_centralized(checks):
        msg = f"{target} already holds every segment of {table} from their completed manifests: nothing to do"
        log.info(msg)
        return {"message": msg, "changed": False, "target": target}

    try:
        c.verify(checks)
    except CentralizeError:
        # The refusal's remedies, one row per segment, where the operator is looking (the run's artifacts).
        create_markdown_artifact(
            markdown=f"# Centralization of `{table}` refused: nothing was changed\n\n" + status(c, checks).markdown(),
            key=artifact_key("centralization-status", table),
            description=f"why {target} was not centralized, and what to run",
        )
        raise
    resumed = c.prepare(checks)
    for check in checks:
        merge_segment(c, check)
    new = c.verify_loading(checks)
    old = c.production_counts()
    data_tables = {t: n for t, n in new.items()}
    readers = c.preview_swap()  # refuses now, before anyone is asked, if the swap would refuse

    if not approve:
        form = approval_markdown(
            target, c.loading, c.backup, checks, old, data_tables, readers.markdown(target, c.backup)
        )
        decision = wait_for_approval(form, approval_timeout_s)
        if not decision.approve:
            msg = (
                f"declined by the operator ({decision.comment or 'no comment'}): production {target} is unchanged "
                f"and {c.loading} is kept; run centralization again to be asked again"
            )
            log.info(msg)
            return declined(msg, {"message": msg, "changed": False, "target": target, "declined": True})
    report = c.swap()
    summary = counts_table(old, data_tables)
    create_markdown_artifact(
        markdown=f"# Centralization of `{table}` into `{target}`\n\n"
        + ("Resumed a merge in progress.\n\n" if resumed else "")
        + summary
        + "\n\n"
        + report.markdown(target, c.backup),
        key=artifact_key("centralization", table),
        description=f"{total} segments merged into {target}",
    )
    rows = sum(n for t, n in data_tables.items() if not t.startswith("_etl_"))
    msg = f"{target} now holds {rows} rows in {len(data_tables)} tables from {total} segments; previous in {c.backup}"
    log.info(msg)
    return {
        "message": msg,
        "changed": True,
        "target": target,
        "counts": data_tables,
        "previous": old,
        "privileges_kept": [str(p) for p in report.carried],
        "privileges_granted": [str(p) for p in report.granted],
        "readers_views": [f"{s}.{v}" for s, v, _ in report.dependents],
        "stale_readers_views": [f"{s}.{v}" for s, v, _ in report.stale],
    }


__all__ = ["Approval", "CentralizeError", "centralize"]

if __name__ == "__main__":
    import sys

    print(centralize(sys.argv[1], int(sys.argv[2]), approve=True)["message"])
