"""Stuck queries: every warehouse statement has a statement timeout; a timeout names the blocking sessions.

The old runbook asked a human to look up ``pg_locks`` when a load hung. Here another session holds a lock
(``BEGIN; LOCK TABLE …`` — an open transaction of an analyst, say), each kind of statement arm-etl runs
against that table or schema times out quickly, and the error must say it timed out and name the
blocking session's pid, its lock and the table, so the operator can end it and re-run.
"""

from __future__ import annotations

import gzip
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import psycopg2
import pytest

from arm_etl.config import segment_schema
from arm_etl.seed import seed_table
from arm_etl.warehouse import PartLoad, PostgresWarehouse, Warehouse, WarehouseError
from arm_etl.warehouse.bookkeeping import MERGED_TABLE, SEGMENT_MARKER
from tests.exactness import ensure_buckets, schema_exists, table_counts

TIMEOUT_MS = 400


class Holder:
    """Another session holding a lock in an open transaction."""

    def __init__(self, url: str, sql: str):
        self.conn = psycopg2.connect(url)
        with self.conn.cursor() as cur:
            cur.execute(sql)
            cur.execute("SELECT pg_backend_pid()")
            self.pid = cur.fetchone()[0]

    def release(self) -> None:
        if not self.conn.closed:
            self.conn.rollback()
            self.conn.close()


@pytest.fixture()
def hold(stack: Any) -> Iterator[Callable[[str], Holder]]:
    holders: list[Holder] = []

    def start(sql: str) -> Holder:
        h = Holder(stack.warehouse_url, sql)
        holders.append(h)
        return h

    yield start
    for h in holders:
        h.release()


def make_schema(pg: Any, schema: str, tables: dict[str, str]) -> None:
    with pg.cursor() as cur:
        cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        cur.execute(f'CREATE SCHEMA "{schema}"')
        for name, cols in tables.items():
            cur.execute(f'CREATE TABLE "{schema}"."{name}" ({cols})')


def gz(text: str) -> bytes:
    return gzip.compress(text.encode())


STUCK_PART = "s3://bucket/stuck/000000000.csv.gz"


OPERATIONS: dict[str, tuple[str, Callable[[Warehouse, str], Any]]] = {
    # name → (locked table, the statement arm-etl runs against it)
    "counts": ("t", lambda wh, s: wh.counts(s, ["t"])),
    "recreate_schema": ("t", lambda wh, s: wh.recreate_schema(s, [("t", [("a", "INTEGER")])])),
    "drop_schema": ("t", lambda wh, s: wh.drop_schema(s)),
    "replace_schema": ("t", lambda wh, s: wh.replace_schema(s + "_new", s)),
    "copy_part": (
        "t",
        lambda wh, s: list(wh.load_parts(s, [PartLoad("k", "t", ["a"], 2, STUCK_PART, gz("1\n2\n"), True)])),
    ),
    "centralize_read_marker": (SEGMENT_MARKER, lambda wh, s: wh.read_marker(s)),
    "centralize_read_progress": (MERGED_TABLE, lambda wh, s: wh.read_merged(s)),
}


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_a_blocked_statement_times_out_naming_the_blocker(
    operation: str, stack: Any, pg: Any, hold: Callable[[str], Holder]
) -> None:
    table, run = OPERATIONS[operation]
    schema = f"stuck_{operation}"
    make_schema(pg, schema, {"t": "a INTEGER", SEGMENT_MARKER: "a INTEGER", MERGED_TABLE: "a INTEGER"})
    make_schema(pg, schema + "_new", {"t": "a INTEGER"})
    holder = hold(f'BEGIN; LOCK TABLE "{schema}"."{table}" IN ACCESS EXCLUSIVE MODE')
    wh = PostgresWarehouse(stack.warehouse_url, statement_timeout_ms=TIMEOUT_MS)
    t0 = time.monotonic()
    with pytest.raises(WarehouseError) as err:
        run(wh, schema)
    elapsed = time.monotonic() - t0
    msg = str(err.value)
    assert "timed out" in msg, msg
    assert re.search(rf"(^|\D){holder.pid}(\D|$)", msg), f"blocker pid {holder.pid} not named:\n{msg}"
    assert "AccessExclusiveLock" in msg and f"{schema}.{table}" in msg.replace('"', ""), msg
    assert elapsed < 30, elapsed
    holder.release()
    assert schema_exists(pg, schema)  # nothing half-done: the statement's transaction rolled back
    assert table_counts(pg, schema)["t"] == 0


