"""End to end through Prefect on moto server + embedded PostgreSQL: every row and every value, exactly.

A seeded table (150 items covering every awkward value class) gets a data-schema (3 segments, routed by
the prefix of ``sk``); then a few items that drift from that data-schema are written (wrong kinds, strings
over their VARCHAR(n) in bytes, numbers beyond their column, attributes and routes it never saw), and each
of the 3 segments is loaded into ``<target>_part_<i>``. Every table of each segment is compared, as a
multiset and value by value, with what the independent reference model in ``tests/oracle.py`` computes
from the data-schema and the raw source items of that segment; so is ``_etl_rejects``, reassembled from
its chunks byte for byte. Re-running a segment, from its completed upload and then fresh, leaves every
count (and every value) unchanged.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import boto3
import orjson
import pytest
from psycopg2 import sql

from arm_etl.cache import SchemaCache
from arm_etl.config import DEFAULT_CACHE_BUCKET, DEFAULT_DATA_BUCKET, segment_schema, target_schema
from arm_etl.dataschema import REJECTS_TABLE, Column, DataSchema, Table
from arm_etl.extract import RAW_ITEMS, install_raw_scan
from arm_etl.routing import RoutingRule
from arm_etl.seed import generate_items, seed_table
from tests import oracle

TABLE = "arm-exact-e2e"  # module-scoped (the conftest's table_name fixture is per test)
ITEMS = 150
SEED = 3
TOTAL = 3
SNAPSHOT = "exact-e2e"  # fixed, so a re-run around midnight UTC still finds the same snapshot
RUN = {"page_limit": 10, "pages_per_chunk": 2, "snapshot": SNAPSHOT}
REJECT_CHUNK_BYTES = 65535
CONTRACT_REASONS = {"too_long", "nul", "type_drift"}  # named by DESIGN.md; other reasons are left open

# Written after the data-schema was determined, so they drift from it (types below: see
# test_schema_has_what_the_comparison_exercises). Routed by sk: FIN# → fin; no '#' → the source table's own
# data-schema, which does not exist; NEWKIND# → a route never seen.
DRIFT_ITEMS: list[dict[str, Any]] = [
    {
        "pk": {"S": "DRIFT#1"},
        "sk": {"S": "FIN#drift-1"},
        "kind": {"S": "finding"},
        "counter": {"S": "not a number"},  # BIGINT ← S
        "title": {"S": "é" * 40},  # 40 characters, 80 bytes > VARCHAR(64)
        "amount": {"N": "1.1234567890123456789"},  # scale 19 > DECIMAL(38,18)
        "where": {"M": {"line": {"N": "99999999999999999999"}, "path": {"S": "src/x.py"}, "column": {"N": "3"}}},
        "created_at": {"S": "yesterday"},  # TIMESTAMPTZ ← not RFC 3339
        "report_date": {"S": "2024-02-30"},  # DATE ← no such day
        "deleted": {"S": "false"},  # BOOLEAN ← S
        "blob": {"S": "x"},  # VARBYTE ← S
        "nul_blob": {"B": b"\x00" * 20},  # 20 bytes > VARBYTE(16)
        "labels": {"SS": ["ok", "bad\x00"]},  # NUL in a set element (rank 0)
        "cves": {"L": [{"M": {"id": {"S": "CVE-1"}, "score": {"S": "high"}, "refs": {"L": [{"S": "r\x00"}]}}}]},
        "matrix": {"S": "flat"},  # scalar where a list is expected
        "status": {"M": {"x": {"S": "y"}}},  # map where a scalar is expected
        "brand_new": {"S": "x"},  # attribute the data-schema never saw
        "newlist": {"L": [{"S": "a"}]},
        "newmap": {"M": {}},  # empty: no columns, nothing lost
        "newempty": {"L": []},  # empty: no rows, nothing lost
    },
    {
        "pk": {"S": "DRIFT#2"},
        "sk": {"S": "FIN#drift-2"},
        "title": {"S": "𝄞" * 16},  # exactly 64 bytes: fits VARCHAR(64)
        "counter": {"N": "-9223372036854775808"},
        "amount": {"N": "-0.000000000000000001"},
        "report_date": {"S": "2024-02-29"},
        "created_at": {"S": "2024-02-29T23:59:59.999999-12:00"},
        "labels": {"SS": ["\\N", "", "NULL"]},
    },
    {
        "pk": {"S": "DRIFT#5"},
        "sk": {"S": "FIN#drift-5"},
        "counter": {"N": "1E+3"},  # BIGINT 1000
        "amount": {"N": "1.5E+1"},  # DECIMAL 15
        "severity": {"BOOL": True},  # conflict VARCHAR: 'true'
        "notes": {"S": 'q"b\\s\r\n\x00,'},  # NUL: the reject's chunk holds quotes, backslash, CRLF, comma
        "where": {"M": {'wé"ird\\': {"S": "v"}, "line": {"N": "-0"}}},  # new path with an odd key; BIGINT 0
        "report_date": {"S": "2024-01-01T00:00:00Z"},  # DATE ← date-time
        "cves": {
            "L": [{"M": {"score": {"N": "9.75"}}}, {"M": {"score": {"N": "10"}}}, {"M": {"score": {"N": "-9.9"}}}]
        },
        "scores": {"NS": ["1E+2", "-0.001", "5"]},  # ranked -0.001, 5, 100
        "checksums": {"BS": [b"\xff\xff", b"\x00\x00", b"\x01"]},  # ranked by bytes
    },
    {"pk": {"S": "DRIFT#3"}, "sk": {"S": "nohash"}, "kind": {"S": "stray"}},
    {"pk": {"S": "DRIFT#4"}, "sk": {"S": "NEWKIND#1"}, "n": {"N": "1"}},
]


# ------------------------------------------------------------------------------------------- helpers


def item_key(item: dict[str, Any]) -> tuple[str, str]:
    return (item["pk"]["S"], item["sk"]["S"])


def scan_segment(client: Any, table: str, segment: int, total: int) -> list[dict[str, Any]]:
    """Raw wire-form items of one parallel-scan segment (numbers as exact text, binary as base64)."""
    install_raw_scan(client)
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "Segment": segment, "TotalSegments": total}
    while True:
        resp = client.scan(**kwargs)
        items.extend(resp[RAW_ITEMS])
        if not resp.get("LastEvaluatedKey"):
            return items
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def wire(av: Any) -> Any:
    """Source items in the wire form a raw scan returns (binary as base64; sets compared unordered)."""
    if isinstance(av, bytes):
        return base64.b64encode(av).decode("ascii")
    if isinstance(av, dict):
        return {k: (sorted(wire(x) for x in v) if k in ("SS", "NS", "BS") else wire(v)) for k, v in av.items()}
    if isinstance(av, list):
        return [wire(x) for x in av]
    return av


def fetch(pg: Any, schema: str, table: str) -> list[dict[str, Any]]:
    with pg.cursor() as cur:
        cur.execute(sql.SQL("SELECT * FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table)))
        names = [d.name for d in cur.description]
        return [
            {n: bytes(v) if isinstance(v, memoryview) else v for n, v in zip(names, r, strict=True)}
            for r in cur.fetchall()
        ]


def counts(pg: Any, schema: str) -> dict[str, int]:
    """Row count of every table of a redshift-schema."""
    with pg.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", (schema,))
        out = {}
        for (name,) in cur.fetchall():
            cur.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(name)))
            out[name] = cur.fetchone()[0]
        return out


def norm(v: Any) -> tuple[str, Any]:
    """A type-strict, hashable form of a cell: timestamps as UTC instants, JSON canonical."""
    if v is None:
        return ("null", None)
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, int):
        return ("int", v)
    if isinstance(v, Decimal):
        return ("decimal", v)
    if isinstance(v, datetime):
        assert v.tzinfo is not None, f"naive datetime {v!r}"
        return ("instant", v.astimezone(UTC))
    if isinstance(v, date):
        return ("date", v)
    if isinstance(v, (bytes, bytearray)):
        return ("bytes", bytes(v))
    if isinstance(v, str):
        return ("str", v)
    if isinstance(v, (dict, list, float)):
        return ("json", oracle.canonical_json(json.loads(json.dumps(v, default=str), parse_float=Decimal)))
    raise AssertionError(f"unexpected cell type {type(v)}: {v!r}")


def short(v: Any, n: int = 100) -> str:
    r = repr(v)
    return r if len(r) <= n else f"{r[:n]}…({len(r)} chars)"


def compare_rows(
    table: str, key_cols: list[str], expected: list[dict[str, Any]], actual: list[dict[str, Any]]
) -> list[str]:
    """Multiset comparison of rows; on a difference, pair rows by key + positions and name the cells."""
    exp_cols = set().union(*(r.keys() for r in expected)) if expected else set()
    act_cols = set().union(*(r.keys() for r in actual)) if actual else set()
    if expected and actual and exp_cols != act_cols:
        return [f"{table}: columns differ: missing {sorted(exp_cols - act_cols)}, extra {sorted(act_cols - exp_cols)}"]
    e = Counter(tuple(sorted((k, norm(v)) for k, v in r.items())) for r in expected)
    a = Counter(tuple(sorted((k, norm(v)) for k, v in r.items())) for r in actual)
    if e == a:
        return []
    missing, extra = e - a, a - e
    problems = [
        f"{table}: {len(expected)} rows expected, {len(actual)} loaded; "
        f"{sum(missing.values())} expected rows not loaded, {sum(extra.values())} loaded rows not expected"
    ]
    pending: dict[tuple[Any, ...], tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
    for side, rows in ((0, missing), (1, extra)):
        for r in rows.elements():
            d = dict(r)
            rid = tuple(d.get(c, ("null", None))[1] for c in key_cols)
            pending.setdefault(rid, ([], []))[side].append(d)
    for n, rid in enumerate(sorted(pending, key=repr)):
        if n == 8:
            problems.append("  …")
            break
        es, as_ = pending[rid]
        if len(es) == 1 and len(as_) == 1:
            diffs = [
                f"{c}: expected {short(es[0][c][1])}, loaded {short(as_[0][c][1])}"
                for c in sorted(es[0])
                if es[0][c] != as_[0].get(c)
            ]
            problems.append(f"  row {list(rid)}: " + "; ".join(diffs))
        else:
            problems.append(f"  row {list(rid)}: {len(es)} expected vs {len(as_)} loaded, unmatched")
    return problems


def compare_rejects(
    expected: list[oracle.Reject], actual: list[dict[str, Any]], segment: int, at: datetime
) -> list[str]:
    """Group loaded chunks by (table, item key, path); each group must rebuild the expected JSON exactly."""
    problems: list[str] = []
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in actual:
        ident = (
            r["table_name"],
            oracle.canonical_json(json.loads(r["item_key"])),
            oracle.canonical_json(json.loads(r["column_path"])),
        )
        groups.setdefault(ident, []).append(r)
    want = {x.ident: x for x in expected}
    assert len(want) == len(expected), "oracle: two rejects share (table, item_key, column_path)"
    for ident in sorted(want.keys() - groups.keys()):
        problems.append(f"reject missing: {ident} ({want[ident].reason})")
    for ident in sorted(groups.keys() - want.keys()):
        problems.append(f"reject not expected: {ident} ({sorted({r['reason'] for r in groups[ident]})})")
    for ident in sorted(want.keys() & groups.keys()):
        x, rows = want[ident], sorted(groups[ident], key=lambda r: r["chunk_no"])
        reasons = {r["reason"] for r in rows}
        if [r["chunk_no"] for r in rows] != list(range(len(rows))):
            problems.append(f"{ident}: chunk_no {[r['chunk_no'] for r in rows]} is not 0..{len(rows) - 1}")
        if x.reason in CONTRACT_REASONS and reasons != {x.reason}:
            problems.append(f"{ident}: reason {sorted(reasons)}, expected {x.reason!r}")
        if x.reason not in CONTRACT_REASONS and (len(reasons) != 1 or not all(reasons)):
            problems.append(f"{ident}: reason {sorted(reasons)}, expected one non-empty reason ({x.reason!r})")
        if any(len(r["chunk"].encode("utf-8")) > REJECT_CHUNK_BYTES for r in rows):
            problems.append(f"{ident}: a chunk is over {REJECT_CHUNK_BYTES} bytes")
        if {(r["_segment"], norm(r["_extracted_at"])) for r in rows} != {(segment, norm(at))}:
            problems.append(f"{ident}: metadata {[(r['_segment'], r['_extracted_at']) for r in rows]}")
        text = "".join(r["chunk"] for r in rows)
        if json.loads(text) != json.loads(x.value_json):
            problems.append(f"{ident}: chunks rebuild {short(text)}, expected {short(x.value_json)}")
        elif text.encode("utf-8") != x.value_json.encode("utf-8"):
            problems.append(f"{ident}: same JSON value, other bytes: {short(text)} vs {short(x.value_json)}")
    return problems


# ------------------------------------------------------------------------------------------- the run


@dataclass
class SegmentRun:
    segment: int
    summary: dict[str, Any]
    started: datetime
    ended: datetime


@dataclass
class World:
    table: str
    target: str
    determination: dict[str, Any]
    schema: DataSchema
    items: list[dict[str, Any]]  # raw scan, all segments
    by_segment: dict[int, list[dict[str, Any]]]  # raw scan per parallel-scan segment
    runs: dict[int, SegmentRun]
    s3: Any
    data_bucket: str

    def part(self, i: int) -> str:
        return segment_schema(self.target, i)

    def extracted_at(self, i: int) -> datetime:
        """The segment run's start as its manifest records it (what ``_extracted_at`` must hold)."""
        body = self.s3.get_object(Bucket=self.data_bucket, Key=f"{self.table}/part_{i}/manifest.json")["Body"].read()
        return datetime.fromisoformat(orjson.loads(body)["extracted_at"])

    def expected(self, i: int, items: list[dict[str, Any]] | None = None) -> oracle.Expected:
        return oracle.expected(self.schema, self.by_segment[i] if items is None else items, i, self.extracted_at(i))


