"""Redshift SQL text for the load, centralization and diagnosis steps, tested as exact strings.

Statements are compiled with sqlalchemy-redshift's ``RedshiftDialect_psycopg2`` (its ``CopyCommand``
and ``AlterTableAppendCommand`` where they exist) with ``literal_binds``, so each string is complete and
is run as-is: ``cursor.execute(sql)`` with no parameters. The dialect is built with the ``named``
paramstyle so a ``%`` in a name or URL is not doubled for psycopg2's ``pyformat`` (which would change
the text when no parameters are passed). Every identifier is double-quoted, whatever it contains.

CSV contract for the Redshift load (what the writer must emit, and why the COPY options are these):

* Format: comma-separated, ``"`` quotes (inner quotes doubled), one record per ``\\n``, no header row,
  UTF-8, each part gzip-compressed, all parts listed in a Redshift manifest
  (``{"entries": [{"url": ..., "mandatory": true, "meta": {"content_length": N}}]}``).
  Compressed parts are never split, so a quoted newline stays inside its field.
* NULL vs ``''``: a SQL NULL is written as ``REDSHIFT_CSV_NULL``, one NUL character, unquoted, in any
  column; COPY gets ``NULL AS '\\000'``. Redshift documents that a field holding only NUL loads as NULL
  with ``NULL AS '\\0'`` / ``'\\000'``
  (https://docs.aws.amazon.com/redshift/latest/dg/copy-parameters-data-conversion.html#copy-null-as,
  https://docs.aws.amazon.com/redshift/latest/dg/t_preparing-input-data.html). An empty string is
  written ``""``: with no EMPTYASNULL (reported to null quoted empty fields too, so quoting alone
  cannot keep them apart in Redshift) an empty CHAR/VARCHAR field loads as ``''`` (same page,
  EMPTYASNULL; FILLRECORD: "if EMPTYASNULL is not present and the column is a VARCHAR, zero-length
  strings are loaded").
  No string value can equal the marker: a value containing NUL never reaches the CSV (it goes to
  ``_etl_rejects``). Text that looks like a marker (``\\N``, ``NULL``, ``\\000`` as four characters)
  loads verbatim, because the null string is the single NUL character, not the default ``\\N``, and
  ESCAPE is off. Empty fields of non-character types always load as NULL (EMPTYASNULL doc), so only
  VARCHAR can hold ``''``; an empty VARBYTE value is not guaranteed to stay apart from NULL.
* Binary (VARBYTE): ``REDSHIFT_BINARY_ENCODING`` = ``"hex"``; for CSV "the data is loaded from a file
  in hexadecimal representation of the VARBYTE data"
  (https://docs.aws.amazon.com/redshift/latest/dg/copy-usage-varbyte.html). Lowercase hex, no
  ``\\x`` prefix (that prefix is the PostgreSQL BYTEA form).
* SUPER: one-line JSON text (Redshift represents SUPER in CSV as single-line JSON,
  https://docs.aws.amazon.com/redshift/latest/dg/ingest-super.html#copy_json-from-text-csv).
* TIMESTAMPTZ: RFC 3339 text as DynamoDB holds it; ``TIMEFORMAT 'auto'`` recognizes ISO 8601 with
  ``T`` and ``Z`` or a numeric offset and loads the instant
  (https://docs.aws.amazon.com/redshift/latest/dg/automatic-recognition.html). Redshift keeps
  microseconds: more fractional digits than six cannot load exactly.
* DATE: ``YYYY-MM-DD`` (``DATEFORMAT 'YYYY-MM-DD'``). Numbers: the exact text DynamoDB returns.
* Strictness: no MAXERROR (default 0: the first bad row fails the COPY), no TRUNCATECOLUMNS, no
  ACCEPTINVCHARS, no ACCEPTANYDATE, no EMPTYASNULL/BLANKSASNULL/TRIMBLANKS/ESCAPE/ROUNDEC: a value
  that would load differently from its text fails loudly instead. COMPUPDATE OFF and STATUPDATE OFF:
  segment tables are staging; compression analysis and statistics are skipped (a COPY that fails in
  compression analysis also does not update ``pg_last_copy_id()``, hiding its errors).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.sql.elements import quoted_name
from sqlalchemy_redshift.commands import (
    AlterTableAppendCommand,
    Compression,
    CopyCommand,
    Encoding,
    Format,
)
from sqlalchemy_redshift.dialect import RedshiftDialect_psycopg2

from arm_etl.csvformat import REDSHIFT_BINARY_ENCODING, REDSHIFT_CSV_NULL

__all__ = [
    "REDSHIFT_BINARY_ENCODING",
    "REDSHIFT_CSV_NULL",
    "append_from",
    "copy_from_manifest",
    "create_schema",
    "create_table",
    "drop_relation",
    "drop_schema",
    "format_load_error",
    "load_errors_query",
    "lock_report_query",
    "quote_ident",
    "rename_schema",
    "set_statement_timeout",
    "stl_load_errors_query",
]

# The COPY ``NULL AS`` literal for one NUL character: Redshift reads '\000' as NUL. Passed to
# CopyCommand's ``dangerous_null_delimiter``, which inserts it unquoted by design.
_NULL_AS_LITERAL: Final[str] = "\\000"

_DIALECT: Final = RedshiftDialect_psycopg2(paramstyle="named")
_PREPARER: Final = _DIALECT.identifier_preparer

_MAX_IDENT_BYTES: Final[int] = 127  # Redshift names: at most 127 bytes of UTF-8.
_LOAD_ERRORS_LIMIT: Final[int] = 100
_MAX_TIMEOUT_MS: Final[int] = 2**31 - 1
_DISTSTYLES: Final[frozenset[str]] = frozenset({"AUTO", "EVEN", "ALL"})
_ENCODINGS: Final[dict[str, str]] = {
    "SMALLINT": "AZ64",
    "INTEGER": "AZ64",
    "BIGINT": "AZ64",
    "DECIMAL": "AZ64",
    "DATE": "AZ64",
    "TIMESTAMPTZ": "AZ64",
    "VARCHAR": "ZSTD",
    "SUPER": "LZO",
    "BOOLEAN": "RAW",
    "VARBYTE": "RAW",
}

# Redshift column types the data-schema may name; anything else is refused before it reaches SQL.
_TYPE_RE: Final = re.compile(
    r"SMALLINT|INTEGER|BIGINT|BOOLEAN|TIMESTAMPTZ|DATE|SUPER"
    r"|DECIMAL\((?P<p>[0-9]{1,2}),(?P<s>[0-9]{1,2})\)"
    r"|VARCHAR\((?P<vc>[0-9]{1,5})\)"
    r"|VARBYTE\((?P<vb>[0-9]{1,8})\)"
)
_MAX_DECIMAL_PRECISION: Final[int] = 38
_MAX_DECIMAL_SCALE: Final[int] = 37  # *Numeric types*: "The maximum scale is 37."
_MAX_VARCHAR: Final[int] = 65535
_MAX_VARBYTE: Final[int] = 16_777_216

# Partitions and role-name characters CopyCommand itself accepts; role paths (``role/a/b/x``) allowed.
_ROLE_ARN_RE: Final = re.compile(
    r"arn:(?:aws|aws-cn|aws-us-gov):iam::[0-9]{12}:role/(?:[A-Za-z0-9+=,.@_-]+/)*[A-Za-z0-9+=,.@_-]{1,64}"
)
_S3_URL_RE: Final = re.compile(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[^\x00-\x20\x7f'\"\\]+")
_REGION_RE: Final = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}")
_ASCII_FOLD: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def quote_ident(name: str) -> str:
    """Double-quote ``name`` (inner quotes doubled) so any text is one identifier, never SQL."""
    _check_ident(name)
    return str(_PREPARER.quote(quoted_name(name, quote=True)))


def create_schema(schema: str) -> str:
    """``CREATE SCHEMA IF NOT EXISTS``: idempotent, so a re-run never fails on an existing schema."""
    sql = _compile(sa.schema.CreateSchema(_ddl_name(schema), if_not_exists=True))
    return _checked(sql, f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")


def drop_schema(schema: str) -> str:
    """``DROP SCHEMA IF EXISTS`` without CASCADE: RESTRICT, the default, refuses a schema that still holds
    objects (*DROP SCHEMA*), so the schema's own tables are dropped first, each without CASCADE too."""
    sql = _compile(sa.schema.DropSchema(_ddl_name(schema), cascade=False, if_exists=True))
    return _checked(sql, f"DROP SCHEMA IF EXISTS {quote_ident(schema)}")


