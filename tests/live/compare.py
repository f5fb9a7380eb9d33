"""Read a redshift-schema back through psycopg2 and compare it with the oracle, on Redshift or PostgreSQL.

``tests/exactness.py`` reads with ``SELECT *`` and turns ``memoryview`` into ``bytes``: right for the
PostgreSQL stand-in, where psycopg2 receives BYTEA as ``memoryview`` and JSONB already parsed. On Redshift
the same driver sees other types, so this module selects each column by its data-schema type and
converts what comes back to the Python forms ``tests/oracle.py`` computes:

* VARBYTE: Redshift shows VARBYTE values as hexadecimal (*VARBYTE type* page), and its type OID is not one
  psycopg2 knows, so what the driver returns for a bare VARBYTE column is not documented. The column is
  read as ``TO_HEX(col)`` (documented to return a VARCHAR of hex digits) and decoded with
  ``bytes.fromhex``; ``bytes``/``memoryview`` or ``\\x…`` text are accepted too. Uncertain: ``TO_HEX``
  doubles the length, so a VARBYTE wider than 32767 bytes would exceed VARCHAR(65535) (the seed's are tiny).
* SUPER: read as ``JSON_SERIALIZE(col)`` (documented: VARCHAR holding RFC 8259 JSON) and parsed with
  ``json.loads``, exactly what psycopg2 does for JSONB. Uncertain: ``JSON_SERIALIZE`` of a SQL NULL is the
  text ``null``, so NULL and JSON null both read as None (on PostgreSQL psycopg2 gives None for both as
  well); whether SUPER keeps a number's trailing zeros is not documented. The suite loads relational
  data-schemas (the default), so no SUPER column is read by it today.
* TIMESTAMPTZ: expected to arrive with PostgreSQL's type OID and to be parsed by psycopg2 into an aware
  datetime (the session time zone is UTC unless the user changed it); text is parsed here if it arrives
  instead, and a naive datetime fails the comparison (``norm`` insists on an offset). Not verified on a
  cluster from here.
* DECIMAL → Decimal (Redshift pads to the column's scale; Decimal equality ignores that), integers → int,
  BOOLEAN → bool, DATE → date, VARCHAR → str: the same as on PostgreSQL.

The checks mirror ``tests.exactness.check_segment`` and ``check_production`` with this reader, and
reuse their comparison of rows (multisets, value by value) and of ``_etl_rejects`` (chunks rebuilt byte
for byte). No heavy import at module level: ``make test`` imports this also when the live suite skips.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from arm_etl.dataschema import DataSchema
    from arm_etl.upload import PartStore

Columns = list[tuple[str, str]]
MARKER_READ: Columns = [("snapshot", "VARCHAR(64)"), ("items", "BIGINT"), ("data_schema_version", "VARCHAR(64)")]
BOOKKEEPING = {"_etl_segment", "_etl_merged"}

_BASE = re.compile(r"^\s*([A-Za-z]+)")


def base_type(column_type: str) -> str:
    """``VARBYTE(16)`` → ``VARBYTE``; ``DECIMAL(38,18)`` → ``DECIMAL``."""
    m = _BASE.match(column_type)
    return m.group(1).upper() if m else column_type.upper()


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def select_sql(schema: str, table: str, columns: Columns, dialect: str) -> str:
    """``SELECT`` of every column, VARBYTE and SUPER converted to text on Redshift (see the module docstring)."""
    exprs = []
    for name, column_type in columns:
        q, base = quote(name), base_type(column_type)
        if dialect == "redshift" and base == "VARBYTE":
            exprs.append(f"TO_HEX({q}) AS {q}")
        elif dialect == "redshift" and base == "SUPER":
            exprs.append(f"JSON_SERIALIZE({q}) AS {q}")
        else:
            exprs.append(q)
    return f"SELECT {', '.join(exprs)} FROM {quote(schema)}.{quote(table)}"


def coerce(value: Any, column_type: str) -> Any:
    """The value as the oracle computes it (the forms psycopg2 gives on PostgreSQL) for a column of that type."""
    if value is None:
        return None
    base = base_type(column_type)
    if base in ("VARBYTE", "BYTEA"):
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
        text = str(value)
        return bytes.fromhex(text[2:] if text.startswith("\\x") else text)
    if base in ("SUPER", "JSONB") and isinstance(value, str):
        return json.loads(value)
    if not isinstance(value, str):
        return value
    if base == "TIMESTAMPTZ":
        return datetime.fromisoformat(value)
    if base == "DATE":
        return date.fromisoformat(value)
    if base in ("DECIMAL", "NUMERIC"):
        return Decimal(value)
    if base in ("SMALLINT", "INTEGER", "BIGINT"):
        return int(value)
    if base == "BOOLEAN":
        return {"t": True, "true": True, "f": False, "false": False}[value.lower()]
    return value


# ------------------------------------------------------------------------------------------- catalog


def tables(conn: Any, schema: str) -> set[str]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'v')",
            (schema,),
        )
        return {r[0] for r in cur.fetchall()}


def existing_schemas(conn: Any, names: list[str]) -> set[str]:
    with conn.cursor() as cur:
        cur.execute("SELECT nspname FROM pg_namespace")
        return {r[0] for r in cur.fetchall()} & set(names)


def column_names(conn: Any, schema: str, table: str) -> list[str]:
    with conn.cursor() as cur:
        cur.execute(f"SELECT * FROM {quote(schema)}.{quote(table)} LIMIT 0")
        return [d[0] for d in cur.description]


def counts(conn: Any, schema: str) -> dict[str, int]:
    out = {}
    with conn.cursor() as cur:
        for name in sorted(tables(conn, schema)):
            cur.execute(f"SELECT count(*) FROM {quote(schema)}.{quote(name)}")
            out[name] = int(cur.fetchone()[0])
    return out


def fetch(conn: Any, dialect: str, schema: str, table: str, columns: Columns) -> list[dict[str, Any]]:
    """Every row of ``schema.table`` as column → value, in the oracle's Python forms."""
    types = dict(columns)
    with conn.cursor() as cur:
        cur.execute(select_sql(schema, table, columns, dialect))
        names = [d[0] for d in cur.description]
        return [{n: coerce(v, types[n]) for n, v in zip(names, row, strict=True)} for row in cur.fetchall()]