def run_segment(i: int, **extra: Any) -> SegmentRun:
    from flows.segment import segment_etl

    t0 = datetime.now(UTC)
    summary: dict[str, Any] = segment_etl(TABLE, i, TOTAL, **RUN, **extra)  # type: ignore[call-overload]
    return SegmentRun(i, summary, t0, datetime.now(UTC))


@pytest.fixture(scope="module")
def world(stack: Any, prefect_api: str) -> Iterator[World]:
    from flows.schema import determine_schema

    ddb = boto3.client("dynamodb", endpoint_url=stack.endpoint)
    s3 = boto3.client("s3", endpoint_url=stack.endpoint)
    assert seed_table(ddb, TABLE, ITEMS, seed=SEED) == ITEMS
    determination = determine_schema(TABLE, total=TOTAL, routing=["sk:#"], page_limit=20)
    for item in DRIFT_ITEMS:
        ddb.put_item(TableName=TABLE, Item=item)
    runs = {i: run_segment(i) for i in range(TOTAL)}
    schema = SchemaCache(s3, os.environ.get("ARM_ETL_CACHE_BUCKET") or DEFAULT_CACHE_BUCKET, TABLE).require()
    raw = boto3.client("dynamodb", endpoint_url=stack.endpoint)
    by_segment = {i: scan_segment(raw, TABLE, i, TOTAL) for i in range(TOTAL)}
    yield World(
        table=TABLE,
        target=target_schema(TABLE),
        determination=determination,
        schema=schema,
        items=[it for i in range(TOTAL) for it in by_segment[i]],
        by_segment=by_segment,
        runs=runs,
        s3=s3,
        data_bucket=os.environ.get("ARM_ETL_DATA_BUCKET") or DEFAULT_DATA_BUCKET,
    )


