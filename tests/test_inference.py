"""Tests for arm_etl.inference: exact data-schema documents, SUPER mode, and mergeable partial inference."""

from __future__ import annotations

import builtins
import re
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from arm_etl import inference
from arm_etl.dataschema import REJECTS_TABLE, DataSchema, DataSchemaError
from arm_etl.inference import Partial, finalize, infer, merge_all
from arm_etl.routing import Router, RoutingRule
from tests.items import AV, L, M, N, S

Item = dict[str, AV]
NOW = datetime(2024, 1, 1, tzinfo=UTC)
RULES = [RoutingRule.parse("sk:#")]
KEYS = ["pk", "sk"]


ITEMS: list[Item] = [
    {
        "pk": S("ORG#1"),
        "sk": S("FIN#1"),
        "Price": N("10"),
        "price": N("1.5"),
        "my attr": S("x"),
        "9lives": {"BOOL": True},
        "m": M(a=M(b=M(c=N("1")))),
        "items": L(
            M(name=S("n1"), dim=M(w=N("2.5")), tags=L(S("t1"), S("t2"))),
            M(name=S("n2")),
        ),
        "grid": L(L(N("1"), N("2")), L()),
        "ss": {"SS": ["b", "a"]},
        "ns": {"NS": ["10", "9", "-1"]},
        "bs": {"BS": [b"\x01", b"\x00\xff"]},
        "em": M(),
        "el": L(),
    },
    {
        "pk": S("ORG#1"),
        "sk": S("FIN#2"),
        "Price": N("7"),
        "m": M(a=M(z=S("q"))),
        "items": L(M(name=S("a much longer name here"))),
        "em": M(),
    },
    {"pk": S("ORG#2"), "sk": S("USER#1"), "name": S("bob"), "age": N("30")},
    {"pk": S("ORG#3"), "sk": S("plain"), "v": {"NULL": True}},
]


def col(name: str, path: list[str | None] | None, typ: str, nullable: bool = True) -> dict[str, Any]:
    return {"name": name, "path": path, "type": typ, "nullable": nullable}


PK = col("pk", ["pk"], "VARCHAR(16)", False)
SK = col("sk", ["sk"], "VARCHAR(16)", False)
IDX = col("_idx", None, "INTEGER", False)
IDX0 = col("_idx0", None, "INTEGER", False)


def table(
    name: str, parent: str | None, route: str, path: list[str | None], columns: list[dict[str, Any]]
) -> dict[str, Any]:
    return {"name": name, "parent": parent, "route": route, "path": path, "key_columns": KEYS, "columns": columns}


EXPECTED_RELATIONAL = [
    table(
        "fin",
        None,
        "fin",
        [],
        [
            PK,
            SK,
            col("_9lives", ["9lives"], "BOOLEAN"),
            col("m__a__b__c", ["m", "a", "b", "c"], "BIGINT"),
            col("m__a__z", ["m", "a", "z"], "VARCHAR(16)"),
            col("my_attr", ["my attr"], "VARCHAR(16)"),
            col("price", ["Price"], "BIGINT"),
            col("price_2", ["price"], "DECIMAL(2,1)"),
        ],
    ),
    table("mytable", None, "mytable", [], [PK, SK, col("v", ["v"], "VARCHAR(16)")]),
    table("user", None, "user", [], [PK, SK, col("age", ["age"], "BIGINT"), col("name", ["name"], "VARCHAR(16)")]),
    table("fin__bs", "fin", "fin", ["bs"], [PK, SK, IDX, col("value", ["bs", None], "VARBYTE(16)")]),
    table("fin__grid", "fin", "fin", ["grid"], [PK, SK, IDX]),
    table(
        "fin__items",
        "fin",
        "fin",
        ["items"],
        [
            PK,
            SK,
            IDX,
            col("dim__w", ["items", None, "dim", "w"], "DECIMAL(2,1)"),
            col("name", ["items", None, "name"], "VARCHAR(32)"),
        ],
    ),
    table("fin__ns", "fin", "fin", ["ns"], [PK, SK, IDX, col("value", ["ns", None], "BIGINT")]),
    table("fin__ss", "fin", "fin", ["ss"], [PK, SK, IDX, col("value", ["ss", None], "VARCHAR(16)")]),
    table(
        "fin__grid__value",
        "fin__grid",
        "fin",
        ["grid", None],
        [PK, SK, IDX0, IDX, col("value", ["grid", None, None], "BIGINT")],
    ),
    table(
        "fin__items__tags",
        "fin__items",
        "fin",
        ["items", None, "tags"],
        [PK, SK, IDX0, IDX, col("value", ["items", None, "tags", None], "VARCHAR(16)")],
    ),
]

