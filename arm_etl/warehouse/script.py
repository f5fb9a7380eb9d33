"""``arm-etl sql``: every statement a segment run and a centralization run on a warehouse, in order.

Nothing is executed. The statements come from the same ``*_statements`` methods the runs call, so
the script a DBA reviews is the text that runs; run values (snapshot, counts, timestamps, schema
names looked up at run time) appear as ``:name`` placeholders. What varies per chunk or per part
(PostgreSQL streams each CSV part) is shown once, with a comment saying how often it repeats.
"""

from __future__ import annotations

from collections.abc import Iterator

from arm_etl.config import backup_schema, live_schema, loading_schema, segment_schema, staging_schema
from arm_etl.dataschema import DataSchema
from arm_etl.upload import PartStore
from arm_etl.warehouse import production as prod
from arm_etl.warehouse.base import Warehouse
from arm_etl.warehouse.bookkeeping import MARKER_COLUMNS, MERGED_COLUMNS, MERGED_TABLE, SEGMENT_MARKER
from arm_etl.warehouse.statement import Statement

Line = str | Statement  # a comment line, or a statement


def segment_script(wh: Warehouse, ds: DataSchema, target: str, segment: int, data_bucket: str) -> Iterator[Line]:
    """What ``segment_etl`` runs for one segment: staging DDL, the load, the marker, the swap."""
    staging, final = staging_schema(target, segment), segment_schema(target, segment)
    tables = [*ds.warehouse_tables(), (SEGMENT_MARKER, MARKER_COLUMNS)]
    yield f"-- segment {segment} of {ds.source_table}: every connection first sets its statement timeout"
    yield from wh.connect_statements()
    own = [(name, False) for name, _ in tables]
    yield f"-- load: staging redshift-schema {staging} created empty, in one transaction; before any drop, the"
    yield "-- views elsewhere that depend on the schema are looked up (any found: nothing dropped, the run stops)"
    yield wh.dependents_statement()
    yield wh.relations_statement()
    yield from wh.drop_schema_statements(staging, own)
    yield from wh.create_schema_statements(staging, tables)
    store = PartStore(None, data_bucket, ds.source_table, segment)
    yield f"-- load the parts: {wh.load_statements_comment}"
    yield from wh.load_statements(staging, ds.warehouse_tables(), lambda t: store.url(store.copy_manifest_key(t)))
    yield "-- verify: row counts against the manifest"
    for name, _ in ds.warehouse_tables():
        yield wh.count_statement(staging, name)
    yield "-- mark (one transaction), then swap staging in (one transaction)"
    yield from wh.mark_segment_statements(staging)
    yield wh.dependents_statement()
    yield wh.relations_statement()
    yield from wh.replace_schema_statements(staging, final, own)


def centralization_script(wh: Warehouse, ds: DataSchema, target: str, total: int) -> Iterator[Line]:
    """What ``centralize`` runs: read-only checks, the loading redshift-schema, merges, the swap."""
    loading, backup = loading_schema(target), backup_schema(target)
    names = [n for n, _ in ds.warehouse_tables()]
    yield f"-- centralization of {ds.source_table} into {target} from {total} segment(s)"
    yield from wh.connect_statements()
    yield "-- inspect (read-only): each segment's marker and counts (segment 0 shown), merge progress, production"
    yield wh.schema_exists_statement()
    yield wh.tables_statement()
    yield wh.read_marker_statement(segment_schema(target, 0))
    for name in [*names, SEGMENT_MARKER]:
        yield wh.count_statement(segment_schema(target, 0), name)
    yield wh.read_merged_statement(loading)
    yield wh.read_merged_statement(target)
    for name in [*names, MERGED_TABLE]:
        yield wh.count_statement(target, name)
    loading_tables = [*ds.warehouse_tables(), (MERGED_TABLE, MERGED_COLUMNS)]
    own = [(name, False) for name, _ in loading_tables]
    yield f"-- prepare {loading} (one transaction; every drop is preceded by the dependents check, never CASCADE)"
    yield wh.dependents_statement()
    yield wh.relations_statement()
    yield from wh.drop_schema_statements(loading, own)
    yield from wh.create_schema_statements(loading, loading_tables)
    for i in range(total):
        part = segment_schema(target, i)
        yield f"-- merge segment {i}: per table, the move and its progress row"
        for name, cols in ds.warehouse_tables():
            for st in wh.append_statements(loading, part, name, cols):
                if st.autocommit:
                    yield "-- (autocommit: cannot run inside a transaction block)"
                yield st
            yield wh.record_merged_statement(loading)
    yield "-- verify the loading redshift-schema's counts"
    for name in names:
        yield wh.count_statement(loading, name)
    live = live_schema(target)
    yield f"-- swap (one transaction): {live} -> {backup}, {loading} -> {live}, {target}'s views re-pointed"
    yield "-- read production: its relations, columns, privileges and readers' views; the loading columns"
    yield wh.schema_exists_statement()
    yield wh.relations_statement()
    yield wh.schema_privileges_statement()
    yield wh.relation_privileges_statement()
    yield wh.dependents_statement()
    yield wh.columns_statement()
    yield wh.dependents_statement()
    yield wh.relations_statement()
    yield from wh.drop_schema_statements(backup, own)
    columns = {name: [(wh.catalog_name(c), (t,)) for c, t in cols] for name, cols in loading_tables}
    grants = {"select": ["reader"]}
    first = prod.ProductionState("absent", False, {}, [], [])
    yield f"-- the first time ({target} absent): {loading} becomes {live}, {target} is created with one view per table"
    yield '-- and the grants setting applied (shown for grants={"select": ["reader"]})'
    yield from prod.swap_statements(
        target, loading, live, backup, first, prod.plan_views(wh, target, live, first, columns, grants)
    )
    state = prod.ProductionState("views", True, columns, [], [])
    plan = prod.plan_views(wh, target, live, state, columns, grants)
    yield "-- every time after: the backup dropped (above), then"
    statements = prod.swap_statements(target, loading, live, backup, state, plan)
    yield from statements[: len(statements) - len(plan.statements)]
    yield "-- views whose columns are unchanged are replaced in place (ownership and privileges kept); a changed"
    yield "-- one is dropped and created, then its privileges are granted again; grants already held are not repeated"
    yield from plan.statements
    yield "-- drop the emptied segment redshift-schemas (each after its dependents check)"
    segment_own = [(name, False) for name, _ in [*ds.warehouse_tables(), (SEGMENT_MARKER, MARKER_COLUMNS)]]
    for i in range(total):
        yield wh.dependents_statement()
        yield from wh.drop_schema_statements(segment_schema(target, i), segment_own)


def render(lines: Iterator[Line]) -> str:
    """Comments as they are; each statement ending in ``;`` at the end of its last line."""
    return "\n".join(line.display() if isinstance(line, Statement) else line for line in lines) + "\n"
