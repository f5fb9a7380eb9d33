"""Data-schema determination through Prefect on moto server: parallel segments, small pages, cached JSON."""

from __future__ import annotations

import base64
import re
from typing import Any

import orjson

from arm_etl.inference import finalize, infer
from arm_etl.routing import Router, RoutingRule
from arm_etl.seed import generate_items, seed_table

FIN_COLUMNS = [
    ("pk", ["pk"], "VARCHAR(16)"),
    ("sk", ["sk"], "VARCHAR(16)"),
    ("_3rd_party", ["3rd_party"], "BOOLEAN"),
    (
        "a_very_long_attribute_name_that_goes_past_the_postgres_1f8b34ec",
        ["a_very_long_attribute_name_that_goes_past_the_postgresql_limit_of_63_bytes"],
        "BIGINT",
    ),
    ("amount", ["amount"], "DECIMAL(38,18)"),
    ("archived", ["archived"], "BOOLEAN"),
    ("big_count", ["big_count"], "DECIMAL(20,0)"),
    ("big_exp", ["big_exp"], "VARCHAR(16)"),
    ("big_neg", ["big_neg"], "DECIMAL(20,0)"),
    ("blob", ["blob"], "VARBYTE(16)"),
    ("counter", ["counter"], "BIGINT"),
    ("counter_min", ["counter_min"], "BIGINT"),
    ("created_at", ["created_at"], "TIMESTAMPTZ"),
    ("crlf", ["crlf"], "VARCHAR(16)"),
    ("deleted", ["deleted"], "BOOLEAN"),
    ("description", ["description"], "VARCHAR(1024)"),
    ("due_date", ["due date"], "DATE"),
    ("empty_blob", ["empty_blob"], "VARBYTE(16)"),
    ("from", ["from"], "VARCHAR(16)"),
    ("group", ["group"], "VARCHAR(16)"),
    ("info__a__b__c__d", ["info", "a", "b", "c", "d"], "BIGINT"),
    ("info__a__b__c__e", ["info", "a", "b", "c", "e"], "VARCHAR(16)"),
    ("info__rating", ["info", "rating"], "DECIMAL(2,1)"),
    ("kind", ["kind"], "VARCHAR(16)"),
    ("label", ["label"], "VARCHAR(16)"),
    ("last_seen", ["last_seen"], "DATE"),
    ("notes", ["notes"], "VARCHAR(128)"),
    ("nothing", ["nothing"], "VARCHAR(16)"),
    ("nul_blob", ["nul_blob"], "VARBYTE(16)"),
    ("order", ["order"], "BIGINT"),
    ("owner", ["owner"], "VARCHAR(32)"),
    ("price", ["Price"], "DECIMAL(3,1)"),
    ("price_2", ["price"], "BIGINT"),
    ("report_date", ["report_date"], "DATE"),
    ("risk_level", ["risk-level"], "VARCHAR(16)"),
    ("select", ["select"], "VARCHAR(16)"),
    ("severity", ["severity"], "VARCHAR(16)"),
    ("small_exp", ["small_exp"], "VARCHAR(16)"),
    ("status", ["status"], "VARCHAR(16)"),
    ("t_tulo", ["título"], "VARCHAR(16)"),
    ("table", ["table"], "VARCHAR(16)"),
    ("title", ["title"], "VARCHAR(64)"),
    ("user", ["user"], "VARCHAR(16)"),
    ("weird_name", ['weird"name'], "VARCHAR(16)"),
    ("where__line", ["where", "line"], "BIGINT"),
    ("where__path", ["where", "path"], "VARCHAR(16)"),
]


def wire(av: Any) -> Any:
    if isinstance(av, dict):
        return {k: wire(v) for k, v in av.items()}
    if isinstance(av, list):
        return [wire(v) for v in av]
    if isinstance(av, bytes):
        return base64.b64encode(av).decode()
    return av


