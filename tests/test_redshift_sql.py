"""Tests for arm_etl.warehouse.redshift_sql: exact SQL text, identifier quoting, injection safety, validation."""

from __future__ import annotations

import re

import pytest

from arm_etl.warehouse import redshift_sql as rs

ROLE = "arn:aws:iam::123456789012:role/x"
MANIFEST = "s3://observes.etl-data/orders/part_0/orders.manifest"

# A double-quoted identifier is one token: everything between its quotes, with "" inside.
_QUOTED_IDENT = re.compile(r'"(?:[^"]|"")*"')


def _outside_identifiers(sql: str) -> str:
    return _QUOTED_IDENT.sub("<id>", sql)


# --- constants -----------------------------------------------------------------------------------


def test_csv_constants() -> None:
    assert rs.REDSHIFT_CSV_NULL == "\x00"
    assert rs.REDSHIFT_BINARY_ENCODING == "hex"


# --- quote_ident ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("plain", '"plain"'),
        ('weird"name', '"weird""name"'),
        ('""', '""""""'),
        ("select", '"select"'),
        ("order", '"order"'),
        ("user", '"user"'),
        ("Mixed Case", '"Mixed Case"'),
        ("ünïcødé_名前", '"ünïcødé_名前"'),
        ("a.b", '"a.b"'),
        ("50%", '"50%"'),
        ("a:b", '"a:b"'),
        ("back\\slash", '"back\\slash"'),
        ("it's", '"it\'s"'),
    ],
)
def test_quote_ident(name: str, quoted: str) -> None:
    assert rs.quote_ident(name) == quoted


def test_quote_ident_injection_is_one_identifier() -> None:
    evil = 'x"; DROP TABLE y; --'
    assert rs.quote_ident(evil) == '"x""; DROP TABLE y; --"'
    assert _outside_identifiers(rs.quote_ident(evil)) == "<id>"


@pytest.mark.parametrize("name", ["", "a\x00b", "line\nbreak", "tab\there", "\x7f", "a" * 128, "é" * 64])
def test_quote_ident_rejects(name: str) -> None:
    with pytest.raises(ValueError):
        rs.quote_ident(name)


def test_quote_ident_nul_message() -> None:
    with pytest.raises(ValueError, match="NUL"):
        rs.quote_ident("a\x00")


def test_quote_ident_max_length_in_bytes() -> None:
    assert rs.quote_ident("a" * 127) == '"' + "a" * 127 + '"'
    assert rs.quote_ident("é" * 63) == '"' + "é" * 63 + '"'  # 126 bytes


# --- schemas -------------------------------------------------------------------------------------


def test_create_schema() -> None:
    assert rs.create_schema("dynamodb_orders_part_0") == 'CREATE SCHEMA IF NOT EXISTS "dynamodb_orders_part_0"'


def test_drop_schema() -> None:
    assert rs.drop_schema("dynamodb_orders_backup") == 'DROP SCHEMA IF EXISTS "dynamodb_orders_backup"'


def test_rename_schema() -> None:
    assert rs.rename_schema("old", "new") == 'ALTER SCHEMA "old" RENAME TO "new"'
    with pytest.raises(ValueError):
        rs.rename_schema("same", "same")


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (rs.create_schema('x"; DROP TABLE y; --'), 'CREATE SCHEMA IF NOT EXISTS "x""; DROP TABLE y; --"'),
        (rs.drop_schema('x"; DROP TABLE y; --'), 'DROP SCHEMA IF EXISTS "x""; DROP TABLE y; --"'),
        (rs.rename_schema('a"b', "Ünï"), 'ALTER SCHEMA "a""b" RENAME TO "Ünï"'),
    ],
)
def test_schema_statements_quote(sql: str, expected: str) -> None:
    assert sql == expected
    assert ";" not in _outside_identifiers(sql)


# --- create_table --------------------------------------------------------------------------------