def test_every_connection_gets_the_statement_timeout(stack: Any) -> None:
    set_and_default = [
        (PostgresWarehouse(stack.warehouse_url, statement_timeout_ms=4321), "4321ms"),
        (PostgresWarehouse(stack.warehouse_url), "1h"),  # the default is one hour, never "no limit"
    ]
    for wh, shown in set_and_default:
        with wh.connection() as conn, conn.cursor() as cur:
            cur.execute("SHOW statement_timeout")
            assert cur.fetchone()[0] == shown


@pytest.fixture(scope="module")
def stuck_table(stack: Any, prefect_api: str) -> str:
    from flows.schema import determine_schema

    ensure_buckets(stack)
    table = "stuck-src"
    seed_table(boto3.client("dynamodb", endpoint_url=stack.endpoint), table, 20, seed=29)
    determine_schema(table, total=1, routing=["sk:#"])
    return table


@pytest.fixture(scope="module")
def timeout_block(stack: Any, prefect_api: str) -> str:
    from blocks import RedshiftCredentials

    block = RedshiftCredentials.from_url(stack.warehouse_url)
    block.statement_timeout_ms = 1000
    block.save("stuck-queries-pg", overwrite=True)
    return "stuck-queries-pg"


def test_flows_open_every_connection_with_the_configured_timeout(
    stuck_table: str, timeout_block: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A segment run and a centralization: every connection they open to the warehouse is opened by
    ``Warehouse.connect`` and has the block's statement timeout before its first statement."""
    from flows.centralize import centralize
    from flows.segment import segment_etl

    raw_connects: list[Any] = []
    checked: list[str] = []
    real_connect = psycopg2.connect
    real_wh_connect = Warehouse.connect

    def spy_connect(*args: Any, **kwargs: Any) -> Any:
        conn = real_connect(*args, **kwargs)
        raw_connects.append(conn)
        return conn

    def wh_connect(self: Warehouse) -> Any:
        conn = real_wh_connect(self)
        with conn.cursor() as cur:
            cur.execute("SHOW statement_timeout")
            checked.append(cur.fetchone()[0])
        conn.rollback()
        return conn

    monkeypatch.setattr(psycopg2, "connect", spy_connect)
    monkeypatch.setattr(Warehouse, "connect", wh_connect)
    segment_etl(stuck_table, 0, 1, target_schema="stuck_t", snapshot="t", redshift_block=timeout_block)
    centralize(stuck_table, 1, target_schema="stuck_t", approve=True, redshift_block=timeout_block)
    assert len(checked) > 10
    assert set(checked) == {"1s"}
    assert len(raw_connects) == len(checked)  # no connection bypasses Warehouse.connect


@pytest.mark.slow
def test_a_segment_swap_blocked_by_a_reader_fails_naming_it_then_succeeds(
    stuck_table: str, timeout_block: str, stack: Any, pg: Any, hold: Callable[[str], Holder]
) -> None:
    """A reader's open transaction on the segment schema blocks the swap (DROP SCHEMA needs an exclusive
    lock): the run fails after the timeout (and the finish task's one retry) with the reader's pid in the
    error, the segment schema is intact; once the reader is gone, the same command succeeds."""
    from flows.segment import segment_etl

    target = "stuck_swap"
    first = segment_etl(stuck_table, 0, 1, target_schema=target, snapshot="swap", redshift_block=timeout_block)
    part = segment_schema(target, 0)
    before = table_counts(pg, part)
    table = next(t["table"] for t in first["tables"] if t["rows"])
    reader = hold(f'BEGIN; SELECT count(*) FROM "{part}"."{table}"')
    with pytest.raises(WarehouseError) as err:
        segment_etl(stuck_table, 0, 1, target_schema=target, snapshot="swap", redshift_block=timeout_block)
    msg = str(err.value)
    assert "timed out" in msg and str(reader.pid) in msg and "AccessShareLock" in msg, msg
    assert table_counts(pg, part) == before
    reader.release()
    again = segment_etl(stuck_table, 0, 1, target_schema=target, snapshot="swap", redshift_block=timeout_block)
    assert again["mode"] == "load"
    assert table_counts(pg, part) == before
