"""The production swap's statements on Redshift, checked against the documented rules (no cluster needed).

PostgreSQL runs the same plan for real (tests/test_production.py); what differs on Redshift is written here
as exact text and checked by tests/redshift_rules.py: *CREATE VIEW* (a replacement keeps "the identical
set of columns"), *GRANT* (grantee forms), *SVV_SCHEMA_PRIVILEGES* / *SVV_RELATION_PRIVILEGES* / *SVV_COLUMNS*.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from arm_etl.warehouse import RedshiftWarehouse, warehouse_for
from arm_etl.warehouse import production as prod
from arm_etl.warehouse.privileges import Grantee, Privilege
from tests import redshift_rules as rules

INT = ("integer", None, 32, 0)
TEXT = ("character varying", 64, None, None)


def redshift() -> RedshiftWarehouse:
    wh = warehouse_for(dialect="redshift")
    assert isinstance(wh, RedshiftWarehouse)
    return wh


Columns = dict[str, list[prod.Column]]


def statements(state: prod.ProductionState, new: Columns, grants: dict[str, list[str]] | None = None) -> list[str]:
    plan = prod.plan_views(redshift(), "p", "p_live", state, new, grants)
    assert plan.blocked == []
    return [st.sql for st in prod.swap_statements("p", "p_loading", "p_live", "p_backup", state, plan)]


def views(
    columns: Columns, privileges: Sequence[Privilege] = (), deps: Sequence[tuple[str, str, str]] = ()
) -> prod.ProductionState:
    return prod.ProductionState("views", True, columns, list(privileges), list(deps))


READER = Grantee("user", "ann")
BI = Grantee("role", "bi")
TEAM = Grantee("group", "team")
EVERYONE = Grantee("public", "PUBLIC")


def test_unchanged_columns_replace_every_view_in_place_in_one_transaction() -> None:
    cols: Columns = {"a": [("k", TEXT), ("n", INT)], "_etl_merged": [("segment", INT)]}
    held = [Privilege(None, "USAGE", READER), Privilege("a", "SELECT", READER)]
    got = statements(views(cols, held), {"a": [("n", INT), ("k", TEXT)], "_etl_merged": [("segment", INT)]})
    assert got == [
        'ALTER SCHEMA "p_live" RENAME TO "p_backup"',
        'ALTER SCHEMA "p_loading" RENAME TO "p_live"',
        'CREATE OR REPLACE VIEW "p"."_etl_merged" AS SELECT "segment" FROM "p_live"."_etl_merged"',
        'CREATE OR REPLACE VIEW "p"."a" AS SELECT "k", "n" FROM "p_live"."a"',  # the view's order, not the table's
    ]  # privileges held on kept views need no statement: "ownership and granted privileges are preserved"
    assert all(rules.violations(s) == [] for s in got)


def test_a_new_column_on_redshift_recreates_the_view_and_grants_its_privileges_again() -> None:
    """Redshift replaces a view only with "the identical set of columns": a new column means drop + create."""
    held = [
        Privilege(None, "USAGE", BI),
        Privilege("a", "SELECT", READER, grant_option=True),
        Privilege("a", "SELECT", BI),
        Privilege("a", "SELECT", TEAM),
        Privilege("a", "SELECT", EVERYONE),
    ]
    got = statements(views({"a": [("k", TEXT)]}, held), {"a": [("k", TEXT), ("m", INT)]})
    assert got[2:] == [
        'DROP VIEW IF EXISTS "p"."a"',
        'CREATE VIEW "p"."a" AS SELECT "k", "m" FROM "p_live"."a"',
        'GRANT SELECT ON TABLE "p"."a" TO "ann" WITH GRANT OPTION',
        'GRANT SELECT ON TABLE "p"."a" TO ROLE "bi"',
        'GRANT SELECT ON TABLE "p"."a" TO GROUP "team"',
        'GRANT SELECT ON TABLE "p"."a" TO PUBLIC',
    ]
    assert all(rules.violations(s) == [] for s in got)


def test_a_changed_view_with_a_readers_view_on_it_refuses_with_the_late_binding_remedy() -> None:
    state = views({"a": [("k", TEXT)], "gone": [("x", INT)]}, deps=[("bi", "v", "a"), ("bi", "w", "gone")])
    plan = prod.plan_views(redshift(), "p", "p_live", state, {"a": [("k", INT)]})
    assert plan.blocked == [
        'view p.gone is no longer in the data-schema, and "bi"."w" depend(s) on it: drop those views, run '
        "centralization again, then recreate them on p.gone (or as late-binding views: CREATE VIEW … WITH NO "
        "SCHEMA BINDING)",
        'view p.a changed its columns, and "bi"."v" depend(s) on it: drop those views, run centralization again, '
        "then recreate them on p.a (or as late-binding views: CREATE VIEW … WITH NO SCHEMA BINDING)",
    ]


def test_the_first_production_is_a_new_schema_of_views_with_the_grants_setting() -> None:
    state = prod.ProductionState("absent", False, {}, [], [])
    got = statements(state, {"a": [("k", TEXT)]}, {"select": ["ann", "role:bi", "group:team", "PUBLIC"]})
    assert got == [
        'ALTER SCHEMA "p_loading" RENAME TO "p_live"',
        'CREATE SCHEMA IF NOT EXISTS "p"',
        'CREATE VIEW "p"."a" AS SELECT "k" FROM "p_live"."a"',
        'GRANT USAGE ON SCHEMA "p" TO "ann"',
        'GRANT SELECT ON TABLE "p"."a" TO "ann"',
        'GRANT USAGE ON SCHEMA "p" TO ROLE "bi"',
        'GRANT SELECT ON TABLE "p"."a" TO ROLE "bi"',
        'GRANT USAGE ON SCHEMA "p" TO GROUP "team"',
        'GRANT SELECT ON TABLE "p"."a" TO GROUP "team"',
        'GRANT USAGE ON SCHEMA "p" TO PUBLIC',
        'GRANT SELECT ON TABLE "p"."a" TO PUBLIC',
    ]
    assert all(rules.violations(s) == [] for s in got)


def test_a_production_of_tables_moves_to_the_backup_once_and_its_privileges_to_the_views() -> None:
    held = [Privilege(None, "USAGE", BI), Privilege("a", "SELECT", BI), Privilege("old", "SELECT", BI)]
    state = prod.ProductionState("tables", False, {"a": [("k", TEXT)], "old": [("x", INT)]}, held, [("bi", "v", "a")])
    plan = prod.plan_views(redshift(), "p", "p_live", state, {"a": [("k", TEXT)]})
    assert [st.sql for st in prod.swap_statements("p", "p_loading", "p_live", "p_backup", state, plan)] == [
        'ALTER SCHEMA "p" RENAME TO "p_backup"',
        'ALTER SCHEMA "p_loading" RENAME TO "p_live"',
        'CREATE SCHEMA IF NOT EXISTS "p"',
        'CREATE VIEW "p"."a" AS SELECT "k" FROM "p_live"."a"',
        'GRANT USAGE ON SCHEMA "p" TO ROLE "bi"',
        'GRANT SELECT ON TABLE "p"."a" TO ROLE "bi"',
    ]
    assert plan.report.stale == [("bi", "v", "a")] and plan.blocked == []


def test_catalog_privileges_become_sql_only_in_documented_forms() -> None:
    wh = redshift()
    assert wh.grantee_from_catalog("role ", "bi ") == BI
    with pytest.raises(Exception, match="unknown identity_type 'team'"):
        wh.grantee_from_catalog("team", "x")
    with pytest.raises(ValueError, match="privilege 'EXECUTE' cannot be granted on a table or view"):
        prod.grant_statement(wh, "p", Privilege("a", "EXECUTE", READER))
    with pytest.raises(ValueError, match="privilege 'SELECT; DROP' cannot be granted on a redshift-schema"):
        prod.grant_statement(wh, "p", Privilege(None, "SELECT; DROP", READER))
    # WITH GRANT OPTION only for a user (*GRANT*); a group's is dropped rather than rejected by Redshift.
    assert prod.grant_statement(wh, "p", Privilege("a", "SELECT", TEAM, True)).sql == (
        'GRANT SELECT ON TABLE "p"."a" TO GROUP "team"'
    )


def test_the_catalog_reads_use_the_documented_system_views() -> None:
    wh = redshift()
    assert "FROM svv_schema_privileges WHERE namespace_name = %(schema)s AND privilege_scope = 'SCHEMA'" in (
        wh.schema_privileges_statement().sql
    )
    assert "FROM svv_relation_privileges WHERE namespace_name = %(schema)s" in wh.relation_privileges_statement().sql
    assert "FROM svv_columns WHERE table_schema = %(schema)s" in wh.columns_statement().sql
    for st in (wh.schema_privileges_statement(), wh.relation_privileges_statement(), wh.columns_statement()):
        assert rules.violations(st.display()) == []
