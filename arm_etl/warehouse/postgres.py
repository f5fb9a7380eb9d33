"""PostgreSQL: the local and test stand-in for Redshift, executed for real.

Differences from Redshift: VARBYTE → BYTEA and SUPER → JSONB; each CSV part is streamed through
``COPY … FROM STDIN``; APPEND is emulated by INSERT … SELECT + DELETE in one transaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar, Final

import psycopg2
import psycopg2.errors

from arm_etl.csvformat import POSTGRESQL, CsvDialect
from arm_etl.warehouse import base
from arm_etl.warehouse.base import PartLoad, Warehouse, WarehouseError, quote_ident
from arm_etl.warehouse.bookkeeping import Columns
from arm_etl.warehouse.privileges import Grantee
from arm_etl.warehouse.statement import Statement

COPY_READ_BYTES: Final = 1 << 20
_PG_TYPES: Final = [(re.compile(r"^VARBYTE(\(\d+\))?$"), "BYTEA"), (re.compile(r"^SUPER$"), "JSONB")]
_PG_VARLENA: Final = re.compile(r"^(VARCHAR|CHARACTER VARYING|TEXT|BYTEA|JSONB)\b", re.IGNORECASE)


def pg_type(redshift_type: str) -> str:
    """The PostgreSQL stand-in for a Redshift type (VARBYTE → BYTEA, SUPER → JSONB)."""
    for pattern, replacement in _PG_TYPES:
        if pattern.match(redshift_type):
            return replacement
    return redshift_type


class PostgresWarehouse(Warehouse):
    dialect: ClassVar[str] = "postgresql"
    name_limit: ClassVar[int] = 63

    @property
    def csv(self) -> CsvDialect:
        return POSTGRESQL

    def create_table_statements(self, schema: str, table: str, columns: Columns) -> list[Statement]:
        name = f"{quote_ident(schema)}.{quote_ident(table)}"
        pg_columns = [(c, pg_type(t)) for c, t in columns]
        out = [Statement(f"CREATE TABLE {name} ({', '.join(f'{quote_ident(c)} {t}' for c, t in pg_columns)})")]
        # Long values out of line but uncompressed: pglz was half of PostgreSQL's CPU in a load
        # (the stand-in trades disk for CPU; Redshift compresses by its own column encodings).
        external = [c for c, t in pg_columns if _PG_VARLENA.match(t)]
        if external:
            alters = ", ".join(f"ALTER COLUMN {quote_ident(c)} SET STORAGE EXTERNAL" for c in external)
            out.append(Statement(f"ALTER TABLE {name} {alters}"))
        return out

    def append_statements(
        self, target_schema: str, source_schema: str, table: str, columns: Columns
    ) -> list[Statement]:
        cols = ", ".join(quote_ident(c) for c, _ in columns)
        src = f"{quote_ident(source_schema)}.{quote_ident(table)}"
        return [
            Statement(
                f"INSERT INTO {quote_ident(target_schema)}.{quote_ident(table)} ({cols}) SELECT {cols} FROM {src}",
                moves_rows=True,
            ),
            Statement(f"DELETE FROM {src}"),
        ]

    load_statements_comment: ClassVar[str] = "each CSV part streamed in its own transaction (one shown per table)"

    def load_statements(self, schema: str, tables: base.Tables, manifest_url: Callable[[str], str]) -> list[Statement]:
        return [self.copy_part_statement(schema, name, [c for c, _ in cols]) for name, cols in tables]

    views_append_columns: ClassVar[bool] = True  # *CREATE VIEW*: "may add additional columns to the end"

    def columns_statement(self) -> Statement:
        return Statement(
            "SELECT table_name, column_name, data_type, character_maximum_length, numeric_precision, numeric_scale "
            "FROM information_schema.columns WHERE table_schema = %(schema)s ORDER BY table_name, ordinal_position",
            ("schema",),
        )

    def schema_privileges_statement(self) -> Statement:
        """From the schema's ACL (*aclexplode*); grantee 0 is PUBLIC; the owner's implicit rights left out."""
        return Statement(
            "SELECT a.privilege_type, CASE WHEN a.grantee = 0 THEN 'public' ELSE 'user' END, "
            "COALESCE(r.rolname, 'PUBLIC'), a.is_grantable FROM pg_namespace n "
            "CROSS JOIN LATERAL aclexplode(n.nspacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee "
            "WHERE n.nspname = %(schema)s AND a.grantee <> n.nspowner ORDER BY 3, 1",
            ("schema",),
        )

    def relation_privileges_statement(self) -> Statement:
        return Statement(
            "SELECT c.relname, a.privilege_type, CASE WHEN a.grantee = 0 THEN 'public' ELSE 'user' END, "
            "COALESCE(r.rolname, 'PUBLIC'), a.is_grantable FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace CROSS JOIN LATERAL aclexplode(c.relacl) a "
            "LEFT JOIN pg_roles r ON r.oid = a.grantee "
            "WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'v') AND a.grantee <> c.relowner ORDER BY 1, 4, 2",
            ("schema",),
        )

    def catalog_name(self, name: str) -> str:
        """PostgreSQL truncates identifiers to NAMEDATALEN-1 = 63 bytes, on a character boundary (*Identifiers
        and Key Words*), so a 127-byte Redshift name is stored, and reported, cut."""
        raw = name.encode("utf-8")
        return name if len(raw) <= self.name_limit else raw[: self.name_limit].decode("utf-8", "ignore")

    def grantee_from_catalog(self, kind: str, name: str) -> Grantee:
        return Grantee("public", "PUBLIC") if kind == "public" else Grantee("user", name)

    def grantee_sql(self, grantee: Grantee) -> str:
        """PostgreSQL's users, groups and roles are all roles: ``TO name`` or ``TO PUBLIC`` (*GRANT*)."""
        return "PUBLIC" if grantee.kind == "public" else quote_ident(grantee.name)

    def lock_report_statement(self) -> Statement:
        return Statement(
            "SELECT l.pid, a.usename, a.state, now() - a.xact_start AS xact_age, left(a.query, 200), "
            "l.mode, l.relation::regclass::text FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.granted AND a.pid <> pg_backend_pid() AND l.relation IS NOT NULL ORDER BY xact_age DESC"
        )

    def copy_part_statement(self, schema: str, table: str, columns: Iterable[str]) -> Statement:
        cols = ", ".join(quote_ident(c) for c in columns)
        return Statement(
            f"COPY {quote_ident(schema)}.{quote_ident(table)} ({cols}) FROM STDIN WITH (FORMAT csv, ENCODING 'UTF8')"
        )

    def load_parts(self, schema: str, parts: Iterable[PartLoad]) -> Iterator[tuple[PartLoad, int]]:
        """Each part its own COPY transaction over one connection; yielded once committed."""
        with self.connection() as conn:
            for part in parts:
                yield part, self.copy_part(conn, schema, part)

    def copy_part(self, conn: Any, schema: str, part: PartLoad) -> int:
        sql = self.copy_part_statement(schema, part.table, part.columns).sql
        where = f"COPY of {part.origin} into {schema}.{part.table}"
        try:
            with conn.cursor() as cur:
                try:
                    # 1 MB reads: with 8 KB reads the COPY starves behind the extract/transform threads' GIL.
                    cur.copy_expert(sql, base.part_file(part.data, part.compressed), size=COPY_READ_BYTES)
                except psycopg2.errors.QueryCanceled as exc:
                    raise WarehouseError(
                        f"{where} timed out; blocking sessions:\n{self.lock_report()}", transient=True
                    ) from exc
                except psycopg2.Error as exc:
                    context = (exc.diag.context or "").strip()
                    reason = (exc.diag.message_primary or str(exc)).strip()
                    raise WarehouseError(
                        f"{where} failed: {reason}" + (f" ({context})" if context else ""),
                        transient=isinstance(exc, psycopg2.OperationalError),
                    ) from None
                rows = int(cur.rowcount)
            conn.commit()
            return rows
        except BaseException:
            if not conn.closed:
                conn.rollback()
            raise
