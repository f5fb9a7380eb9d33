"""Tests for arm_etl.transform: exact CSV lines per table, set order, child rows, and lossless rejects."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from arm_etl.csvformat import POSTGRESQL
from arm_etl.dataschema import REJECTS_TABLE, Column, DataSchema, Table
from arm_etl.dynamodb_json import sort_set, wire_json
from arm_etl.encoders import encoder_for
from arm_etl.inference import finalize, infer
from arm_etl.routing import Router, RoutingRule
from arm_etl.transform import PIECE_BYTES, Transformer, split_utf8
from tests.items import AV, L, M, N, S

Item = dict[str, AV]
TAIL = ",1,2024-01-01T00:00:00Z\n"
KEYS = ("pk", "sk")


def c(name: str, path: tuple[str | None, ...] | None, typ: str, nullable: bool = True) -> Column:
    return Column(name, path, typ, nullable)


PK = c("pk", ("pk",), "VARCHAR(16)", False)
SK = c("sk", ("sk",), "VARCHAR(16)", False)
IDX = c("_idx", None, "INTEGER", False)
IDX0 = c("_idx0", None, "INTEGER", False)

ROOT = Table(
    "orders",
    None,
    "orders",
    (),
    KEYS,
    (
        PK,
        SK,
        c("b", ("b",), "VARBYTE(16)"),
        c("d", ("d",), "DECIMAL(6,2)"),
        c("flag", ("flag",), "BOOLEAN"),
        c("m__x", ("m", "x"), "VARCHAR(16)"),
        c("n", ("n",), "BIGINT"),
        c("s", ("s",), "VARCHAR(16)"),
        c("ts", ("ts",), "TIMESTAMPTZ"),
    ),
)
TABLES = (
    ROOT,
    Table(
        "orders__bins", "orders", "orders", ("bins",), KEYS, (PK, SK, IDX, c("value", ("bins", None), "VARBYTE(16)"))
    ),
    Table(
        "orders__lines",
        "orders",
        "orders",
        ("lines",),
        KEYS,
        (PK, SK, IDX, c("qty", ("lines", None, "qty"), "BIGINT"), c("sku", ("lines", None, "sku"), "VARCHAR(16)")),
    ),
    Table("orders__nums", "orders", "orders", ("nums",), KEYS, (PK, SK, IDX, c("value", ("nums", None), "BIGINT"))),
    Table(
        "orders__tags", "orders", "orders", ("tags",), KEYS, (PK, SK, IDX, c("value", ("tags", None), "VARCHAR(16)"))
    ),
    Table(
        "orders__lines__notes",
        "orders__lines",
        "orders",
        ("lines", None, "notes"),
        KEYS,
        (PK, SK, IDX0, IDX, c("value", ("lines", None, "notes", None), "VARCHAR(16)")),
    ),
)
SCHEMA = DataSchema(
    source_table="Orders",
    version="20240101T000000Z-00000000",
    created_at="2024-01-01T00:00:00+00:00",
    items_scanned=2,
    nested="relational",
    routing=(RoutingRule("sk", "#"),),
    key_attributes=KEYS,
    tables=TABLES,
)


def _transformer(schema: DataSchema = SCHEMA) -> Transformer:
    return Transformer(schema, POSTGRESQL, segment=1, extracted_at="2024-01-01T00:00:00Z")


def _fields(line: str) -> list[str]:
    assert line.endswith(TAIL)
    (row,) = list(csv.reader(io.StringIO(line, newline="")))
    return row


# --- rows ----------------------------------------------------------------------------------------

FULL: Item = {
    "pk": S("p1"),
    "sk": S("s1"),
    "b": {"B": b"\x01\xab"},
    "n": N("42"),
    "d": N("1234.5"),
    "flag": {"BOOL": True},
    "s": S('he said "hi"'),
    "ts": S("2024-01-01T00:00:00Z"),
    "m": M(x=S("x\r\ny")),
    "tags": {"SS": ["b", "é", "B", "a"]},
    "nums": {"NS": ["10", "9", "-1"]},
    "bins": {"BS": [b"\x02", b"\x01\xff", b"\x01"]},
    "lines": L(M(sku=S("A"), qty=N("2"), notes=L(S("n0"), S(""))), M(sku=S("B"))),
}
SPARSE: Item = {
    "pk": S("p2"),
    "sk": S("s2"),
    "n": N("1E+2"),
    "s": S(""),
    "d": {"NULL": True},
    "m": M(x={"NULL": True}),
    "flag": {"BOOL": False},
    "b": {"B": b""},  # would be an empty field, which Redshift loads as NULL: rejected as empty_binary
    "tags": {"SS": ["NULL"]},
    "lines": L(),
    "empty": M(),
}


def test_rows_exact() -> None:
    result = _transformer().transform([FULL, SPARSE])
    assert result.items == 2
    assert result.rejects == Counter({"empty_binary": 1})
    assert result.lines == {
        "orders": [
            '"p1","s1",\\x01ab,1234.5,true,"x\r\ny",42,"he said ""hi""",2024-01-01T00:00:00Z' + TAIL,
            '"p2","s2",,,false,,100,"",' + TAIL,
        ],
        REJECTS_TABLE: [_reject_line("orders", {"pk": "p2", "sk": "s2"}, ["b"], "empty_binary", '{"B":""}')],
        "orders__tags": [
            '"p1","s1",0,"B"' + TAIL,
            '"p1","s1",1,"a"' + TAIL,
            '"p1","s1",2,"b"' + TAIL,
            '"p1","s1",3,"é"' + TAIL,
            '"p2","s2",0,"NULL"' + TAIL,
        ],
        "orders__nums": [
            '"p1","s1",0,-1' + TAIL,
            '"p1","s1",1,9' + TAIL,
            '"p1","s1",2,10' + TAIL,
        ],
        "orders__bins": [
            '"p1","s1",0,\\x01' + TAIL,
            '"p1","s1",1,\\x01ff' + TAIL,
            '"p1","s1",2,\\x02' + TAIL,
        ],
        "orders__lines": [
            '"p1","s1",0,2,"A"' + TAIL,
            '"p1","s1",1,,"B"' + TAIL,
        ],
        "orders__lines__notes": [
            '"p1","s1",0,0,"n0"' + TAIL,
            '"p1","s1",0,1,""' + TAIL,
        ],
    }
    assert result.rows() == {
        "orders": 2,
        "orders__tags": 5,
        "orders__nums": 3,
        "orders__bins": 3,
        "orders__lines": 2,
        "orders__lines__notes": 2,
        REJECTS_TABLE: 1,
    }