EXPECTED_SUPER = [
    table(
        "fin",
        None,
        "fin",
        [],
        [
            PK,
            SK,
            col("_9lives", ["9lives"], "BOOLEAN"),
            col("bs", ["bs"], "SUPER"),
            col("el", ["el"], "SUPER"),
            col("em", ["em"], "SUPER"),
            col("grid", ["grid"], "SUPER"),
            col("items", ["items"], "SUPER"),
            col("m", ["m"], "SUPER"),
            col("my_attr", ["my attr"], "VARCHAR(16)"),
            col("ns", ["ns"], "SUPER"),
            col("price", ["Price"], "BIGINT"),
            col("price_2", ["price"], "DECIMAL(2,1)"),
            col("ss", ["ss"], "SUPER"),
        ],
    ),
    EXPECTED_RELATIONAL[1],
    EXPECTED_RELATIONAL[2],
]


def _schema(items: list[Item], nested: str = "relational", **kw: Any) -> DataSchema:
    partial = infer(items, Router("MyTable", RULES))
    return finalize(partial, "MyTable", KEYS, routing=RULES, nested=nested, now=NOW, **kw)


def test_relational_tables_exact() -> None:
    doc = _schema(ITEMS).to_json()
    assert doc["tables"] == EXPECTED_RELATIONAL


def test_document_header() -> None:
    doc = _schema(ITEMS).to_json()
    assert {k: v for k, v in doc.items() if k not in ("tables", "version")} == {
        "format": 1,
        "source_table": "MyTable",
        "created_at": "2024-01-01T00:00:00+00:00",
        "items_scanned": 4,
        "nested": "relational",
        "routing": [{"attribute": "sk", "separator": "#"}],
        "key_attributes": ["pk", "sk"],
        "name_limit": 127,
    }
    assert re.fullmatch(r"20240101T000000Z-[0-9a-f]{8}", doc["version"])
    # The document survives its own serialization.
    assert DataSchema.loads(_schema(ITEMS).dumps()).to_json() == doc


def test_version_depends_on_structure_only() -> None:
    a = _schema(ITEMS)
    b = _schema(list(reversed(ITEMS)))
    assert a.version == b.version
    c = _schema([*ITEMS, {"pk": S("ORG#4"), "sk": S("plain"), "extra": N("1")}])
    assert c.version[:17] == a.version[:17]
    assert c.version != a.version


def test_super_mode_tables_exact() -> None:
    doc = _schema(ITEMS, nested="super").to_json()
    assert doc["nested"] == "super"
    assert doc["tables"] == EXPECTED_SUPER


def test_empty_map_and_empty_list_give_nothing() -> None:
    doc = _schema([{"pk": S("a"), "sk": S("b"), "em": M(), "el": L(), "deep": M(x=M(), y=L())}]).to_json()
    assert doc["tables"] == [table("mytable", None, "mytable", [], [PK, SK])]


def test_name_limit_cuts_long_column_names() -> None:
    long = "A" * 70
    doc = _schema([{"pk": S("a"), "sk": S("b"), long: N("1")}], name_limit=63).to_json()
    names = [c["name"] for c in doc["tables"][0]["columns"]]
    assert names[:2] == ["pk", "sk"]
    assert len(names) == 3
    assert names[2].startswith("a" * 54 + "_")
    assert len(names[2]) == 63


def test_reserved_names_get_suffixes() -> None:
    item: Item = {
        "pk": S("a"),
        "sk": S("b"),
        "_segment": N("1"),
        "lst": L(M(pk=S("x"), _idx=N("1"), _extracted_at=S("y"))),
    }
    doc = _schema([item]).to_json()
    root, child = doc["tables"]
    assert root["columns"] == [PK, SK, col("_segment_2", ["_segment"], "BIGINT")]
    assert child["columns"] == [
        PK,
        SK,
        IDX,
        col("_extracted_at_2", ["lst", None, "_extracted_at"], "VARCHAR(16)"),
        col("_idx_2", ["lst", None, "_idx"], "BIGINT"),
        col("pk_2", ["lst", None, "pk"], "VARCHAR(16)"),
    ]


def test_errors() -> None:
    partial = infer(ITEMS, Router("MyTable", RULES))
    with pytest.raises(DataSchemaError):
        finalize(partial, "MyTable", KEYS, routing=RULES, nested="json", now=NOW)
    with pytest.raises(DataSchemaError):
        finalize(partial, "MyTable", [], routing=RULES, now=NOW)
    with pytest.raises(DataSchemaError, match="missing"):
        finalize(partial, "MyTable", ["pk", "nope"], routing=RULES, now=NOW)


def test_table_names_do_not_depend_on_object_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    # Paths ("a", ".b") and ("a.", "b") have the same original "t.a..b" and the same folded name
    # "t__a___b"; which of the two child tables gets the "_2" must not depend on object addresses.
    item: Item = {"pk": S("1"), "a.": M(b=L(S("x"))), "a": M(**{".b": L(N("2"))})}
    partial = infer([item], Router("T", []))
    normal = finalize(partial, "T", ["pk"], now=NOW).to_json()
    monkeypatch.setattr(inference, "id", lambda o: 10**20 - builtins.id(o), raising=False)
    reversed_ids = finalize(partial, "T", ["pk"], now=NOW).to_json()
    assert [(t["name"], t["path"]) for t in reversed_ids["tables"]] == [
        (t["name"], t["path"]) for t in normal["tables"]
    ]


