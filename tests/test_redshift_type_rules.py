"""Amazon Redshift's documented type rules, checked on inference, the cell encoders and the test oracle.

Each test's docstring names the page of the AWS *Amazon Redshift Database Developer Guide* (title and URL) and
quotes the sentence the rule comes from. A value Redshift cannot hold exactly must never fail the COPY and
never change silently: inference picks a type that holds it, or the encoder rejects it (the row loads with
NULL in that cell and the value is kept in ``_etl_rejects``). The rules apply on both dialects: PostgreSQL is
the Redshift stand-in, and one set of rules keeps the stand-in a faithful proxy and the oracle single.

Tests marked *guard* pin a rule the code already obeyed when these tests were written.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from collections import Counter
from decimal import Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from arm_etl.csvformat import POSTGRESQL, CsvDialect, dialect_for
from arm_etl.dataschema import REJECTS_COLUMNS, REJECTS_TABLE, Column, DataSchema, Table
from arm_etl.encoders import Reject, encoder_for
from arm_etl.lattice import MAX_VARBYTE, MAX_VARCHAR, ScalarStats, is_date, is_timestamp
from arm_etl.transform import Transformer
from tests import oracle
from tests.items import AV, B, L, M, N, S

INT64_MAX = 2**63 - 1
DIALECTS = [POSTGRESQL, dialect_for("redshift")]
DIALECT_IDS = [d.name for d in DIALECTS]
_DECIMAL = re.compile(r"^DECIMAL\((\d+),(\d+)\)$")


def infer_type(*values: AV) -> str:
    stats = ScalarStats()
    for av in values:
        ((tag, v),) = av.items()
        stats.add(tag, v)
    return stats.column_type()


def encode(typ: str, av: AV, dialect: CsvDialect = POSTGRESQL) -> str | Reject:
    """The cell the encoder writes for ``av`` in a ``typ`` column, or the :class:`Reject` it raises."""
    ((tag, v),) = av.items()
    try:
        return encoder_for(typ, dialect)(tag, v)
    except Reject as r:
        return r


def reason_of(result: str | Reject) -> str | None:
    return result.reason if isinstance(result, Reject) else None


def oracle_reason(typ: str, av: AV) -> str | None:
    """What the independent oracle says about the same cell (None: it fits). Binary goes in as base64 text,
    the form a Scan returns."""
    ((tag, v),) = _wire(av).items()
    try:
        if typ in ("SUPER", "JSONB"):
            oracle.plain_json({tag: v})
        else:
            oracle.convert(typ, tag, v)
    except oracle.Misfit as m:
        return m.reason
    return None


def _wire(av: AV) -> AV:
    """A value as a Scan returns it: binary as base64 text, at any depth."""
    ((tag, v),) = av.items()
    if tag == "B":
        return {tag: v if isinstance(v, str) else base64.b64encode(v).decode("ascii")}
    if tag == "BS":
        return {tag: [base64.b64encode(x).decode("ascii") for x in v]}
    if tag == "M":
        return {tag: {k: _wire(x) for k, x in v.items()}}
    if tag == "L":
        return {tag: [_wire(x) for x in v]}
    return {tag: v}


def assert_decimal_type_is_creatable(typ: str) -> None:
    m = _DECIMAL.match(typ)
    if m:
        precision, scale = int(m.group(1)), int(m.group(2))
        assert 1 <= precision <= 38 and precision != 19 and scale <= 37 and scale <= precision, typ


# ------------------------------------------------------------------------------------------------------
# 1. DECIMAL(19,s) cannot hold every 19-digit value


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([N("9223372036854775808")], "DECIMAL(20,0)"),  # the seed's beyond_int64 value
        ([N("-9223372036854775809")], "DECIMAL(20,0)"),
        ([N("9999999999999999999")], "DECIMAL(20,0)"),
        ([N("1.234567890123456789")], "DECIMAL(20,18)"),
        ([N("0.1234567890123456789")], "DECIMAL(20,19)"),
        ([N("123456789012345678.5")], "DECIMAL(20,1)"),
        ([N("12345678901234567.5"), N("1.25")], "DECIMAL(20,2)"),
        ([N("99999999999999999999")], "DECIMAL(20,0)"),  # 20 digits: unchanged
        ([N("12345678901234567.5")], "DECIMAL(18,1)"),  # 18 digits: unchanged
    ],
)
def test_precision_19_is_never_inferred(values: list[AV], expected: str) -> None:
    """*Numeric types* (https://docs.aws.amazon.com/redshift/latest/dg/r_Numeric_types201.html): "The maximum
    positive value that you can insert into a DECIMAL(19,0) column is 9223372036854775807 (2^63-1) … the
    largest value that you can load into a DECIMAL(19,18) column is 9.223372036854775807". Precision 20..38 is
    stored in 16 bytes and holds every value of its digit count, so inference uses 20 where 19 would do."""
    assert infer_type(*values) == expected
    for av in values:
        assert reason_of(encode(expected, av)) is None


_DECIMAL_19_CASES = [
    ("DECIMAL(19,0)", "9223372036854775807", "9223372036854775807"),
    ("DECIMAL(19,0)", "9223372036854775808", None),
    ("DECIMAL(19,0)", "9999999999999999999", None),
    ("DECIMAL(19,0)", "-9223372036854775807", "-9223372036854775807"),
    # "The maximum negative value is -9223372036854775807" (same note), one less than int64's minimum
    ("DECIMAL(19,0)", "-9223372036854775808", None),
    ("DECIMAL(19,0)", "9.223372036854775807E+18", "9223372036854775807"),
    ("DECIMAL(19,0)", "9.223372036854775808E+18", None),
    ("DECIMAL(19,0)", "1E+18", "1000000000000000000"),
    ("DECIMAL(19,18)", "9.223372036854775807", "9.223372036854775807"),
    ("DECIMAL(19,18)", "9.223372036854775808", None),
    ("DECIMAL(19,18)", "9.99", None),  # unscaled 9990000000000000000
    ("DECIMAL(19,18)", "-9.2233720368547758", "-9.2233720368547758"),  # unscaled -9223372036854775800
    ("DECIMAL(19,2)", "92233720368547758.07", "92233720368547758.07"),
    ("DECIMAL(19,2)", "92233720368547758.08", None),
    ("DECIMAL(19,2)", "9.223372036854775808E+16", None),
    ("NUMERIC(19,0)", "9223372036854775808", None),
    ("DECIMAL(20,0)", "9999999999999999999", "9999999999999999999"),  # precision 20: every 19-digit value
]


@pytest.mark.parametrize("dialect", DIALECTS, ids=DIALECT_IDS)
@pytest.mark.parametrize(("typ", "text", "cell"), _DECIMAL_19_CASES)
def test_decimal_19_keeps_only_values_with_an_int64_unscaled_value(
    dialect: CsvDialect, typ: str, text: str, cell: str | None
) -> None:
    """*Numeric types* (https://docs.aws.amazon.com/redshift/latest/dg/r_Numeric_types201.html): "The maximum
    positive value that you can insert into a DECIMAL(19,0) column is 9223372036854775807 (2^63-1) … the
    largest value that you can load into a DECIMAL(19,18) column is 9.223372036854775807". An older cached
    data-schema can still name DECIMAL(19,s): a value beyond it is type drift, kept in ``_etl_rejects``."""
    got = encode(typ, N(text), dialect)
    if cell is None:
        assert reason_of(got) == "type_drift"
    else:
        assert got == cell
    assert oracle_reason(typ, N(text)) == reason_of(got)


_UNSCALED = st.one_of(
    st.integers(min_value=-(10**19) + 1, max_value=10**19 - 1),
    st.integers(min_value=INT64_MAX - 2000, max_value=INT64_MAX + 2000),
    st.integers(min_value=-INT64_MAX - 2000, max_value=-INT64_MAX + 2000),
)


@settings(max_examples=300, deadline=None)
@given(unscaled=_UNSCALED, scale=st.integers(min_value=0, max_value=19), form=st.sampled_from(["f", "norm", "exp"]))
@example(unscaled=INT64_MAX + 1, scale=0, form="f")
@example(unscaled=INT64_MAX + 1, scale=18, form="f")
@example(unscaled=-INT64_MAX - 1, scale=3, form="exp")
def test_every_decimal_19_value_kept_has_an_int64_unscaled_value(unscaled: int, scale: int, form: str) -> None:
    """*Numeric types* (https://docs.aws.amazon.com/redshift/latest/dg/r_Numeric_types201.html): "Regardless
    of the placement of the decimal point, the largest string that Amazon Redshift can represent as a DECIMAL
    number is 9223372036854775807" (for precision 19). Every value a DECIMAL(19,s) encoder keeps has an
    unscaled value within ±(2^63-1); every such value within the column's digits is kept, in any notation."""
    value = Decimal(unscaled).scaleb(-scale)
    text = {"f": format(value, "f"), "norm": str(value.normalize()), "exp": f"{unscaled}E-{scale}"}[form]
    typ = f"DECIMAL(19,{scale})"
    got = encode(typ, N(text))
    fits_int64 = abs(unscaled) <= INT64_MAX
    if isinstance(got, Reject):
        assert got.reason == "type_drift"
        assert not fits_int64
    else:
        assert fits_int64
        assert Decimal(got).scaleb(scale) == unscaled
    assert oracle_reason(typ, N(text)) == reason_of(got)


# ------------------------------------------------------------------------------------------------------
# 2. The maximum scale is 37


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([N("1.5E-37")], "VARCHAR(16)"),  # 0.00…015: scale 38
        ([N("0." + "0" * 37 + "1")], "VARCHAR(64)"),  # 40 characters
        ([N("1.5"), N("1.5E-37")], "VARCHAR(16)"),
        ([N("-1E-38"), N("2")], "VARCHAR(16)"),
        ([N("0." + "0" * 36 + "1")], "DECIMAL(37,37)"),  # scale 37: still a DECIMAL
        ([N("1.5E-36")], "DECIMAL(37,37)"),
    ],
)
def test_scale_over_37_is_inferred_as_varchar_with_the_exact_text(values: list[AV], expected: str) -> None:
    """*Numeric types* (https://docs.aws.amazon.com/redshift/latest/dg/r_Numeric_types201.html), scale: "The
    maximum scale is 37." A number needing scale 38 fits no Redshift DECIMAL; DESIGN.md: "N that fits neither
    → VARCHAR with the number's exact text"."""
    typ = infer_type(*values)
    assert typ == expected
    for av in values:
        cell = encode(typ, av)
        assert reason_of(cell) is None
        if typ.startswith("VARCHAR"):
            assert cell == '"' + av["N"] + '"'


@pytest.mark.parametrize("dialect", DIALECTS, ids=DIALECT_IDS)
@pytest.mark.parametrize(
    ("typ", "text", "cell"),
    [
        ("DECIMAL(38,38)", "1.5E-37", None),
        ("DECIMAL(38,38)", "0." + "0" * 37 + "1", None),
        ("DECIMAL(38,38)", "-0." + "0" * 37 + "1", None),
        ("DECIMAL(38,38)", "0.5", "0.5"),
        ("DECIMAL(38,37)", "1.5E-36", "0." + "0" * 35 + "15"),
        ("DECIMAL(38,37)", "0." + "0" * 36 + "1", "0." + "0" * 36 + "1"),
    ],
)
def test_a_decimal_column_rejects_a_value_with_scale_over_37(
    dialect: CsvDialect, typ: str, text: str, cell: str | None
) -> None:
    """*Numeric types* (https://docs.aws.amazon.com/redshift/latest/dg/r_Numeric_types201.html), scale: "The
    maximum scale is 37." A value with more fractional digits is type drift, whatever the column says."""
    got = encode(typ, N(text), dialect)
    if cell is None:
        assert reason_of(got) == "type_drift"
    else:
        assert got == cell
    assert oracle_reason(typ, N(text)) == reason_of(got)


_INT_TEXT = st.integers(min_value=-(10**40), max_value=10**40).map(str)
_FRACTION_TEXT = st.builds(
    lambda sign, i, f: f"{sign}{i}.{f}",
    st.sampled_from(["", "-"]),
    st.integers(min_value=0, max_value=10**21),
    st.text(alphabet="0123456789", min_size=1, max_size=40),
)
_EXP_TEXT = st.builds(
    lambda digits, exp: f"{digits}E{exp:+d}",
    st.integers(min_value=1, max_value=10**20),
    st.integers(min_value=-45, max_value=30),
)
_NUMBERS = st.lists(st.one_of(_INT_TEXT, _FRACTION_TEXT, _EXP_TEXT), min_size=1, max_size=8)


@settings(max_examples=300, deadline=None)
@given(texts=_NUMBERS)
@example(texts=["9223372036854775808"])
@example(texts=["1.5E-37"])
@example(texts=["1.234567890123456789"])
def test_inference_never_emits_a_decimal_redshift_cannot_hold(texts: list[str]) -> None:
    """*Numeric types* (https://docs.aws.amazon.com/redshift/latest/dg/r_Numeric_types201.html): "The maximum
    precision is 38." / "The maximum scale is 37." / "The maximum positive value that you can insert into a
    DECIMAL(19,0) column is 9223372036854775807". Whatever numbers are seen, the type is BIGINT, VARCHAR, or a
    DECIMAL(p,s) with p ≤ 38, p ≠ 19, s ≤ 37; and every value seen fits it."""
    typ = infer_type(*(N(t) for t in texts))
    assert typ == "BIGINT" or typ.startswith(("VARCHAR(", "DECIMAL(")), typ
    assert_decimal_type_is_creatable(typ)
    for t in texts:
        got = encode(typ, N(t))
        assert reason_of(got) is None, (typ, t, got)
        if typ.startswith("VARCHAR"):
            assert got == '"' + t + '"'
        else:
            assert isinstance(got, str) and Decimal(got) == Decimal(t)


# ------------------------------------------------------------------------------------------------------
# 3. A string inside a SUPER value is at most 65535 bytes

_SUPER_CASES: list[tuple[str, AV, str | None]] = [
    ("string at the limit", S("x" * 65535), None),
    ("string over the limit", S("x" * 65536), "too_long"),
    ("two-byte string over in bytes", S("é" * 32768), "too_long"),
    ("three-byte string at the limit", S("€" * 21845), None),
    ("deep inside maps and lists", M(a=L(M(b=S("y" * 65536)))), "too_long"),
    ("set element", {"SS": ["a", "z" * 65536]}, "too_long"),
    ("map key", {"M": {"k" * 65536: N("1")}}, "too_long"),
    ("map key at the limit", {"M": {"k" * 65535: N("1")}}, None),
    ("binary whose base64 is 65532", B(b"\x00" * 49149), None),
    ("binary whose base64 is 65536", B(b"\x00" * 49150), "too_long"),
    ("binary set element", {"BS": [b"\x01", b"\x00" * 49150]}, "too_long"),
    ("binary in a list", L(B(b"\xff" * 49150)), "too_long"),
    ("NUL wins over length", M(s=S("x\x00"), t=S("y" * 65536)), "nul"),
    ("many strings each within", L(*(S("w" * 65535) for _ in range(3))), None),
]


@pytest.mark.parametrize("dialect", DIALECTS, ids=DIALECT_IDS)
@pytest.mark.parametrize(("av", "reason"), [(av, r) for _, av, r in _SUPER_CASES], ids=[i for i, _, _ in _SUPER_CASES])
def test_super_rejects_a_string_over_65535_bytes_anywhere(dialect: CsvDialect, av: AV, reason: str | None) -> None:
    """*Limitations* (SUPER; https://docs.aws.amazon.com/redshift/latest/dg/limitations-super.html), before
    2026-11: "An individual value within a SUPER object is limited to the maximum length of the corresponding
    Amazon Redshift type. For example, a single string value loaded to SUPER is limited to the maximum VARCHAR
    length of 65535 bytes." The current page says "Any string literal stored in a single SUPER object is
    limited to 16,000,000 bytes", but *enable_large_strings_opt_in*
    (https://docs.aws.amazon.com/redshift/latest/dg/r_enable_large_strings_opt_in.html) makes that opt-in:
    "When set to No: Individual strings in SUPER columns have a limit of 65,535 bytes." and "When this
    parameter is not set, Amazon Redshift preserves the existing behavior of your cluster." No page says
    whether attribute names count, so keys are held to the same limit (DynamoDB keeps names under 64 KB, so a
    real item never hits it). Binary is base64 text inside SUPER: its base64 length counts."""
    got = encode("SUPER", av, dialect)
    assert reason_of(got) == reason
    assert oracle_reason("SUPER", av) == reason
    if reason is None:
        assert isinstance(got, str) and got.startswith('"')


def test_a_long_string_inside_super_is_a_lossless_too_long_reject() -> None:
    """*Limitations* (SUPER; https://docs.aws.amazon.com/redshift/latest/dg/limitations-super.html): "a single
    string value loaded to SUPER is limited to the maximum VARCHAR length of 65535 bytes." End to end through
    the transform: the cell is NULL and the whole value is kept, in chunks that rebuild it."""
    schema = _schema(Column("doc", ("doc",), "SUPER"))
    value = M(title=S("t"), body=S("é" * 40000))
    result = Transformer(schema, POSTGRESQL, 0, "2024-01-01T00:00:00Z").transform([{"pk": S("k"), "doc": value}])
    assert result.rejects == Counter({"too_long": 1})
    assert result.lines["t"] == ['"k",,0,2024-01-01T00:00:00Z\n']
    rejects = _rejects(result.lines)
    assert {(r["column_path"], r["reason"]) for r in rejects} == {('["doc"]', "too_long")}
    assert json.loads("".join(r["chunk"] for r in rejects)) == value


@pytest.mark.parametrize("dialect", DIALECTS, ids=DIALECT_IDS)
@pytest.mark.parametrize(
    "av",
    [S("a\ud800b"), M(k=S("\udfff")), {"SS": ["ok", "\ud800"]}, {"M": {"\ud800": N("1")}}],
    ids=["string", "nested", "set", "key"],
)
def test_a_lone_surrogate_inside_super_is_an_invalid_utf8_reject(dialect: CsvDialect, av: AV) -> None:
    """*Multibyte character load errors* (https://docs.aws.amazon.com/redshift/latest/dg/multi-byte-character-load-errors.html):
    "If a line in your load data contains a character that is not valid for the column data type, COPY
    returns an error". A lone surrogate has no UTF-8 form: the SUPER encoder rejects it as ``invalid_utf8``
    (as the VARCHAR encoder does) instead of raising out of the transform."""
    assert reason_of(encode("SUPER", av, dialect)) == "invalid_utf8"
    assert oracle_reason("SUPER", av) == "invalid_utf8"


# ------------------------------------------------------------------------------------------------------
# 4. An empty binary value would load as NULL


@pytest.mark.parametrize("dialect", DIALECTS, ids=DIALECT_IDS)
@pytest.mark.parametrize("typ", ["VARBYTE(16)", "VARBYTE(1024000)", "BYTEA(16)"])
def test_an_empty_binary_value_is_rejected_not_loaded_as_null(dialect: CsvDialect, typ: str) -> None:
    """*Data conversion parameters* (https://docs.aws.amazon.com/redshift/latest/dg/copy-parameters-data-conversion.html),
    EMPTYASNULL: "Empty fields for other data types, such as INT, are always loaded with NULL." Zero bytes are
    written as an empty hex field, so Redshift would load NULL: the value is rejected as ``empty_binary``."""
    assert reason_of(encode(typ, B(b""), dialect)) == "empty_binary"
    assert reason_of(encode(typ, {"B": ""}, dialect)) == "empty_binary"  # base64 wire text of no bytes
    assert reason_of(encode(typ, B(b"\x00"), dialect)) is None
    assert oracle_reason(typ, B(b"")) == "empty_binary"
    assert oracle_reason(typ, B(b"\x00")) is None


def test_an_empty_binary_is_kept_losslessly_and_fine_inside_super() -> None:
    """*Data conversion parameters* (https://docs.aws.amazon.com/redshift/latest/dg/copy-parameters-data-conversion.html),
    EMPTYASNULL: "Empty fields for other data types, such as INT, are always loaded with NULL." The reject
    keeps ``{"B": ""}``; an empty set element is rejected at its position; inside SUPER it is the JSON
    string ``""``, which is not an empty field."""
    schema = _schema(Column("b", ("b",), "VARBYTE(16)"), Column("doc", ("doc",), "SUPER"))
    child = Table("t__bs", "t", "t", ("bs",), ("pk",), (_PK, Column("_idx", None, "INTEGER", False), _BS))
    schema = DataSchema("T", "v", "now", 1, "relational", (), ("pk",), (*schema.tables, child))
    item = {"pk": S("k"), "b": B(b""), "doc": M(e=B(b"")), "bs": {"BS": [b"", b"\x01"]}}
    result = Transformer(schema, POSTGRESQL, 0, "2024-01-01T00:00:00Z").transform([item])
    assert result.rejects == Counter({"empty_binary": 2})
    assert result.lines["t"] == ['"k",,"{""e"":""""}",0,2024-01-01T00:00:00Z\n']
    assert result.lines["t__bs"] == ['"k",0,,0,2024-01-01T00:00:00Z\n', '"k",1,\\x01,0,2024-01-01T00:00:00Z\n']
    got = {(r["table_name"], r["column_path"], r["reason"], r["chunk"]) for r in _rejects(result.lines)}
    assert got == {
        ("t", '["b"]', "empty_binary", '{"B":""}'),
        ("t__bs", '["bs",0]', "empty_binary", '{"B":""}'),
    }


_EVERY_TYPE = [
    "SMALLINT", "INTEGER", "BIGINT", "DECIMAL(5,2)", "DECIMAL(38,0)", "VARCHAR(16)", "BOOLEAN", "TIMESTAMPTZ",
    "DATE", "VARBYTE(16)", "SUPER",
]  # fmt: skip
_SAMPLES: list[AV] = [
    N("0"), N("-0"), N("1.5"), N("1E+2"), S(""), S(" "), S("2024-01-01"), S("2024-01-01T00:00:00Z"),
    {"BOOL": False}, B(b""), B(b"\x00"), M(), L(), {"SS": [""]},
]  # fmt: skip


@pytest.mark.parametrize("dialect", DIALECTS, ids=DIALECT_IDS)
def test_no_encoder_writes_an_empty_field(dialect: CsvDialect) -> None:
    """*Data conversion parameters* (https://docs.aws.amazon.com/redshift/latest/dg/copy-parameters-data-conversion.html),
    EMPTYASNULL: "Empty fields for other data types, such as INT, are always loaded with NULL." No cell the
    encoders keep is an empty field (a NULL is the dialect's NULL marker, written by the transform)."""
    for typ in _EVERY_TYPE:
        for av in _SAMPLES:
            got = encode(typ, av, dialect)
            assert got != "", (typ, av)


# ------------------------------------------------------------------------------------------------------
# 5. Other types: what the lattice can emit, against the bad-input catalogue


@pytest.mark.parametrize(
    ("text", "timestamp"),
    [
        ("2024-01-01T00:00:00+14:59", True),
        ("2024-01-01T00:00:00-14:59", True),
        ("2024-01-01T00:00:00+14:00", True),
        ("2024-01-01T00:00:00+15:00", False),
        ("2024-01-01T00:00:00-15:59", False),
        ("2024-01-01T00:00:00+16:00", False),
    ],
)
def test_timestamp_offsets_stay_within_14_59(text: str, timestamp: bool) -> None:
    """*Datetime types* (https://docs.aws.amazon.com/redshift/latest/dg/r_Datetime_types.html), the storage
    table: "TIMETZ 8 bytes 00:00:00+1459 to 00:00:00+1459 1 microsecond" is the only offset range Redshift
    documents; PostgreSQL accepts up to ±15:59, but an offset Redshift may refuse would fail the COPY. So an
    offset beyond ±14:59 is not a date-time: the column is VARCHAR, and a TIMESTAMPTZ column rejects it."""
    assert is_timestamp(text) is timestamp
    for dialect in DIALECTS:
        got = encode("TIMESTAMPTZ", S(text), dialect)
        assert reason_of(got) == (None if timestamp else "type_drift")
    assert oracle_reason("TIMESTAMPTZ", S(text)) == (None if timestamp else "type_drift")
    assert infer_type(S(text)) == ("TIMESTAMPTZ" if timestamp else "VARCHAR(32)")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("0000-01-01", None),  # no year 0 in the calendar (PostgreSQL refuses it too)
        ("0001-01-01", "DATE"),
        ("9999-12-31", "DATE"),
        ("0000-01-01T00:00:00Z", None),
        ("0001-01-01T00:00:00Z", "TIMESTAMPTZ"),
        ("9999-12-31T23:59:59.999999Z", "TIMESTAMPTZ"),
        ("2024-01-01T00:00:00.1234567Z", None),  # 7 fractional digits
        ("10000-01-01", None),
    ],
)
def test_guard_dates_and_timestamps_are_within_redshift_ranges(text: str, kind: str | None) -> None:
    """*Guard.* *Datetime types* (https://docs.aws.amazon.com/redshift/latest/dg/r_Datetime_types.html): "DATE
    4 bytes 4713 BC to 294276 AD 1 day" and "TIMESTAMPTZ 8 bytes 4713 BC to 294276 AD 1 microsecond";
    "TIMESTAMPTZ columns store values with up to a maximum of six digits of precision for fractional
    seconds." Only four-digit years 0001-9999 and at most six fractional digits are dates or date-times."""
    assert is_date(text) is (kind == "DATE")
    assert is_timestamp(text) is (kind == "TIMESTAMPTZ")
    expected = kind or f"VARCHAR({16 if len(text) <= 16 else 32})"
    assert infer_type(S(text)) == expected