def test_batches_do_not_leak_into_each_other() -> None:
    tr = _transformer()
    first = tr.transform([FULL])
    second = tr.transform([SPARSE])
    assert second.lines == {
        "orders": ['"p2","s2",,,false,,100,"",' + TAIL],
        "orders__tags": ['"p2","s2",0,"NULL"' + TAIL],
        REJECTS_TABLE: [_reject_line("orders", {"pk": "p2", "sk": "s2"}, ["b"], "empty_binary", '{"B":""}')],
    }
    assert first.rows()["orders"] == 1
    assert tr.transform([]).lines == {}


@pytest.mark.parametrize(
    ("tag", "values", "ordered"),
    [
        ("SS", ["b", "B", "a", "é", "Z", "aa", ""], ["", "B", "Z", "a", "aa", "b", "é"]),
        ("SS", ["😀", "\uffff", "z"], ["z", "\uffff", "😀"]),  # code point, not UTF-16 order
        ("NS", ["10", "9", "-1"], ["-1", "9", "10"]),
        ("NS", ["1E+2", "99.5", "-0.5", "1E-3"], ["-0.5", "1E-3", "99.5", "1E+2"]),
        ("BS", [b"\x02", b"\x01\xff", b"\x01", b""], [b"", b"\x01", b"\x01\xff", b"\x02"]),
    ],
)
def test_sort_set(tag: str, values: list[Any], ordered: list[Any]) -> None:
    assert sort_set(tag, values) == ordered