@pytest.fixture(scope="module")
def pgm(stack: Any) -> Iterator[Any]:
    """An autocommit connection for the whole module (the conftest's ``pg`` is per test)."""
    import psycopg2

    conn = psycopg2.connect(stack.warehouse_url)
    conn.autocommit = True
    yield conn
    conn.close()


def landed_segments(world: World, pg: Any) -> dict[tuple[str, str], list[int]]:
    """Item key → the segments whose root tables (or rejects, for an unknown route) hold the item."""
    where: dict[tuple[str, str], list[int]] = {}
    for i in range(TOTAL):
        for t in world.schema.tables:
            if t.parent is None:
                for r in fetch(pg, world.part(i), t.name):
                    where.setdefault((r[t.key_columns[0]], r[t.key_columns[1]]), []).append(i)
        for r in fetch(pg, world.part(i), REJECTS_TABLE):
            if json.loads(r["column_path"]) == [] and r["chunk_no"] == 0:  # a whole item (no data-schema)
                key = json.loads(r["item_key"])
                where.setdefault((key["pk"], key["sk"]), []).append(i)
    return where


def check_segment(world: World, pg: Any, i: int, items: list[dict[str, Any]]) -> list[str]:
    """Every table of ``<target>_part_<i>`` against the oracle for ``items``; returns the problems."""
    want = world.expected(i, items)
    problems: list[str] = []
    for t in world.schema.tables:
        key_cols = list(t.key_columns) + [c.name for c in t.columns if c.path is None]
        problems += compare_rows(t.name, key_cols, want.rows[t.name], fetch(pg, world.part(i), t.name))
    problems += compare_rejects(want.rejects, fetch(pg, world.part(i), REJECTS_TABLE), i, world.extracted_at(i))
    return [f"part_{i}: {p}" for p in problems]


