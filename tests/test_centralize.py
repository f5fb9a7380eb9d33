"""Centralization and full refresh through Prefect on moto server + embedded PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest

from arm_etl.centralize import CentralizeError
from arm_etl.config import backup_schema, live_schema, loading_schema, segment_schema
from arm_etl.seed import seed_table
from arm_etl.warehouse import Warehouse
from arm_etl.warehouse.statement import Statement

TOTAL = 3


@pytest.fixture(scope="module")
def extracted(stack: Any, prefect_api: str) -> str:
    """A seeded table whose 3 segments are extracted to S3 once; tests reload them per target schema."""
    import boto3

    from flows.schema import determine_schema
    from flows.segment import segment_etl

    table = "central-src"
    seed_table(boto3.client("dynamodb", endpoint_url=stack.endpoint), table, 90, seed=7)
    determine_schema(table, total=TOTAL, routing=["sk:#"], page_limit=15)
    for i in range(TOTAL):
        segment_etl(table, i, TOTAL, phases="extract", page_limit=15, pages_per_chunk=2)
    return table


def load_segments(table: str, target: str) -> None:
    from flows.segment import segment_etl

    for i in range(TOTAL):
        out = segment_etl(table, i, TOTAL, target_schema=target, phases="load")
        assert out["mode"] == "load" and out["totals"]["chunks_extracted"] == 0


def snapshot_rows(pg: Any, schemas: list[str]) -> dict[str, Counter[tuple[Any, ...]]]:
    """Every row of every table across ``schemas``, as multisets per table name (bookkeeping excluded)."""
    out: dict[str, Counter[tuple[Any, ...]]] = {}
    cur = pg.cursor()
    for schema in schemas:
        cur.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'v')",
            (schema,),
        )
        for (name,) in cur.fetchall():
            if name in ("_etl_segment", "_etl_merged"):
                continue
            cur.execute(f'SELECT * FROM "{schema}"."{name}"')
            rows = [
                tuple(
                    bytes(v) if isinstance(v, memoryview) else repr(v) if isinstance(v, (dict, list)) else v for v in r
                )
                for r in cur.fetchall()
            ]
            out.setdefault(name, Counter()).update(rows)
    return out


def schemas_like(pg: Any, prefix: str) -> set[str]:
    cur = pg.cursor()
    cur.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (prefix + "%",))
    return {r[0] for r in cur.fetchall()}


def test_centralize_exact_then_idempotent_then_backup(extracted: str, pg: Any) -> None:
    from flows.centralize import centralize

    target = "c_exact"
    load_segments(extracted, target)
    parts = [segment_schema(target, i) for i in range(TOTAL)]
    expected = snapshot_rows(pg, parts)
    assert sum(sum(c.values()) for c in expected.values()) > 90

    out = centralize(extracted, TOTAL, target_schema=target, approve=True)
    assert out["changed"] is True
    assert snapshot_rows(pg, [target]) == expected
    # segments dropped, no loading left, no backup yet; production's views over its physical redshift-schema
    assert schemas_like(pg, target) == {target, live_schema(target)}

    again = centralize(extracted, TOTAL, target_schema=target, approve=True)
    assert again["changed"] is False
    assert "nothing to do" in again["message"]
    assert snapshot_rows(pg, [target]) == expected

    # A second round (segments rebuilt from their completed manifests, no scan) keeps the first as backup.
    load_segments(extracted, target)
    second = centralize(extracted, TOTAL, target_schema=target, approve=True)
    assert second["changed"] is True
    assert snapshot_rows(pg, [target]) == expected
    assert snapshot_rows(pg, [backup_schema(target)]) == expected


def test_missing_and_short_segments_refuse_without_changes(extracted: str, pg: Any) -> None:
    from flows.centralize import centralize

    target = "c_refuse"
    load_segments(extracted, target)
    cur = pg.cursor()
    cur.execute(f'DROP SCHEMA "{segment_schema(target, 1)}" CASCADE')
    cur.execute(
        f'DELETE FROM "{segment_schema(target, 2)}"."fin" WHERE ctid IN '
        f'(SELECT ctid FROM "{segment_schema(target, 2)}"."fin" LIMIT 1)'
    )
    before = snapshot_rows(pg, [segment_schema(target, 0), segment_schema(target, 2)])

    with pytest.raises(CentralizeError) as err:
        centralize(extracted, TOTAL, target_schema=target, approve=True)
    msg = str(err.value)
    assert "nothing was changed" in msg
    assert f"segment 1: schema {segment_schema(target, 1)} missing" in msg
    assert f"arm-etl segment --table {extracted} --segment 1 --total 3 --phases load" in msg
    assert "segment 2: row counts differ from its manifest (fin " in msg
    assert "segment 0" not in msg
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.schema import artifact_key

    key = artifact_key("centralization-status", extracted)
    with get_client(sync_client=True) as client:
        (latest, *_) = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    table = str(latest.data)
    assert table.startswith(f"# Centralization of `{extracted}` refused: nothing was changed")
    assert "| 1 | yes |" in table and "| 2 | yes |" in table and "would refuse: segment(s) [1, 2] not ready" in table
    assert schemas_like(pg, target) == {segment_schema(target, 0), segment_schema(target, 2)}
    assert snapshot_rows(pg, [segment_schema(target, 0), segment_schema(target, 2)]) == before


def test_crash_between_merges_then_rerun_is_exact(extracted: str, pg: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.centralize import centralize

    target = "c_crash"
    load_segments(extracted, target)
    expected = snapshot_rows(pg, [segment_schema(target, i) for i in range(TOTAL)])

    # Crash in the middle of segment 1: after some of its tables moved, before the rest.
    real_execute = Warehouse.execute
    crash_at = f'INSERT INTO "{loading_schema(target)}"."org"'
    seen: list[str] = []

    def flaky(self: Warehouse, cur: Any, statement: Statement, values: Any = None) -> None:
        if statement.sql.startswith(crash_at):
            seen.append(statement.sql)
            if len(seen) >= 2:  # segment 0 moved org fine; segment 1 dies here, retries too
                raise RuntimeError("host terminated (injected)")
        real_execute(self, cur, statement, values)

    monkeypatch.setattr(Warehouse, "execute", flaky)
    with pytest.raises(RuntimeError, match="injected"):
        centralize(extracted, TOTAL, target_schema=target, approve=True)
    monkeypatch.setattr(Warehouse, "execute", real_execute)
    assert target not in schemas_like(pg, target)  # production untouched
    assert loading_schema(target) in schemas_like(pg, target)

    out = centralize(extracted, TOTAL, target_schema=target, approve=True)
    assert out["changed"] is True
    assert snapshot_rows(pg, [target]) == expected


@pytest.mark.parametrize("approve", [True, False], ids=["approved", "declined"])
def test_approval_pauses_and_resumes_with_input(extracted: str, pg: Any, prefect_api: str, approve: bool) -> None:
    """A plain run pauses in its process; the operator's input decides. Declining is not a fault: the run
    ends Completed, named "Declined", production untouched and the merged loading schema kept."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType
    from prefect.flow_runs import resume_flow_run

    from flows.centralize import centralize

    target = f"c_approve_{approve}".lower()
    load_segments(extracted, target)
    expected = snapshot_rows(pg, [segment_schema(target, i) for i in range(TOTAL)])
    result: dict[str, Any] = {}

    def run() -> None:
        result["state"] = centralize(extracted, TOTAL, target_schema=target, approve=False, return_state=True)

    worker = threading.Thread(target=run)
    worker.start()
    paused = None
    with get_client(sync_client=True) as client:
        for _ in range(600):
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
                )
            )
            paused = next((r for r in runs if r.parameters.get("target_schema") == target), None)
            if paused is not None:
                break
            time.sleep(0.2)
    assert paused is not None, "centralization never paused for approval"
    assert target not in schemas_like(pg, target)  # nothing swapped while waiting
    assert paused.state is not None and paused.state.name == "Paused"  # a plain run: no deployment to resubmit
    resume_flow_run(paused.id, run_input={"approve": approve, "comment": "looks right" if approve else "not today"})
    worker.join(timeout=300)
    state = result["state"]
    out = state.result()
    if approve:
        assert state.name == "Completed" and out["changed"] is True
        assert snapshot_rows(pg, [target]) == expected
        return
    assert state.is_completed() and state.name == "Declined"
    assert (
        state.message
        == out["message"]
        == (
            f"declined by the operator (not today): production {target} is unchanged and {loading_schema(target)} is "
            "kept; run centralization again to be asked again"
        )
    )
    assert out["changed"] is False and out["declined"] is True
    assert target not in schemas_like(pg, target) and loading_schema(target) in schemas_like(pg, target)


