"""The bad-input catalogue: every awkward value, name and shape, loaded end to end and compared exactly.

Each kind is one DynamoDB item (``pk = BAD#<kind>``), written with the low-level client (binary as
bytes), most of them before the data-schema is determined and the drift kinds after it. One segment run
loads them into PostgreSQL; every table, value and ``_etl_rejects`` chunk is compared with the oracle
(``tests/oracle.py``) and the summary's reject counts with the oracle's. Explicit assertions on top
guard the comparison against vacuity (the types, names and rejects the kinds are meant to produce).

Kinds DynamoDB itself cannot hold are tested at the transform, with a comment saying why: lone
surrogates (DynamoDB requires valid UTF-8; moto answers 500), empty sets (ValidationException) and a
1 MB string (items are at most 400 KB).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3
import pytest

from arm_etl.cache import SchemaCache
from arm_etl.config import segment_schema
from arm_etl.csvformat import POSTGRESQL
from arm_etl.dataschema import REJECTS_COLUMNS, REJECTS_TABLE, DataSchema
from arm_etl.extract import RAW_ITEMS, _keep_raw_items
from arm_etl.seed import create_table
from arm_etl.transform import PIECE_BYTES, Transformer
from arm_etl.upload import PartStore
from tests import oracle
from tests.exactness import check_segment, ensure_buckets, raw_segment
from tests.items import AV, B, L, M, N, S
from tests.test_segment_exact import fetch

TABLE = "bad-inputs"
TARGET = "bad_inputs"
SNAPSHOT = "bad-inputs"


def nested_maps(depth: int) -> AV:
    av: AV = S("bottom")
    for _ in range(depth - 1):
        av = M(m=av)
    return av


def nested_lists(depth: int) -> AV:
    av: AV = S("bottom")
    for _ in range(depth):
        av = L(av)
    return av


@dataclass(frozen=True)
class Kind:
    name: str
    route: str  # the prefix of sk (routing rule sk:#)
    attrs: dict[str, AV]
    drift: bool = False  # written after the data-schema was determined
    pk: str | None = None

    def item(self) -> dict[str, AV]:
        return {"pk": S(self.pk or f"BAD#{self.name}"), "sk": S(f"{self.route}#{self.name}"), **self.attrs}


LONG_NAME = "n" * 300
LONG_MULTIBYTE_NAME = "é" * 150  # 300 bytes

KINDS: list[Kind] = [
    # ---------------------------------------------------------------- strings (column s: VARCHAR(65535))
    Kind("newline", "STR", {"s": S("line1\nline2\n"), "s16": S("1234567890123456")}),
    Kind("carriage_return", "STR", {"s": S("a\rb\r\nc\r")}),
    Kind("quotes", "STR", {"s": S('say "hi", it\'s ""')}),
    Kind("backslashes", "STR", {"s": S("C:\\dir\\n\\t\\\\end\\")}),
    Kind("null_markers", "STR", {"s": S("\\N"), "s2": S("NULL"), "s3": S('""')}),
    Kind("empty_string", "STR", {"s": S("")}),
    Kind("whitespace_only", "STR", {"s": S(" \t  ")}),
    Kind("csv_metacharacters", "STR", {"s": S('a,b;"c"\n,\\,')}),
    Kind("unicode_astral_and_invisible", "STR", {"s": S("𝄞😀 é e\u0301 \u200b\ufeff \u2028\u2029 \u202eRTL")}),
    Kind("nul_character", "STR", {"s": S("a\x00b")}),  # reject: nul
    Kind("exactly_65535_bytes", "STR", {"s": S("x" * 65535)}),
    Kind("exactly_65535_bytes_multibyte", "STR", {"s": S("€" * 21845)}),
    Kind("65536_bytes", "STR", {"s": S("y" * 65536)}),  # reject: too_long
    Kind("65536_bytes_in_32768_chars", "STR", {"s": S("é" * 32768)}),  # reject: too_long (bytes, not chars)
    Kind("item_near_400kb", "STR", {"s": S("z" * (390 * 1024))}),  # reject: too_long, 7 chunks
    Kind("string_over_its_varchar_n", "STR", {"s16": S("12345678901234567")}, drift=True),  # reject: too_long
    Kind("string_over_its_varchar_n_in_bytes", "STR", {"s16": S("é" * 9)}, drift=True),  # 9 chars, 18 bytes > 16
    # ---------------------------------------------------------------- numbers
    Kind("int64_edges", "NUM", {"i64": N("9223372036854775807"), "i64b": N("-9223372036854775808")}),
    Kind("int64_max_plus_one", "NUM", {"beyond": N("9223372036854775808")}),  # DECIMAL(20,0): 19 cannot hold it
    Kind("19_digit_precision", "NUM", {"p19": N("9.999999999999999999")}),  # DECIMAL(20,18), unscaled > int64
    Kind("38_digits", "NUM", {"d38": N("99999999999999999999999999999999999999")}),
    Kind("38_digit_fraction", "NUM", {"tiny": N("0.00000000000000000000000000000000000001")}),  # scale 38: VARCHAR
    Kind("scale_38_exponent", "NUM", {"tiny2": N("1.5E-37")}),  # scale 38: VARCHAR, exact text
    Kind("1e125", "NUM", {"big": N("1E+125")}),
    Kind("minus_1e-130", "NUM", {"big": N("-1E-130")}),
    Kind("trailing_zeros_and_negative_zero", "NUM", {"dec": N("1.50"), "zero": N("-0"), "zero2": N("0.0")}),
    Kind("bool_true_false", "NUM", {"flag": {"BOOL": True}, "flag2": {"BOOL": False}}),
    Kind("int64_overflow_after_determination", "NUM", {"i64": N("9223372036854775808")}, drift=True),
    Kind("fraction_in_bigint", "NUM", {"i64": N("1.5")}, drift=True),
    Kind("string_in_bigint", "NUM", {"i64": S("12")}, drift=True),
    Kind("39_digits_in_decimal_38", "NUM", {"d38": N("1E+38")}, drift=True),
    Kind("scale_over_decimal", "NUM", {"dec": N("1.555")}, drift=True),
    Kind("number_in_boolean", "NUM", {"flag": N("1")}, drift=True),
    # ---------------------------------------------------------------- binary
    Kind("invalid_utf8_binary", "BIN", {"b": B(b"\xff\xfe\x00\x80"), "bs": B(b"\xc3\x28")}),
    Kind("empty_binary", "BIN", {"b": B(b"")}),  # reject: empty_binary (an empty field loads as NULL)
    Kind("binary_and_string_at_one_path", "BIN", {"bs": S("plain")}),  # → VARCHAR, binary as base64 text
    Kind("binary_set_ranked_by_bytes", "BIN", {"bset": {"BS": [b"\xff", b"\x00", b"\x7f\x80", b"\x00\x00"]}}),
    Kind("binary_over_its_varbyte", "BIN", {"b": B(b"\x01" * 100)}, drift=True),  # reject: too_long
    Kind("string_in_varbyte", "BIN", {"b": S("not bytes")}, drift=True),  # reject: type_drift
    # ---------------------------------------------------------------- timestamps and dates
    Kind(
        "timestamps_offsets_fractions",
        "TS",
        {"ts": S("2024-02-29T23:59:59.999999+05:30"), "day": S("2024-02-29"), "leap": S("2017-01-01T00:00:00Z")},
    ),
    Kind("timestamp_edges", "TS", {"ts": S("0001-01-01T00:00:00Z"), "day": S("9999-12-31")}),
    Kind("offset_beyond_14_59", "TS", {"tz15": S("2024-01-01T00:00:00+15:00")}),  # not a date-time: VARCHAR
    Kind("year_zero", "TS", {"y0": S("0000-01-01")}),  # no year 0: VARCHAR
    Kind("leap_second", "TS", {"leap": S("2016-12-31T23:59:60Z")}),  # not a datetime: the column is VARCHAR
    Kind("date_and_datetime_mixed", "TS", {"mixed": S("2024-01-01")}),
    Kind("datetime_in_mixed", "TS", {"mixed": S("2024-01-01T00:00:00Z")}),
    Kind("month_13", "TS", {"ts": S("2024-13-01T00:00:00Z")}, drift=True),  # reject: type_drift
    Kind("february_30", "TS", {"day": S("2024-02-30")}, drift=True),  # reject: type_drift
    Kind("space_instead_of_t", "TS", {"ts": S("2024-01-01 00:00:00Z")}, drift=True),  # reject: type_drift
    # ---------------------------------------------------------------- names
    Kind(
        "reserved_words",
        "NAME",
        {w: S(w) for w in ("select", "from", "user", "order", "table", "group", "limit", "default", "end")},
    ),
    Kind("quotes_in_names", "NAME", {'a"b': S("1"), "it's": S("2"), 'x"; DROP TABLE y; --': S("3")}),
    Kind("unicode_names", "NAME", {"naïve": S("1"), "日本語": S("2"), "Ü": S("3")}),
    Kind("300_byte_names", "NAME", {LONG_NAME: S("ascii"), LONG_MULTIBYTE_NAME: S("multibyte")}),
    Kind("collisions_after_folding", "NAME", {n: S(n) for n in ("price", "Price", "PRICE", "pri ce", "pri-ce")}),
    Kind("leading_digits", "NAME", {"1st": S("1"), "123": S("2")}),
    Kind("dot_versus_map", "NAME", {"a.b": S("dot"), "a": M(b=S("map")), "a__b": S("underscores")}),
    Kind("metadata_column_names", "NAME", {"_segment": S("mine"), "_extracted_at": S("mine too"), "PK": S("k")}),
    Kind("control_characters_in_names", "NAME", {"new\nline": S("1"), "tab\there": S("2")}),
    # ---------------------------------------------------------------- keys
    Kind("newline_in_key", "NAME", {}, pk="BAD#key\nwith newline"),
    Kind("quotes_in_key", "NAME", {}, pk="BAD#key \"quoted\" 'too'"),
    Kind("unicode_in_key", "NAME", {}, pk="BAD#ключ 🔑"),
    # ---------------------------------------------------------------- shapes
    Kind("empty_map", "NEST", {"em": M(), "m": M(x=N("1"))}),
    Kind("empty_list", "NEST", {"el": L(), "sc": S("scalar")}),
    Kind("32_deep_maps", "NEST", {"deep": nested_maps(32)}),
    Kind("32_deep_lists", "NEST", {"deepl": nested_lists(31)}),  # 31 lists around a string: 32 levels
    Kind("mixed_list_elements", "NEST", {"mixed": L(M(a=N("1")), S("x"), {"NULL": True}, N("2"))}),
    Kind("null_attribute", "NEST", {"nothing": {"NULL": True}, "sc": {"NULL": True}}),
    Kind("string_sets_by_code_point", "SET", {"ss": {"SS": ["b", "a", "\uffff", "𝄞", "é", "A"]}}),
    Kind("number_sets_by_value", "SET", {"ns": {"NS": ["10", "-2.5", "1E+2", "0.001", "-0.001"]}}),
    Kind("scalar_where_a_map_was", "NEST", {"m": S("flat")}, drift=True),  # reject: type_drift
    Kind("map_where_a_scalar_was", "NEST", {"sc": M(x=S("y"))}, drift=True),  # reject
    Kind("list_where_a_scalar_was", "NEST", {"sc": L(S("y"))}, drift=True),  # reject
    Kind("new_attribute", "NEST", {"brand_new": S("x"), "new_list": L(S("v"))}, drift=True),  # new_column
    Kind("new_route", "NEWROUTE", {"x": S("1")}, drift=True),  # reject: new_table (whole item)
]


@dataclass
class Loaded:
    schema: DataSchema
    summary: dict[str, Any]
    items: list[dict[str, Any]]
    store: PartStore


@pytest.fixture(scope="module")
def loaded(stack: Any, prefect_api: str) -> Loaded:
    from flows.schema import determine_schema
    from flows.segment import segment_etl

    ensure_buckets(stack)
    ddb = boto3.client("dynamodb", endpoint_url=stack.endpoint)
    create_table(ddb, TABLE)
    for kind in KINDS:
        if not kind.drift:
            ddb.put_item(TableName=TABLE, Item=kind.item())
    determine_schema(TABLE, total=1, routing=["sk:#"], page_limit=8)
    for kind in KINDS:
        if kind.drift:
            ddb.put_item(TableName=TABLE, Item=kind.item())
    summary = segment_etl(TABLE, 0, 1, target_schema=TARGET, snapshot=SNAPSHOT, page_limit=8, pages_per_chunk=2)
    s3 = boto3.client("s3", endpoint_url=stack.endpoint)
    env = stack.env()
    schema = SchemaCache(s3, env["ARM_ETL_CACHE_BUCKET"], TABLE).require()
    store = PartStore(s3, env["ARM_ETL_DATA_BUCKET"], TABLE, 0)
    return Loaded(schema, summary, raw_segment(stack.endpoint, TABLE, 0, 1), store)


def columns(schema: DataSchema, table: str) -> dict[Any, Any]:
    t = next(t for t in schema.tables if t.name == table)
    return {c.path: c for c in t.columns}


def row(pg: Any, table: str, kind: str, schema: DataSchema | None = None) -> dict[str, Any]:
    pk = "pk"
    if schema is not None:  # the key column's name in this table (an attribute "PK" may have taken "pk")
        pk = columns(schema, table)[("pk",)].name
    rows = [r for r in fetch(pg, segment_schema(TARGET, 0), table) if r[pk] == f"BAD#{kind}"]
    assert len(rows) == 1, (table, kind, rows)
    return rows[0]


def test_the_catalogue_has_at_least_30_kinds() -> None:
    assert len({k.name for k in KINDS}) == len(KINDS) >= 30
    assert sum(k.drift for k in KINDS) >= 10


def test_every_kind_loads_exactly_and_every_misfit_is_a_counted_reject(loaded: Loaded, pg: Any) -> None:
    assert len(loaded.items) == len(KINDS)
    problems = check_segment(pg, loaded.schema, loaded.store, TARGET, 0, loaded.items, SNAPSHOT)
    assert not problems, "\n".join(problems)
    manifest = loaded.store.read_manifest()
    assert manifest is not None
    want = oracle.expected(loaded.schema, loaded.items, 0, datetime.fromisoformat(manifest.extracted_at))
    counted = dict(Counter(r.reason for r in want.rejects))
    assert loaded.summary["rejects"] == counted
    assert loaded.summary["totals"]["rejects"] == len(want.rejects)
    assert loaded.summary["totals"]["items"] == len(KINDS)


def test_the_catalogue_produces_the_rejects_it_is_meant_to(loaded: Loaded, pg: Any) -> None:
    """Guards the exact comparison: each misfit kind is a reject with the contract's reason, and the
    400 KB value is split into chunks that rebuild it byte for byte."""
    rejects = fetch(pg, segment_schema(TARGET, 0), REJECTS_TABLE)
    by_kind: dict[str, set[str]] = {}
    for r in rejects:
        by_kind.setdefault(json.loads(r["item_key"])["pk"].removeprefix("BAD#"), set()).add(r["reason"])
    expected = {
        "nul_character": "nul",
        "65536_bytes": "too_long",
        "65536_bytes_in_32768_chars": "too_long",
        "item_near_400kb": "too_long",
        "string_over_its_varchar_n": "too_long",
        "string_over_its_varchar_n_in_bytes": "too_long",
        "int64_overflow_after_determination": "type_drift",
        "fraction_in_bigint": "type_drift",
        "string_in_bigint": "type_drift",
        "39_digits_in_decimal_38": "type_drift",
        "scale_over_decimal": "type_drift",
        "number_in_boolean": "type_drift",
        "binary_over_its_varbyte": "too_long",
        "empty_binary": "empty_binary",
        "string_in_varbyte": "type_drift",
        "month_13": "type_drift",
        "february_30": "type_drift",
        "space_instead_of_t": "type_drift",
        "scalar_where_a_map_was": "type_drift",
        "new_route": "new_table",
    }
    for kind, reason in expected.items():
        assert reason in by_kind.get(kind, set()), (kind, by_kind.get(kind))
    assert by_kind["new_attribute"] and by_kind["map_where_a_scalar_was"] and by_kind["list_where_a_scalar_was"]
    big = sorted(
        (r for r in rejects if json.loads(r["item_key"])["pk"] == "BAD#item_near_400kb"), key=lambda r: r["chunk_no"]
    )
    assert len(big) >= 7 and all(len(r["chunk"].encode()) <= PIECE_BYTES for r in big)
    assert json.loads("".join(r["chunk"] for r in big)) == {"S": "z" * (390 * 1024)}
    empty = [r for r in rejects if json.loads(r["item_key"])["pk"] == "BAD#empty_binary"]
    assert [(r["column_path"], r["chunk_no"], r["chunk"]) for r in empty] == [('["b"]', 0, '{"B":""}')]


def test_types_and_values_of_the_awkward_kinds(loaded: Loaded, pg: Any) -> None:
    """Guards the exact comparison: the data-schema has the types the kinds are meant to produce, and a
    few values are checked by hand (strings kept exactly, '' is not NULL, empty bytes are a reject, not a
    NULL that looks like a value)."""
    s = columns(loaded.schema, "str")
    assert s[("s",)].type == "VARCHAR(65535)" and s[("s16",)].type == "VARCHAR(16)"
    n = columns(loaded.schema, "num")
    assert n[("i64",)].type == "BIGINT" and n[("i64b",)].type == "BIGINT"
    assert n[("beyond",)].type == "DECIMAL(20,0)" and n[("d38",)].type == "DECIMAL(38,0)"
    assert n[("p19",)].type == "DECIMAL(20,18)"
    assert n[("tiny",)].type == "VARCHAR(64)" and n[("tiny2",)].type == "VARCHAR(16)"
    assert n[("big",)].type.startswith("VARCHAR")
    assert n[("flag",)].type == "BOOLEAN"
    b = columns(loaded.schema, "bin")
    assert b[("b",)].type.startswith("VARBYTE") and b[("bs",)].type.startswith("VARCHAR")
    t = columns(loaded.schema, "ts")
    assert t[("ts",)].type == "TIMESTAMPTZ" and t[("day",)].type == "DATE"
    assert t[("leap",)].type.startswith("VARCHAR") and t[("mixed",)].type.startswith("VARCHAR")
    assert t[("tz15",)].type == "VARCHAR(32)" and t[("y0",)].type == "VARCHAR(16)"

    assert row(pg, "str", "newline")["s"] == "line1\nline2\n"
    assert row(pg, "str", "carriage_return")["s"] == "a\rb\r\nc\r"
    assert row(pg, "str", "backslashes")["s"] == "C:\\dir\\n\\t\\\\end\\"
    assert row(pg, "str", "null_markers")["s"] == "\\N" and row(pg, "str", "null_markers")["s2"] == "NULL"
    assert row(pg, "str", "empty_string")["s"] == ""
    assert row(pg, "str", "nul_character")["s"] is None
    assert row(pg, "str", "exactly_65535_bytes_multibyte")["s"] == "€" * 21845
    assert row(pg, "num", "1e125")["big"] == "1E+125" and row(pg, "num", "minus_1e-130")["big"] == "-1E-130"
    assert str(row(pg, "num", "38_digits")["d38"]) == "9" * 38
    assert row(pg, "num", "int64_edges")["i64b"] == -(2**63)
    assert row(pg, "bin", "invalid_utf8_binary")["b"] == b"\xff\xfe\x00\x80"
    assert row(pg, "bin", "empty_binary")["b"] is None  # and kept in _etl_rejects as {"B": ""}
    assert str(row(pg, "num", "int64_max_plus_one")["beyond"]) == "9223372036854775808"
    assert str(row(pg, "num", "19_digit_precision")["p19"]) == "9.999999999999999999"
    assert row(pg, "num", "38_digit_fraction")["tiny"] == "0.00000000000000000000000000000000000001"
    assert row(pg, "num", "scale_38_exponent")["tiny2"] == "1.5E-37"
    assert row(pg, "ts", "offset_beyond_14_59")["tz15"] == "2024-01-01T00:00:00+15:00"
    assert row(pg, "bin", "invalid_utf8_binary")["bs"] == base64.b64encode(b"\xc3\x28").decode()
    assert row(pg, "ts", "leap_second")["leap"] == "2016-12-31T23:59:60Z"


def test_names_are_folded_cut_and_deduplicated(loaded: Loaded, pg: Any) -> None:
    cols = columns(loaded.schema, "name")
    names = {path[0]: c.name for path, c in cols.items() if path and len(path) == 1}
    # collisions: _2, _3 … in code-point order of the original names
    assert [names[o] for o in ("PRICE", "Price", "price")] == ["price", "price_2", "price_3"]
    assert [names[o] for o in ("pri ce", "pri-ce")] == ["pri_ce", "pri_ce_2"]
    assert names["select"] == "select" and names["user"] == "user"
    assert names['x"; DROP TABLE y; --'] == "x___drop_table_y____"
    assert names["1st"] == "_1st" and names["123"] == "_123"
    assert names["new\nline"] == "new_line"
    assert names["_segment"] != "_segment" and names["_extracted_at"] != "_extracted_at"
    for original in (LONG_NAME, LONG_MULTIBYTE_NAME):
        assert re.fullmatch(r"[a-z0-9_]{54}_[0-9a-f]{8}", names[original]), names[original]
    assert names[LONG_NAME] != names[LONG_MULTIBYTE_NAME]
    # 'a"b', the attribute "a.b" and the map path a.b fold to a_b, a_b and a__b; the attribute "a__b" too
    assert (names['a"b'], names["a.b"], cols[("a", "b")].name, names["a__b"]) == ("a_b", "a_b_2", "a__b", "a__b_2")
    # an attribute "PK" sorts before the key "pk" and takes the name "pk" (code-point order, DESIGN.md)
    assert names["PK"] == "pk" and cols[("pk",)].name == "pk_2"
    got = row(pg, "name", "quotes_in_names", loaded.schema)
    assert got[names['x"; DROP TABLE y; --']] == "3" and got[names["it's"]] == "2"
    deep = columns(loaded.schema, "nest")[tuple(["deep"] + ["m"] * 31)]
    assert len(deep.name.encode()) <= 63
    deepest = [t for t in loaded.schema.tables if t.route == "nest" and t.depth >= 31]
    assert deepest, "a 32-level list gives a chain of child tables"
    assert all(len(t.name.encode()) <= 63 for t in loaded.schema.tables)


# ---------------------------------------------------------------------------------------------------------
# Kinds DynamoDB cannot hold, at the transform


def rejects_of(lines: dict[str, list[str]]) -> list[dict[str, str]]:
    names = [c for c, _ in REJECTS_COLUMNS] + ["_segment", "_extracted_at"]
    text = "".join(lines.get(REJECTS_TABLE, []))
    return [dict(zip(names, r, strict=True)) for r in csv.reader(io.StringIO(text, newline=""))]


def transformer(schema: DataSchema) -> Transformer:
    return Transformer(schema, POSTGRESQL, 0, "2024-01-01T00:00:00.000000Z")


def test_lone_surrogate_is_a_lossless_invalid_utf8_reject(loaded: Loaded) -> None:
    """DynamoDB only stores valid UTF-8 and moto answers 500 to a lone surrogate, so this enters as raw
    Scan JSON (the extract keeps what the stdlib parser accepts): the value is rejected as invalid_utf8,
    and the reject's chunk is JSON that parses back to the very same string."""
    body = b'{"Items":[{"pk":{"S":"BAD#surrogate"},"sk":{"S":"STR#surrogate"},"s":{"S":"a\\ud800b\\udfffc"}}]}'
    response = {"status_code": 200, "body": body}
    parsed: dict[str, Any] = {}
    _keep_raw_items(response, parsed)
    items = parsed[RAW_ITEMS]
    assert items[0]["s"]["S"] == "a\ud800b\udfffc"
    result = transformer(loaded.schema).transform(items)
    assert result.rejects == Counter({"invalid_utf8": 1})
    (rej,) = rejects_of(result.lines)
    assert (rej["table_name"], rej["column_path"], rej["reason"]) == ("str", '["s"]', "invalid_utf8")
    rej["chunk"].encode("utf-8")  # storable text
    assert json.loads(rej["chunk"]) == {"S": "a\ud800b\udfffc"}
    (line,) = result.lines["str"]
    assert '"BAD#surrogate"' in line


