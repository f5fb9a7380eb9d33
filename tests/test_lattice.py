"""Tests for arm_etl.lattice: the DESIGN type table, exact types, and the merge laws of ScalarStats."""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from arm_etl.csvformat import POSTGRESQL
from arm_etl.encoders import Reject, encoder_for
from arm_etl.lattice import (
    MAX_VARCHAR,
    NumberShape,
    ScalarStats,
    binary_len,
    is_date,
    is_timestamp,
    number_shape,
    round_up,
)
from tests.items import AV, BOOL, NULL, B, N, S


def infer(values: list[AV]) -> ScalarStats:
    stats = ScalarStats()
    for av in values:
        ((tag, v),) = av.items()
        stats.add(tag, v)
    return stats


def column_type(*values: AV) -> str:
    return infer(list(values)).column_type()


# --- helpers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "declared"),
    [(0, 16), (1, 16), (16, 16), (17, 32), (32, 32), (33, 64), (1000, 1024), (32768, 32768), (32769, 65535)],
)
def test_round_up(n: int, declared: int) -> None:
    assert round_up(n, MAX_VARCHAR) == declared


@pytest.mark.parametrize(
    ("text", "shape"),
    [
        ("0", NumberShape(1, 0, 0)),
        ("12", NumberShape(2, 0, 12)),
        ("-12", NumberShape(2, 0, -12)),
        ("12.50", NumberShape(2, 2, None)),
        ("0.05", NumberShape(0, 2, None)),
        ("1E+2", NumberShape(3, 0, 100)),
        ("1.5E-3", NumberShape(0, 4, None)),
        ("1E+125", NumberShape(126, 0, 10**125)),
        ("-1E-130", NumberShape(0, 130, None)),
    ],
)
def test_number_shape(text: str, shape: NumberShape) -> None:
    assert number_shape(text) == shape


@pytest.mark.parametrize("text", ["", "abc", "NaN", "Infinity", "-inf", "1..2"])
def test_number_shape_rejects_non_numbers(text: str) -> None:
    with pytest.raises(ValueError):
        number_shape(text)


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-01T00:00:00Z",
        "2024-02-29T23:59:59Z",
        "2024-01-01T00:00:00+00:00",
        "2024-01-01T12:30:45-08:00",
        "2024-01-01T12:30:45.1+05:30",
        "2024-01-01T12:30:45.123456Z",
        "1999-12-31T23:59:59.999999-00:00",
    ],
)
def test_is_timestamp(text: str) -> None:
    assert is_timestamp(text)


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-01T00:00:00.1234567Z",  # 7 fraction digits
        "2024-01-01t00:00:00Z",  # lowercase t
        "2024-01-01 00:00:00Z",  # space instead of T
        "2024-01-01T00:00Z",  # no seconds
        "2024-01-01T00:00:00",  # no offset
        "2024-01-01T00:00:00+0000",  # offset without colon
        "2024-01-01T00:00:00.Z",  # empty fraction
        "2023-02-29T00:00:00Z",  # no such day
        "2024-01-01T24:00:00Z",
        "2024-01-01",
        "",
        "٢٠٢٤-٠١-٠١T00:00:00Z",  # non-ASCII digits
    ],
)
def test_is_not_timestamp(text: str) -> None:
    assert not is_timestamp(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-01", True),
        ("2024-02-29", True),
        ("2023-02-29", False),
        ("2024-13-01", False),
        ("2024-1-01", False),
        ("20240101", False),
        ("2024-01-01T00:00:00Z", False),
        ("٢٠٢٤-٠١-٠١", False),
    ],
)
def test_is_date(text: str, expected: bool) -> None:
    assert is_date(text) is expected


# --- the type table ------------------------------------------------------------------------------

EMOJI = "😀"  # 4 UTF-8 bytes