# ------------------------------------------------------------------------------------------- tests


def test_oracle_on_a_hand_computed_item() -> None:
    """The reference model itself, against rows and rejects worked out by hand from DESIGN.md."""
    pk, sk = Column("pk", ("pk",), "VARCHAR(16)", False), Column("sk", ("sk",), "VARCHAR(16)", False)
    idx0, idx = Column("_idx0", None, "INTEGER", False), Column("_idx", None, "INTEGER", False)
    keys = ("pk", "sk")
    schema = DataSchema(
        source_table="Src",
        version="v",
        created_at="",
        items_scanned=1,
        nested="relational",
        routing=(RoutingRule("sk", "#"),),
        key_attributes=keys,
        tables=(
            Table(
                "a",
                None,
                "a",
                (),
                keys,
                (pk, sk, Column("m__n", ("m", "n"), "BIGINT"), Column("t", ("t",), "VARCHAR(4)")),
            ),
            Table("a__l", "a", "a", ("l",), keys, (pk, sk, idx, Column("x", ("l", None, "x"), "DECIMAL(3,1)"))),
            Table(
                "a__l__ys",
                "a__l",
                "a",
                ("l", None, "ys"),
                keys,
                (pk, sk, idx0, idx, Column("value", ("l", None, "ys", None), "VARCHAR(8)")),
            ),
            Table("a__s", "a", "a", ("s",), keys, (pk, sk, idx, Column("value", ("s", None), "DECIMAL(5,2)"))),
        ),
    )
    at = datetime(2024, 5, 1, tzinfo=UTC)
    item = {
        "pk": {"S": "P"},
        "t": {"S": "éé€"},  # 3 characters, 7 bytes > VARCHAR(4)
        "l": {
            "L": [
                {"M": {"x": {"N": "1.5"}, "ys": {"L": [{"S": "q"}, {"S": "w\x00"}]}}},
                {"M": {"x": {"S": "bad"}}},
                {"M": {}},
            ]
        },
        "m": {"M": {"n": {"N": "7"}}},
        "s": {"NS": ["10", "-2.5", "3"]},
        "sk": {"S": "A#1"},
    }
    stray = {"pk": {"S": "P"}, "sk": {"S": "B#2"}}
    got = oracle.expected(schema, [item, stray], 2, at)
    base = {"pk": "P", "sk": "A#1", "_segment": 2, "_extracted_at": at}
    assert got.rows == {
        "a": [{**base, "m__n": 7, "t": None}],
        "a__l": [
            {**base, "_idx": 0, "x": Decimal("1.5")},
            {**base, "_idx": 1, "x": None},
            {**base, "_idx": 2, "x": None},
        ],
        "a__l__ys": [{**base, "_idx0": 0, "_idx": 0, "value": "q"}, {**base, "_idx0": 0, "_idx": 1, "value": None}],
        "a__s": [
            {**base, "_idx": 0, "value": Decimal("-2.5")},
            {**base, "_idx": 1, "value": Decimal("3")},
            {**base, "_idx": 2, "value": Decimal("10")},
        ],
    }
    key = {"pk": "P", "sk": "A#1"}
    assert got.rejects == [
        oracle.Reject("a", key, ("t",), "too_long", '{"S":"éé€"}'),
        oracle.Reject("a__l__ys", key, ("l", 0, "ys", 1), "nul", '{"S":"w\\u0000"}'),
        oracle.Reject("a__l", key, ("l", 1, "x"), "type_drift", '{"S":"bad"}'),
        oracle.Reject("b", {"pk": "P", "sk": "B#2"}, (), "new_table", '{"M":{"pk":{"S":"P"},"sk":{"S":"B#2"}}}'),
    ]