@pytest.mark.parametrize("dialect", DIALECTS, ids=DIALECT_IDS)
@pytest.mark.parametrize(
    ("typ", "lo", "hi"),
    [("SMALLINT", -32768, 32767), ("INTEGER", -2147483648, 2147483647), ("BIGINT", -(2**63), 2**63 - 1)],
)
def test_guard_integer_ranges(dialect: CsvDialect, typ: str, lo: int, hi: int) -> None:
    """*Guard.* *Numeric types* (https://docs.aws.amazon.com/redshift/latest/dg/r_Numeric_types201.html):
    "SMALLINT or INT2 2 bytes -32768 to +32767", "INTEGER, INT, or INT4 4 bytes -2147483648 to +2147483647",
    "BIGINT or INT8 8 bytes -9223372036854775808 to 9223372036854775807"; "You cannot store values outside of
    the allowed range for each type." """
    for value in (lo, hi):
        assert encode(typ, N(str(value)), dialect) == str(value)
        assert oracle_reason(typ, N(str(value))) is None
    for value in (lo - 1, hi + 1):
        assert reason_of(encode(typ, N(str(value)), dialect)) == "type_drift"
        assert oracle_reason(typ, N(str(value))) == "type_drift"
    assert infer_type(N(str(-(2**63))), N(str(2**63 - 1))) == "BIGINT"