def drop_relation(schema: str, name: str, view: bool = False) -> str:
    """``DROP TABLE|VIEW IF EXISTS`` without CASCADE: *DROP TABLE* / *DROP VIEW*, "RESTRICT: Clause that
    indicates not to drop the table if any objects depend on it. This action is the default." — so an
    object arm-etl does not own (a reader's view) is never dropped with it; the statement fails instead."""
    kind = "VIEW" if view else "TABLE"
    return f"DROP {kind} IF EXISTS {quote_ident(schema)}.{quote_ident(name)}"


def column_encoding(type_text: str) -> str:
    """The explicit ENCODE of a column type (*Compression encodings*: the types each encoding supports).

    AZ64 for numbers, dates and timestamps, ZSTD for VARCHAR, LZO for SUPER (the encodings table lists
    SUPER under LZO only), RAW for BOOLEAN and VARBYTE (RAW: "All" types). An explicit ENCODE on every
    column turns ENCODE AUTO off for the table, so Redshift never changes it on one table and not the
    other (ALTER TABLE APPEND requires like-named columns to share their compression encoding).
    """
    base = type_text.split("(", 1)[0]
    return _ENCODINGS[base]


def create_table(
    schema: str,
    table: str,
    columns: Sequence[tuple[str, str]],
    *,
    diststyle: str | None = "EVEN",
    sortkey: str | None = None,
) -> str:
    """``CREATE TABLE`` with allow-listed Redshift types, rendered by the Redshift DDL compiler.

    Every attribute ALTER TABLE APPEND compares is pinned, never AUTO (*CREATE TABLE*: with no option
    "the default is AUTO" for the sort key, ENCODE AUTO for encodings, and Redshift may change either):
    ``DISTSTYLE EVEN``, an explicit ENCODE per column (:func:`column_encoding`) and a compound SORTKEY on
    ``sortkey`` (default: ``_segment``, else ``segment``, else the first column that may be one), encoded
    RAW as Redshift itself encodes sort-key columns (*Compression encodings*). Never a VARBYTE or SUPER
    column: *VARBYTE type*: "You can't use a VARBYTE column as a sort key"; SUPER cannot be one either.
    Column names must stay distinct after ASCII lower-casing: Redshift folds quoted names by default.
    """
    if not columns:
        raise ValueError(f"table {schema}.{table}: at least one column is required")
    _check_distinct([name for name, _ in columns], f"table {schema}.{table}")
    for name, type_text in columns:
        _check_type(name, type_text)
    types = dict(columns)
    key = sortkey if sortkey is not None else _default_sortkey(columns)
    if key not in types:
        raise ValueError(f"table {schema}.{table}: sort key {key!r} is not one of its columns")
    if not _can_sort(types[key]):
        raise ValueError(f"table {schema}.{table}: sort key {key!r} is {types[key]}, which cannot be a sort key")
    encodings = {name: "RAW" if name == key else column_encoding(type_text) for name, type_text in columns}
    kwargs: dict[str, Any] = {"redshift_sortkey": _ddl_name(key)}
    if diststyle is not None:
        if diststyle not in _DISTSTYLES:
            raise ValueError(f"diststyle must be one of {sorted(_DISTSTYLES)}, got {diststyle!r}")
        kwargs["redshift_diststyle"] = diststyle
    table_obj = sa.Table(
        _ddl_name(table),
        sa.MetaData(),
        *[
            sa.Column(_ddl_name(name), _RedshiftType(type_text), redshift_encode=encodings[name])
            for name, type_text in columns
        ],
        schema=_ddl_name(schema),
        **kwargs,
    )
    sql = _compile(sa.schema.CreateTable(table_obj)).strip()
    # The DDL compiler lays columns out as "(\n\t…, \n\t…\n)"; identifiers cannot hold control
    # characters (quote_ident refuses them), so these patterns only ever match layout.
    sql = sql.replace("(\n\t", "(").replace(", \n\t", ", ").replace("\n)", ")")
    specs = ", ".join(f"{quote_ident(name)} {type_text} ENCODE {encodings[name]}" for name, type_text in columns)
    suffix = f" DISTSTYLE {diststyle}" if diststyle is not None else ""
    return _checked(
        sql, f"CREATE TABLE {quote_ident(schema)}.{quote_ident(table)} ({specs}){suffix} SORTKEY ({quote_ident(key)})"
    )


