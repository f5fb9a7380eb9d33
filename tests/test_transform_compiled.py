"""The compiled transform (``arm_etl/_transform_c.c``) against the pure-Python one: byte-identical results.

Same lines for every table (``_etl_rejects`` included), same reject reasons and tables, on the seed's
awkward items and on generated ones that hit every column type with every kind of value: strings with
NUL, quotes, surrogates and wide characters, numbers in every form, timestamps and dates valid and not,
maps, lists and sets where the data-schema expects and does not expect them.
"""

from __future__ import annotations

import importlib.util
import shutil
import string
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arm_etl import seed
from arm_etl.csvformat import POSTGRESQL, REDSHIFT, CsvDialect
from arm_etl.dataschema import DataSchema
from arm_etl.encoders import compiled_kind
from arm_etl.inference import finalize, infer
from arm_etl.routing import Router, RoutingRule
from arm_etl.transform import COMPILED, Transformer, TransformResult
from bench.data import render

AV = dict[str, Any]
HAVE_C = importlib.util.find_spec("arm_etl._transform_c") is not None
needs_c = pytest.mark.skipif(not HAVE_C, reason="arm_etl._transform_c is not built here")


def test_the_compiled_transform_is_built_where_a_compiler_is() -> None:
    if shutil.which("gcc") or shutil.which("cc"):
        assert HAVE_C, "arm_etl/_transform_c.c was not built: reinstall with `pip install -e .` and read its output"


Outcome = TransformResult | tuple[str, str]  # the result, or the error raised (a value no DynamoDB holds: N "-")


def _run(schema: DataSchema, dialect: CsvDialect, items: list[dict[str, AV]], compiled: bool) -> Outcome:
    try:
        return Transformer(schema, dialect, 4, "2024-01-01T00:00:00Z", compiled=compiled).transform(items)
    except Exception as exc:
        return type(exc).__name__, str(exc)


def _both(schema: DataSchema, dialect: CsvDialect, items: list[dict[str, AV]]) -> tuple[Outcome, Outcome]:
    return _run(schema, dialect, items, False), _run(schema, dialect, items, True)


def _same(py: Outcome, c: Outcome) -> None:
    if isinstance(py, tuple) or isinstance(c, tuple):
        assert c == py
        return
    assert c.items == py.items
    assert c.rejects == py.rejects
    assert c.reject_tables == py.reject_tables
    assert c.lines.keys() == py.lines.keys()
    for table, lines in py.lines.items():
        assert c.lines[table] == lines, table


def _wire(items: list[dict[str, AV]]) -> list[dict[str, AV]]:
    """Items as a Scan response holds them (what the extract hands the transform)."""
    loaded: list[dict[str, AV]] = orjson.loads(b"[" + b",".join(render(i) for i in items) + b"]")
    return loaded


SEED = _wire(list(seed.generate_items(1700)))  # every awkward class, both long-string items (i % 80)


@needs_c
@pytest.mark.parametrize("dialect", [POSTGRESQL, REDSHIFT], ids=lambda d: d.name)
@pytest.mark.parametrize("nested", ["relational", "super"])
def test_seed_items_give_identical_results(dialect: CsvDialect, nested: str) -> None:
    schema = finalize(infer(SEED, Router("seeded", [])), "seeded", ["pk", "sk"], nested=nested)
    py, c = _both(schema, dialect, SEED)
    assert isinstance(py, TransformResult)
    assert py.items == 1700 and sum(py.rejects.values()) > 0 and len(py.lines) > (3 if nested == "relational" else 1)
    _same(py, c)


# ------------------------------------------------------------------------------------ generated items

# The data-schema every generated item is transformed by: one column of each type the compiled code encodes
# itself (and the others), a child table, a nested child, a set, a mixed column (VARCHAR from S and N).
_TYPED = [
    {
        "pk": {"S": f"k{i}"},
        "sk": {"S": "a#1" if i % 2 else "b#2"},
        "name": {"S": "x" * (i % 9)},
        "qty": {"N": str(i * 7 - 20)},
        "price": {"N": f"{i}.{i % 100:02d}"},
        "big": {"N": "9223372036854775807" if i == 3 else "12.5"},
        "flag": {"BOOL": i % 2 == 0},
        "at": {"S": f"2024-0{1 + i % 9}-1{i % 10}T10:2{i % 10}:33.{i:03d}Z"},
        "day": {"S": f"2023-1{i % 3}-0{1 + i % 9}"},
        "blob": {"B": "aGVsbG8="},
        "mixed": {"S": "one"} if i % 2 else {"N": "2"},
        "tags": {"L": [{"S": "t"}, {"S": "u"}]},
        "kids": {"L": [{"M": {"n": {"N": "1"}, "deep": {"L": [{"BOOL": True}]}, "note": {"S": "n"}}}]},
        "labels": {"SS": ["p", "q"]},
        "meta": {"M": {"level": {"N": "3"}, "who": {"S": "me"}}},
    }
    for i in range(12)
]