@pytest.mark.parametrize(
    ("typ", "tag", "value", "cell"),
    [
        ("VARCHAR(16)", "S", "", '""'),
        ("VARCHAR(16)", "S", 'a"b', '"a""b"'),
        ("VARCHAR(16)", "S", '""', '""""""'),
        ("VARCHAR(16)", "S", "\\N", '"\\N"'),
        ("VARCHAR(16)", "S", "a,b\n", '"a,b\n"'),
        ("VARCHAR(16)", "N", "12.5", '"12.5"'),
        ("VARCHAR(16)", "BOOL", False, '"false"'),
        ("VARCHAR(16)", "B", b"\xff", '"/w=="'),
        ("BIGINT", "N", "-9223372036854775808", "-9223372036854775808"),
        ("BIGINT", "N", "1E+2", "100"),
        ("DECIMAL(6,3)", "N", "1.5E-2", "0.015"),
        ("DECIMAL(4,2)", "N", "-10.25", "-10.25"),
        ("BOOLEAN", "BOOL", True, "true"),
        ("DATE", "S", "2024-02-29", "2024-02-29"),
        ("TIMESTAMPTZ", "S", "2024-01-01T00:00:00.5+05:30", "2024-01-01T00:00:00.5+05:30"),
        ("VARBYTE(16)", "B", b"\x00\x10", "\\x0010"),
        ("VARBYTE(16)", "B", "AAE=", "\\x0001"),  # base64 wire text
        ("SUPER", "M", {"a": {"N": "1"}, "b": {"SS": ["y", "x"]}}, '"{""a"":1,""b"":[""x"",""y""]}"'),
        ("SUPER", "L", [{"S": "é"}, {"NULL": True}, {"BOOL": False}], '"[""é"",null,false]"'),
    ],
)
def test_cell_encoders(typ: str, tag: str, value: Any, cell: str) -> None:
    assert encoder_for(typ, POSTGRESQL)(tag, value) == cell


# --- rejects -------------------------------------------------------------------------------------


def _reject_line(table: str, key: dict[str, Any], path: list[str | int], reason: str, chunk: str, no: int = 0) -> str:
    def q(s: str) -> str:
        return '"' + s.replace('"', '""') + '"'

    return ",".join([q(table), q(orjson.dumps(key).decode()), q(orjson.dumps(path).decode()), q(reason)]) + (
        f",{no},{q(chunk)}{TAIL}"
    )