ALL_TYPES = [
    ("pk", "VARCHAR(16)"),
    ("n_small", "SMALLINT"),
    ("n_int", "INTEGER"),
    ("n_big", "BIGINT"),
    ("info__rating", "DECIMAL(3,1)"),
    ("flag", "BOOLEAN"),
    ("at", "TIMESTAMPTZ"),
    ("day", "DATE"),
    ("blob", "VARBYTE(64)"),
    ("doc", "SUPER"),
]


def test_create_table_all_types() -> None:
    assert rs.create_table("s", "t", ALL_TYPES) == (
        'CREATE TABLE "s"."t" ("pk" VARCHAR(16) ENCODE RAW, "n_small" SMALLINT ENCODE AZ64, '
        '"n_int" INTEGER ENCODE AZ64, "n_big" BIGINT ENCODE AZ64, "info__rating" DECIMAL(3,1) ENCODE AZ64, '
        '"flag" BOOLEAN ENCODE RAW, "at" TIMESTAMPTZ ENCODE AZ64, "day" DATE ENCODE AZ64, '
        '"blob" VARBYTE(64) ENCODE RAW, "doc" SUPER ENCODE LZO) DISTSTYLE EVEN SORTKEY ("pk")'
    )


def test_create_table_diststyle_option() -> None:
    assert rs.create_table("s", "t", [("a", "BIGINT")], diststyle=None) == (
        'CREATE TABLE "s"."t" ("a" BIGINT ENCODE RAW) SORTKEY ("a")'
    )
    assert rs.create_table("s", "t", [("a", "BIGINT"), ("b", "DATE")], diststyle="ALL", sortkey="b") == (
        'CREATE TABLE "s"."t" ("a" BIGINT ENCODE AZ64, "b" DATE ENCODE RAW) DISTSTYLE ALL SORTKEY ("b")'
    )
    with pytest.raises(ValueError, match="sort key 'c' is not one of its columns"):
        rs.create_table("s", "t", [("a", "BIGINT")], sortkey="c")
    with pytest.raises(ValueError, match="sort key 'b' is VARBYTE\\(4\\), which cannot be a sort key"):
        rs.create_table("s", "t", [("a", "BIGINT"), ("b", "VARBYTE(4)")], sortkey="b")
    with pytest.raises(ValueError):
        rs.create_table("s", "t", [("a", "BIGINT")], diststyle="KEY; DROP")


def test_create_table_quotes_everything() -> None:
    sql = rs.create_table(
        'x"; DROP TABLE y; --',
        "select",
        [('weird"name', "BIGINT"), ("größe", "VARCHAR(4)"), ("a:b %c", "DATE")],
    )
    assert sql == (
        'CREATE TABLE "x""; DROP TABLE y; --"."select" '
        '("weird""name" BIGINT ENCODE RAW, "größe" VARCHAR(4) ENCODE ZSTD, "a:b %c" DATE ENCODE AZ64) '
        'DISTSTYLE EVEN SORTKEY ("weird""name")'
    )
    assert ";" not in _outside_identifiers(sql)


@pytest.mark.parametrize(
    "type_text",
    [
        "TEXT",
        "bigint",
        "VARCHAR",
        "VARCHAR(0)",
        "VARCHAR(65536)",
        "VARCHAR(16) NOT NULL",
        "DECIMAL(39,0)",
        "DECIMAL(3,4)",
        "DECIMAL(38,38)",
        "DECIMAL(3, 1)",
        "VARBYTE(16777217)",
        "BIGINT; DROP TABLE y",
        "BIGINT)--",
        "",
    ],
)
def test_create_table_rejects_types(type_text: str) -> None:
    with pytest.raises(ValueError, match=r"column 'col'.*not an allowed Redshift type"):
        rs.create_table("s", "t", [("ok", "BIGINT"), ("col", type_text)])