def test_no_table_is_named_like_the_rejects_table() -> None:
    rules = [RoutingRule.parse("kind")]
    items: list[Item] = [{"pk": S("1"), "kind": S("_ETL_REJECTS"), "n": N("1")}]
    schema = finalize(infer(items, Router("T", rules)), "T", ["pk"], routing=rules, now=NOW)
    assert REJECTS_TABLE not in [t.name for t in schema.tables]


# --- properties ----------------------------------------------------------------------------------

# Keys without "." and without "value", so that no two paths share an original name (ties: tested above).
_KEY = st.sampled_from(["a", "b", "Price", "price", "my attr", "9x", "n"])
_NUM = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.decimals(min_value=-1000, max_value=1000, places=3, allow_nan=False, allow_infinity=False).map(str),
)
_SCALAR = st.one_of(
    st.text(max_size=12).map(S),
    _NUM.map(N),
    st.booleans().map(lambda b: {"BOOL": b}),
    st.just({"NULL": True}),
    st.binary(max_size=8).map(lambda b: {"B": b}),
    st.sampled_from(["2024-01-01", "2024-01-01T00:00:00Z"]).map(S),
)
_SET = st.one_of(
    st.lists(st.text(max_size=6), min_size=1, max_size=4, unique=True).map(lambda v: {"SS": v}),
    st.lists(st.integers(-50, 50), min_size=1, max_size=4, unique=True).map(lambda v: {"NS": [str(x) for x in v]}),
    st.lists(st.binary(max_size=4), min_size=1, max_size=4, unique=True).map(lambda v: {"BS": v}),
)


def _av(depth: int) -> st.SearchStrategy[AV]:
    if depth == 0:
        return st.one_of(_SCALAR, _SET)
    sub = _av(depth - 1)
    return st.one_of(
        _SCALAR,
        _SET,
        st.dictionaries(_KEY, sub, max_size=3).map(lambda d: {"M": d}),
        st.lists(sub, max_size=3).map(lambda v: {"L": v}),
    )


_ITEM = st.builds(
    lambda pk, sk, rest: {**rest, "pk": S(pk), "sk": S(sk)},
    st.sampled_from(["P1", "P2"]),
    st.sampled_from(["A#1", "B#2", "a#3", "plain"]),
    st.dictionaries(_KEY, _av(3), max_size=4),
)


def _merge_tree(data: st.DataObject, parts: list[Partial]) -> Partial:
    """Merge in a random binary grouping."""
    if len(parts) == 1:
        return parts[0]
    cut = data.draw(st.integers(min_value=1, max_value=len(parts) - 1))
    return _merge_tree(data, parts[:cut]).merge(_merge_tree(data, parts[cut:]))


@settings(max_examples=100, deadline=None)
@given(data=st.data(), items=st.lists(_ITEM, min_size=1, max_size=8))
def test_partial_inference_merges_to_the_same_document(data: st.DataObject, items: list[Item]) -> None:
    router = Router("T", RULES)
    whole = infer(items, router)
    n_groups = data.draw(st.integers(min_value=1, max_value=4))
    assignment = data.draw(st.lists(st.integers(0, n_groups - 1), min_size=len(items), max_size=len(items)))
    groups = [[it for it, g in zip(items, assignment, strict=True) if g == k] for k in range(n_groups)]
    partials = data.draw(st.permutations([infer(g, router) for g in groups]))
    merged = _merge_tree(data, partials)

    assert merged.to_json() == whole.to_json()
    assert merged.items_scanned == len(items)
    expected = finalize(whole, "T", KEYS, routing=RULES, now=NOW).to_json()
    depth = max(sum(1 for s in t["path"] if s is None) + bool(t["parent"]) for t in expected["tables"])
    event(f"max table depth {depth}")
    assert finalize(merged, "T", KEYS, routing=RULES, now=NOW).to_json() == expected
    assert finalize(merge_all(reversed(partials)), "T", KEYS, routing=RULES, now=NOW).to_json() == expected

    # Partials travel between tasks as JSON.
    for p in partials:
        back = Partial.from_json(orjson.loads(orjson.dumps(p.to_json())))
        assert back == p
        assert back.to_json() == p.to_json()
    restored = merge_all(Partial.from_json(orjson.loads(orjson.dumps(p.to_json()))) for p in partials)
    assert finalize(restored, "T", KEYS, routing=RULES, now=NOW).to_json() == expected


def test_system_column_names_are_taken() -> None:
    """PostgreSQL refuses a user column named like a system column ("column name "ctid" conflicts with a
    system column name"), and Redshift lists them among *Unsupported PostgreSQL features*: they get a suffix."""
    schema = _schema(
        [{"pk": {"S": "A#1"}, "sk": {"S": "A#1"}, "oid": {"N": "1"}, "ctid": {"S": "x"}, "xmin": {"N": "2"}}]
    )
    names = {c.path: c.name for c in schema.table("a").columns}
    assert (names[("oid",)], names[("ctid",)], names[("xmin",)]) == ("oid_2", "ctid_2", "xmin_2")