_KEYS = [*sorted(_TYPED[0]), "n", "deep", "note", "level", "who", "unknown", "é", ""]
_SPECIAL = [
    "",
    '"',
    'a""b',
    "\x00",
    "a\x00",
    "\ud800",
    "x\udfff",
    "é",
    "𝄞",
    "\n\r,",
    "\\N",
    "2024-02-29T23:59:59.999999+14:59",
    "2023-02-29T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "2024-01-01T24:00:00Z",
    "2024-01-01T00:00:60Z",
    "2024-01-01T00:00:00.1234567Z",
    "2024-01-01T00:00:00+15:00",
    "2024-01-01t00:00:00Z",
    "2024-01-01T00:00:00",
    "٢٠٢٤-01-01T00:00:00Z",
    "2024-12-31",
    "2024-13-01",
    "1900-02-29",
    "2000-02-29",
    "20240101",
    "x" * 16,  # at and over VARCHAR(16), in characters and in UTF-8 bytes
    "x" * 17,
    "é" * 8,
    "é" * 9,
    "x" + "é" * 8,
    "𝄞" * 4,
    "𝄞" * 5,
]
_NUMBERS = [
    "0",
    "-0",
    "007",
    "1.",
    ".5",
    "1.50",
    "12\n",
    "1e3",
    "-1E-3",
    "123456789012345678",
    "1234567890123456789",
    "-9223372036854775808",
    "9223372036854775808",
    "99999999.99",
    "0.000000000000000000000000000000000000001",
    "1" * 40,
    "12.34",  # at and over DECIMAL(4,2) and DECIMAL(20,1)
    "123.4",
    "-99.99",
    "0012.34",
    "99.999",
    "1234567890123456789.1",
    "12345678901234567890.1",
    "١٢",
]

_text = st.one_of(
    st.sampled_from(_SPECIAL),
    st.text(st.characters(exclude_categories=()), max_size=12),  # surrogates included
    st.text(string.printable, max_size=40),
)
_number = st.one_of(
    st.sampled_from(_NUMBERS),
    st.integers().map(str),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
)
_scalar: st.SearchStrategy[AV] = st.one_of(
    _text.map(lambda s: {"S": s}),
    _number.map(lambda n: {"N": n}),
    st.booleans().map(lambda b: {"BOOL": b}),
    st.just({"NULL": True}),
    st.sampled_from(["", "aGVsbG8=", "AA=="]).map(lambda b: {"B": b}),
    st.lists(_text, max_size=3, unique=True).map(lambda v: {"SS": v}),
    st.lists(st.sampled_from(["1", "2.5", "-3"]), max_size=3, unique=True).map(lambda v: {"NS": v}),
)
_value: st.SearchStrategy[AV] = st.recursive(
    _scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda v: {"L": v}),
        st.dictionaries(st.sampled_from(_KEYS), inner, max_size=4).map(lambda m: {"M": m}),
    ),
    max_leaves=8,
)
_item = st.builds(
    lambda pk, sk, rest: {"pk": {"S": pk}, "sk": {"S": sk}, **rest},
    st.sampled_from(["k1", "k2", "ü", 'q"']),
    st.sampled_from(["a#1", "b#2", "c#3", "zz"]),
    st.dictionaries(st.sampled_from([k for k in _KEYS if k not in ("pk", "sk")]), _value, max_size=8),
)


def _schema(nested: str) -> DataSchema:
    rules = [RoutingRule("sk", "#")]
    return finalize(infer(_TYPED, Router("gen", rules)), "gen", ["pk", "sk"], routing=rules, nested=nested)


SCHEMAS = {nested: _schema(nested) for nested in ("relational", "super")}


def test_the_generated_data_schema_has_every_compiled_kind() -> None:
    kinds = {compiled_kind(c.type)[0] for t in SCHEMAS["relational"].tables for c in t.columns}
    assert kinds == set(range(7))


@needs_c
@pytest.mark.parametrize("nested", ["relational", "super"])
def test_every_special_value_at_every_column_gives_identical_results(nested: str) -> None:
    values: list[AV] = [{"S": t} for t in _SPECIAL] + [{"N": n} for n in _NUMBERS]
    values += [{"BOOL": True}, {"BOOL": False}, {"NULL": True}, {"B": ""}, {"B": "AA=="}, {"SS": ["b", "a"]}]
    values += [{"M": {}}, {"M": {"n": {"N": "1"}}}, {"L": []}, {"L": [{"S": "x"}, {"N": "1"}]}]
    items = [{"pk": {"S": "k"}, "sk": {"S": "a#1"}, key: v} for key in _KEYS if key not in ("pk", "sk") for v in values]
    items += [{"pk": {"S": "k"}, "sk": {"S": "a#1"}, "kids": {"L": [{"M": {key: v}}]}} for key in _KEYS for v in values]
    for dialect in (POSTGRESQL, REDSHIFT):
        _same(*_both(SCHEMAS[nested], dialect, items))


@needs_c
@pytest.mark.parametrize("number", ["-", "1e", "Infinity", "NaN"])
def test_a_value_no_dynamodb_number_has_raises_the_same_error(number: str) -> None:
    items = [{"pk": {"S": "k"}, "sk": {"S": "a#1"}, key: {"N": number}} for key in ("qty", "price", "big", "name")]
    for item in items:
        py, c = _both(SCHEMAS["relational"], POSTGRESQL, [item])
        _same(py, c)


@needs_c
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(_item, min_size=1, max_size=6), nested=st.sampled_from(["relational", "super"]))
def test_generated_items_give_identical_results(items: list[dict[str, AV]], nested: str) -> None:
    for dialect in (POSTGRESQL, REDSHIFT):
        _same(*_both(SCHEMAS[nested], dialect, items))


def test_the_default_is_the_compiled_path_where_built() -> None:
    t = Transformer(SCHEMAS["relational"], POSTGRESQL, 0, "x")
    assert t.compiled is COMPILED
    assert Transformer(SCHEMAS["relational"], POSTGRESQL, 0, "x", compiled=False).compiled is False
