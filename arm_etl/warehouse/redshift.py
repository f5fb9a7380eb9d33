"""Amazon Redshift: the production warehouse.

Differences from PostgreSQL, each with its documentation page in :mod:`.redshift_sql`:

* every column has an explicit ENCODE and every table an explicit SORTKEY and DISTSTYLE, so ALTER TABLE
  APPEND between tables created days apart never meets attributes Redshift changed on one (*ALTER TABLE
  APPEND*, *CREATE TABLE*: ENCODE AUTO and SORTKEY AUTO let Redshift change them);
* a segment table is loaded by one COPY from its S3 manifest (IAM role, CSV, GZIP);
* the segment tables are moved into the loading tables by ALTER TABLE APPEND, outside a transaction block;
* a COPY runs with ``copy_timeout_ms`` (default 0, none): *statement_timeout* counts WLM queue time, and
  a COPY into a staging schema nobody else touches waits for no lock; the 1-hour timeout stays on every
  other statement, where a wait means a lock held by another session.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import psycopg2

from arm_etl.csvformat import CsvDialect, redshift_dialect
from arm_etl.warehouse import redshift_sql
from arm_etl.warehouse.base import TableCopy, Tables, Warehouse, WarehouseError
from arm_etl.warehouse.bookkeeping import Columns
from arm_etl.warehouse.privileges import Grantee
from arm_etl.warehouse.statement import Statement

log = logging.getLogger("arm_etl.warehouse")


class RedshiftWarehouse(Warehouse):
    dialect: ClassVar[str] = "redshift"
    name_limit: ClassVar[int] = 127
    needs_copy_manifests: ClassVar[bool] = True
    copy_timeout_ms: int = 0

    @property
    def csv(self) -> CsvDialect:
        return redshift_dialect()

    def connect_kwargs(self) -> dict[str, Any]:
        kwargs = super().connect_kwargs()
        kwargs.setdefault("sslmode", "require")
        return kwargs

    def create_table_statements(self, schema: str, table: str, columns: Columns) -> list[Statement]:
        return [Statement(redshift_sql.create_table(schema, table, columns))]

    def append_statements(
        self, target_schema: str, source_schema: str, table: str, columns: Columns
    ) -> list[Statement]:
        return [Statement(redshift_sql.append_from(target_schema, table, source_schema, table), autocommit=True)]

    def dependents_statement(self) -> Statement:
        """Views outside ``schema`` bound to a relation in it, in the form *DROP TABLE*'s examples give for
        Redshift ("find_depend": ``pg_depend`` joined on ``relfilenode``, internal dependencies of views).

        Late-binding views (``WITH NO SCHEMA BINDING``) have no dependency and are not listed: *CREATE VIEW*
        says they are not bound to the objects they reference, so dropping those cannot drop them."""
        return Statement(
            "SELECT DISTINCT n_c.nspname, c_c.relname, c_p.relname FROM pg_catalog.pg_class c_p "
            "JOIN pg_catalog.pg_depend d_p ON c_p.relfilenode = d_p.refobjid "
            "JOIN pg_catalog.pg_depend d_c ON d_p.objid = d_c.objid "
            "JOIN pg_catalog.pg_class c_c ON d_c.refobjid = c_c.relfilenode "
            "LEFT JOIN pg_catalog.pg_namespace n_p ON c_p.relnamespace = n_p.oid "
            "LEFT JOIN pg_catalog.pg_namespace n_c ON c_c.relnamespace = n_c.oid "
            "WHERE d_c.deptype = 'i' AND c_c.relkind = 'v' AND n_p.nspname = %(schema)s "
            "AND n_c.nspname <> %(schema)s AND c_c.oid <> c_p.oid ORDER BY 1, 2, 3",
            ("schema",),
        )

    views_append_columns: ClassVar[bool] = False  # *CREATE VIEW*: "the identical set of columns"

    def columns_statement(self) -> Statement:
        """*SVV_COLUMNS*: columns of tables and views (late-binding ones included), with their types."""
        return Statement(
            "SELECT table_name, column_name, data_type, character_maximum_length, numeric_precision, numeric_scale "
            "FROM svv_columns WHERE table_schema = %(schema)s ORDER BY table_name, ordinal_position",
            ("schema",),
        )

    def schema_privileges_statement(self) -> Statement:
        """*SVV_SCHEMA_PRIVILEGES*: privileges "explicitly granted to users, roles, and groups"; scope SCHEMA
        only (scoped privileges on TABLES or FUNCTIONS are not the schema's own). Visible in full to
        superusers and users with ACCESS SYSTEM TABLE."""
        return Statement(
            "SELECT privilege_type, identity_type, identity_name, admin_option FROM svv_schema_privileges "
            "WHERE namespace_name = %(schema)s AND privilege_scope = 'SCHEMA' ORDER BY identity_name, privilege_type",
            ("schema",),
        )

    def relation_privileges_statement(self) -> Statement:
        """*SVV_RELATION_PRIVILEGES*: "the relation (tables and views) permissions that are explicitly granted"."""
        return Statement(
            "SELECT relation_name, privilege_type, identity_type, identity_name, admin_option "
            "FROM svv_relation_privileges WHERE namespace_name = %(schema)s "
            "ORDER BY relation_name, identity_name, privilege_type",
            ("schema",),
        )

    def grantee_from_catalog(self, kind: str, name: str) -> Grantee:
        """identity_type is "user, role, group, or public" (*SVV_RELATION_PRIVILEGES*)."""
        kind = kind.strip().lower()
        if kind not in ("user", "role", "group", "public"):
            raise WarehouseError(f"unknown identity_type {kind!r} for grantee {name!r} in the privilege catalog")
        return Grantee("public", "PUBLIC") if kind == "public" else Grantee(kind, name.strip())  # type: ignore[arg-type]

    def grantee_sql(self, grantee: Grantee) -> str:
        """*GRANT*: "TO { username [ WITH GRANT OPTION ] | ROLE role_name | GROUP group_name | PUBLIC }"."""
        if grantee.kind == "public":
            return "PUBLIC"
        prefix = {"user": "", "role": "ROLE ", "group": "GROUP "}[grantee.kind]
        return prefix + redshift_sql.quote_ident(grantee.name)

    def lock_report_statement(self) -> Statement:
        return Statement(redshift_sql.lock_report_query())

    load_statements_comment: ClassVar[str] = "one COPY per table from its manifest of gzip CSV parts (tables with rows)"

    def load_statements(self, schema: str, tables: Tables, manifest_url: Callable[[str], str]) -> list[Statement]:
        return [
            st
            for name, cols in tables
            for st in self.copy_statements(schema, TableCopy(name, [c for c, _ in cols], manifest_url(name)))
        ]

    def copy_statements(self, schema: str, copy: TableCopy) -> list[Statement]:
        """The COPY of one table from its manifest, with its own statement timeout around it."""
        if not self.iam_role:
            raise WarehouseError(
                "Redshift COPY needs an IAM role: set ARM_ETL_IAM_ROLE or the RedshiftCredentials block's iam_role"
            )
        return [
            Statement(redshift_sql.set_statement_timeout(self.copy_timeout_ms)),
            Statement(
                redshift_sql.copy_from_manifest(
                    schema, copy.table, list(copy.columns), copy.manifest_url, self.iam_role, self.region
                )
            ),
            Statement(redshift_sql.set_statement_timeout(self.statement_timeout_ms)),
        ]

    def load_error_statements(self) -> list[Statement]:
        """The failed COPY's errors: STL (provisioned) first, SYS (Serverless has no STL views) second."""
        return [Statement(redshift_sql.stl_load_errors_query()), Statement(redshift_sql.load_errors_query())]

    def load_tables(self, schema: str, copies: Sequence[TableCopy]) -> None:
        """One COPY per table, each its own transaction: a failure names file, line, column and reason."""
        for copy in copies:
            with self.connection() as conn:
                with conn.cursor() as cur:
                    try:
                        for st in self.copy_statements(schema, copy):
                            self.execute(cur, st)
                    except psycopg2.Error as exc:
                        conn.rollback()
                        detail = self._load_error_detail(conn)
                        raise WarehouseError(
                            f"COPY into {schema}.{copy.table} from {copy.manifest_url} failed: "
                            f"{detail or str(exc).strip()}"
                        ) from None
                conn.commit()

    def _load_error_detail(self, conn: Any) -> str:
        for st in self.load_error_statements():
            try:
                with conn.cursor() as cur:
                    cur.execute(st.sql)
                    cols = [d[0] for d in cur.description]
                    rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
            except psycopg2.Error:
                conn.rollback()
                continue
            if rows:
                return "; ".join(redshift_sql.format_load_error(r) for r in rows[:5])
        return ""
