"""Two weeks of arm-etl as its users run it: only deployment runs, on a real server and process worker.

Every run is started through the deployments ``prefect deploy --all`` registered from the repository, with
a scheduled start in the past that the test controls, as the schedules would have started them (the
segment's snapshot is the UTC date of its scheduled start). Week 1: a routed table, the determination,
every segment, a centralization that suspends until it is resumed with input through the API; production
equals the oracle. Week 2 the source changes; segments before the next determination put the values the
old data-schema cannot hold in ``_etl_rejects``; the determination with its deployment's defaults keeps
the routing; segments; centralization: production equals week 2's source and ``T_backup`` week 1's.

Then a segment run killed mid-scan and retried from the UI a UTC day after its scheduled start resumes:
no part scanned twice, none deleted.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from arm_etl.cache import SchemaCache
from arm_etl.config import backup_schema, target_schema
from arm_etl.routing import RoutingRule
from arm_etl.seed import seed_table
from arm_etl.upload import PartStore
from tests.exactness import check_production, check_segment
from tests.prefect_server import Deployed
from tests.test_centralize import snapshot_rows
from tests.test_segment_exact import scan_segment

TOTAL = 2
ROUTING = ["sk:#"]
ROUTED = [RoutingRule("sk", "#")]
pytestmark = pytest.mark.slow


def at(days_ago: int) -> datetime:
    """03:00 UTC ``days_ago`` days before the last 03:00 UTC: when the workday schedules would have started
    the run. Always in the past, so the worker takes it at once (between 00:00 and 03:00 UTC, today's 03:00
    is still ahead, and a run scheduled then would wait for it)."""
    now = datetime.now(UTC)
    last = now.replace(hour=3, minute=0, second=0, microsecond=0)
    if last > now:
        last -= timedelta(days=1)
    return last - timedelta(days=days_ago)


def snapshot(when: datetime) -> str:
    return when.strftime("%Y%m%d")


class Operator:
    """Starts deployment runs and waits on them through the API, as the UI and the schedules do."""

    def __init__(self, deployed: Deployed, table: str) -> None:
        self.deployed = deployed
        self.table = table

    def start(self, deployment: str, when: datetime, **parameters: Any) -> Any:
        from prefect.deployments import run_deployment

        with self.deployed.settings():
            return run_deployment(
                name=deployment,
                parameters={"table": self.table, "total": TOTAL, **parameters},
                scheduled_time=when,
                timeout=0,
            )

    def wait(self, run: Any, until: str = "final", deadline_s: float = 240) -> Any:
        from prefect.client.orchestration import get_client

        end = time.monotonic() + deadline_s
        with self.deployed.settings(), get_client(sync_client=True) as client:
            while True:
                run = client.read_flow_run(run.id)
                state = run.state
                if state is not None and (state.is_final() if until == "final" else state.name == until):
                    return run
                assert time.monotonic() < end, f"{run.name}: {state} after {deadline_s}s\n{self.deployed.worker_tail()}"
                time.sleep(0.5)

    def completed(self, *runs: Any) -> list[Any]:
        done = [self.wait(r) for r in runs]
        for r in done:
            assert r.state.is_completed(), f"{r.name}: {r.state}\n{self.deployed.worker_tail()}"
        return done

    def segments(self, when: datetime) -> list[Any]:
        """Every segment's scheduled run of that day, running at once on the worker."""
        return self.completed(*(self.start("segment-etl/segment-etl", when, segment=i) for i in range(TOTAL)))

    def resume(self, run: Any, **run_input: Any) -> None:
        from prefect.client.orchestration import get_client

        with self.deployed.settings(), get_client(sync_client=True) as client:
            client.resume_flow_run(run.id, run_input=run_input)