def test_source_is_the_seed_plus_the_drift_items(world: World) -> None:
    """The raw parallel scan returns exactly what was written (the oracle's input is the real source)."""
    written = {item_key(it): it for it in [*generate_items(ITEMS, SEED), *DRIFT_ITEMS]}
    scanned = [item_key(it) for it in world.items]
    assert len(scanned) == len(set(scanned)) == ITEMS + len(DRIFT_ITEMS)
    assert set(scanned) == set(written)
    for it in world.items:
        assert wire(it) == wire(written[item_key(it)]), item_key(it)
    assert world.determination["items_scanned"] == world.schema.items_scanned == ITEMS


def test_schema_has_what_the_comparison_exercises(world: World) -> None:
    """Guards the test: the data-schema has the tables and types the seed and drift items are meant to hit."""
    tables = {t.name: t for t in world.schema.tables}
    assert {t.route for t in world.schema.tables} == {"org", "group", "fin", "vuln", "event"}
    types = {(t.name, c.path): c.type for t in world.schema.tables for c in t.columns}
    assert {ty.split("(")[0] for ty in types.values()} >= {
        "VARCHAR", "BIGINT", "DECIMAL", "BOOLEAN", "TIMESTAMPTZ", "DATE", "VARBYTE", "INTEGER"
    }  # fmt: skip
    assert any(t.depth == 2 for t in world.schema.tables)  # grandchildren: cves[].refs[], matrix[][]
    fin = {c.path: c.type for c in tables["fin"].columns}
    assert fin[("counter",)] == "BIGINT" and fin[("title",)] == "VARCHAR(64)"
    assert fin[("amount",)] == "DECIMAL(38,18)" and fin[("where", "line")] == "BIGINT"
    assert fin[("created_at",)] == "TIMESTAMPTZ" and fin[("report_date",)] == "DATE"
    assert fin[("deleted",)] == "BOOLEAN" and fin[("blob",)] == "VARBYTE(16)" and fin[("nul_blob",)] == "VARBYTE(16)"
    assert fin[("severity",)].startswith("VARCHAR")  # N/S conflict
    assert {"fin__labels", "fin__cves", "fin__cves__refs", "fin__matrix", "fin__matrix__value"} <= tables.keys()
    assert types[("fin__cves", ("cves", None, "score"))].startswith("DECIMAL")


