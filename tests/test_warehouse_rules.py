"""Each documented Redshift rule, stated as a test over the statements the warehouse classes build.

Every test shows the rule catching the statement the code emitted before the warehouse package (the
literal old text), then the statements of today's ``RedshiftWarehouse`` passing it. Page titles and
the quoted sentences are in ``tests/redshift_rules.py``.
"""

from __future__ import annotations

import ast
import pathlib
import re

import boto3
import pytest
from moto import mock_aws

from arm_etl.dataschema import Column, DataSchema, Table
from arm_etl.errors import ArmEtlError, is_transient
from arm_etl.warehouse import RedshiftWarehouse, TableCopy, WarehouseError, warehouse_for
from arm_etl.warehouse import redshift_sql as rs
from arm_etl.warehouse.bookkeeping import MergedRow, SegmentMarker
from arm_etl.warehouse.script import centralization_script, render, segment_script
from tests import redshift_rules as rules

ROLE = "arn:aws:iam::123456789012:role/etl-copy"
ROOT = pathlib.Path(__file__).resolve().parents[1]


def all_types_schema() -> DataSchema:
    cols = (
        Column("pk", ("pk",), "VARCHAR(16)"),
        Column("n", ("n",), "SMALLINT"),
        Column("i", ("i",), "INTEGER"),
        Column("b", ("b",), "BIGINT"),
        Column("beyond", ("beyond",), "DECIMAL(20,0)"),
        Column("tiny", ("tiny",), "DECIMAL(38,37)"),
        Column("flag", ("flag",), "BOOLEAN"),
        Column("at", ("at",), "TIMESTAMPTZ"),
        Column("day", ("day",), "DATE"),
        Column("blob", ("blob",), "VARBYTE(64)"),
        Column("doc", ("doc",), "SUPER"),
    )
    table = Table("t", None, "t", (), ("pk",), cols)
    return DataSchema(
        "src", "20261202T000000Z-0123abcd", "2026-12-02T00:00:00Z", 1, "relational", (), ("pk",), (table,)
    )


def redshift() -> RedshiftWarehouse:
    wh = warehouse_for(dialect="redshift", iam_role=ROLE, region="eu-west-1")
    assert isinstance(wh, RedshiftWarehouse)
    return wh


def script_statements() -> list[str]:
    ds, wh = all_types_schema(), redshift()
    text = render(
        iter([*segment_script(wh, ds, "dynamodb_src", 0, "bucket"), *centralization_script(wh, ds, "dynamodb_src", 2)])
    )
    return rules.statements(text)


def test_every_statement_of_a_run_parses_and_obeys_every_rule() -> None:
    found = {s: v for s in script_statements() if (v := rules.violations(s))}
    assert found == {}


def test_leader_node_only_now_is_never_in_an_insert() -> None:
    """*Leader node–only functions*: the old segment marker and merge progress rows used now()."""
    old = "INSERT INTO \"s\".\"_etl_segment\" VALUES ('t', 0, 1, 'snap', 'v', 10, now())"
    assert rules.violations(old) == [
        "leader_node_functions: leader-node-only function GETDATE() in a statement on a user table"
    ]
    wh = redshift()
    new = [*wh.mark_segment_statements("s"), wh.record_merged_statement("s")]
    assert [rules.violations(st.display()) for st in new] == [[], [], []]
    assert new[1].params == tuple(SegmentMarker.__dataclass_fields__)  # loaded_at is a bound value
    assert new[2].params == tuple(MergedRow.__dataclass_fields__)  # merged_at too


def test_decimal_precision_19_and_scale_38_are_never_declared() -> None:
    """*Numeric types*: DECIMAL(19,0) holds at most 2^63-1; the maximum scale is 37."""
    assert rules.violations('CREATE TABLE "s"."t" ("a" DECIMAL(19,0) ENCODE AZ64) DISTSTYLE EVEN SORTKEY ("a")') == [
        "decimal_bounds: DECIMAL(19,0) cannot hold every 19-digit value (2^63 and above)"
    ]
    assert rules.violations('CREATE TABLE "s"."t" ("a" DECIMAL(38,38) ENCODE AZ64) DISTSTYLE EVEN SORTKEY ("a")') == [
        "decimal_bounds: DECIMAL(38,38) outside precision 1..38, scale 0..min(p,37)"
    ]
    with pytest.raises(ValueError, match="not an allowed Redshift type"):
        rs.create_table("s", "t", [("a", "DECIMAL(38,38)")])  # the renderer refuses it as well


