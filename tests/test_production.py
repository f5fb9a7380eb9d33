"""Production's readers across centralizations, on the embedded PostgreSQL (arm_etl.warehouse.production).

Readers hold privileges on production ``T`` and build views on it; the swap keeps ``T``'s views the same
objects (re-pointed at the new ``T_live``), so both survive every centralization and read the new rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from arm_etl.config import backup_schema, live_schema, loading_schema
from arm_etl.seed import seed_table
from arm_etl.warehouse import PostgresWarehouse, WarehouseError, warehouse_for
from arm_etl.warehouse import production as prod

TABLE = "readers-src"
TOTAL = 2


def fin_keys_in_source(ddb: Any) -> set[str]:
    items = ddb.scan(TableName=TABLE)["Items"]
    assert "LastEvaluatedKey" not in ddb.scan(TableName=TABLE)
    return {i["sk"]["S"] for i in items if i["sk"]["S"].startswith("FIN#")}


def change_source(ddb: Any, round_no: int) -> None:
    """New findings (copies of existing ones under new keys, so the data-schema still fits), two deleted,
    one value updated: a week's worth of change without a new data-schema."""
    fins = sorted(
        (i for i in ddb.scan(TableName=TABLE)["Items"] if i["sk"]["S"].startswith("FIN#")), key=lambda i: i["sk"]["S"]
    )
    for k, item in enumerate(fins[:3]):
        ddb.put_item(TableName=TABLE, Item={**item, "sk": {"S": f"FIN#{round_no}00{k}"}})
    for item in fins[-2:]:
        ddb.delete_item(TableName=TABLE, Key={"pk": item["pk"], "sk": item["sk"]})
    a, b = fins[3], fins[4]
    ddb.update_item(
        TableName=TABLE,
        Key={"pk": a["pk"], "sk": a["sk"]},
        UpdateExpression="SET #c = :v",
        ExpressionAttributeNames={"#c": "counter"},
        ExpressionAttributeValues={":v": b["counter"]},
    )


def centralize_round(target: str, snapshot: str) -> dict[str, Any]:
    from flows.centralize import centralize
    from flows.segment import segment_etl

    for i in range(TOTAL):
        segment_etl(TABLE, i, TOTAL, target_schema=target, snapshot=snapshot, page_limit=25)
    return centralize(TABLE, TOTAL, target_schema=target, approve=True)


def rows(pg: Any, sql: str) -> set[tuple[Any, ...]]:
    cur = pg.cursor()
    cur.execute(sql)
    return set(cur.fetchall())


def as_role(pg: Any, role: str, sql: str) -> set[tuple[Any, ...]]:
    cur = pg.cursor()
    cur.execute(f'SET ROLE "{role}"')
    try:
        return rows(pg, sql)
    finally:
        cur.execute("RESET ROLE")


def privileges(pg: Any, role: str, target: str, tables: tuple[str, ...] = ("fin", "org")) -> dict[str, bool]:
    cur = pg.cursor()
    cur.execute("SELECT has_schema_privilege(%s, %s, 'USAGE')", (role, target))
    out = {"usage": cur.fetchone()[0]}
    for t in tables:
        cur.execute("SELECT has_table_privilege(%s, %s, 'SELECT')", (role, f'"{target}"."{t}"'))
        out[f"select_{t}"] = cur.fetchone()[0]
    return out


@pytest.fixture
def roles(pg: Any) -> Iterator[tuple[str, str]]:
    cur = pg.cursor()
    for r in ("prod_reader", "prod_stranger"):
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (r,))
        if cur.fetchone() is None:
            cur.execute(f'CREATE ROLE "{r}"')
    yield "prod_reader", "prod_stranger"