def test_every_item_lands_in_exactly_one_segment(world: World, pgm: Any) -> None:
    where = landed_segments(world, pgm)
    assert {k: v for k, v in where.items() if len(v) != 1} == {}
    assert set(where) == {item_key(it) for it in world.items}
    for i in range(TOTAL):
        assert {k for k, v in where.items() if v == [i]} == {item_key(it) for it in world.by_segment[i]}, i
        assert world.runs[i].summary["mode"] == "fresh"
        assert world.runs[i].summary["totals"]["items"] == len(world.by_segment[i])


def test_every_row_and_value_matches_the_oracle(world: World, pgm: Any) -> None:
    landed = landed_segments(world, pgm)
    problems: list[str] = []
    for i in range(TOTAL):
        items = [it for it in world.items if landed.get(item_key(it)) == [i]]
        problems += check_segment(world, pgm, i, items)
    assert not problems, "\n".join(problems)


def test_rejects_cover_every_misfit_class(world: World) -> None:
    """Guards the test: the expected rejects include every kind of misfit the contract names."""
    rejects = [r for i in range(TOTAL) for r in world.expected(i).rejects]
    reasons = Counter(r.reason for r in rejects)
    assert reasons["too_long"] >= 4 and reasons["nul"] >= 4 and reasons["type_drift"] >= 8, reasons
    assert any(len(r.value_json.encode()) > REJECT_CHUNK_BYTES for r in rejects)  # several chunks
    assert {r.table for r in rejects} >= {
        "fin",
        "fin__labels",
        "fin__cves",
        "fin__cves__refs",
        "arm_exact_e2e",
        "newkind",
    }


