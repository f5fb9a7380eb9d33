"""What every warehouse does: connections, transactions, and the statements arm-etl runs on them.

A dialect subclass (:mod:`.postgres`, :mod:`.redshift`) supplies only what differs: column types
and DDL, how a segment's parts are loaded, how a segment table is appended, the lock report. Each
statement is built once by a ``*_statements`` method; the operations run those same statements, and
``arm-etl sql`` prints them (:mod:`.script`), so what a DBA reviews is what runs.
"""

from __future__ import annotations

import gzip
import io
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import psycopg2
import psycopg2.errors
from sqlalchemy.engine import URL, make_url

from arm_etl.csvformat import CsvDialect
from arm_etl.errors import ArmEtlError, is_transient
from arm_etl.warehouse import redshift_sql
from arm_etl.warehouse.bookkeeping import (
    MARKER_COLUMNS,
    MERGED_COLUMNS,
    MERGED_TABLE,
    SEGMENT_MARKER,
    Columns,
    MergedRow,
    SegmentMarker,
    column_names,
)
from arm_etl.warehouse.statement import Statement

if TYPE_CHECKING:
    from arm_etl.warehouse.auth import CredentialProvider
    from arm_etl.warehouse.privileges import Grantee

log = logging.getLogger("arm_etl.warehouse")

DEFAULT_STATEMENT_TIMEOUT_MS = 3_600_000
quote_ident = redshift_sql.quote_ident
Tables = Sequence[tuple[str, Columns]]


class WarehouseError(ArmEtlError):
    """A warehouse statement failed; the message names the schema, table, file and reason."""


@dataclass(frozen=True)
class PartLoad:
    """One CSV part to stream into a table (PostgreSQL loads part by part)."""

    key: str
    table: str
    columns: Sequence[str]
    rows: int
    origin: str  # s3:// URL, for messages
    data: bytes
    compressed: bool


@dataclass(frozen=True)
class TableCopy:
    """One table's COPY from its manifest of parts (Redshift loads a segment table in one COPY)."""

    table: str
    columns: Sequence[str]
    manifest_url: str


def _name(schema: str, table: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(table)}"