def test_readers_keep_access_and_views_across_three_centralizations(
    stack: Any, prefect_api: str, pg: Any, roles: tuple[str, str]
) -> None:
    import boto3

    from flows.schema import determine_schema

    reader, stranger = roles
    target = "c_readers"
    ddb = boto3.client("dynamodb", endpoint_url=stack.endpoint)
    seed_table(ddb, TABLE, 60, seed=23)
    determine_schema(TABLE, total=TOTAL, routing=["sk:#"], page_limit=25)

    first = centralize_round(target, "20261201")
    assert first["changed"] is True
    week1 = fin_keys_in_source(ddb)
    cur = pg.cursor()
    cur.execute(f'GRANT USAGE ON SCHEMA "{target}" TO "{reader}"')
    cur.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{target}" TO "{reader}"')
    cur.execute('CREATE SCHEMA IF NOT EXISTS "bi_prod"')
    cur.execute(f'CREATE VIEW "bi_prod"."fin_keys" AS SELECT sk FROM "{target}"."fin"')
    assert rows(pg, 'SELECT sk FROM "bi_prod"."fin_keys"') == {(k,) for k in week1}

    results = []
    for round_no, snapshot in ((2, "20261208"), (3, "20261215")):
        change_source(ddb, round_no)
        expected = {(k,) for k in fin_keys_in_source(ddb)}
        out = centralize_round(target, snapshot)
        assert out["changed"] is True
        results.append(out)
        # The reader's view reads this week's rows, through production's views, not last week's backup.
        assert rows(pg, 'SELECT sk FROM "bi_prod"."fin_keys"') == expected
        assert rows(pg, f'SELECT sk FROM "{backup_schema(target)}"."fin"') != expected
        # The reader reads production and their own view with only what they were granted on production.
        assert as_role(pg, reader, f'SELECT sk FROM "{target}"."fin"') == expected
        assert privileges(pg, reader, target) == {"usage": True, "select_fin": True, "select_org": True}
        assert privileges(pg, stranger, target) == {"usage": False, "select_fin": False, "select_org": False}
    assert rows(pg, 'SELECT sk FROM "bi_prod"."fin_keys"') == {(k,) for k in fin_keys_in_source(ddb)}
    assert week1 != {k for (k,) in rows(pg, 'SELECT sk FROM "bi_prod"."fin_keys"')}
    # The centralization reports what it kept: the schema's USAGE and the reader's SELECT on each view.
    kept = results[-1]["privileges_kept"]
    assert f"USAGE on the redshift-schema to {reader}" in kept
    assert f"SELECT on view fin to {reader}" in kept
    assert not any(stranger in p for p in kept)
    assert results[-1]["readers_views"] == ["bi_prod.fin_keys"]
    assert results[-1]["stale_readers_views"] == []
    cur.execute('DROP VIEW "bi_prod"."fin_keys"')


# ---------------------------------------------------------------- the swap itself, table by table


def build(pg: Any, schema: str, tables: dict[str, str]) -> None:
    cur = pg.cursor()
    cur.execute(f'CREATE SCHEMA "{schema}"')
    for name, ddl in tables.items():
        cur.execute(f'CREATE TABLE "{schema}"."{name}" ({ddl})')


def fill(pg: Any, schema: str, name: str, values: str) -> None:
    pg.cursor().execute(f'INSERT INTO "{schema}"."{name}" VALUES {values}')


def drop_all(pg: Any, target: str, *extra: str) -> None:
    cur = pg.cursor()
    for s in (*extra, target, live_schema(target), backup_schema(target), loading_schema(target)):
        cur.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')  # test cleanup only


@pytest.fixture
def wh(stack: Any) -> PostgresWarehouse:
    w = warehouse_for(stack.warehouse_url)
    assert isinstance(w, PostgresWarehouse)
    return w


def swap(wh: PostgresWarehouse, target: str, grants: dict[str, list[str]] | None = None) -> prod.SwapReport:
    return prod.swap(wh, target, loading_schema(target), live_schema(target), backup_schema(target), grants)


def view_columns(pg: Any, schema: str, name: str) -> list[str]:
    cur = pg.cursor()
    cur.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
        "ORDER BY ordinal_position",
        (schema, name),
    )
    return [r[0] for r in cur.fetchall()]


def test_a_new_column_is_appended_to_the_view_in_place(pg: Any, wh: PostgresWarehouse, roles: Any) -> None:
    """PostgreSQL's CREATE OR REPLACE VIEW "may add additional columns to the end of the list": the view stays
    the same object (its privileges and the readers' views on it kept) and shows the new column last."""
    reader, _ = roles
    t = "p_append"
    drop_all(pg, t, "bi_append")
    build(pg, loading_schema(t), {"x": "b integer, a text"})
    fill(pg, loading_schema(t), "x", "(1, 'one')")
    first = swap(wh, t, grants={"select": [reader]})
    assert first.created == ["x"] and first.layout_before == "absent"
    assert [str(p) for p in first.granted] == [
        f"USAGE on the redshift-schema to {reader}",
        f"SELECT on view x to {reader}",
    ]
    pg.cursor().execute(f'CREATE SCHEMA "bi_append"; CREATE VIEW "bi_append"."v" AS SELECT a, b FROM "{t}"."x"')

    build(pg, loading_schema(t), {"x": "a text, c date, b integer"})
    fill(pg, loading_schema(t), "x", "('two', '2026-12-03', 2)")
    second = swap(wh, t, grants={"select": [reader]})
    assert second.replaced == ["x"] and second.recreated == []
    assert second.granted == []  # already held on the same objects
    assert view_columns(pg, t, "x") == ["b", "a", "c"]  # old order kept, the new column last
    assert rows(pg, 'SELECT a, b FROM "bi_append"."v"') == {("two", 2)}
    assert as_role(pg, reader, f'SELECT a, b, c::text FROM "{t}"."x"') == {("two", 2, "2026-12-03")}
    drop_all(pg, t, "bi_append")