def _can_sort(type_text: str) -> bool:
    return not type_text.startswith(("VARBYTE", "SUPER"))


def _default_sortkey(columns: Sequence[tuple[str, str]]) -> str:
    names = [name for name, _ in columns]
    for preferred in ("_segment", "segment"):  # every data table and _etl_rejects; the bookkeeping tables
        if preferred in names:
            return preferred
    for name, type_text in columns:
        if _can_sort(type_text):
            return name
    raise ValueError(f"no column can be a sort key among {names!r}")


def copy_from_manifest(
    schema: str,
    table: str,
    columns: Sequence[str],
    manifest_url: str,
    iam_role_arn: str,
    region: str | None = None,
) -> str:
    """The COPY of one segment's gzip CSV parts (via a manifest) into a table, exactly or not at all.

    Built with sqlalchemy-redshift's CopyCommand; the options are explained in the module docstring.
    CopyCommand renders a role as ``WITH CREDENTIALS AS 'aws_iam_role=<arn>'``; that clause is
    rewritten textually to the equivalent documented ``IAM_ROLE '<arn>'`` form. Access keys are never
    accepted, so no secret can reach this text.
    """
    if isinstance(columns, str) or not columns:
        raise ValueError(f"COPY into {schema}.{table}: columns must be a non-empty sequence of names")
    _check_distinct(columns, f"COPY into {schema}.{table}")
    if not isinstance(manifest_url, str) or not _S3_URL_RE.fullmatch(manifest_url):
        raise ValueError(
            f"manifest URL must be s3://bucket/key without quotes, backslashes, spaces or control "
            f"characters, got {manifest_url!r}"
        )
    if not isinstance(iam_role_arn, str) or not _ROLE_ARN_RE.fullmatch(iam_role_arn):
        raise ValueError(f"not an IAM role ARN (arn:aws:iam::<12 digits>:role/<name>): {iam_role_arn!r}")
    if region is not None and not _REGION_RE.fullmatch(region):
        raise ValueError(f"not an AWS region name: {region!r}")

    target = sa.table(_text_name(table), *[sa.column(_text_name(c)) for c in columns], schema=_text_name(schema))
    command = CopyCommand(
        list(target.columns),
        data_location=manifest_url,
        iam_role_arns=iam_role_arn,
        format=Format.csv,
        compression=Compression.gzip,
        manifest=True,
        date_format="YYYY-MM-DD",
        time_format="auto",
        encoding=Encoding.utf8,
        dangerous_null_delimiter=_NULL_AS_LITERAL,
        comp_update=False,
        stat_update=False,
        region=region,
    )
    sql = re.sub(r"\n[ \t]+", "\n", _compile(command))

    head = (
        f"COPY {quote_ident(schema)}.{quote_ident(table)} "
        f"({', '.join(quote_ident(c) for c in columns)}) FROM {_literal(manifest_url)}\n"
    )
    credentials = f"WITH CREDENTIALS AS {_literal('aws_iam_role=' + iam_role_arn)}"
    if not sql.startswith(head) or sql.count(credentials) != 1:
        raise ValueError(f"sqlalchemy-redshift rendered an unexpected COPY for {schema}.{table}: {sql!r}")
    # Not expressible in CopyCommand: it has no IAM_ROLE form, only the CREDENTIALS string.
    return sql.replace(credentials, f"IAM_ROLE {_literal(iam_role_arn)}")