def test_append_attributes_are_pinned_on_every_table() -> None:
    """*ALTER TABLE APPEND* / *CREATE TABLE*: the old DDL left ENCODE and SORTKEY to AUTO."""
    assert rules.violations('CREATE TABLE "s"."t" ("a" BIGINT, "b" VARCHAR(4)) DISTSTYLE EVEN') == [
        "append_attributes_pinned: column 'a' has no explicit ENCODE (ENCODE AUTO may change it)",
        "append_attributes_pinned: column 'b' has no explicit ENCODE (ENCODE AUTO may change it)",
        "append_attributes_pinned: no explicit SORTKEY (SORTKEY AUTO may change it)",
    ]
    wh, ds = redshift(), all_types_schema()
    staging = wh.create_schema_statements("x_part_0", ds.warehouse_tables())
    loading = wh.create_schema_statements("x_loading", ds.warehouse_tables())
    # The segment and loading tables are created by the same text but for the schema: APPEND always matches.
    assert [s.sql.replace('"x_part_0"', "S") for s in staging] == [s.sql.replace('"x_loading"', "S") for s in loading]


def test_a_binary_key_column_is_never_the_sort_key() -> None:
    """*VARBYTE type*: "You can't use a VARBYTE column as a sort key" — a table keyed by a binary
    attribute (first column VARBYTE) sorts by ``_segment``."""
    old = (
        'CREATE TABLE "s"."t" ("pk" VARBYTE(16) ENCODE RAW, "_segment" INTEGER ENCODE AZ64) '
        'DISTSTYLE EVEN SORTKEY ("pk")'
    )
    assert rules.violations(old) == ["sort_key_types: sort key 'pk' is VARBYTE(16)"]
    (new,) = redshift().create_table_statements("s", "t", [("pk", "VARBYTE(16)"), ("_segment", "INTEGER")])
    assert new.sql.endswith('SORTKEY ("_segment")') and rules.violations(new.sql) == []


def test_a_target_given_by_the_user_is_folded() -> None:
    """*Names and identifiers*: Redshift folds names to lower case; the target is folded like every name."""
    from arm_etl.config import target_schema

    assert (target_schema("t", "Prod-Schema"), target_schema("My.Table"), target_schema("t", "ok_1")) == (
        "prod_schema",
        "dynamodb_my_table",
        "ok_1",
    )


def test_no_drop_cascades_to_objects_arm_etl_does_not_own() -> None:
    old = 'DROP SCHEMA IF EXISTS "t_backup" CASCADE'  # what the swap ran before
    assert rules.violations(old) == [f"no_cascade: DROP … CASCADE can drop objects arm-etl does not own: {old}"]
    new = RedshiftWarehouse().drop_schema_statements("t_backup", [("a", False), ("v", True)])
    assert [rules.violations(st.display()) for st in new] == [[], [], []]
    assert [st.sql.split(" IF EXISTS")[0] for st in new] == ["DROP VIEW", "DROP TABLE", "DROP SCHEMA"]


def test_append_runs_outside_a_transaction_block() -> None:
    """*ALTER TABLE APPEND*: "You can't run ALTER TABLE APPEND within a transaction block (BEGIN ... END)"."""
    (append,) = redshift().append_statements("l", "p", "t", [("a", "BIGINT")])
    assert append.autocommit and append.sql == 'ALTER TABLE "l"."t" APPEND FROM "p"."t" FILLTARGET'


def test_sys_load_errors_are_not_looked_up_by_an_stl_query_id() -> None:
    """*SYS_QUERY_HISTORY*: SYS query_id is not STL's query, which pg_last_copy_id() returns."""
    old = "SELECT file_name FROM sys_load_error_detail WHERE query_id = pg_last_copy_id() ORDER BY file_name LIMIT 100"
    assert rules.violations(old) == ["sys_view_query_id: a SYS view filtered by pg_last_copy_id() (an STL query id)"]
    stl, sys = redshift().load_error_statements()
    assert "FROM stl_load_errors WHERE query = pg_last_copy_id()" in stl.sql  # STL with STL's id, tried first
    assert rules.violations(sys.sql) == []


def test_copy_region_is_the_data_buckets_region() -> None:
    """*COPY from Amazon S3*: "If the REGION parameter is specified, all resources, including a manifest
    file … must be located in the specified Region" — the bucket's region, whatever the worker's is."""
    from arm_etl.upload import bucket_region

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="eu-data", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        s3.create_bucket(Bucket="us-data")
        assert (bucket_region(s3, "eu-data"), bucket_region(s3, "us-data"), bucket_region(s3, "nope")) == (
            "eu-west-1",
            "us-east-1",
            None,
        )
    copy = redshift().copy_statements("s", TableCopy("t", ["a"], "s3://eu-data/t/part_0/t/copy.manifest"))
    assert copy[1].sql.endswith("\nREGION 'eu-west-1'")