TYPE_TABLE: list[tuple[str, list[AV], str]] = [
    # N: integers within int64
    ("int", [N("1")], "BIGINT"),
    ("int64 range", [N("-9223372036854775808"), N("9223372036854775807"), N("0")], "BIGINT"),
    ("int written with exponent", [N("1E+2")], "BIGINT"),
    ("int and null", [N("5"), NULL], "BIGINT"),
    # N: fractions → DECIMAL(p,s), measured
    ("decimals", [N("1.5"), N("10.25")], "DECIMAL(4,2)"),
    ("decimal and int", [N("123"), N("0.5")], "DECIMAL(4,1)"),
    ("negative decimal", [N("-0.001")], "DECIMAL(3,3)"),
    ("small exponent", [N("1.5E-3")], "DECIMAL(4,4)"),
    # 19 digits: precision 20, since a Redshift DECIMAL(19,0) stops at 9223372036854775807
    ("beyond int64", [N("9223372036854775808")], "DECIMAL(20,0)"),
    ("below int64", [N("-9223372036854775809"), N("7")], "DECIMAL(20,0)"),
    ("19 digit precision", [N("1.234567890123456789")], "DECIMAL(20,18)"),
    ("18 digit precision", [N("1.23456789012345678")], "DECIMAL(18,17)"),
    ("38 digits", [N("9" * 38)], "DECIMAL(38,0)"),
    ("38 digit precision", [N("1" * 20 + "." + "1" * 18)], "DECIMAL(38,18)"),
    # N: fits neither → VARCHAR of the text
    ("39 digits", [N("9" * 39)], "VARCHAR(64)"),
    ("huge exponent", [N("1E+125")], "VARCHAR(16)"),
    ("tiny exponent", [N("-1E-130")], "VARCHAR(16)"),
    ("scale 38 (Redshift's maximum scale is 37)", [N("1.5E-37")], "VARCHAR(16)"),
    ("scale 37", [N("1.5E-36")], "DECIMAL(37,37)"),
    ("precision 39 across values", [N("1" * 30), N("0." + "1" * 9)], "VARCHAR(32)"),
    # S → VARCHAR(round_up(max UTF-8 bytes))
    ("short string", [S("abc")], "VARCHAR(16)"),
    ("empty string", [S("")], "VARCHAR(16)"),
    ("16 bytes", [S("a" * 16)], "VARCHAR(16)"),
    ("17 bytes", [S("a" * 17)], "VARCHAR(32)"),
    ("max over values", [S("a"), S("b" * 100), S("c")], "VARCHAR(128)"),
    ("four emoji = 16 bytes", [S(EMOJI * 4)], "VARCHAR(16)"),
    ("emoji counted as 4 bytes", [S(EMOJI * 4 + "a")], "VARCHAR(32)"),
    ("two-byte chars", [S("é" * 9)], "VARCHAR(32)"),
    ("newlines count", [S("\n" * 17)], "VARCHAR(32)"),
    ("65535 bytes", [S("a" * 65535)], "VARCHAR(65535)"),
    ("over 32768 bytes", [S("a" * 40000)], "VARCHAR(65535)"),
    ("over 65535 bytes", [S("a" * 70000)], "VARCHAR(65535)"),
    ("numeric strings stay strings", [S("123")], "VARCHAR(16)"),
    # S: RFC 3339 date-times → TIMESTAMPTZ
    ("timestamp Z", [S("2024-01-01T00:00:00Z")], "TIMESTAMPTZ"),
    (
        "timestamps with offsets and fractions",
        [S("2024-01-01T00:00:00Z"), S("2024-06-30T12:34:56.123456+05:30"), S("2024-12-31T23:59:59-08:00"), NULL],
        "TIMESTAMPTZ",
    ),
    ("7 fraction digits", [S("2024-01-01T00:00:00Z"), S("2024-01-01T00:00:00.1234567Z")], "VARCHAR(32)"),
    ("lowercase t", [S("2024-01-01t00:00:00Z")], "VARCHAR(32)"),
    ("missing seconds", [S("2024-01-01T00:00Z")], "VARCHAR(32)"),
    ("missing offset", [S("2024-01-01T00:00:00"), S("2024-01-01T00:00:00Z")], "VARCHAR(32)"),
    ("timestamp and other text", [S("2024-01-01T00:00:00Z"), S("soon")], "VARCHAR(32)"),
    # S: dates → DATE
    ("dates", [S("2024-01-01"), S("1999-12-31"), NULL], "DATE"),
    ("impossible date", [S("2024-01-01"), S("2023-02-29")], "VARCHAR(16)"),
    ("dates and timestamps", [S("2024-01-01"), S("2024-01-01T00:00:00Z")], "VARCHAR(32)"),
    # BOOL, B
    ("bool", [BOOL(True), BOOL(False)], "BOOLEAN"),
    ("binary", [B(b"\x00" * 10)], "VARBYTE(16)"),
    ("binary measured", [B(b"\x01" * 17), B(b"")], "VARBYTE(32)"),
    ("binary as base64 wire text", [{"B": base64.b64encode(b"x" * 40).decode()}], "VARBYTE(64)"),
    # conflicting scalars → VARCHAR of the max canonical text length
    ("number and string", [N("12345"), S("ab")], "VARCHAR(16)"),
    ("long string and number", [S("x" * 20), N("1")], "VARCHAR(32)"),
    ("long number and bool", [N("1" * 40), BOOL(False)], "VARCHAR(64)"),
    ("bool and binary (base64 length)", [BOOL(True), B(b"\xff" * 30)], "VARCHAR(64)"),
    ("timestamp and number", [S("2024-01-01T00:00:00Z"), N("1")], "VARCHAR(32)"),
    ("all four kinds", [N("1"), S("s"), BOOL(True), B(b"b"), NULL], "VARCHAR(16)"),
    # only NULLs (or nothing)
    ("only nulls", [NULL, NULL], "VARCHAR(16)"),
    ("nothing", [], "VARCHAR(16)"),
]