def test_rejects_exact() -> None:
    drift: Item = {
        "pk": S("p3"),
        "sk": S("s3"),
        "n": S("oops"),
        "s": S("a" * 17),
        "m": M(x=S("nul\x00")),
        "new": N("1"),
        "lines": L(M(sku=S("C"), qty=S("many"))),
        "newlist": L(),  # empty: nothing to keep, no reject
    }
    routed: Item = {"pk": S("p4"), "sk": S("FIN#1"), "n": N("5")}
    result = _transformer().transform([drift, routed])
    assert result.items == 2
    assert result.lines["orders"] == ['"p3","s3",,,,,,,' + TAIL]
    assert result.lines["orders__lines"] == ['"p3","s3",0,,"C"' + TAIL]
    key = {"pk": "p3", "sk": "s3"}
    assert sorted(result.lines[REJECTS_TABLE]) == sorted(
        [
            _reject_line("orders", key, ["n"], "type_drift", '{"S":"oops"}'),
            _reject_line("orders", key, ["s"], "too_long", '{"S":"aaaaaaaaaaaaaaaaa"}'),
            _reject_line("orders", key, ["m", "x"], "nul", '{"S":"nul\\u0000"}'),
            _reject_line("orders", key, ["new"], "new_column", '{"N":"1"}'),
            _reject_line("orders__lines", key, ["lines", 0, "qty"], "type_drift", '{"S":"many"}'),
            _reject_line(
                "fin",
                {"pk": "p4", "sk": "FIN#1"},
                [],
                "new_table",
                '{"M":{"pk":{"S":"p4"},"sk":{"S":"FIN#1"},"n":{"N":"5"}}}',
            ),
        ]
    )
    assert result.rejects == Counter({"type_drift": 2, "too_long": 1, "nul": 1, "new_column": 1, "new_table": 1})
    # Parsed back, every reject row has the _etl_rejects columns plus the metadata tail.
    for line in result.lines[REJECTS_TABLE]:
        table_name, item_key, column_path, reason, chunk_no, chunk, segment, extracted = _fields(line)
        assert table_name in ("orders", "orders__lines", "fin")
        assert reason in result.rejects
        assert orjson.loads(item_key) in (key, {"pk": "p4", "sk": "FIN#1"})
        assert isinstance(orjson.loads(column_path), list)
        assert (chunk_no, segment, extracted) == ("0", "1", "2024-01-01T00:00:00Z")
        assert "\x00" not in chunk


def test_rejects_inside_nested_lists_name_the_deepest_table() -> None:
    item: Item = {
        "pk": S("p5"),
        "sk": S("s5"),
        "tags": {"SS": ["ok", "x" * 20]},
        "lines": L(M(sku=S("A")), M(notes=L(S("fine"), L(S("q"))), extra=S("?"))),
    }
    result = _transformer().transform([item])
    key = {"pk": "p5", "sk": "s5"}
    assert sorted(result.lines[REJECTS_TABLE]) == sorted(
        [
            _reject_line("orders__tags", key, ["tags", 1], "too_long", '{"S":"' + "x" * 20 + '"}'),
            _reject_line("orders__lines", key, ["lines", 1, "extra"], "new_column", '{"S":"?"}'),
            _reject_line("orders__lines__notes", key, ["lines", 1, "notes", 1], "type_drift", '{"L":[{"S":"q"}]}'),
        ]
    )
    assert result.lines["orders__tags"] == ['"p5","s5",0,"ok"' + TAIL, '"p5","s5",1,' + TAIL]
    assert result.lines["orders__lines"] == ['"p5","s5",0,,"A"' + TAIL, '"p5","s5",1,,' + TAIL]
    assert result.lines["orders__lines__notes"] == ['"p5","s5",1,0,"fine"' + TAIL, '"p5","s5",1,1,' + TAIL]


def test_long_value_is_chunked_losslessly() -> None:
    value = "aé€😀" * 20_000  # 1 + 2 + 3 + 4 bytes per repetition
    assert len(value.encode("utf-8")) == 200_000
    item: Item = {"pk": S("p6"), "sk": S("s6"), "s": S(value)}
    result = _transformer().transform([item])
    assert result.lines["orders"] == ['"p6","s6",,,,,,,' + TAIL]
    assert result.rejects == Counter({"too_long": 1})
    rows = [_fields(line) for line in result.lines[REJECTS_TABLE]]
    assert [r[4] for r in rows] == ["0", "1", "2", "3"]
    assert {(r[0], r[1], r[2], r[3]) for r in rows} == {("orders", '{"pk":"p6","sk":"s6"}', '["s"]', "too_long")}
    chunks = [r[5] for r in rows]
    for chunk in chunks[:-1]:
        assert PIECE_BYTES - 3 <= len(chunk.encode("utf-8")) <= PIECE_BYTES
    assert len(chunks[-1].encode("utf-8")) <= PIECE_BYTES
    assert any(len(ch.encode("utf-8")) < PIECE_BYTES for ch in chunks[:-1])  # cut moved back to a boundary
    assert "".join(chunks).encode("utf-8") == wire_json({"S": value})
    assert orjson.loads("".join(chunks)) == {"S": value}