def load_errors_query(query_id: int | None = None) -> str:
    """The errors of a failed COPY from ``sys_load_error_detail`` (Serverless has no STL views).

    A SYS view's ``query_id`` is not the STL query id that ``pg_last_copy_id()`` returns
    (*SYS_QUERY_HISTORY*: "The query_id column in the SYS monitoring views and the query column in
    STL_QUERY are not the same identifier"), so by default the id is this session's latest COPY in
    ``sys_query_history`` (``session_id``: the process id of the session, as ``pg_backend_pid()``).
    That view has no raw field value, so ``raw_field_value`` is NULL here to keep the row shape of
    ``stl_load_errors_query``.
    """
    return (
        "SELECT TRIM(file_name) AS file_name, line_number, TRIM(column_name) AS column_name, "
        'TRIM(column_type) AS column_type, TRIM(column_length) AS column_length, "position", '
        "error_code, TRIM(error_message) AS error_message, "
        "CAST(NULL AS VARCHAR(1024)) AS raw_field_value "
        f"FROM sys_load_error_detail WHERE query_id = {_sys_query_id_sql(query_id)} "
        f'ORDER BY file_name, line_number, "position" LIMIT {_LOAD_ERRORS_LIMIT}'
    )


def stl_load_errors_query(query_id: int | None = None) -> str:
    """The same report from ``stl_load_errors``, with raw values: provisioned clusters, tried first.

    ``pg_last_copy_id()`` is the STL query id of the session's last COPY (*PG_LAST_COPY_ID* pairs it
    with STL_LOAD_ERRORS), and it is set by a COPY that failed on bad data.
    """
    return (
        "SELECT TRIM(filename) AS file_name, line_number, TRIM(colname) AS column_name, "
        'TRIM(type) AS column_type, TRIM(col_length) AS column_length, "position", '
        "err_code AS error_code, TRIM(err_reason) AS error_message, "
        "RTRIM(raw_field_value) AS raw_field_value "
        f"FROM stl_load_errors WHERE query = {_query_id_sql(query_id)} "
        f'ORDER BY file_name, line_number, "position" LIMIT {_LOAD_ERRORS_LIMIT}'
    )