def drop_schemas(conn: Any, names: list[str]) -> None:
    with conn.cursor() as cur:
        for name in names:
            cur.execute(f"DROP SCHEMA IF EXISTS {quote(name)} CASCADE")


# ------------------------------------------------------------------------------------------- checks


def warehouse_columns(schema: DataSchema) -> dict[str, Columns]:
    """Table → (column, Redshift type) of every warehouse table of the data-schema, ``_etl_rejects`` included."""
    return {name: list(cols) for name, cols in schema.warehouse_tables()}


def _columns_problems(conn: Any, where: str, columns: dict[str, Columns]) -> list[str]:
    problems = []
    for table, cols in columns.items():
        loaded = sorted(column_names(conn, where, table))
        if loaded != sorted(name for name, _ in cols):
            problems.append(f"{table}: columns {loaded}, the data-schema has {sorted(n for n, _ in cols)}")
    return problems


def check_segment(
    conn: Any,
    dialect: str,
    schema: DataSchema,
    store: PartStore,
    target: str,
    segment: int,
    items: list[dict[str, Any]],
    snapshot: str,
) -> list[str]:
    """Every row, value and reject of ``<target>_part_<segment>`` against the oracle for ``items``."""
    from arm_etl.config import segment_schema, staging_schema
    from arm_etl.dataschema import REJECTS_TABLE
    from tests import oracle
    from tests.exactness import check_manifest
    from tests.test_segment_exact import compare_rejects, compare_rows

    manifest = store.read_manifest()
    problems = check_manifest(manifest, snapshot, len(items))
    if manifest is None:
        return problems
    part, staging = segment_schema(target, segment), staging_schema(target, segment)
    present = existing_schemas(conn, [part, staging])
    if part not in present:
        return [*problems, f"schema {part} missing"]
    if staging in present:
        problems.append(f"staging schema {staging} left behind")
    at = datetime.fromisoformat(manifest.extracted_at)
    want = oracle.expected(schema, items, segment, at)
    columns = warehouse_columns(schema)
    expected_tables = set(columns) | {"_etl_segment"}
    loaded_tables = tables(conn, part)
    if loaded_tables != expected_tables:
        problems.append(
            f"tables differ: missing {expected_tables - loaded_tables}, extra {loaded_tables - expected_tables}"
        )
        return [f"{part}: {p}" for p in problems]
    problems += _columns_problems(conn, part, columns)
    for t in schema.tables:
        key_cols = list(t.key_columns) + [c.name for c in t.columns if c.path is None]
        actual = fetch(conn, dialect, part, t.name, columns[t.name])
        problems += compare_rows(t.name, key_cols, want.rows[t.name], actual)
    rejects = fetch(conn, dialect, part, REJECTS_TABLE, columns[REJECTS_TABLE])
    problems += compare_rejects(want.rejects, rejects, segment, at)
    loaded = {t: n for t, n in counts(conn, part).items() if t not in BOOKKEEPING and n}
    if loaded != manifest.table_rows():
        problems.append(f"loaded counts {loaded} differ from the manifest {manifest.table_rows()}")
    markers = fetch(conn, dialect, part, "_etl_segment", MARKER_READ)
    if [(m["snapshot"], m["items"], m["data_schema_version"]) for m in markers] != [
        (snapshot, len(items), manifest.data_schema_version)
    ]:
        problems.append(f"marker rows {markers}")
    referenced = {p.key for p in manifest.parts()} | {store.manifest_key} | set(manifest.copy_manifests.values())
    orphans = set(store.list_keys()) - referenced
    if orphans:
        problems.append(f"orphan objects in S3: {sorted(orphans)[:5]}")
    return [f"{part}: {p}" for p in problems]