@pytest.mark.parametrize(("values", "expected"), [(v, e) for _, v, e in TYPE_TABLE], ids=[i for i, _, _ in TYPE_TABLE])
def test_column_type(values: list[AV], expected: str) -> None:
    assert infer(values).column_type() == expected


def test_column_type_widens_never_narrows() -> None:
    steps = [
        (N("1"), "BIGINT"),
        (N("1.25"), "DECIMAL(3,2)"),
        (N("1000"), "DECIMAL(6,2)"),
        (N("7"), "DECIMAL(6,2)"),
        (S("x" * 40), "VARCHAR(64)"),
        (S("y"), "VARCHAR(64)"),
    ]
    stats = ScalarStats()
    for av, expected in steps:
        ((tag, v),) = av.items()
        stats.add(tag, v)
        assert stats.column_type() == expected


def test_add_rejects_non_scalars() -> None:
    with pytest.raises(ValueError):
        ScalarStats().add("M", {})
    with pytest.raises(ValueError):
        ScalarStats().add("N", "twelve")


def test_to_json_round_trip() -> None:
    stats = infer([N("1.5"), S("héllo"), BOOL(True), B(b"abc"), NULL, S("2024-01-01")])
    data = stats.to_json()
    assert data == {
        "nulls": 1,
        "n_count": 1,
        "n_nonint": 1,
        "n_int_digits": 1,
        "n_scale": 1,
        "n_text_bytes": 3,
        "s_count": 2,
        "s_bytes": 10,
        "s_dates": 1,
        "bool_count": 1,
        "b_count": 1,
        "b_bytes": 3,
    }
    assert ScalarStats.from_json(data) == stats
    assert ScalarStats().to_json() == {}


# --- properties ----------------------------------------------------------------------------------

_COUNT = st.integers(min_value=0, max_value=10**6)
_STATS = st.builds(
    ScalarStats,
    nulls=_COUNT,
    n_count=_COUNT,
    n_nonint=_COUNT,
    n_int_digits=_COUNT,
    n_scale=_COUNT,
    n_text_bytes=_COUNT,
    s_count=_COUNT,
    s_bytes=_COUNT,
    s_timestamps=_COUNT,
    s_dates=_COUNT,
    bool_count=_COUNT,
    b_count=_COUNT,
    b_bytes=_COUNT,
)


@settings(max_examples=200, deadline=None)
@given(a=_STATS, b=_STATS, c=_STATS)
def test_merge_laws(a: ScalarStats, b: ScalarStats, c: ScalarStats) -> None:
    empty = ScalarStats()
    assert a.merge(b).merge(c).to_json() == a.merge(b.merge(c)).to_json()
    assert a.merge(b).to_json() == b.merge(a).to_json()
    assert a.merge(empty).to_json() == a.to_json()
    assert empty.merge(a).to_json() == a.to_json()
    assert a.merge(b).column_type() == b.merge(a).column_type()


def _decimal_text(sign: str, int_part: int, frac: str) -> str:
    return f"{sign}{int_part}.{frac}"