def latest_artifact(key: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        (latest, *_) = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    return str(latest.data)


def test_full_refresh_twice(stack: Any, prefect_api: str, pg: Any) -> None:
    import boto3

    from flows.refresh import full_refresh

    table = "refresh-src"
    seed_table(boto3.client("dynamodb", endpoint_url=stack.endpoint), table, 60, seed=11)
    first = full_refresh(table, 2, routing=["sk:#"], page_limit=20, approve=True)
    target = first["centralization"]["target"]
    rows1 = snapshot_rows(pg, [target])
    assert sum(rows1["fin"].values()) > 0
    # Production equals the source, row for row and value by value (independent oracle over each segment).
    from arm_etl.cache import SchemaCache
    from arm_etl.upload import PartStore
    from tests.exactness import check_production
    from tests.test_segment_exact import scan_segment

    env = stack.env()
    s3 = boto3.client("s3", endpoint_url=stack.endpoint)
    schema = SchemaCache(s3, env["ARM_ETL_CACHE_BUCKET"], table).require()
    stores = [PartStore(s3, env["ARM_ETL_DATA_BUCKET"], table, i) for i in range(2)]
    raw = boto3.client("dynamodb", endpoint_url=stack.endpoint)
    items = [scan_segment(raw, table, i, 2) for i in range(2)]
    assert sum(len(i) for i in items) == 60
    assert check_production(pg, schema, stores, target, items) == []
    rollup = latest_artifact(f"full-refresh-{table}").splitlines()
    assert rollup[:6] == [
        f"# Full refresh of `{table}`, snapshot `{first['snapshot']}`",
        "",
        first["message"],
        "",
        "| segment | run | state | items | rows | rejects | upload |",
        "|---:|---|---|---:|---:|---:|---|",
    ]
    for i, row in enumerate(rollup[6:]):  # each segment run linked to its page in the UI, with its manifest
        m = stores[i].read_manifest()
        assert m is not None
        counts = f"{m.items} | {sum(m.table_rows().values())} | {sum(m.rejects().values())}"
        assert row.startswith(f"| {i} | [{table}-seg{i}of2](") and "/runs/flow-run/" in row, row
        assert row.endswith(f") | Completed | {counts} | complete |"), row
    second = full_refresh(table, 2, routing=["sk:#"], page_limit=20, approve=True)
    assert second["centralization"]["changed"] is True
    assert snapshot_rows(pg, [target]) == rows1
    assert snapshot_rows(pg, [backup_schema(target)]) == rows1


def test_a_readers_view_on_a_schema_about_to_be_dropped_is_never_dropped(extracted: str, pg: Any) -> None:
    """A view built on the physical redshift-schema behind production (not on production's views) goes
    with it to the backup; the next centralization, about to drop that backup, refuses naming the view."""
    from arm_etl.warehouse.base import WarehouseError
    from flows.centralize import centralize

    target = "c_dependents"
    live, backup = live_schema(target), backup_schema(target)
    load_segments(extracted, target)
    centralize(extracted, TOTAL, target_schema=target, approve=True)
    cur = pg.cursor()
    cur.execute('CREATE SCHEMA IF NOT EXISTS "bi_reader"')
    cur.execute(f'CREATE VIEW "bi_reader"."v" AS SELECT count(*) AS n FROM "{live}"."_etl_merged"')
    pg.commit()

    load_segments(extracted, target)
    centralize(extracted, TOTAL, target_schema=target, approve=True)  # the view now reads the backup
    load_segments(extracted, target)
    before = snapshot_rows(pg, [target, backup])
    with pytest.raises(WarehouseError) as err:
        centralize(extracted, TOTAL, target_schema=target, approve=True)
    message = str(err.value)
    assert f"refusing to drop redshift-schema {backup}" in message
    assert f'"bi_reader"."v" (reads {backup}._etl_merged)' in message
    assert "nothing was dropped" in message
    cur.execute(f'SELECT (SELECT n FROM bi_reader.v) = (SELECT count(*) FROM "{backup}"."_etl_merged")')
    assert cur.fetchone() == (True,)  # the view still exists, reading the backup's progress rows
    assert snapshot_rows(pg, [target, backup]) == before  # production and backup untouched
    assert loading_schema(target) in schemas_like(pg, target)  # the merged loading schema is kept for a re-run
    cur.execute('DROP VIEW "bi_reader"."v"')
    pg.commit()
    done = centralize(extracted, TOTAL, target_schema=target, approve=True)
    assert done["changed"] is True
    assert schemas_like(pg, target) == {target, live, backup}


def test_a_readers_view_on_a_segment_schema_stops_the_segment_load(extracted: str, pg: Any) -> None:
    from arm_etl.warehouse.base import WarehouseError
    from flows.segment import segment_etl

    target = "c_dep_segment"
    load_segments(extracted, target)
    part = segment_schema(target, 0)
    cur = pg.cursor()
    cur.execute('CREATE SCHEMA IF NOT EXISTS "bi_reader"')
    cur.execute(f'CREATE VIEW "bi_reader"."seg" AS SELECT * FROM "{part}"."_etl_segment"')
    pg.commit()
    with pytest.raises(WarehouseError, match=r'"bi_reader"."seg" \(reads ' + part + r"\._etl_segment\)"):
        segment_etl(extracted, 0, TOTAL, target_schema=target, phases="load")
    cur.execute('SELECT count(*) FROM "bi_reader"."seg"')
    assert cur.fetchone() == (1,)
    cur.execute('DROP VIEW "bi_reader"."seg"')
    pg.commit()


def test_a_crash_after_the_swap_leaves_segments_a_rerun_drops_without_swapping_again(
    extracted: str, pg: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The swap commits, then the emptied segment schemas are dropped one by one: a crash in between leaves
    them (empty, recorded in production). The re-run drops them and swaps nothing: the backup stays the
    previous production, not a second copy of this one."""
    from flows.centralize import centralize

    target = "c_leftover"
    load_segments(extracted, target)
    centralize(extracted, TOTAL, target_schema=target, approve=True)
    first = snapshot_rows(pg, [target])
    load_segments(extracted, target)
    real_drop = Warehouse.drop_schema

    def crash(self: Warehouse, schema: str) -> None:
        if schema == segment_schema(target, 1):
            raise RuntimeError("host terminated (injected)")
        real_drop(self, schema)

    monkeypatch.setattr(Warehouse, "drop_schema", crash)
    with pytest.raises(RuntimeError, match="injected"):
        centralize(extracted, TOTAL, target_schema=target, approve=True)
    monkeypatch.setattr(Warehouse, "drop_schema", real_drop)
    left = {segment_schema(target, 1), segment_schema(target, 2)}
    assert schemas_like(pg, target) == {target, live_schema(target), backup_schema(target), *left}
    assert not any(snapshot_rows(pg, sorted(left)).values())  # emptied by the merge
    backup = snapshot_rows(pg, [backup_schema(target)])

    again = centralize(extracted, TOTAL, target_schema=target, approve=True)
    assert again["changed"] is False and "nothing to do" in again["message"]
    assert schemas_like(pg, target) == {target, live_schema(target), backup_schema(target)}
    assert snapshot_rows(pg, [backup_schema(target)]) == backup  # no second swap
    assert snapshot_rows(pg, [target]) == first


def test_runs_are_named_for_what_they_do(extracted: str, pg: Any) -> None:
    """Run names from templates, not Prefect's random adjectives: an operator finds a segment's run by name."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName, TaskRunFilter, TaskRunFilterName

    from flows.centralize import centralize

    target = "c_names"
    load_segments(extracted, target)
    centralize(extracted, TOTAL, target_schema=target, approve=True)
    flows = [f"{extracted}-seg{i}of{TOTAL}" for i in range(TOTAL)] + [f"{extracted}-centralize-{TOTAL}"]
    tasks = [f"merge-seg{i}" for i in range(TOTAL)] + [f"finish-load-seg{i}" for i in range(TOTAL)]
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=flows)))
        task_runs = client.read_task_runs(task_run_filter=TaskRunFilter(name=TaskRunFilterName(any_=tasks)))
    assert {r.name for r in runs} == set(flows)
    assert {r.name for r in task_runs} == set(tasks)


def test_a_refused_load_leaves_the_segments_upload_as_it_was(extracted: str, pg: Any) -> None:
    """``--phases load`` for a snapshot that has no completed upload is refused before it touches S3: the
    upload of the segment's own snapshot is still there, and loads."""
    from arm_etl.segment import SegmentError
    from flows.segment import segment_etl

    with pytest.raises(SegmentError, match="needs a completed upload for snapshot 19990101"):
        segment_etl(extracted, 0, TOTAL, target_schema="refused_load", phases="load", snapshot="19990101")
    out = segment_etl(extracted, 0, TOTAL, target_schema="refused_load", phases="load")
    assert out["mode"] == "load" and out["totals"]["chunks_extracted"] == 0