def test_comparison_is_not_vacuous(world: World, pgm: Any) -> None:
    """A single changed cell, a missing row, or one changed byte of a reject is reported."""
    i = next(i for i in range(TOTAL) if world.expected(i).rejects)
    want, at = world.expected(i), world.extracted_at(i)
    t = next(t for t in world.schema.tables if t.parent is not None and want.rows[t.name])
    key_cols = list(t.key_columns) + [c.name for c in t.columns if c.path is None]
    actual = fetch(pgm, world.part(i), t.name)
    assert compare_rows(t.name, key_cols, want.rows[t.name], actual) == []
    assert compare_rows(t.name, key_cols, want.rows[t.name][1:], actual)
    bumped = [dict(r) for r in want.rows[t.name]]
    bumped[0]["_idx"] += 1
    assert compare_rows(t.name, key_cols, bumped, actual)
    loaded_rejects = fetch(pgm, world.part(i), REJECTS_TABLE)
    assert compare_rejects(want.rejects, loaded_rejects, i, at) == []
    r0 = want.rejects[0]
    changed = dataclasses.replace(r0, value_json=r0.value_json[:-2] + "x" + r0.value_json[-2:])
    assert compare_rejects([changed, *want.rejects[1:]], loaded_rejects, i, at)


def test_extracted_at_is_the_run_start(world: World) -> None:
    for i, run in world.runs.items():
        assert run.started <= world.extracted_at(i) <= run.ended, i


def test_summary_counts_rejects(world: World) -> None:
    for i, run in world.runs.items():
        want = world.expected(i)
        assert run.summary["rejects"] == dict(Counter(r.reason for r in want.rejects)), i
        assert run.summary["totals"]["rejects"] == len(want.rejects), i
        per_table = {t["table"]: t["rejects"] for t in run.summary["tables"] if t["rejects"]}
        assert per_table == dict(Counter(r.table for r in want.rejects)), i


def test_rerun_from_completed_upload_then_fresh_keeps_counts(world: World, pgm: Any) -> None:
    part = world.part(1)
    before = counts(pgm, part)
    assert sum(before.values()) > 0
    first_extraction = world.extracted_at(1)

    again = run_segment(1)
    assert again.summary["mode"] == "load"
    assert again.summary["totals"]["chunks_extracted"] == 0
    assert again.summary["totals"]["items"] == len(world.by_segment[1])
    assert counts(pgm, part) == before
    assert world.extracted_at(1) == first_extraction  # the rows were extracted by the first run
    problems = check_segment(world, pgm, 1, world.by_segment[1])
    assert not problems, "\n".join(problems)

    fresh = run_segment(1, fresh=True)
    assert fresh.summary["mode"] == "fresh"
    assert fresh.summary["totals"]["chunks_extracted"] > 0
    assert counts(pgm, part) == before
    assert fresh.started <= world.extracted_at(1) <= fresh.ended
    problems = check_segment(world, pgm, 1, world.by_segment[1])
    assert not problems, "\n".join(problems)