_INT_TEXT = st.integers(min_value=-(10**45), max_value=10**45).map(str)
_DEC_TEXT = st.builds(
    _decimal_text,
    st.sampled_from(["", "-"]),
    st.integers(min_value=0, max_value=10**30),
    st.text(alphabet="0123456789", min_size=1, max_size=40),
)
_EXP_TEXT = st.sampled_from(["1E+125", "-1E-130", "1E+2", "1.5E-3", "2.5E+40", "-7E+18", "9.99E+37"])
_N = st.one_of(_INT_TEXT, _DEC_TEXT, _EXP_TEXT).map(N)
_S = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(["a", "é", "€", EMOJI, "\n", "\r\n", '"', "\\", ","]), max_size=30).map("".join),
    st.sampled_from(
        [
            "",
            "2024-01-01T00:00:00Z",
            "2024-06-30T12:34:56.123456+05:30",
            "2024-01-01",
            "1999-12-31",
            "2024-01-01T00:00:00.1234567Z",
            "nul\x00inside",
            "x" * 70000,
            EMOJI * 17000,
        ]
    ),
).map(S)
_B = st.one_of(
    st.binary(max_size=64).map(B),
    st.binary(max_size=64).map(lambda b: {"B": base64.b64encode(b).decode()}),
)
_VALUE = st.one_of(_N, _S, _B, st.booleans().map(BOOL), st.just(NULL))
# Many draws stay within one kind, so DECIMAL, TIMESTAMPTZ, DATE and the rest are all reached.
_VALUES = st.one_of(
    st.lists(_VALUE, max_size=30),
    st.lists(_N, max_size=20),
    st.lists(st.one_of(_INT_TEXT.map(N), st.just(NULL)), max_size=20),
    st.lists(_DEC_TEXT.map(N), max_size=20),
    st.lists(_S, max_size=10),
    st.lists(st.sampled_from(["2024-01-01T00:00:00Z", "2021-03-04T05:06:07.5-01:00"]).map(S), max_size=5),
    st.lists(st.sampled_from(["2024-01-01", "2000-02-29"]).map(S), max_size=5),
    st.lists(_B, max_size=10),
)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), values=_VALUES)
def test_split_inference_merges_to_whole(data: st.DataObject, values: list[AV]) -> None:
    groups_n = data.draw(st.integers(min_value=1, max_value=5))
    assignment = data.draw(st.lists(st.integers(0, groups_n - 1), min_size=len(values), max_size=len(values)))
    groups: list[list[AV]] = [[] for _ in range(groups_n)]
    for av, g in zip(values, assignment, strict=True):
        groups[g].append(av)
    partials = data.draw(st.permutations([infer(g) for g in groups]))
    merged = ScalarStats()
    for p in partials:
        merged = merged.merge(p)
    whole = infer(values)
    assert merged.to_json() == whole.to_json()
    assert merged.column_type() == whole.column_type()


@settings(max_examples=150, deadline=None)
@given(values=_VALUES)
def test_every_value_fits_the_inferred_type(values: list[AV]) -> None:
    typ = infer(values).column_type()
    event(typ.split("(")[0])
    encode = encoder_for(typ, POSTGRESQL)
    for av in values:
        ((tag, v),) = av.items()
        if tag == "NULL":
            continue
        try:
            cell = encode(tag, v)
        except Reject as r:
            if tag == "B":  # zero bytes would load as NULL: the only binary the inferred type cannot take
                assert r.reason == "empty_binary" and not binary_len(v), (typ, av, r.reason)
                continue
            assert tag == "S", (typ, av, r.reason)
            if "\x00" in v:
                assert r.reason == "nul"
            else:
                assert r.reason == "too_long"
                assert len(v.encode("utf-8")) > MAX_VARCHAR
            continue
        assert isinstance(cell, str)
        if typ in ("BIGINT",) or typ.startswith("DECIMAL"):
            assert Decimal(cell) == Decimal(v)


def test_rejected_values_are_the_expected_ones() -> None:
    encode = encoder_for(column_type(S("x" * 70000), S("nul\x00")), POSTGRESQL)
    with pytest.raises(Reject) as too_long:
        encode("S", "x" * 70000)
    assert too_long.value.reason == "too_long"
    with pytest.raises(Reject) as nul:
        encode("S", "nul\x00")
    assert nul.value.reason == "nul"