def format_load_error(row: Mapping[str, Any]) -> str:
    """One line an operator can act on: file, line, column (with type) and Redshift's reason.

    Accepts rows of either load-error query (and the raw ``stl_load_errors`` column names); control
    characters in values are escaped so the message stays on one line.
    """
    file_name = _field(row, "file_name", "filename") or "<unknown file>"
    line = _field(row, "line_number")
    column = _field(row, "column_name", "colname")
    column_type = _field(row, "column_type", "type")
    column_length = _field(row, "column_length", "col_length")
    reason = _field(row, "error_message", "err_reason") or "unknown reason"
    code = _field(row, "error_code", "err_code")
    raw = row.get("raw_field_value")

    where = f"{file_name} line {line or '?'}"
    if column:
        kind = column_type + (f"({column_length})" if column_length and column_length != "0" else "")
        where += f", column {_display_ident(column)}" + (f" ({kind})" if kind else "")
    message = f"COPY failed at {where}: {reason}"
    if code:
        message += f" [code {code}]"
    if isinstance(raw, str) and raw.rstrip():
        shown = raw.rstrip()
        shown = shown if len(shown) <= 200 else shown[:200] + "…"
        message += f"; raw value {shown!r}"
    return message


def append_from(target_schema: str, target_table: str, source_schema: str, source_table: str) -> str:
    """``ALTER TABLE … APPEND FROM … FILLTARGET``: moves a segment's rows into the loading table.

    Rendered by AlterTableAppendCommand. FILLTARGET fills target-only columns with NULL; a source
    column missing from the target still fails (no IGNOREEXTRA), so nothing is dropped silently.
    Redshift commits it on completion and refuses it inside a transaction block (BEGIN … END):
    run it in autocommit mode, one statement per call.
    """
    if (target_schema, target_table) == (source_schema, source_table):
        raise ValueError(f"cannot append {source_schema}.{source_table} to itself")
    target = sa.table(_text_name(target_table), schema=_text_name(target_schema))
    source = sa.table(_text_name(source_table), schema=_text_name(source_schema))
    sql = _compile(AlterTableAppendCommand(source, target, fill_target=True))
    return _checked(
        sql,
        f"ALTER TABLE {quote_ident(target_schema)}.{quote_ident(target_table)} "
        f"APPEND FROM {quote_ident(source_schema)}.{quote_ident(source_table)} FILLTARGET",
    )