def test_guard_varchar_and_varbyte_lengths() -> None:
    """*Guard.* *Character types* (https://docs.aws.amazon.com/redshift/latest/dg/r_Character_types.html): "CHAR
    and VARCHAR data types are defined in terms of bytes, not characters." and VARCHAR's range "65535 bytes
    (64K -1)". *VARBYTE type* (https://docs.aws.amazon.com/redshift/latest/dg/r_VARBYTE_type.html): "The
    maximum number of bytes (n) can range from 1 – 16,777,216." """
    assert MAX_VARCHAR == 65535 and 1 <= MAX_VARBYTE <= 16_777_216
    assert infer_type(S("a" * 100_000)) == "VARCHAR(65535)"
    assert infer_type(B(b"\x01" * 2_000_000)) == f"VARBYTE({MAX_VARBYTE})"
    assert infer_type(B(b"\x01")) == "VARBYTE(16)"
    assert reason_of(encode("VARCHAR(65535)", S("é" * 32767 + "a"))) is None  # 65535 bytes
    assert reason_of(encode("VARCHAR(65535)", S("é" * 32768))) == "too_long"  # 65536 bytes
    assert reason_of(encode("VARCHAR(70000)", S("a" * 65536))) == "too_long"  # capped at 65535 whatever n says


# ------------------------------------------------------------------------------------------------------
# helpers for transform-level tests

_PK = Column("pk", ("pk",), "VARCHAR(16)", False)
_BS = Column("value", ("bs", None), "VARBYTE(16)")


def _schema(*columns: Column) -> DataSchema:
    return DataSchema(
        "T", "v", "now", 1, "relational", (), ("pk",), (Table("t", None, "t", (), ("pk",), (_PK, *columns)),)
    )


def _rejects(lines: dict[str, list[str]]) -> list[dict[str, str]]:
    names = [c for c, _ in REJECTS_COLUMNS] + ["_segment", "_extracted_at"]
    text = "".join(lines.get(REJECTS_TABLE, []))
    return [dict(zip(names, r, strict=True)) for r in csv.reader(io.StringIO(text, newline=""))]