def test_create_table_type_bounds_accepted() -> None:
    sql = rs.create_table(
        "s",
        "t",
        [("a", "DECIMAL(38,37)"), ("b", "VARCHAR(65535)"), ("c", "VARBYTE(16777216)"), ("d", "DECIMAL(1,0)")],
    )
    assert sql == (
        'CREATE TABLE "s"."t" ("a" DECIMAL(38,37) ENCODE RAW, "b" VARCHAR(65535) ENCODE ZSTD, '
        '"c" VARBYTE(16777216) ENCODE RAW, "d" DECIMAL(1,0) ENCODE AZ64) DISTSTYLE EVEN SORTKEY ("a")'
    )


def test_create_table_rejects_empty_and_case_collisions() -> None:
    with pytest.raises(ValueError):
        rs.create_table("s", "t", [])
    with pytest.raises(ValueError, match="collide"):
        rs.create_table("s", "t", [("Price", "BIGINT"), ("price", "BIGINT")])
    with pytest.raises(ValueError):
        rs.create_table("s", "t", [("a\x00", "BIGINT")])


# --- COPY ----------------------------------------------------------------------------------------


def test_copy_from_manifest_exact() -> None:
    sql = rs.copy_from_manifest("dynamodb_orders_part_0", "orders", ["pk", "sk", "info__rating"], MANIFEST, ROLE)
    assert sql == (
        'COPY "dynamodb_orders_part_0"."orders" ("pk", "sk", "info__rating") '
        "FROM 's3://observes.etl-data/orders/part_0/orders.manifest'\n"
        "IAM_ROLE 'arn:aws:iam::123456789012:role/x'\n"
        "FORMAT AS CSV\n"
        "GZIP\n"
        "MANIFEST\n"
        "DATEFORMAT AS 'YYYY-MM-DD'\n"
        "ENCODING AS UTF8\n"
        "NULL AS '\\000'\n"
        "TIMEFORMAT AS 'auto'\n"
        "COMPUPDATE OFF\n"
        "STATUPDATE OFF"
    )


def test_copy_from_manifest_with_region_and_role_path() -> None:
    role = "arn:aws-us-gov:iam::123456789012:role/service-role/etl+copy@x"
    sql = rs.copy_from_manifest("s", "t", ["a"], "s3://b-1.x/k%20y/m.manifest", role, region="us-gov-west-1")
    assert sql == (
        """COPY "s"."t" ("a") FROM 's3://b-1.x/k%20y/m.manifest'\n"""
        "IAM_ROLE 'arn:aws-us-gov:iam::123456789012:role/service-role/etl+copy@x'\n"
        "FORMAT AS CSV\nGZIP\nMANIFEST\nDATEFORMAT AS 'YYYY-MM-DD'\nENCODING AS UTF8\nNULL AS '\\000'\n"
        "TIMEFORMAT AS 'auto'\nCOMPUPDATE OFF\nSTATUPDATE OFF\nREGION 'us-gov-west-1'"
    )


def test_copy_options_present_and_forbidden_absent() -> None:
    sql = rs.copy_from_manifest("s", "t", ["a", "b"], MANIFEST, ROLE)
    lines = sql.split("\n")
    for option in [
        f"IAM_ROLE '{ROLE}'",
        "FORMAT AS CSV",
        "GZIP",
        "MANIFEST",
        "NULL AS '\\000'",
        "TIMEFORMAT AS 'auto'",
        "DATEFORMAT AS 'YYYY-MM-DD'",
        "COMPUPDATE OFF",
        "STATUPDATE OFF",
    ]:
        assert option in lines
    upper = sql.upper()
    for forbidden in [
        "ACCESS_KEY_ID",
        "SECRET",
        "CREDENTIALS",
        "TOKEN",
        "MAXERROR",
        "TRUNCATECOLUMNS",
        "ACCEPTINVCHARS",
        "ACCEPTANYDATE",
        "EMPTYASNULL",
        "BLANKSASNULL",
        "TRIMBLANKS",
        "ESCAPE",
        "REMOVEQUOTES",
        "ROUNDEC",
        "FILLRECORD",
        "IGNOREHEADER",
    ]:
        assert forbidden not in upper