def rename_schema(old: str, new: str) -> str:
    """``ALTER SCHEMA … RENAME TO …`` (no SQLAlchemy construct exists for it)."""
    if old == new:
        raise ValueError(f"cannot rename schema {old!r} to itself")
    return f"ALTER SCHEMA {quote_ident(old)} RENAME TO {quote_ident(new)}"


def lock_report_query() -> str:
    """Who holds or waits for table locks, oldest transaction first (run after a statement timeout).

    Follows AWS's "find and release locks" guidance: ``svv_transactions`` joined with ``pg_locks``
    for the blocking pid; end a blocker with ``SELECT pg_terminate_backend(<pid>)``. Regular users
    see only their own transactions in ``svv_transactions``: run it as a superuser.
    """
    return (
        "SELECT t.pid, t.xid, TRIM(t.txn_owner) AS user_name, TRIM(t.txn_db) AS database_name, "
        "t.txn_start, DATEDIFF(second, t.txn_start, GETDATE()) AS txn_seconds, t.lock_mode, "
        "t.granted, t.relation AS table_id, TRIM(n.nspname) AS schema_name, "
        "TRIM(c.relname) AS table_name, b.pid AS blocking_pid "
        "FROM svv_transactions t "
        "LEFT JOIN (SELECT DISTINCT pid, relation FROM pg_locks WHERE granted) b "
        "ON NOT t.granted AND b.relation = t.relation AND b.pid <> t.pid "
        "LEFT JOIN pg_class c ON c.oid = t.relation "
        "LEFT JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE t.relation IS NOT NULL AND t.pid <> pg_backend_pid() "
        "ORDER BY t.txn_start, t.pid"
    )


def set_statement_timeout(ms: int) -> str:
    """``SET statement_timeout TO <ms>`` (0 disables): bounds waits on locks held by other sessions."""
    if isinstance(ms, bool) or not isinstance(ms, int) or not 0 <= ms <= _MAX_TIMEOUT_MS:
        raise ValueError(f"statement timeout must be an integer number of ms in 0..{_MAX_TIMEOUT_MS}, got {ms!r}")
    return f"SET statement_timeout TO {ms}"


# --- helpers -------------------------------------------------------------------------------------


class _RedshiftType(sa.types.UserDefinedType[Any]):
    """A column type rendered as the already-validated Redshift type text."""

    cache_ok = True

    def __init__(self, spec: str) -> None:
        self.spec = spec

    def get_col_spec(self, **kw: Any) -> str:
        return self.spec


def _compile(element: sa.sql.ClauseElement) -> str:
    return str(element.compile(dialect=_DIALECT, compile_kwargs={"literal_binds": True}))


