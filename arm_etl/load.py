"""Warehouse load: DDL, COPY and atomic schema swaps on PostgreSQL (executed) or Redshift (compiled SQL).

A reader never sees a half-loaded table: a segment loads into ``<schema>__staging`` and replaces the
segment schema in one transaction (drop + rename), after its row counts matched the manifest.
Every statement runs with a statement timeout; on a timeout the error lists the blocking sessions.
"""

from __future__ import annotations

import gzip
import io
import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg2
import psycopg2.errors
from sqlalchemy.engine import URL, make_url

from arm_etl.warehouse import redshift_sql
from arm_etl.csvformat import POSTGRESQL, CsvDialect, redshift_dialect
from arm_etl.dataschema import METADATA_COLUMNS, REJECTS_COLUMNS, REJECTS_TABLE, DataSchema

log = logging.getLogger("arm_etl.load")

DEFAULT_STATEMENT_TIMEOUT_MS = 3_600_000
COPY_READ_BYTES = 1 << 20
_PG_TYPES = [(re.compile(r"^VARBYTE(\(\d+\))?$"), "BYTEA"), (re.compile(r"^SUPER$"), "JSONB")]
_PG_VARLENA = re.compile(r"^(VARCHAR|CHARACTER VARYING|TEXT|BYTEA|JSONB)\b", re.IGNORECASE)
quote_ident = redshift_sql.quote_ident


def part_reader(data: bytes, compressed: bool) -> Any:
    """A file over one part's CSV bytes, gunzipping if ``compressed``."""
    raw = io.BytesIO(data)
    return gzip.GzipFile(fileobj=raw) if compressed else raw


class WarehouseError(Exception):
    """A warehouse statement failed; the message names the schema, table, file and reason."""


def pg_type(redshift_type: str) -> str:
    """The PostgreSQL stand-in for a Redshift type (VARBYTE → BYTEA, SUPER → JSONB)."""
    for pattern, replacement in _PG_TYPES:
        if pattern.match(redshift_type):
            return replacement
    return redshift_type


def schema_tables(schema: DataSchema) -> list[tuple[str, list[tuple[str, str]]]]:
    """Every warehouse table of a data-schema, ``_etl_rejects`` included, with (column, type) pairs."""
    tables = [(t.name, t.column_types()) for t in schema.tables]
    tables.append((REJECTS_TABLE, list(REJECTS_COLUMNS) + list(METADATA_COLUMNS)))
    return tables