def test_copy_has_its_own_statement_timeout() -> None:
    """*statement_timeout*: "This time includes planning, queueing in workload management (WLM), and
    execution time": a COPY waiting in a WLM queue is not a lock wait, so it runs with its own timeout."""
    wh = redshift()
    sql = [s.sql for s in wh.copy_statements("s", TableCopy("t", ["a"], "s3://bucket/t/part_0/t/copy.manifest"))]
    assert (
        sql[0] == "SET statement_timeout TO 0"
        and sql[1].startswith("COPY")
        and sql[2] == "SET statement_timeout TO 3600000"
    )


def test_connections_use_tls_and_credentials_from_the_provider() -> None:
    from arm_etl.warehouse.auth import DbCredentials

    wh = warehouse_for(
        "redshift+psycopg2://ignored@cluster.example:5439/dev",
        credentials=lambda: DbCredentials("IAM:etl", "temporary-pw", None),
    )
    kwargs = wh.connect_kwargs()
    assert (kwargs["user"], kwargs["password"], kwargs["sslmode"], kwargs["dbname"]) == (
        "IAM:etl",
        "temporary-pw",
        "require",
        "dev",
    )


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (WarehouseError("dropped", transient=True), True),
        (WarehouseError("access denied"), False),
        (ArmEtlError("missing bucket"), False),
        (ConnectionResetError(), True),
        (ValueError("bad data-schema"), False),
    ],
)
def test_only_transient_errors_are_retried(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


def test_psycopg2_and_botocore_errors_are_classified() -> None:
    import psycopg2
    from botocore.exceptions import ClientError

    def client_error(code: str, status: int) -> ClientError:
        return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")

    assert is_transient(client_error("ThrottlingException", 400)) is True
    assert is_transient(client_error("InternalError", 500)) is True
    assert is_transient(client_error("AccessDenied", 403)) is False
    assert is_transient(client_error("NoSuchBucket", 404)) is False
    assert is_transient(psycopg2.OperationalError("server closed the connection unexpectedly")) is True

    class Serialization(psycopg2.Error):
        pgcode = "40001"

    class Denied(psycopg2.Error):
        pgcode = "42501"

    class Redshift1023(psycopg2.Error):
        pgcode = "XX000"

    class Internal(psycopg2.Error):
        pgcode = "XX000"

    assert is_transient(Serialization()) is True and is_transient(Denied()) is False
    # *Serializable isolation*: Redshift's conflict arrives as XX000 with error 1023; other XX000 are terminal
    assert is_transient(Redshift1023("ERROR: 1023 DETAIL: Serializable isolation violation on table")) is True
    assert is_transient(Internal("ERROR: Assert")) is False


# ------------------------------------------------------------------------------ one place for SQL

PRODUCT = ("arm_etl", "flows", "blocks", "deployments")
_SQL_START = re.compile(
    r"^\s*(SELECT |INSERT INTO|UPDATE |DELETE FROM|CREATE (SCHEMA|TABLE|VIEW)|DROP (SCHEMA|TABLE|VIEW)"
    r"|ALTER (TABLE|SCHEMA)|COPY |SET \w+ TO|GRANT |REVOKE |TRUNCATE )"
)


def _strings(path: pathlib.Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    docstrings = {
        id(n.body[0].value)
        for n in ast.walk(tree)
        if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and n.body
        and isinstance(n.body[0], ast.Expr)
        and isinstance(n.body[0].value, ast.Constant)
    }
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if id(node) in docstrings:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.append((node.lineno, node.value))
        elif isinstance(node, ast.JoinedStr):
            out.append((node.lineno, "".join(str(v.value) for v in node.values if isinstance(v, ast.Constant))))
    return out


def _product_files(exclude: str) -> list[pathlib.Path]:
    return [p for d in PRODUCT for p in sorted((ROOT / d).rglob("*.py")) if exclude not in p.parts]


def test_no_sql_text_outside_the_warehouse_package() -> None:
    found = [
        f"{p.relative_to(ROOT)}:{line}: {text[:60]!r}"
        for p in _product_files("warehouse")
        for line, text in _strings(p)
        if _SQL_START.match(text)
    ]
    assert found == []


def test_no_dialect_branch_outside_the_warehouse_package() -> None:
    pattern = re.compile(r"dialect\s*[!=]=|==\s*[\"'](redshift|postgresql)[\"']")
    found = [
        f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
        for p in _product_files("warehouse")
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == []
