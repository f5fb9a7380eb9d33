"""``arm-etl sql``: the statements a DBA reviews are the statements the runs execute, and obey Redshift.

For the demo table (the seed's single-table design, routed by ``sk:#``) and for the bad-input
catalogue, ``arm-etl sql --dialect redshift`` prints a script whose every statement parses with
sqlglot's Redshift grammar and passes every documented rule (``tests/redshift_rules.py``). On
PostgreSQL, a real segment run and centralization execute only statements that the printed script
shows, text for text.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from arm_etl.seed import create_table, seed_table
from arm_etl.warehouse import Warehouse
from arm_etl.warehouse.statement import Statement
from flows.cli import main
from tests import redshift_rules as rules
from tests.exactness import ensure_buckets
from tests.test_bad_inputs import KINDS

DEMO, BAD = "sql-demo", "sql-bad-inputs"


@pytest.fixture(scope="module")
def cached(stack: Any, prefect_api: str) -> list[str]:
    """Data-schemas for both tables, determined with Redshift's 127-byte name limit."""
    from flows.schema import determine_schema

    ensure_buckets(stack)
    ddb = boto3.client("dynamodb", endpoint_url=stack.endpoint)
    seed_table(ddb, DEMO, 300, seed=5)
    create_table(ddb, BAD)
    for kind in KINDS:
        if not kind.drift:
            ddb.put_item(TableName=BAD, Item=kind.item())
    for table in (DEMO, BAD):
        determine_schema(table, total=1, routing=["sk:#"], name_limit=127)
    return [DEMO, BAD]


def script(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["sql", *args]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("table", [DEMO, BAD])
def test_redshift_script_parses_and_obeys_every_rule(
    table: str, cached: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    text = script(capsys, "--table", table, "--dialect", "redshift", "--total", "3")
    statements = rules.statements(text)  # every statement ends with ";" at a line end
    copies = sum(s.startswith("COPY ") for s in statements)
    assert copies >= 10  # one per warehouse table
    assert sum(" APPEND FROM " in s for s in statements) == 3 * copies  # every table of every segment
    assert sum(s.startswith("CREATE TABLE ") for s in statements) == 2 * copies + 2  # + _etl_segment, _etl_merged
    assert {s: v for s in statements if (v := rules.violations(s))} == {}
    assert ":loaded_at" in text and ":merged_at" in text and "now()" not in text.lower()


def test_every_statement_a_postgresql_run_executes_is_in_its_script(
    cached: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.centralize import centralize
    from flows.segment import segment_etl

    text = script(capsys, "--table", DEMO, "--dialect", "postgresql", "--total", "1")
    printed = set(rules.statements(text))
    executed: list[str] = []
    real_execute = Warehouse.execute

    def spy(self: Warehouse, cur: Any, statement: Statement, values: Any = None) -> None:
        executed.append(statement.display())
        real_execute(self, cur, statement, values)

    monkeypatch.setattr(Warehouse, "execute", spy)
    segment_etl(DEMO, 0, 1, snapshot="sql-test")
    centralize(DEMO, 1, approve=True)
    assert len(executed) > 50
    assert sorted(set(executed) - printed) == []


def test_sql_help_names_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["sql", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for option in ("--table", "--target-schema", "--dialect", "--total", "--segment", "--schema-version"):
        assert option in out
    assert "nothing is executed" in out.lower()