class Warehouse(ABC):
    """A connection factory and every statement arm-etl runs, for one warehouse."""

    dialect: ClassVar[str]
    name_limit: ClassVar[int]  # bytes of UTF-8 in an identifier
    needs_copy_manifests: ClassVar[bool] = False  # the S3 upload writes one COPY manifest per table

    def __init__(
        self,
        url: str | URL | None = None,
        iam_role: str | None = None,
        statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
        region: str | None = None,
        credentials: CredentialProvider | None = None,
    ):
        self.url = make_url(url) if url is not None else None
        self.iam_role = iam_role
        self.region = region
        self.statement_timeout_ms = statement_timeout_ms
        self.credentials = credentials
        redshift_sql.set_statement_timeout(statement_timeout_ms)  # validates the value once

    def __repr__(self) -> str:
        shown = self.url.render_as_string(hide_password=True) if self.url is not None else "no connection"
        return f"{type(self).__name__}({shown!r})"

    # ---------------------------------------------------------------- dialect

    @property
    @abstractmethod
    def csv(self) -> CsvDialect:
        """How the CSV parts for this warehouse write NULL, '' and binary."""

    @abstractmethod
    def create_table_statements(self, schema: str, table: str, columns: Columns) -> list[Statement]:
        """CREATE TABLE (and what the dialect adds) for one table."""

    @abstractmethod
    def append_statements(
        self, target_schema: str, source_schema: str, table: str, columns: Columns
    ) -> list[Statement]:
        """Move every row of ``source_schema.table`` into ``target_schema.table``."""

    @abstractmethod
    def lock_report_statement(self) -> Statement:
        """Who holds or waits for table locks (run after a statement timeout)."""

    # ---------------------------------------------------------------- production's catalog (:mod:`.production`)

    views_append_columns: ClassVar[bool]  # CREATE OR REPLACE VIEW may add columns at the end

    @abstractmethod
    def columns_statement(self) -> Statement:
        """``schema``'s relations' columns in order: (relation, column, data type, length, precision, scale)."""

    @abstractmethod
    def schema_privileges_statement(self) -> Statement:
        """Privileges granted on ``schema`` itself: (privilege, grantee kind, grantee, grant option)."""

    @abstractmethod
    def relation_privileges_statement(self) -> Statement:
        """Privileges granted on ``schema``'s relations: (relation, privilege, grantee kind, grantee, grant option)."""

    @abstractmethod
    def grantee_from_catalog(self, kind: str, name: str) -> Grantee:
        """A grantee as the privilege statements report it."""

    @abstractmethod
    def grantee_sql(self, grantee: Grantee) -> str:
        """The TO clause's grantee."""

    def catalog_name(self, name: str) -> str:
        """A name as the catalog reports it (what ``columns_statement`` returns for it)."""
        return name

    load_statements_comment: ClassVar[str]

    @abstractmethod
    def load_statements(self, schema: str, tables: Tables, manifest_url: Callable[[str], str]) -> list[Statement]:
        """The load's statements for each table (for review: what :meth:`load_parts` / :meth:`load_tables` run)."""

    def load_parts(self, schema: str, parts: Iterable[PartLoad]) -> Iterator[tuple[PartLoad, int]]:
        """Stream parts into ``schema``, yielding each with its loaded rows once committed.

        The default loads nothing per part: the dialect loads whole tables in :meth:`load_tables`.
        """
        return iter(())

    def load_tables(self, schema: str, copies: Sequence[TableCopy]) -> None:  # noqa: B027 (a no-op by default)
        """Load whole tables from their COPY manifests. The default has none: parts were streamed."""

    def connect_kwargs(self) -> dict[str, Any]:
        """psycopg2 connection arguments; subclasses add their TLS defaults."""
        if self.url is None:
            raise WarehouseError(f"{self!r} renders SQL only: set ARM_ETL_WAREHOUSE_URL or a redshift block")
        kwargs: dict[str, Any] = self.url.translate_connect_args(username="user", database="dbname")
        kwargs.setdefault("dbname", "postgres")
        for k, v in self.url.query.items():
            kwargs[k] = v if isinstance(v, str) else v[-1]
        if self.credentials is not None:
            creds = self.credentials()
            kwargs["user"], kwargs["password"] = creds.user, creds.password
        return kwargs

    # ---------------------------------------------------------------- connections

    def connect(self) -> Any:
        try:
            conn = psycopg2.connect(**self.connect_kwargs())
        except psycopg2.OperationalError as exc:
            raise WarehouseError(f"cannot connect to warehouse {self!r}: {str(exc).strip()}", transient=True) from None
        with conn.cursor() as cur:
            for st in self.connect_statements():
                cur.execute(st.sql)
        conn.commit()
        return conn

    def connect_statements(self) -> list[Statement]:
        """What every connection runs first: the statement timeout (a lock wait fails instead of hanging)."""
        return [Statement(redshift_sql.set_statement_timeout(self.statement_timeout_ms))]

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """One connection for several transactions (a chunk's parts): a new connection costs PostgreSQL a
        backend start, which for a chunk's ~40 small parts was more CPU than the COPYs themselves."""
        conn = self.connect()
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A cursor in one transaction: committed on success, rolled back on any error."""
        with self.connection() as conn:
            try:
                with conn.cursor() as cur:
                    yield cur
                conn.commit()
            except BaseException:
                conn.rollback()
                raise

    def execute(self, cur: Any, statement: Statement, values: Mapping[str, Any] | None = None) -> None:
        """Run one statement; a statement timeout becomes an error listing the blocking sessions."""
        bound = {k: values[k] for k in statement.params} if statement.params and values is not None else None
        try:
            cur.execute(statement.sql, bound)
        except psycopg2.errors.QueryCanceled as exc:
            raise WarehouseError(
                f"statement timed out after {self.statement_timeout_ms} ms (on Redshift this includes WLM queue "
                f"time): {statement.sql[:200]}\nblocking sessions:\n{self.lock_report()}",
                transient=True,
            ) from exc
        except psycopg2.Error as exc:
            if is_transient(exc):
                raise WarehouseError(f"{statement.sql[:200]}: {str(exc).strip()}", transient=True) from exc
            raise

    def lock_report(self) -> str:
        try:
            with self.connection() as conn, conn.cursor() as cur:
                cur.execute(self.lock_report_statement().sql)
                rows = cur.fetchall()
        except Exception as exc:  # the report is best effort; the timeout is the error
            return f"(could not read locks: {exc})"
        return "\n".join("  " + " | ".join(str(c) for c in r) for r in rows) or "  (none found)"

    # ---------------------------------------------------------------- statements

    def create_schema_statements(self, schema: str, tables: Tables) -> list[Statement]:
        out = [Statement(redshift_sql.create_schema(schema))]
        for name, columns in tables:
            out.extend(self.create_table_statements(schema, name, columns))
        return out

    def drop_schema_statements(self, schema: str, relations: Sequence[tuple[str, bool]]) -> list[Statement]:
        """Drop ``schema``'s own ``(name, is_view)`` relations, then the schema: never CASCADE, so the
        warehouse itself refuses if anything outside depends on them (checked first: :meth:`drop_schema`)."""
        views = sorted(n for n, v in relations if v)
        tables = sorted(n for n, v in relations if not v)
        return [
            *(Statement(redshift_sql.drop_relation(schema, n, view=True)) for n in views),
            *(Statement(redshift_sql.drop_relation(schema, n)) for n in tables),
            Statement(redshift_sql.drop_schema(schema)),
        ]

    def relations_statement(self) -> Statement:
        """The schema's tables and views, each with whether it is a view."""
        return Statement(
            "SELECT c.relname, c.relkind = 'v' FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'v') ORDER BY c.relname",
            ("schema",),
        )

    def dependents_statement(self) -> Statement:
        """Views outside ``schema`` that depend on a relation in it: (their schema, name, the relation).

        PostgreSQL records a view's dependencies from its ON SELECT rule (``pg_rewrite``) in ``pg_depend``
        (*pg_depend* catalog); the Redshift subclass uses the form AWS documents for Redshift."""
        return Statement(
            "SELECT DISTINCT vn.nspname, v.relname, t.relname FROM pg_depend d "
            "JOIN pg_rewrite w ON w.oid = d.objid JOIN pg_class v ON v.oid = w.ev_class "
            "JOIN pg_namespace vn ON vn.oid = v.relnamespace JOIN pg_class t ON t.oid = d.refobjid "
            "JOIN pg_namespace tn ON tn.oid = t.relnamespace "
            "WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass "
            "AND tn.nspname = %(schema)s AND vn.nspname <> %(schema)s AND v.oid <> t.oid ORDER BY 1, 2, 3",
            ("schema",),
        )

    def replace_schema_statements(
        self, staging: str, target: str, target_relations: Sequence[tuple[str, bool]] = ()
    ) -> list[Statement]:
        """``target`` := ``staging``: drop the old target, rename (one transaction)."""
        return [*self.drop_schema_statements(target, target_relations), self.rename_statement(staging, target)]

    def rename_statement(self, old: str, new: str) -> Statement:
        return Statement(redshift_sql.rename_schema(old, new))

    def count_statement(self, schema: str, table: str) -> Statement:
        return Statement(f"SELECT count(*) FROM {_name(schema, table)}")

    def schema_exists_statement(self) -> Statement:
        return Statement("SELECT 1 FROM pg_namespace WHERE nspname = %(schema)s", ("schema",))

    def tables_statement(self) -> Statement:
        """The schema's tables and views by name: production's are views (:mod:`.production`)."""
        return Statement(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'v') ORDER BY c.relname",
            ("schema",),
        )

    def mark_segment_statements(self, schema: str) -> list[Statement]:
        """Exactly one marker row: a retried finish deletes the earlier one first."""
        marker = _name(schema, SEGMENT_MARKER)
        return [Statement(f"DELETE FROM {marker}"), _insert(marker, MARKER_COLUMNS)]

    def read_marker_statement(self, schema: str) -> Statement:
        return _select(_name(schema, SEGMENT_MARKER), MARKER_COLUMNS)

    def record_merged_statement(self, schema: str) -> Statement:
        return _insert(_name(schema, MERGED_TABLE), MERGED_COLUMNS)

    def read_merged_statement(self, schema: str) -> Statement:
        return _select(_name(schema, MERGED_TABLE), MERGED_COLUMNS)

    # ---------------------------------------------------------------- operations

    def schema_exists(self, schema: str) -> bool:
        with self.transaction() as cur:
            self.execute(cur, self.schema_exists_statement(), {"schema": schema})
            return cur.fetchone() is not None

    def tables(self, schema: str) -> list[str]:
        with self.transaction() as cur:
            self.execute(cur, self.tables_statement(), {"schema": schema})
            return [r[0] for r in cur.fetchall()]

    def counts(self, schema: str, tables: Sequence[str] | None = None) -> dict[str, int]:
        """Row count of every (or each given) table of ``schema``."""
        names = list(tables) if tables is not None else self.tables(schema)
        out: dict[str, int] = {}
        if not names:
            return out
        with self.transaction() as cur:
            for name in names:
                self.execute(cur, self.count_statement(schema, name))
                out[name] = int(cur.fetchone()[0])
        return out

    def drop_schema_in(self, cur: Any, schema: str) -> None:
        """Drop ``schema`` and its own relations inside the caller's transaction, never CASCADE.

        Views elsewhere that depend on it (a reader's view on last week's backup, say) are looked up
        first: then nothing is dropped and the error names them, since arm-etl drops only what it owns."""
        self.execute(cur, self.dependents_statement(), {"schema": schema})
        dependents = cur.fetchall()
        if dependents:
            names = ", ".join(f"{quote_ident(s)}.{quote_ident(v)} (reads {schema}.{t})" for s, v, t in dependents)
            raise WarehouseError(
                f"refusing to drop redshift-schema {schema}: {names} depend(s) on it, and arm-etl drops only "
                "what it owns; nothing was dropped. Recreate those views on the production redshift-schema "
                "(on Redshift, CREATE VIEW … WITH NO SCHEMA BINDING does not bind to a table) or drop them, "
                "then run again."
            )
        self.execute(cur, self.relations_statement(), {"schema": schema})
        relations = [(str(name), bool(is_view)) for name, is_view in cur.fetchall()]
        for st in self.drop_schema_statements(schema, relations):
            self.execute(cur, st)

    def recreate_schema(self, schema: str, tables: Tables) -> None:
        """Drop and create ``schema`` with empty ``tables``, in one transaction."""
        with self.transaction() as cur:
            self.drop_schema_in(cur, schema)
            for st in self.create_schema_statements(schema, tables):
                self.execute(cur, st)

    def drop_schema(self, schema: str) -> None:
        with self.transaction() as cur:
            self.drop_schema_in(cur, schema)

    def replace_schema(self, staging: str, target: str) -> None:
        """``target`` := ``staging`` atomically (drop the old target, rename), one transaction."""
        with self.transaction() as cur:
            self.drop_schema_in(cur, target)
            self.execute(cur, self.rename_statement(staging, target))

    def mark_segment(self, schema: str, marker: SegmentMarker) -> None:
        with self.transaction() as cur:
            for st in self.mark_segment_statements(schema):
                self.execute(cur, st, marker.values())

    def read_marker(self, schema: str) -> dict[str, Any] | None:
        """The segment marker row, or None when the schema holds no loaded segment."""
        if not self.schema_exists(schema):
            return None
        with self.transaction() as cur:
            try:
                self.execute(cur, self.read_marker_statement(schema))
            except (psycopg2.errors.UndefinedTable, psycopg2.errors.InvalidSchemaName):
                return None  # a schema without a marker is not a loaded segment
            row = cur.fetchone()
        return dict(zip(column_names(MARKER_COLUMNS), row, strict=True)) if row else None

    def read_merged(self, schema: str) -> list[dict[str, Any]]:
        """Progress rows of ``schema._etl_merged`` (empty if the schema or table is absent)."""
        if not self.schema_exists(schema) or MERGED_TABLE not in self.tables(schema):
            return []
        with self.transaction() as cur:
            self.execute(cur, self.read_merged_statement(schema))
            names = column_names(MERGED_COLUMNS)
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def record_merged(self, schema: str, row: MergedRow) -> None:
        with self.transaction() as cur:
            self.execute(cur, self.record_merged_statement(schema), row.values())

    def append(self, target_schema: str, source_schema: str, table: str, columns: Columns, record: MergedRow) -> None:
        """Move one segment table's rows into the loading table and record it, exactly once.

        Statements flagged ``autocommit`` (Redshift's APPEND) run first and commit by themselves; the rest,
        and the progress row, run in one transaction, which also checks the row count of a ``moves_rows`` one.
        """
        statements = self.append_statements(target_schema, source_schema, table, columns)
        with self.connection() as conn:
            conn.autocommit = True
            for st in (s for s in statements if s.autocommit):
                with conn.cursor() as cur:
                    self.execute(cur, st)
            conn.autocommit = False
            try:
                with conn.cursor() as cur:
                    for st in (s for s in statements if not s.autocommit):
                        self.execute(cur, st)
                        if st.moves_rows and cur.rowcount != record.rows:
                            raise WarehouseError(
                                f"{source_schema}.{table}: moved {cur.rowcount} rows, manifest says {record.rows}"
                            )
                    self.execute(cur, self.record_merged_statement(target_schema), record.values())
                conn.commit()
            except BaseException:
                conn.rollback()
                raise


def _insert(table: str, columns: Columns) -> Statement:
    names = column_names(columns)
    cols = ", ".join(quote_ident(c) for c in names)
    values = ", ".join(f"%({c})s" for c in names)
    return Statement(f"INSERT INTO {table} ({cols}) VALUES ({values})", names)


def _select(table: str, columns: Columns) -> Statement:
    return Statement(f"SELECT {', '.join(quote_ident(c) for c in column_names(columns))} FROM {table}")


def part_file(data: bytes, compressed: bool) -> io.BufferedIOBase:
    """A file over one part's CSV bytes, gunzipping if ``compressed``."""
    raw = io.BytesIO(data)
    return gzip.GzipFile(fileobj=raw) if compressed else raw