def _production_expected(
    schema: DataSchema, stores: list[PartStore], items_by_segment: list[list[dict[str, Any]]]
) -> list[tuple[int, datetime, Any]]:
    """(segment, its extraction time, the oracle's Expected) for every segment merged into production."""
    from tests import oracle

    out = []
    for i, (store, items) in enumerate(zip(stores, items_by_segment, strict=True)):
        manifest = store.read_manifest()
        assert manifest is not None, f"segment {i}: no manifest"
        at = datetime.fromisoformat(manifest.extracted_at)
        out.append((i, at, oracle.expected(schema, items, i, at)))
    return out


def _production_tables_problem(conn: Any, schema: DataSchema, target: str) -> str | None:
    columns = warehouse_columns(schema)
    loaded = tables(conn, target)
    if set(columns) <= loaded and loaded - set(columns) <= BOOKKEEPING:
        return None
    return f"{target}: tables {sorted(loaded)}, the data-schema has {sorted(columns)} (+ bookkeeping)"


def check_production_rows(
    conn: Any,
    dialect: str,
    schema: DataSchema,
    stores: list[PartStore],
    target: str,
    items_by_segment: list[list[dict[str, Any]]],
) -> list[str]:
    """Every data table of production ``target`` against the oracle over all segments' items."""
    from tests.test_segment_exact import compare_rows

    problem = _production_tables_problem(conn, schema, target)
    if problem:
        return [problem]
    columns = warehouse_columns(schema)
    want_rows: dict[str, list[dict[str, Any]]] = {t.name: [] for t in schema.tables}
    for _, _, want in _production_expected(schema, stores, items_by_segment):
        for name, rows in want.rows.items():
            want_rows[name] += rows
    problems = _columns_problems(conn, target, columns)
    for t in schema.tables:
        key_cols = list(t.key_columns) + [c.name for c in t.columns if c.path is None]
        actual = fetch(conn, dialect, target, t.name, columns[t.name])
        problems += compare_rows(t.name, key_cols, want_rows[t.name], actual)
    return [f"{target}: {p}" for p in problems]


def check_production_rejects(
    conn: Any,
    dialect: str,
    schema: DataSchema,
    stores: list[PartStore],
    target: str,
    items_by_segment: list[list[dict[str, Any]]],
) -> list[str]:
    """Production ``_etl_rejects`` against the oracle's rejects of every segment, chunks rebuilt byte for byte."""
    from arm_etl.dataschema import REJECTS_TABLE
    from tests.test_segment_exact import compare_rejects

    problem = _production_tables_problem(conn, schema, target)
    if problem:
        return [problem]
    rejects = fetch(conn, dialect, target, REJECTS_TABLE, warehouse_columns(schema)[REJECTS_TABLE])
    problems: list[str] = []
    expected = _production_expected(schema, stores, items_by_segment)
    for i, at, want in expected:
        problems += compare_rejects(want.rejects, [r for r in rejects if r["_segment"] == i], i, at)
    stray = {r["_segment"] for r in rejects} - {i for i, _, _ in expected}
    if stray:
        problems.append(f"rejects of segments that were not merged: {sorted(stray)}")
    return [f"{target}: {p}" for p in problems]