def _check_ident(name: str) -> None:
    if not isinstance(name, str):
        raise TypeError(f"identifier must be a str, got {type(name).__name__}")
    if not name:
        raise ValueError("identifier must not be empty")
    if "\x00" in name:
        raise ValueError(f"identifier must not contain a NUL character: {name!r}")
    bad = [ch for ch in name if unicodedata.category(ch) in ("Cc", "Cs")]
    if bad:
        raise ValueError(f"identifier must not contain control characters {bad!r}: {name!r}")
    if len(name.encode("utf-8")) > _MAX_IDENT_BYTES:
        raise ValueError(f"identifier longer than {_MAX_IDENT_BYTES} UTF-8 bytes (Redshift limit): {name!r}")


def _ddl_name(name: str) -> quoted_name:
    """A force-quoted SQLAlchemy name, for constructs that render names directly (DDL)."""
    _check_ident(name)
    return quoted_name(name, quote=True)


def _text_name(name: str) -> quoted_name:
    """A force-quoted name for sqlalchemy-redshift's commands, which re-parse their text.

    Those commands pass rendered names through ``sa.text()``, where ``:word`` is a bind parameter
    (rendered as NULL under ``literal_binds``) and ``\\:`` an escaped colon; escaping every colon keeps
    names intact. Callers still compare the result with ``quote_ident`` (``_checked``).
    """
    _check_ident(name)
    return quoted_name(name.replace(":", "\\:"), quote=True)


def _checked(sql: str, expected: str) -> str:
    """Refuse any rendering that differs from the contract, whatever the library version does."""
    if sql != expected:
        raise ValueError(f"sqlalchemy-redshift rendered {sql!r}, expected {expected!r}")
    return sql


def _check_distinct(names: Sequence[str], what: str) -> None:
    seen: dict[str, str] = {}
    for name in names:
        _check_ident(name)
        folded = name.translate(_ASCII_FOLD)
        if folded in seen:
            raise ValueError(f"{what}: columns {seen[folded]!r} and {name!r} collide (Redshift folds case)")
        seen[folded] = name


def _check_type(column: str, type_text: str) -> None:
    match = _TYPE_RE.fullmatch(type_text) if isinstance(type_text, str) else None
    ok = match is not None
    if match is not None:
        if match["p"] is not None:
            precision, scale = int(match["p"]), int(match["s"])
            ok = 1 <= precision <= _MAX_DECIMAL_PRECISION and scale <= min(precision, _MAX_DECIMAL_SCALE)
        elif match["vc"] is not None:
            ok = 1 <= int(match["vc"]) <= _MAX_VARCHAR
        elif match["vb"] is not None:
            ok = 1 <= int(match["vb"]) <= _MAX_VARBYTE
    if not ok:
        raise ValueError(
            f"column {column!r}: type {type_text!r} is not an allowed Redshift type (SMALLINT, INTEGER, "
            "BIGINT, DECIMAL(p,s) with 1<=p<=38 and s<=min(p,37), VARCHAR(1..65535), BOOLEAN, TIMESTAMPTZ, DATE, "
            "VARBYTE(1..16777216), SUPER)"
        )


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _query_id_sql(query_id: int | None) -> str:
    if query_id is None:
        return "pg_last_copy_id()"
    if isinstance(query_id, bool) or not isinstance(query_id, int):
        raise ValueError(f"query id must be an integer, got {query_id!r}")
    return str(query_id)


def _sys_query_id_sql(query_id: int | None) -> str:
    if query_id is not None:
        return _query_id_sql(query_id)
    return (
        "(SELECT query_id FROM sys_query_history WHERE session_id = pg_backend_pid() "
        "AND query_type = 'COPY' ORDER BY start_time DESC LIMIT 1)"
    )


def _field(row: Mapping[str, Any], *keys: str) -> str:
    for key in keys:
        value = row.get(key)
        if value is not None:
            return _one_line(str(value).strip())
    return ""


def _one_line(text: str) -> str:
    return "".join(
        ch if unicodedata.category(ch) not in ("Cc", "Zl", "Zp") else ch.encode("unicode_escape").decode()
        for ch in text
    )


def _display_ident(name: str) -> str:
    """``quote_ident`` for messages only: never raises on a name Redshift reported back."""
    try:
        return quote_ident(name)
    except (TypeError, ValueError):
        return repr(name)