def test_determination_caches_exact_versioned_schema(
    stack: Any, prefect_api: str, ddb: Any, s3: Any, table_name: str
) -> None:
    from prefect.client.orchestration import get_client

    from flows.schema import artifact_key, determine_schema

    seed_table(ddb, table_name, 200, seed=2)
    out = determine_schema(table_name, total=3, routing=["sk:#"], page_limit=20)
    assert out["items_scanned"] == 200
    assert out["changes"] == ["first version: 45 tables"]

    bucket = stack.env()["ARM_ETL_CACHE_BUCKET"]
    latest = s3.get_object(Bucket=bucket, Key=f"dynamo-etl/{table_name}/latest.json")["Body"].read()
    versioned_key = f"dynamo-etl/{table_name}/schema-{out['version']}.json"
    assert s3.get_object(Bucket=bucket, Key=versioned_key)["Body"].read() == latest
    doc = orjson.loads(latest)
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{8}", doc["version"])
    assert doc["format"] == 1 and doc["source_table"] == table_name and doc["items_scanned"] == 200
    assert doc["nested"] == "relational" and doc["key_attributes"] == ["pk", "sk"]
    assert doc["routing"] == [{"attribute": "sk", "separator": "#"}]
    assert doc["name_limit"] == 63  # the configured warehouse is PostgreSQL

    # Column by column: three segments scanned in pages of 20 and merged equal one pass over every item.
    rules = [RoutingRule.parse("sk:#")]
    items = [wire(i) for i in generate_items(200, 2)]
    single = finalize(infer(items, Router(table_name, rules)), table_name, ["pk", "sk"], rules, name_limit=63)
    assert doc["tables"] == [t.to_json() for t in single.tables]
    fin = next(t for t in doc["tables"] if t["name"] == "fin")
    assert [(c["name"], c["path"], c["type"]) for c in fin["columns"]] == FIN_COLUMNS
    assert [c["nullable"] for c in fin["columns"][:2]] == [False, False]
    refs = next(t for t in doc["tables"] if t["name"] == "fin__cves__refs")
    assert refs["parent"] == "fin__cves" and refs["path"] == ["cves", None, "refs"]
    assert [c["name"] for c in refs["columns"]] == ["pk", "sk", "_idx0", "_idx", "value"]

    with get_client(sync_client=True) as client:
        artifact = client.read_latest_artifacts()
    markdown = [a for a in artifact if a.key == artifact_key("data-schema", table_name)]
    assert markdown and "| `amount` | DECIMAL(38,18) | `amount` |" in str(markdown[0].data)

    again = determine_schema(table_name, total=2, routing=["sk:#"], page_limit=50)
    assert again["changes"] == ["no structural change"]
    assert again["version"].split("-")[1] == out["version"].split("-")[1]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"dynamo-etl/{table_name}/")["Contents"]
    assert len(listed) == 3  # two versions and latest.json


def test_determination_keeps_the_cached_routing_and_nesting_unless_given(
    stack: Any, prefect_api: str, ddb: Any, s3: Any, table_name: str
) -> None:
    """A weekly schedule passes no routing and no nesting: the table's cached rules and nesting are kept;
    an explicit empty list (``arm-etl schema --no-routing``) clears the rules."""
    from flows.cli import main
    from flows.schema import determine_schema

    seed_table(ddb, table_name, 60, seed=3)
    bucket = stack.env()["ARM_ETL_CACHE_BUCKET"]

    def latest() -> dict[str, Any]:
        doc: dict[str, Any] = orjson.loads(
            s3.get_object(Bucket=bucket, Key=f"dynamo-etl/{table_name}/latest.json")["Body"].read()
        )
        return doc

    determine_schema(table_name, total=1, routing=["sk:#"], nested="super")
    first = latest()
    determine_schema(table_name, total=1)  # as the weekly deployment runs it
    kept = latest()
    assert (kept["routing"], kept["nested"]) == ([{"attribute": "sk", "separator": "#"}], "super")
    assert [t["name"] for t in kept["tables"]] == [t["name"] for t in first["tables"]]
    assert main(["schema", "--table", table_name, "--total", "1", "--no-routing", "--nested", "relational"]) == 0
    cleared = latest()
    assert (cleared["routing"], cleared["nested"]) == ([], "relational")
    assert [t["name"] for t in cleared["tables"] if t["parent"] is None] == [table_name.replace("-", "_")]


def test_determination_settings_come_from_the_run_else_the_cache() -> None:
    from arm_etl.determination import settings
    from arm_etl.inference import finalize as fin

    rules = [RoutingRule.parse("sk:#")]
    items = [wire(i) for i in generate_items(20, 1)]
    cached = fin(infer(items, Router("T", rules)), "T", ["pk", "sk"], rules, nested="super")
    assert settings(None, None, None) == ([], "relational")
    assert settings(cached, None, None) == (rules, "super")
    assert settings(cached, [], "relational") == ([], "relational")
    assert settings(cached, ["kind"], None) == ([RoutingRule.parse("kind")], "super")