def test_empty_sets_give_no_rows_and_no_rejects(loaded: Loaded) -> None:
    """DynamoDB refuses empty sets (ValidationException), so they can only reach the transform directly."""
    item = {"pk": S("BAD#empty-sets"), "sk": S("SET#empty"), "ss": {"SS": []}, "ns": {"NS": []}}
    result = transformer(loaded.schema).transform([item])
    assert result.rejects == Counter()
    assert set(result.lines) == {"set"}


def test_a_1mb_string_is_rejected_in_chunks_that_rebuild_it(loaded: Loaded) -> None:
    """Items are at most 400 KB in DynamoDB, so a 1 MB string (multi-byte, to test chunk cuts) is
    only possible at the transform: rejected too_long, chunks ≤ 65535 bytes, never cut inside a character."""
    value = ("ab€𝄞" * 120_000)[:450_000]  # 1 012 500 bytes
    assert len(value.encode()) > 1_000_000
    item = {"pk": S("BAD#1mb"), "sk": S("STR#1mb"), "s": S(value)}
    result = transformer(loaded.schema).transform([item])
    assert result.rejects == Counter({"too_long": 1})
    chunks = rejects_of(result.lines)
    assert [int(c["chunk_no"]) for c in chunks] == list(range(len(chunks))) and len(chunks) >= 16
    assert all(len(c["chunk"].encode()) <= PIECE_BYTES for c in chunks)
    assert json.loads("".join(c["chunk"] for c in chunks)) == {"S": value}


def test_a_new_map_is_kept_whole_as_one_reject(loaded: Loaded) -> None:
    """A map attribute the data-schema never saw is one ``new_column`` reject holding the whole map (the
    oracle models new paths leaf by leaf, so the end-to-end catalogue uses a new list and a new scalar)."""
    new_map = M(k=S("v"), deeper=M(n=N("1.50"), l=L(B(b"\xff"))))
    item = {"pk": S("BAD#new-map"), "sk": S("NEST#new-map"), "new_map": new_map}
    result = transformer(loaded.schema).transform([item])
    assert result.rejects == Counter({"new_column": 1})
    (rej,) = rejects_of(result.lines)
    assert (rej["column_path"], rej["reason"]) == ('["new_map"]', "new_column")
    assert json.loads(rej["chunk"]) == {
        "M": {"k": {"S": "v"}, "deeper": {"M": {"n": {"N": "1.50"}, "l": {"L": [{"B": "/w=="}]}}}}
    }
