"""Production as its readers see it: a redshift-schema of views over a physical one, swapped in one transaction.

Production ``T`` holds one view per table (``_etl_merged`` included), each ``SELECT <columns> FROM
"T_live".<table>``; the rows live in the physical ``T_live``. A swap renames ``T_live`` to ``T_backup``
and ``T_loading`` to ``T_live``, then points every view of ``T`` at the new ``T_live`` with ``CREATE OR
REPLACE VIEW`` — all in one transaction, so a reader sees the old production or the new one, never a mix.

Why views, from both warehouses' documentation:

* a view binds to the relation it reads, not to its name (PostgreSQL *CREATE VIEW*; Redshift *CREATE VIEW*
  for schema-bound views): a reader's view on a renamed production table would silently read the backup.
  The views of ``T`` are never renamed, so readers' views on them keep reading production;
* *CREATE VIEW* (Redshift): "When a view is replaced, its other properties such as ownership and granted
  privileges are preserved", so readers keep USAGE on ``T`` and SELECT on its views; PostgreSQL's
  ``CREATE OR REPLACE VIEW`` replaces only the query, and privileges are attributes of the same object;
* *CREATE VIEW* (Redshift): "To query a standard view, you need select permissions for the view itself,
  but you don't need select permissions for the underlying tables" — readers need nothing on ``T_live``;
  "CREATE OR REPLACE VIEW locks the view for reads and writes until the operation completes": readers
  wait for the swap's commit, and never see a half-swapped production.

Not documented for Redshift, so left to the opt-in live suite: that a schema-bound view follows a renamed
schema's table (PostgreSQL's views bind to the object; *ALTER SCHEMA* says only that "objects using the old
name, such as stored procedures or materialized views, must be updated"), and that CREATE OR REPLACE VIEW
with identical columns is accepted while other views depend on it (the page sets no other condition).

The catalog read must be complete: *SVV_RELATION_PRIVILEGES* is visible in full to superusers and users
with SYSLOG ACCESS UNRESTRICTED, *SVV_SCHEMA_PRIVILEGES* to those with ACCESS SYSTEM TABLE ("Other users
can only see identities they have access to or own"); the ETL user needs both (README, Configuration).

A view can be replaced only by a query with compatible columns: on PostgreSQL "the same columns … in the
same order and with the same data types, but may add additional columns to the end of the list"
(*CREATE VIEW*); on Redshift "the identical set of columns, using the same column names and data types".
A view whose columns changed otherwise is dropped (RESTRICT) and created again with its privileges re-granted;
if a reader's view depends on it the swap refuses before changing anything and names that view.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from arm_etl.config import live_schema
from arm_etl.warehouse import redshift_sql
from arm_etl.warehouse.base import WarehouseError
from arm_etl.warehouse.privileges import GRANT_KEYS, RELATION_PRIVILEGES, SCHEMA_PRIVILEGES, Grantee, Privilege
from arm_etl.warehouse.statement import Statement

if TYPE_CHECKING:
    from arm_etl.warehouse.base import Warehouse

quote_ident = redshift_sql.quote_ident

Layout = Literal["absent", "tables", "views"]
Column = tuple[str, tuple[Any, ...]]  # (name, (data_type, character length, numeric precision, scale))


@dataclass(frozen=True)
class ProductionState:
    """What production is before a swap, read in the swap's own transaction."""

    layout: Layout
    live_exists: bool
    columns: Mapping[str, Sequence[Column]]  # production's relations (views, or legacy tables)
    privileges: Sequence[Privilege]
    dependents: Sequence[tuple[str, str, str]]  # (schema, view, production relation it reads), outside T