def redact(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


class Warehouse:
    """A connection factory and the statements arm-etl runs, for one warehouse URL."""

    def __init__(
        self,
        url: str | URL,
        iam_role: str | None = None,
        statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
        region: str | None = None,
    ):
        self.url = make_url(url)
        backend = self.url.get_backend_name()
        if backend not in ("postgresql", "redshift"):
            raise WarehouseError(
                f"unsupported warehouse URL scheme {self.url.drivername!r} "
                "(expected redshift+psycopg2:// or postgresql://)"
            )
        self.dialect = backend
        self.iam_role = iam_role
        self.region = region
        self.statement_timeout_ms = statement_timeout_ms

    def __repr__(self) -> str:
        return f"Warehouse({self.url.render_as_string(hide_password=True)!r})"

    @property
    def csv(self) -> CsvDialect:
        return POSTGRESQL if self.dialect == "postgresql" else redshift_dialect()

    @property
    def name_limit(self) -> int:
        return 63 if self.dialect == "postgresql" else 127

    def column_type(self, redshift_type: str) -> str:
        return pg_type(redshift_type) if self.dialect == "postgresql" else redshift_type

    def connect(self) -> Any:
        u = self.url
        kwargs: dict[str, Any] = {"dbname": u.database or "postgres"}
        if u.username:
            kwargs["user"] = u.username
        if u.password is not None:
            kwargs["password"] = u.password
        if u.host:
            kwargs["host"] = u.host
        if u.port:
            kwargs["port"] = u.port
        for k, v in u.query.items():
            kwargs[k] = v if isinstance(v, str) else v[-1]
        if self.dialect == "redshift":
            kwargs.setdefault("sslmode", "require")
        try:
            conn = psycopg2.connect(**kwargs)
        except psycopg2.OperationalError as exc:
            raise WarehouseError(f"cannot connect to warehouse {self!r}: {str(exc).strip()}") from None
        with conn.cursor() as cur:
            cur.execute(f"SET statement_timeout TO {int(self.statement_timeout_ms)}")
        conn.commit()
        return conn

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

    def execute(self, cur: Any, sql: str, params: Sequence[Any] | None = None) -> None:
        """Run one statement; a statement timeout becomes an error listing the blocking sessions."""
        try:
            cur.execute(sql, params)
        except psycopg2.errors.QueryCanceled as exc:
            report = self.lock_report()
            raise WarehouseError(
                f"statement timed out after {self.statement_timeout_ms} ms: {sql[:200]}\nblocking sessions:\n{report}"
            ) from exc

    def lock_report(self) -> str:
        sql = (
            redshift_sql.lock_report_query()
            if self.dialect == "redshift"
            else "SELECT l.pid, a.usename, a.state, now() - a.xact_start AS xact_age, left(a.query, 200), "
            "l.mode, l.relation::regclass::text FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.granted AND a.pid <> pg_backend_pid() AND l.relation IS NOT NULL ORDER BY xact_age DESC"
        )
        try:
            with self.connection() as conn, conn.cursor() as cur:
                cur.execute(sql)
                rows = cur.fetchall()
        except Exception as exc:  # the report is best effort; the timeout is the error
            return f"(could not read locks: {exc})"
        return "\n".join("  " + " | ".join(str(c) for c in r) for r in rows) or "  (none found)"

    # ---------------------------------------------------------------- schemas and tables

    def schema_exists(self, schema: str) -> bool:
        with self.transaction() as cur:
            cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
            return cur.fetchone() is not None

    def create_schema_ddl(self, schema: str, tables: list[tuple[str, list[tuple[str, str]]]]) -> list[str]:
        sql = [redshift_sql.create_schema(schema)]
        for name, columns in tables:
            if self.dialect == "redshift":
                sql.append(redshift_sql.create_table(schema, name, columns))
            else:
                table = f"{quote_ident(schema)}.{quote_ident(name)}"
                pg_columns = [(c, pg_type(t)) for c, t in columns]
                cols = ", ".join(f"{quote_ident(c)} {t}" for c, t in pg_columns)
                sql.append(f"CREATE TABLE {table} ({cols})")
                # Long values out of line but uncompressed: pglz was half of PostgreSQL's CPU in a load
                # (the stand-in trades disk for CPU; Redshift compresses by its own column encodings).
                external = [c for c, t in pg_columns if _PG_VARLENA.match(t)]
                if external:
                    alters = ", ".join(f"ALTER COLUMN {quote_ident(c)} SET STORAGE EXTERNAL" for c in external)
                    sql.append(f"ALTER TABLE {table} {alters}")
        return sql

    def recreate_schema(self, schema: str, tables: list[tuple[str, list[tuple[str, str]]]]) -> None:
        """Drop and create ``schema`` with empty ``tables``, in one transaction."""
        with self.transaction() as cur:
            self.execute(cur, redshift_sql.drop_schema(schema))
            for stmt in self.create_schema_ddl(schema, tables):
                self.execute(cur, stmt)

    def drop_schema(self, schema: str) -> None:
        with self.transaction() as cur:
            self.execute(cur, redshift_sql.drop_schema(schema))

    def tables(self, schema: str) -> list[str]:
        with self.transaction() as cur:
            cur.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind = 'r' ORDER BY c.relname",
                (schema,),
            )
            return [r[0] for r in cur.fetchall()]

    def counts(self, schema: str, tables: Sequence[str] | None = None) -> dict[str, int]:
        """Row count of every (or each given) table of ``schema``."""
        names = list(tables) if tables is not None else self.tables(schema)
        out: dict[str, int] = {}
        if not names:
            return out
        with self.transaction() as cur:
            for name in names:
                self.execute(cur, f"SELECT count(*) FROM {quote_ident(schema)}.{quote_ident(name)}")
                out[name] = int(cur.fetchone()[0])
        return out

    def replace_schema(self, staging: str, target: str) -> None:
        """``target`` := ``staging`` atomically (drop the old target, rename), one transaction."""
        with self.transaction() as cur:
            self.execute(cur, redshift_sql.drop_schema(target))
            self.execute(cur, redshift_sql.rename_schema(staging, target))

    # ---------------------------------------------------------------- loading

    def copy_part(
        self,
        schema: str,
        table: str,
        columns: Sequence[str],
        data: bytes,
        origin: str,
        conn: Any = None,
        compressed: bool = True,
    ) -> int:
        """PostgreSQL: stream one CSV part (gzip unless ``compressed=False``) through ``COPY … FROM STDIN``,
        in its own transaction.

        ``conn``: an open connection to reuse (see ``connection``); by default one is opened and closed.
        """
        if conn is None:
            with self.connection() as own:
                return self.copy_part(schema, table, columns, data, origin, own, compressed)
        cols = ", ".join(quote_ident(c) for c in columns)
        sql = f"COPY {quote_ident(schema)}.{quote_ident(table)} ({cols}) FROM STDIN WITH (FORMAT csv, ENCODING 'UTF8')"
        try:
            with conn.cursor() as cur:
                try:
                    # 1 MB reads: with 8 KB reads the COPY starves behind the extract/transform threads' GIL.
                    cur.copy_expert(sql, part_reader(data, compressed), size=COPY_READ_BYTES)
                except psycopg2.errors.QueryCanceled as exc:
                    raise WarehouseError(
                        f"COPY of {origin} into {schema}.{table} timed out; blocking sessions:\n{self.lock_report()}"
                    ) from exc
                except psycopg2.Error as exc:
                    context = (exc.diag.context or "").strip()
                    reason = (exc.diag.message_primary or str(exc)).strip()
                    raise WarehouseError(
                        f"COPY of {origin} into {schema}.{table} failed: {reason}"
                        + (f" ({context})" if context else "")
                    ) from None
                rows = int(cur.rowcount)
            conn.commit()
            return rows
        except BaseException:
            if not conn.closed:
                conn.rollback()
            raise

    def copy_manifest(self, schema: str, table: str, columns: Sequence[str], manifest_url: str) -> None:
        """Redshift: one COPY per table from the segment's COPY manifest, IAM role, CSV GZIP."""
        if not self.iam_role:
            raise WarehouseError(
                "Redshift COPY needs an IAM role: set ARM_ETL_IAM_ROLE or the RedshiftCredentials block's iam_role"
            )
        sql = redshift_sql.copy_from_manifest(schema, table, list(columns), manifest_url, self.iam_role, self.region)
        with self.connection() as conn:
            with conn.cursor() as cur:
                try:
                    self.execute(cur, sql)
                except psycopg2.Error as exc:
                    conn.rollback()
                    detail = self._load_error_detail(conn)
                    raise WarehouseError(
                        f"COPY into {schema}.{table} from {manifest_url} failed: {detail or str(exc).strip()}"
                    ) from None
            conn.commit()

    def _load_error_detail(self, conn: Any) -> str:
        try:
            with conn.cursor() as cur:
                cur.execute(redshift_sql.load_errors_query())
                cols = [d[0] for d in cur.description]
                rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
        except psycopg2.Error:
            conn.rollback()
            return ""
        return "; ".join(redshift_sql.format_load_error(r) for r in rows[:5])