def test_copy_quotes_identifiers_and_survives_injection() -> None:
    sql = rs.copy_from_manifest(
        'x"; DROP TABLE y; --', "order", ['weird"name', "a:b", "x :y", "a\\:b", "p%q"], MANIFEST, ROLE
    )
    assert sql.split("\n")[0] == (
        f'COPY "x""; DROP TABLE y; --"."order" ("weird""name", "a:b", "x :y", "a\\:b", "p%q") FROM \'{MANIFEST}\''
    )
    assert ";" not in _outside_identifiers(sql)


@pytest.mark.parametrize(
    "url",
    [
        "https://bucket/key",
        "s3://bucket",
        "s3://Bucket/key",
        "s3://bucket/it's",
        "s3://bucket/a b",
        "s3://bucket/a\\b",
        "s3://bucket/a\nb",
        "s3://bucket/x' IAM_ROLE 'y",
    ],
)
def test_copy_rejects_bad_urls(url: str) -> None:
    with pytest.raises(ValueError, match="manifest URL"):
        rs.copy_from_manifest("s", "t", ["a"], url, ROLE)


@pytest.mark.parametrize(
    "arn",
    [
        "AKIAIOSFODNN7EXAMPLE",
        "arn:aws:iam::12345678901:role/x",
        "arn:aws:iam::123456789012:user/x",
        "arn:aws:iam::123456789012:role/x' --",
        "arn:aws:iam::123456789012:role/x,arn:aws:iam::123456789012:role/y",
        "arn:aws-iso:iam::123456789012:role/x",
        "aws_access_key_id=AKIAIOSFODNN7EXAMPLE;aws_secret_access_key=x",
    ],
)
def test_copy_rejects_non_role_credentials(arn: str) -> None:
    with pytest.raises(ValueError, match="IAM role ARN"):
        rs.copy_from_manifest("s", "t", ["a"], MANIFEST, arn)


def test_copy_rejects_bad_region_and_columns() -> None:
    with pytest.raises(ValueError, match="region"):
        rs.copy_from_manifest("s", "t", ["a"], MANIFEST, ROLE, region="us-east-1'")
    with pytest.raises(ValueError):
        rs.copy_from_manifest("s", "t", [], MANIFEST, ROLE)
    with pytest.raises(ValueError):
        rs.copy_from_manifest("s", "t", "abc", MANIFEST, ROLE)
    with pytest.raises(ValueError, match="collide"):
        rs.copy_from_manifest("s", "t", ["a", "A"], MANIFEST, ROLE)


# --- APPEND --------------------------------------------------------------------------------------


def test_append_from() -> None:
    assert rs.append_from("dynamodb_orders_loading", "orders", "dynamodb_orders_part_3", "orders") == (
        'ALTER TABLE "dynamodb_orders_loading"."orders" APPEND FROM "dynamodb_orders_part_3"."orders" FILLTARGET'
    )


def test_append_from_quotes_and_injection() -> None:
    sql = rs.append_from('t"; DROP TABLE y; --', "a:b", "s", "x :y")
    assert sql == 'ALTER TABLE "t""; DROP TABLE y; --"."a:b" APPEND FROM "s"."x :y" FILLTARGET'
    assert ";" not in _outside_identifiers(sql)
    with pytest.raises(ValueError):
        rs.append_from("s", "t", "s", "t")


# --- load errors ---------------------------------------------------------------------------------


def test_load_errors_query_last_copy() -> None:
    assert rs.load_errors_query() == (
        "SELECT TRIM(file_name) AS file_name, line_number, TRIM(column_name) AS column_name, "
        'TRIM(column_type) AS column_type, TRIM(column_length) AS column_length, "position", '
        "error_code, TRIM(error_message) AS error_message, CAST(NULL AS VARCHAR(1024)) AS raw_field_value "
        "FROM sys_load_error_detail WHERE query_id = (SELECT query_id FROM sys_query_history "
        "WHERE session_id = pg_backend_pid() AND query_type = 'COPY' ORDER BY start_time DESC LIMIT 1) "
        'ORDER BY file_name, line_number, "position" LIMIT 100'
    )