def test_split_utf8() -> None:
    data = "ab😀c€".encode()  # 1 + 1 + 4 + 1 + 3 bytes
    assert split_utf8(data, 4) == [b"ab", "😀".encode(), "c€".encode()]
    assert split_utf8(data, 5) == [b"ab", "😀c".encode(), "€".encode()]
    assert split_utf8(data, 10) == [data]
    assert split_utf8(b"", 4) == [b""]
    assert split_utf8(b"abcd", 4) == [b"abcd"]


def test_wire_json() -> None:
    assert wire_json({"B": b"\x00\xff"}) == b'{"B":"AP8="}'
    assert wire_json({"BS": [b"\x01"]}) == b'{"BS":["AQ=="]}'
    assert wire_json({"M": {"n": {"N": "1E+125"}, "l": {"L": [{"NULL": True}]}}}) == (
        b'{"M":{"n":{"N":"1E+125"},"l":{"L":[{"NULL":true}]}}}'
    )


def test_binary_key_in_item_key_is_base64() -> None:
    root = Table("t", None, "t", (), ("id",), (c("id", ("id",), "VARBYTE(16)", False), c("n", ("n",), "BIGINT")))
    schema = DataSchema("T", "v", "now", 1, "relational", (), ("id",), (root,))
    result = _transformer(schema).transform([{"id": {"B": b"\x00\x01"}, "n": S("x")}])
    assert result.lines["t"] == ["\\x0001," + TAIL]
    assert result.lines[REJECTS_TABLE] == [_reject_line("t", {"id": "AAE="}, ["n"], "type_drift", '{"S":"x"}')]


# --- bugs ----------------------------------------------------------------------------------------


def test_super_keeps_a_literal_backslash_u0000() -> None:
    # JSON text is "C:\\u0000": an escaped backslash followed by 'u0000'; PostgreSQL JSONB accepts it.
    assert encoder_for("SUPER", POSTGRESQL)("S", "C:\\u0000") == '"""C:\\\\u0000"""'


def test_rows_of_a_table_routed_to_etl_rejects_are_kept() -> None:
    rules = [RoutingRule.parse("kind")]
    items: list[Item] = [
        {"pk": S("1"), "kind": S("_ETL_REJECTS"), "n": N("1")},
        {"pk": S("2"), "kind": S("other"), "n": N("2")},
    ]
    now = datetime(2024, 1, 1, tzinfo=UTC)
    schema = finalize(infer(items, Router("T", rules)), "T", ["pk"], routing=rules, now=now)
    drifted: Item = {"pk": S("3"), "kind": S("other"), "n": S("drift")}
    result = _transformer(schema).transform([*items, drifted])
    data_lines = [line for lines in result.lines.values() for line in lines if line.startswith('"1",')]
    assert data_lines == ['"1","_ETL_REJECTS",1' + TAIL]


@pytest.mark.parametrize("compiled", [False, True])
def test_concurrent_calls_return_their_own_results(compiled: bool) -> None:
    """Each call walks with its own state: calls from four threads at once give exactly the batches'
    results one by one (no lock, nothing of one batch in another's lines or counts)."""
    import threading

    t = Transformer(SCHEMA, POSTGRESQL, segment=1, extracted_at="2024-01-01T00:00:00Z", compiled=compiled)
    batches = [[FULL] * 40, [SPARSE] * 40, [FULL, SPARSE] * 20, [SPARSE, FULL, FULL] * 13]
    alone = [t.transform(b) for b in batches]
    got: dict[tuple[int, int], Any] = {}
    start = threading.Barrier(4)

    def work(k: int) -> None:
        start.wait()
        for rep in range(25):
            got[k, rep] = t.transform(batches[k])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(got) == 100
    assert all(r == alone[k] for (k, _), r in got.items())
