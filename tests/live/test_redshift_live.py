"""The end-to-end flows against a real Redshift and real S3: the first thing to run on a new cluster.

Opt-in: ``make test-redshift`` with ``ARM_ETL_TEST_REDSHIFT_URL`` (or ``ARM_ETL_TEST_REDSHIFT_BLOCK``),
``ARM_ETL_TEST_IAM_ROLE`` and ``ARM_ETL_TEST_BUCKET`` set; otherwise this module skips with one line.

One run, with names of its own (``arm-live-<id>``): a local moto server holds the DynamoDB table (240
seeded items covering every awkward value class, then the drift items of ``tests/test_segment_exact.py``,
written after determination so they do not fit it); the data-schema is determined (cached in the real
bucket), both segments are extracted to real S3 and loaded by COPY into ``arm_live_<id>_part_<i>``, and
centralization merges them (ALTER TABLE APPEND) into production ``arm_live_<id>``. Each redshift-schema is
read back through psycopg2 and compared, as multisets and value by value, with the independent oracle
(``tests/oracle.py``) over the raw items of each segment; ``_etl_rejects`` is rebuilt from its chunks
byte for byte. Afterwards the run drops the redshift-schemas and deletes the S3 keys it created.

The tests share that one run and run in file order (each later one changes the warehouse on purpose):
centralization is re-run only after production was checked, and the segment re-run comes last.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from tests.live import aws_env
from tests.live.compare import (
    check_production_rejects,
    check_production_rows,
    check_segment,
    counts,
    existing_schemas,
)
from tests.live.config import TOTAL, LiveStack, skip_reason

# The whole module skips, with one line naming what to set, unless the live variables are set (and the AWS
# credentials were read before tests/conftest.py replaced them). The imports above are light and every heavy
# one is inside a fixture or test: ``make test`` collects this module on every run.
_REASON = skip_reason(os.environ, aws_env.LOADED_EARLY)
if _REASON:
    pytest.skip(_REASON, allow_module_level=True)

pytestmark = pytest.mark.timeout(3600)  # cluster queues and COPYs: more than the suite default

ITEMS = 240  # three times seed.LONG_PERIOD: every awkward class, values over and exactly at 65535 bytes
SEED = 29
SNAPSHOT = "live"  # fixed: the re-run after centralization must find the same snapshot
# Several chunks per segment, so several CSV parts per table go through one COPY manifest.
RUN: dict[str, Any] = {"snapshot": SNAPSHOT, "page_limit": 40, "pages_per_chunk": 1}


@dataclass
class World:
    stack: LiveStack
    table: str
    target: str
    written: int  # items written to the source
    schema: Any  # DataSchema
    by_segment: list[list[dict[str, Any]]]  # raw parallel scan of each segment (the oracle's input)
    stores: list[Any]  # PartStore per segment
    runs: list[dict[str, Any]]  # segment_etl summaries
    segment_problems: list[str]  # every segment against the oracle, read before centralization
    centralized: dict[str, Any]

    def production_rows(self) -> list[str]:
        s = self.stack
        return check_production_rows(s.conn, s.dialect, self.schema, self.stores, self.target, self.by_segment)

    def production_rejects(self) -> list[str]:
        s = self.stack
        return check_production_rejects(s.conn, s.dialect, self.schema, self.stores, self.target, self.by_segment)

    def segment(self, i: int) -> list[str]:
        s = self.stack
        return check_segment(
            s.conn, s.dialect, self.schema, self.stores[i], self.target, i, self.by_segment[i], SNAPSHOT
        )


@pytest.fixture(scope="module")
def world(live: LiveStack) -> World:
    """Seed → determination → both segments → (every segment read back) → centralization, approved up front."""
    from arm_etl.cache import SchemaCache
    from arm_etl.seed import seed_table
    from arm_etl.upload import PartStore
    from flows.centralize import centralize
    from flows.schema import determine_schema
    from flows.segment import segment_etl
    from tests.test_segment_exact import DRIFT_ITEMS, scan_segment

    table, target = live.names.table, live.names.target
    ddb = live.dynamodb()
    assert ddb.meta.endpoint_url == live.dynamodb_endpoint, "DynamoDB must be the local moto server"
    assert seed_table(ddb, table, ITEMS, seed=SEED) == ITEMS
    determine_schema(table, total=TOTAL, routing=["sk:#"], page_limit=40, **live.flow_kwargs(data=False))
    for item in DRIFT_ITEMS:
        ddb.put_item(TableName=table, Item=item)
    runs = [segment_etl(table, i, TOTAL, target_schema=target, **RUN, **live.flow_kwargs()) for i in range(TOTAL)]

    s3 = live.s3()
    schema = SchemaCache(s3, live.config.bucket, table).require()
    by_segment = [scan_segment(live.dynamodb(), table, i, TOTAL) for i in range(TOTAL)]
    stores = [PartStore(s3, live.config.bucket, table, i) for i in range(TOTAL)]
    world = World(live, table, target, ITEMS + len(DRIFT_ITEMS), schema, by_segment, stores, runs, [], {})
    world.segment_problems = [p for i in range(TOTAL) for p in world.segment(i)]
    world.centralized = centralize(table, TOTAL, target_schema=target, approve=True, **live.flow_kwargs())
    return world


# ------------------------------------------------------------------------------------------- tests


def test_each_segment_loads_exactly(world: World) -> None:
    """On a real cluster, COPY from real S3 (gzip CSV parts through a manifest, IAM role) loads every segment
    exactly: every row and value of every table, NULL and '' apart, 65535-byte strings, binary, timestamps
    and decimals as the source had them; counts equal the manifest; no staging schema or orphan part left."""
    assert sum(len(items) for items in world.by_segment) == world.written
    assert all(run["mode"] == "fresh" and run["totals"]["chunks"] > 1 for run in world.runs)
    assert not world.segment_problems, "\n".join(world.segment_problems)


def test_production_equals_the_source(world: World) -> None:
    """On a real cluster, centralization (ALTER TABLE APPEND, atomic swap) makes production hold exactly what
    the DynamoDB table holds, row for row and value by value, and leaves no loading or segment schema."""
    assert world.centralized["changed"] is True
    problems = world.production_rows()
    assert not problems, "\n".join(problems)
    leftovers = existing_schemas(world.stack.conn, world.stack.names.schemas(TOTAL))
    assert leftovers == {world.target}


def test_rejects_equal_the_oracle(world: World) -> None:
    """On a real cluster nothing is lost silently: every value that does not fit its column (too long, NUL,
    type drift, a route new since determination) is in production's ``_etl_rejects``, its chunks rebuilding
    the DynamoDB JSON byte for byte, and nothing else is."""
    reasons = Counter(r.reason for i in range(TOTAL) for r in oracle_rejects(world, i))
    assert reasons["too_long"] and reasons["nul"] and reasons["type_drift"] and reasons["new_table"], reasons
    problems = world.production_rejects()
    assert not problems, "\n".join(problems)


def test_centralization_again_changes_nothing(world: World) -> None:
    """On a real cluster, re-running centralization when every segment is merged changes nothing and says so:
    production keeps the same rows, and no backup, loading or segment schema appears."""
    from flows.centralize import centralize

    live = world.stack
    before = counts(live.conn, world.target)
    again = centralize(world.table, TOTAL, target_schema=world.target, approve=True, **live.flow_kwargs())
    assert again["changed"] is False
    assert "nothing to do" in again["message"]
    assert counts(live.conn, world.target) == before
    assert existing_schemas(live.conn, live.names.schemas(TOTAL)) == {world.target}
    problems = world.production_rows()
    assert not problems, "\n".join(problems)


def test_segment_rerun_after_centralization_rebuilds_from_s3(world: World) -> None:
    """On a real cluster, a segment re-run after centralization rebuilds ``T_part_1`` from its completed
    manifest in S3 without scanning DynamoDB again (its items are deleted from the source first, so a scan
    would load nothing), and production is untouched."""
    from flows.segment import segment_etl

    live, i = world.stack, 1
    ddb = live.dynamodb()
    for item in world.by_segment[i]:
        ddb.delete_item(TableName=world.table, Key={"pk": item["pk"], "sk": item["sk"]})
    production = counts(live.conn, world.target)

    again = segment_etl(world.table, i, TOTAL, target_schema=world.target, **RUN, **live.flow_kwargs())
    assert again["mode"] == "load"
    assert again["totals"]["chunks_extracted"] == 0
    assert again["totals"]["items"] == len(world.by_segment[i])
    problems = world.segment(i)
    assert not problems, "\n".join(problems)
    assert counts(live.conn, world.target) == production


def oracle_rejects(world: World, i: int) -> list[Any]:
    from datetime import datetime

    from tests import oracle

    manifest = world.stores[i].read_manifest()
    assert manifest is not None
    return oracle.expected(world.schema, world.by_segment[i], i, datetime.fromisoformat(manifest.extracted_at)).rejects