class Source:
    def __init__(self, endpoint: str, table: str, data_bucket: str, cache_bucket: str) -> None:
        self.ddb = boto3.client("dynamodb", endpoint_url=endpoint)
        self.s3 = boto3.client("s3", endpoint_url=endpoint)
        self.table = table
        self.stores = [PartStore(self.s3, data_bucket, table, i) for i in range(TOTAL)]
        self.cache = SchemaCache(self.s3, cache_bucket, table)

    def items(self) -> list[list[dict[str, Any]]]:
        raw = boto3.client("dynamodb", endpoint_url=self.ddb.meta.endpoint_url)
        return [scan_segment(raw, self.table, i, TOTAL) for i in range(TOTAL)]

    def by_prefix(self, prefix: str) -> list[dict[str, Any]]:
        items = self.ddb.scan(TableName=self.table)["Items"]
        return sorted((i for i in items if i["sk"]["S"].startswith(prefix)), key=lambda i: i["sk"]["S"])

    def change_for_week_2(self) -> None:
        """A new attribute, a type drift, a new entity type by key prefix, deleted items, updated values."""
        fins = self.by_prefix("FIN#")
        for item in fins[:3]:
            self.ddb.put_item(TableName=self.table, Item={**item, "triage_note": {"S": f"seen {item['sk']['S']}"}})
        self.ddb.put_item(TableName=self.table, Item={**fins[3], "amount": {"S": "n/a"}})  # number → string
        for k in range(3):
            ticket = {"pk": {"S": "ORG#1"}, "sk": {"S": f"TICKET#{k}"}, "kind": {"S": "ticket"}}
            self.ddb.put_item(TableName=self.table, Item={**ticket, "opened": {"N": str(20 + k)}})
        for item in self.by_prefix("VULN#")[:2]:
            self.ddb.delete_item(TableName=self.table, Key={"pk": item["pk"], "sk": item["sk"]})
        org = self.by_prefix("ORG#")[0]
        self.ddb.put_item(TableName=self.table, Item={**org, "name": {"S": "Renamed Org Inc."}})


def test_two_weeks_of_scheduled_runs(deployed: Deployed, stack: Any, pg: Any, table_name: str) -> None:
    env = stack.env()
    src = Source(stack.endpoint, table_name, env["ARM_ETL_DATA_BUCKET"], env["ARM_ETL_CACHE_BUCKET"])
    seed_table(src.ddb, table_name, 120, seed=21)
    op = Operator(deployed, table_name)
    target = target_schema(table_name)

    # ---- week 1: routed determination, every segment, a centralization resumed with the operator's input
    op.completed(op.start("data-schema-determination/data-schema-determination", at(8), routing=ROUTING))
    week1_schema = src.cache.require()
    assert list(week1_schema.routing) == ROUTED
    op.segments(at(7))
    waiting = op.wait(op.start("centralization/centralization", at(7)), until="Suspended")
    assert target not in schemas(pg), "nothing swapped while the approval waits"
    op.resume(waiting, approve=True, comment="week 1")
    op.completed(waiting)
    week1_items = src.items()
    assert check_production(pg, week1_schema, src.stores, target, week1_items) == []
    week1_rows = snapshot_rows(pg, [target])

    # ---- week 2: the source changes; segments still on week 1's data-schema reject what it cannot hold
    src.change_for_week_2()
    op.segments(at(2))
    week2_items = src.items()
    rejects = [src.stores[i].read_manifest().rejects() for i in range(TOTAL)]  # type: ignore[union-attr]
    week1_rejects = sum(week1_rows["_etl_rejects"].values()) if "_etl_rejects" in week1_rows else 0
    assert sum(sum(r.values()) for r in rejects) > week1_rejects, rejects
    for i in range(TOTAL):  # every reject counted, value by value, against the oracle of the old data-schema
        assert check_segment(pg, week1_schema, src.stores[i], target, i, week2_items[i], snapshot(at(2))) == []

    # the weekly determination with its deployment's defaults: no routing given, the cached one kept
    op.completed(op.start("data-schema-determination/data-schema-determination", at(1)))
    week2_schema = src.cache.require()
    assert week2_schema.version != week1_schema.version and list(week2_schema.routing) == ROUTED
    names = {t.name for t in week2_schema.tables}
    assert "ticket" in names, names  # the new entity type became its own table, by its key prefix
    op.segments(at(0))
    op.completed(op.start("centralization/centralization", at(0), approve=True))
    assert check_production(pg, week2_schema, src.stores, target, week2_items) == []
    assert snapshot_rows(pg, [backup_schema(target)]) == week1_rows