def test_load_errors_query_given_id() -> None:
    assert "WHERE query_id = 12345 ORDER BY" in rs.load_errors_query(12345)
    with pytest.raises(ValueError):
        rs.load_errors_query("1; DROP TABLE y")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        rs.load_errors_query(True)


def test_stl_load_errors_query() -> None:
    assert rs.stl_load_errors_query() == (
        "SELECT TRIM(filename) AS file_name, line_number, TRIM(colname) AS column_name, "
        'TRIM(type) AS column_type, TRIM(col_length) AS column_length, "position", '
        "err_code AS error_code, TRIM(err_reason) AS error_message, "
        "RTRIM(raw_field_value) AS raw_field_value "
        "FROM stl_load_errors WHERE query = pg_last_copy_id() "
        'ORDER BY file_name, line_number, "position" LIMIT 100'
    )
    assert "WHERE query = 7 ORDER BY" in rs.stl_load_errors_query(7)


def test_format_load_error_full_row() -> None:
    row = {
        "file_name": "s3://observes.etl-data/orders/part_0/orders/3.csv.gz   ",
        "line_number": 12,
        "column_name": "info__rating   ",
        "column_type": "numeric   ",
        "column_length": "3,1  ",
        "position": 0,
        "error_code": 1207,
        "error_message": "Invalid digit, Value 'x', Pos 0, Type: Decimal",
        "raw_field_value": "x1\nline2   ",
    }
    assert rs.format_load_error(row) == (
        "COPY failed at s3://observes.etl-data/orders/part_0/orders/3.csv.gz line 12, "
        "column \"info__rating\" (numeric(3,1)): Invalid digit, Value 'x', Pos 0, Type: Decimal "
        "[code 1207]; raw value 'x1\\nline2'"
    )


def test_format_load_error_sys_row_and_stl_names() -> None:
    sys_row = {
        "file_name": "s3://b/x.csv.gz",
        "line_number": 3,
        "column_name": "at",
        "column_type": "timestamptz",
        "column_length": "0",
        "error_code": 1206,
        "error_message": "Invalid timestamp format or value",
        "raw_field_value": None,
    }
    assert rs.format_load_error(sys_row) == (
        'COPY failed at s3://b/x.csv.gz line 3, column "at" (timestamptz): Invalid timestamp format or value '
        "[code 1206]"
    )
    stl_row = {"filename": "s3://b/y.csv.gz", "line_number": 1, "colname": "a", "err_reason": "bad\r\nthing"}
    assert rs.format_load_error(stl_row) == 'COPY failed at s3://b/y.csv.gz line 1, column "a": bad\\r\\nthing'
    assert "\n" not in rs.format_load_error(stl_row)


def test_format_load_error_sparse_row() -> None:
    assert rs.format_load_error({}) == "COPY failed at <unknown file> line ?: unknown reason"


# --- locks and timeouts --------------------------------------------------------------------------


def test_lock_report_query() -> None:
    assert rs.lock_report_query() == (
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


def test_set_statement_timeout() -> None:
    assert rs.set_statement_timeout(60000) == "SET statement_timeout TO 60000"
    assert rs.set_statement_timeout(0) == "SET statement_timeout TO 0"
    for bad in (-1, 2**31, True, 1.5, "1000"):
        with pytest.raises(ValueError):
            rs.set_statement_timeout(bad)  # type: ignore[arg-type]


# --- guard against library rendering changes -----------------------------------------------------


def test_unexpected_rendering_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rs, "_compile", lambda element: 'ALTER TABLE "t"."x" APPEND FROM "s"."x" IGNOREEXTRA')
    with pytest.raises(ValueError, match="rendered"):
        rs.append_from("t", "x", "s", "x")
    with pytest.raises(ValueError, match="rendered"):
        rs.copy_from_manifest("s", "t", ["a"], MANIFEST, ROLE)
    with pytest.raises(ValueError, match="rendered"):
        rs.create_schema("s")