def test_a_changed_type_under_a_readers_view_refuses_and_names_it(pg: Any, wh: PostgresWarehouse) -> None:
    t = "p_retype"
    drop_all(pg, t, "bi_retype")
    build(pg, loading_schema(t), {"x": "a integer", "y": "k text"})
    swap(wh, t)
    pg.cursor().execute(f'CREATE SCHEMA "bi_retype"; CREATE VIEW "bi_retype"."v" AS SELECT a FROM "{t}"."x"')
    build(pg, loading_schema(t), {"x": "a bigint", "y": "k text"})
    with pytest.raises(WarehouseError) as err:
        swap(wh, t)
    message = str(err.value)
    assert f"refusing to swap {loading_schema(t)} into production {t}; nothing was changed" in message
    assert f'view {t}.x changed its columns, and "bi_retype"."v" depend(s) on it' in message
    assert "WITH NO SCHEMA BINDING" not in message  # a Redshift remedy; this is PostgreSQL
    cur = pg.cursor()
    cur.execute(f"SELECT nspname FROM pg_namespace WHERE nspname LIKE '{t}%' ORDER BY 1")
    assert [r[0] for r in cur.fetchall()] == [t, live_schema(t), loading_schema(t)]  # nothing moved
    # Without the reader's view the changed view is recreated, and its privileges granted again.
    cur.execute('DROP VIEW "bi_retype"."v"')
    cur.execute(f'GRANT SELECT ON "{t}"."x" TO PUBLIC')
    report = swap(wh, t)
    assert report.recreated == ["x"] and report.replaced == ["y"]
    assert [str(p) for p in report.carried] == ["SELECT on view x to PUBLIC"]
    cur.execute(f"SELECT has_table_privilege('public', '\"{t}\".\"x\"', 'SELECT')")
    assert cur.fetchone() == (True,)
    drop_all(pg, t, "bi_retype")


def test_first_swap_from_the_table_layout_carries_privileges_and_names_stale_views(
    pg: Any, wh: PostgresWarehouse, roles: Any
) -> None:
    """A production made of tables (arm-etl before views) becomes views once: privileges on the schema and
    its tables move to the new schema and same-named views; readers' views bound to the old tables are named."""
    reader, stranger = roles
    t = "p_legacy"
    drop_all(pg, t, "bi_legacy")
    build(pg, t, {"x": "a integer"})
    fill(pg, t, "x", "(1)")
    cur = pg.cursor()
    cur.execute(f'GRANT USAGE ON SCHEMA "{t}" TO "{reader}"; GRANT SELECT ON "{t}"."x" TO "{reader}"')
    cur.execute(f'CREATE SCHEMA "bi_legacy"; CREATE VIEW "bi_legacy"."v" AS SELECT a FROM "{t}"."x"')
    build(pg, loading_schema(t), {"x": "a integer"})
    fill(pg, loading_schema(t), "x", "(2)")
    report = swap(wh, t)
    assert report.layout_before == "tables"
    assert [str(p) for p in report.carried] == [
        f"USAGE on the redshift-schema to {reader}",
        f"SELECT on view x to {reader}",
    ]
    assert report.stale == [("bi_legacy", "v", "x")]
    assert "readers' views still bound to last week's tables" in report.markdown(t, backup_schema(t))
    assert as_role(pg, reader, f'SELECT a FROM "{t}"."x"') == {(2,)}
    assert privileges(pg, stranger, t, ("x",)) == {"usage": False, "select_x": False}
    assert privileges(pg, reader, t, ("x",)) == {"usage": True, "select_x": True}
    assert rows(pg, 'SELECT a FROM "bi_legacy"."v"') == {(1,)}  # bound to the old table, now the backup
    drop_all(pg, t, "bi_legacy")


def test_grants_setting_is_checked_before_anything_runs() -> None:
    with pytest.raises(ValueError, match=r"unknown privilege\(s\) \['insert'\]"):
        prod.grants_privileges({"insert": ["x"]}, [])
    with pytest.raises(ValueError, match="expected a user name, role:<name>, group:<name> or PUBLIC"):
        prod.grants_privileges({"select": ["team:x"]}, [])
    got = prod.grants_privileges({"select": ["PUBLIC", "role:bi"]}, ["a"])
    assert [str(p) for p in got] == [
        "USAGE on the redshift-schema to PUBLIC",
        "SELECT on view a to PUBLIC",
        "USAGE on the redshift-schema to role:bi",
        "SELECT on view a to role:bi",
    ]