@dataclass
class SwapReport:
    """What a swap did for production's readers: the centralization artifact lists it."""

    layout_before: Layout = "absent"
    replaced: list[str] = field(default_factory=list)  # views re-pointed, object kept
    recreated: list[str] = field(default_factory=list)  # dropped and created (columns changed)
    created: list[str] = field(default_factory=list)  # tables new since the last swap
    dropped: list[str] = field(default_factory=list)  # tables gone from the data-schema
    carried: list[Privilege] = field(default_factory=list)  # privileges held before, re-applied
    granted: list[Privilege] = field(default_factory=list)  # from the ``grants`` setting
    dependents: list[tuple[str, str, str]] = field(default_factory=list)  # readers' views found on T
    stale: list[tuple[str, str, str]] = field(default_factory=list)  # readers' views left on T_backup (legacy)

    def markdown(self, target: str, backup: str) -> str:
        """The readers' section of the centralization artifact."""
        lines = [f"## For readers of `{target}`", ""]
        if self.layout_before == "tables":
            lines.append(
                f"Production `{target}` was a redshift-schema of tables; it is now views over `{live_schema(target)}` "
                "(done once). "
            )
        views = [("re-pointed (same object)", self.replaced), ("recreated (columns changed)", self.recreated)]
        views += [("new", self.created), ("removed", self.dropped)]
        for what, names in views:
            if names:
                lines.append(f"- views {what}: " + ", ".join(f"`{n}`" for n in names))
        lines.append("- privileges kept: " + ("; ".join(str(p) for p in self.carried) if self.carried else "none held"))
        if self.granted:
            lines.append("- privileges granted by `grants`: " + "; ".join(str(p) for p in self.granted))
        if self.dependents:
            lines.append(
                "- readers' views on production (they read the new rows): "
                + ", ".join(f"`{s}.{v}` (reads `{r}`)" for s, v, r in self.dependents)
            )
        if self.stale:
            lines.append(
                f"- **readers' views still bound to last week's tables in `{backup}`** (created on the old "
                f"table layout; recreate them on `{target}`): "
                + ", ".join(f"`{s}.{v}` (reads `{r}`)" for s, v, r in self.stale)
            )
        return "\n".join(lines) + "\n"


def grants_privileges(grants: Mapping[str, Sequence[str]] | None, views: Sequence[str]) -> list[Privilege]:
    """The ``grants`` setting (dbt's shape: ``{"select": ["analyst", "role:bi", "group:g", "PUBLIC"]}``) as
    USAGE on production plus SELECT on each of its views; validated before anything runs."""
    if not grants:
        return []
    unknown = sorted(set(grants) - GRANT_KEYS)
    if unknown:
        raise ValueError(f"grants: unknown privilege(s) {unknown}; only 'select' (readers of production) is declared")
    out: list[Privilege] = []
    for text in grants.get("select", []):
        grantee = Grantee.parse(text)
        out.append(Privilege(None, "USAGE", grantee))
        out.extend(Privilege(v, "SELECT", grantee) for v in views)
    return out


def compatible(old: Sequence[Column], new: Sequence[Column], appends: bool) -> list[str] | None:
    """The view's column list over ``new`` that replaces a view of ``old`` columns, or None if none can.

    Old columns keep their order (both warehouses require the same names and types); new ones go at the
    end where the dialect allows it (``appends``: PostgreSQL), else the sets must be equal (Redshift)."""
    new_types = dict(new)
    if any(name not in new_types or new_types[name] != typ for name, typ in old):
        return None
    kept = [name for name, _ in old]
    added = [name for name, _ in new if name not in set(kept)]
    if added and not appends:
        return None
    return kept + added


@dataclass(frozen=True)
class ViewPlan:
    """The view statements of one swap and what they mean for readers."""

    statements: list[Statement]
    report: SwapReport
    blocked: list[str]  # refusals: a reader's view depends on a view whose columns cannot be kept