def schemas(pg: Any) -> set[str]:
    with pg.cursor() as cur:
        cur.execute("select nspname from pg_namespace")
        return {r[0] for r in cur.fetchall()}


def flow_run_pids(run_id: Any) -> list[int]:
    """The processes running flow run ``run_id`` (the worker passes its id in their environment)."""
    marker = f"PREFECT__FLOW_RUN_ID={run_id}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if marker in (proc / "environ").read_bytes().split(b"\0"):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def test_a_killed_segment_retried_after_midnight_resumes(
    deployed: Deployed, stack: Any, pg: Any, table_name: str
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.states import AwaitingRetry

    env = stack.env()
    src = Source(stack.endpoint, table_name, env["ARM_ETL_DATA_BUCKET"], env["ARM_ETL_CACHE_BUCKET"])
    seed_table(src.ddb, table_name, 160, seed=5)
    op = Operator(deployed, table_name)
    op.completed(op.start("data-schema-determination/data-schema-determination", at(1), routing=ROUTING))
    store = src.stores[0]
    # yesterday's 03:00 run, scanning slowly (one 2-item page per chunk) so it can be killed in the middle
    run = op.start("segment-etl/segment-etl", at(1), segment=0, page_limit=2, pages_per_chunk=1)
    deadline = time.monotonic() + 180
    while (m := store.read_manifest()) is None or m.snapshot != snapshot(at(1)) or len(m.chunks) < 4:
        assert time.monotonic() < deadline, deployed.worker_tail()
        time.sleep(0.2)
    pids = flow_run_pids(run.id)
    assert pids, "the flow run's processes"
    for pid in pids:  # the host dies: the flow run's process and the worker's process for it
        os.kill(pid, signal.SIGKILL)
    crashed = op.wait(run)
    assert crashed.state.type.value == "CRASHED", crashed.state
    while flow_run_pids(run.id):
        assert time.monotonic() < deadline, deployed.worker_tail()
        time.sleep(0.2)
    time.sleep(3)  # the worker reports the crash of its child once more, a moment later: retry after that
    before = store.read_manifest()
    assert before is not None and not before.complete
    parts = {o["Key"]: o["ETag"] for o in list_objects(src.s3, env["ARM_ETL_DATA_BUCKET"], store)}

    # today, a UTC date after its scheduled start, the operator presses Retry
    with deployed.settings(), get_client(sync_client=True) as client:
        client.set_flow_run_state(run.id, AwaitingRetry(scheduled_time=datetime.now(UTC)), force=True)
    (done,) = op.completed(run)
    after = store.read_manifest()
    assert after is not None and after.complete and after.snapshot == snapshot(at(1))
    assert after.chunks[: len(before.chunks)] == before.chunks, "the committed chunks are the same"
    now = {o["Key"]: o["ETag"] for o in list_objects(src.s3, env["ARM_ETL_DATA_BUCKET"], store)}
    kept = {p.key for p in before.parts()}
    assert {k: now.get(k) for k in kept} == {k: parts[k] for k in kept}, "no part deleted or rewritten"
    items = src.items()[0]
    assert check_segment(pg, src.cache.require(), store, target_schema(table_name), 0, items, after.snapshot) == []
    assert done.run_count >= 2


def list_objects(s3: Any, bucket: str, store: PartStore) -> list[dict[str, Any]]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=store.prefix)
    return [o for page in pages for o in page.get("Contents", [])]