def plan_views(
    wh: Warehouse,
    target: str,
    live: str,
    state: ProductionState,
    new: Mapping[str, Sequence[Column]],
    grants: Mapping[str, Sequence[str]] | None = None,
) -> ViewPlan:
    """Statements that point ``target``'s views at ``live`` (after the renames), keep privileges, apply grants."""
    report = SwapReport(layout_before=state.layout)
    readers: dict[str, list[tuple[str, str, str]]] = {}
    for dep in state.dependents:
        readers.setdefault(dep[2], []).append(dep)
    views = state.columns if state.layout == "views" else {}
    out: list[Statement] = []
    blocked: list[str] = []
    recreate: set[str] = set()
    for name in sorted(views.keys() - new.keys()):
        if readers.get(name):
            blocked.append(_blocked(wh, target, name, readers[name], "is no longer in the data-schema"))
        out.append(Statement(redshift_sql.drop_relation(target, name, view=True)))
        report.dropped.append(name)
    for name in sorted(new):
        columns = [c for c, _ in new[name]]
        if name in views:
            kept = compatible(views[name], new[name], wh.views_append_columns)
            if kept is not None:
                out.append(Statement(create_view(target, name, live, kept, replace=True)))
                report.replaced.append(name)
                continue
            if readers.get(name):
                blocked.append(_blocked(wh, target, name, readers[name], "changed its columns"))
            out.append(Statement(redshift_sql.drop_relation(target, name, view=True)))
            recreate.add(name)
            report.recreated.append(name)
        else:
            report.created.append(name)
        out.append(Statement(create_view(target, name, live, columns)))
    if state.layout == "tables":
        report.stale = list(state.dependents)
    elif state.layout == "views":
        report.dependents = list(state.dependents)
    # Privileges held before the swap: the views kept hold theirs (*CREATE VIEW*), a recreated view, and every
    # view of a first swap from the table layout, get them again; schema privileges move with a new schema.
    existing = set(new)
    for p in state.privileges:
        if p.relation is not None and p.relation not in existing:
            continue
        report.carried.append(p)
        fresh = state.layout != "views" or p.relation in recreate
        if fresh and p.privilege in (RELATION_PRIVILEGES if p.relation else SCHEMA_PRIVILEGES):
            out.append(grant_statement(wh, target, p))
    held = set(state.privileges) | {Privilege(p.relation, p.privilege, p.grantee, True) for p in state.privileges}
    for p in grants_privileges(grants, sorted(new)):
        if p in held and state.layout == "views" and p.relation not in recreate:
            continue  # already held on the same object
        report.granted.append(p)
        out.append(grant_statement(wh, target, p))
    return ViewPlan(out, report, blocked)


def _blocked(wh: Warehouse, target: str, name: str, deps: Sequence[tuple[str, str, str]], why: str) -> str:
    names = ", ".join(f"{quote_ident(s)}.{quote_ident(v)}" for s, v, _ in deps)
    hint = " (or as late-binding views: CREATE VIEW … WITH NO SCHEMA BINDING)" if wh.dialect == "redshift" else ""
    return (
        f"view {target}.{name} {why}, and {names} depend(s) on it: drop those views, run centralization again, "
        f"then recreate them on {target}.{name}{hint}"
    )


def create_view(schema: str, name: str, source: str, columns: Sequence[str], replace: bool = False) -> str:
    """``CREATE [OR REPLACE] VIEW "T"."x" AS SELECT <columns> FROM "T_live"."x"`` (*CREATE VIEW*: "CREATE [ OR
    REPLACE ] VIEW name [ ( column_name [, ...] ) ] AS query"); columns named, never ``*``, so the order
    a replacement must keep is the one written here."""
    if not columns:
        raise ValueError(f"view {schema}.{name}: no columns")
    cols = ", ".join(quote_ident(c) for c in columns)
    verb = "CREATE OR REPLACE VIEW" if replace else "CREATE VIEW"
    view, table = f"{quote_ident(schema)}.{quote_ident(name)}", f"{quote_ident(source)}.{quote_ident(name)}"
    return f"{verb} {view} AS SELECT {cols} FROM {table}"


_PRIVILEGE_RE: Final = re.compile(r"[A-Z]+")


def grant_statement(wh: Warehouse, schema: str, p: Privilege) -> Statement:
    """``GRANT <privilege> ON SCHEMA s | ON TABLE s.v TO <grantee> [WITH GRANT OPTION]`` (*GRANT*: "TO { username
    [ WITH GRANT OPTION ] | ROLE role_name | GROUP group_name | PUBLIC }"); the keyword is checked against the
    documented list, so nothing read from a catalog becomes SQL text unchecked."""
    allowed = SCHEMA_PRIVILEGES if p.relation is None else RELATION_PRIVILEGES
    if not _PRIVILEGE_RE.fullmatch(p.privilege) or p.privilege not in allowed:
        where = "a redshift-schema" if p.relation is None else "a table or view"
        raise ValueError(f"privilege {p.privilege!r} cannot be granted on {where} (allowed: {sorted(allowed)})")
    on = (
        f"SCHEMA {quote_ident(schema)}"
        if p.relation is None
        else f"TABLE {quote_ident(schema)}.{quote_ident(p.relation)}"  # TABLE covers views (*GRANT* examples)
    )
    option = " WITH GRANT OPTION" if p.grant_option and p.grantee.kind == "user" else ""
    return Statement(f"GRANT {p.privilege} ON {on} TO {wh.grantee_sql(p.grantee)}{option}")


def read_state(wh: Warehouse, cur: Any, target: str, live: str) -> ProductionState:
    """Production's layout, columns, privileges and readers' views, inside the caller's transaction."""
    live_exists = bool(_fetch(wh, cur, wh.schema_exists_statement(), live))
    if not _fetch(wh, cur, wh.schema_exists_statement(), target):
        return ProductionState("absent", live_exists, {}, [], [])
    relations = _fetch(wh, cur, wh.relations_statement(), target)
    layout: Layout = "views" if relations and all(bool(v) for _, v in relations) else "tables"
    if not relations:
        layout = "views" if live_exists else "tables"
    privileges = [
        Privilege(None, str(priv).upper(), wh.grantee_from_catalog(str(kind), str(name)), bool(opt))
        for priv, kind, name, opt in _fetch(wh, cur, wh.schema_privileges_statement(), target)
    ] + [
        Privilege(str(rel), str(priv).upper(), wh.grantee_from_catalog(str(kind), str(name)), bool(opt))
        for rel, priv, kind, name, opt in _fetch(wh, cur, wh.relation_privileges_statement(), target)
    ]
    dependents = [(str(s), str(v), str(r)) for s, v, r in _fetch(wh, cur, wh.dependents_statement(), target)]
    return ProductionState(
        layout, live_exists, read_columns(wh, cur, target), sorted(set(privileges), key=Privilege.key), dependents
    )


def read_columns(wh: Warehouse, cur: Any, schema: str) -> dict[str, list[Column]]:
    """Every relation's columns in order, with the catalog's type description (compared, never rendered)."""
    out: dict[str, list[Column]] = {}
    for table, column, data_type, length, precision, scale in _fetch(wh, cur, wh.columns_statement(), schema):
        out.setdefault(str(table), []).append((str(column), (str(data_type), length, precision, scale)))
    return out


def _fetch(wh: Warehouse, cur: Any, statement: Statement, schema: str) -> list[tuple[Any, ...]]:
    wh.execute(cur, statement, {"schema": schema})
    return list(cur.fetchall())


def rotates(state: ProductionState) -> bool:
    """Whether the swap moves an existing physical production to the backup (dropping the previous backup)."""
    return state.layout == "tables" or state.live_exists


def swap_statements(
    target: str, loading: str, live: str, backup: str, state: ProductionState, plan: ViewPlan
) -> list[Statement]:
    """After the previous backup's drop, in the same transaction: the renames, ``T`` itself when it is new
    (or held tables until now), and the view statements."""
    out: list[Statement] = []
    if rotates(state):
        physical = target if state.layout == "tables" else live
        out.append(Statement(redshift_sql.rename_schema(physical, backup)))
    out.append(Statement(redshift_sql.rename_schema(loading, live)))
    if state.layout != "views":
        out.append(Statement(redshift_sql.create_schema(target)))
    return out + plan.statements


def plan_swap(
    wh: Warehouse, cur: Any, target: str, loading: str, live: str, grants: Mapping[str, Sequence[str]] | None
) -> tuple[ProductionState, ViewPlan]:
    """Read production and the loading redshift-schema, plan the views; refuse if a reader's view would break."""
    state = read_state(wh, cur, target, live)
    plan = plan_views(wh, target, live, state, read_columns(wh, cur, loading), grants)
    if plan.blocked:
        raise WarehouseError(
            f"refusing to swap {loading} into production {target}; nothing was changed:\n  " + "\n  ".join(plan.blocked)
        )
    return state, plan


def swap(
    wh: Warehouse,
    target: str,
    loading: str,
    live: str,
    backup: str,
    grants: Mapping[str, Sequence[str]] | None = None,
) -> SwapReport:
    """One transaction: old backup dropped (never CASCADE), ``T_live``→``T_backup``, ``T_loading``→``T_live``,
    ``T``'s views re-pointed, privileges kept, ``grants`` applied. A failure anywhere rolls it all back."""
    with wh.transaction() as cur:
        state, plan = plan_swap(wh, cur, target, loading, live, grants)
        if rotates(state):
            wh.drop_schema_in(cur, backup)
        for st in swap_statements(target, loading, live, backup, state, plan):
            wh.execute(cur, st)
    return plan.report


def preview(
    wh: Warehouse, target: str, loading: str, live: str, grants: Mapping[str, Sequence[str]] | None = None
) -> SwapReport:
    """What :func:`swap` would do, read-only (shown before an operator approves); raises where it would refuse."""
    with wh.transaction() as cur:
        return plan_swap(wh, cur, target, loading, live, grants)[1].report
