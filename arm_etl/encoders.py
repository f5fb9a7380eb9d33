"""Cell encoders: one DynamoDB value → the CSV text of one warehouse cell, or :class:`Reject`.

They follow Amazon Redshift's documented limits on both dialects (PostgreSQL is its stand-in, so the same
rules keep the stand-in faithful): a DECIMAL(19,s) holds only unscaled values within ±(2^63-1) and no
DECIMAL a scale over 37 (*Numeric types*); a string inside SUPER is at most 65535 bytes (*Limitations*,
unless a database parameter raises it); an empty binary would be an empty field, which COPY loads as NULL
(*Data conversion parameters*, EMPTYASNULL), so it is rejected as ``empty_binary``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson

from arm_etl.csvformat import CsvDialect, quote
from arm_etl.dataschema import DataSchemaError
from arm_etl.dynamodb_json import SET_TAGS, as_b64, as_bytes, sort_set
from arm_etl.lattice import (
    INT64_DECIMAL_PRECISION,
    INT64_MAX,
    INT64_MIN,
    MAX_DECIMAL_SCALE,
    MAX_VARCHAR,
    b64_len,
    is_date,
    is_timestamp,
    number_shape,
)

_PLAIN_INT = re.compile(r"^-?[0-9]{1,18}$")
_PLAIN_DEC = re.compile(r"^-?([0-9]+)(?:\.([0-9]+))?$")
_TYPE = re.compile(r"^([A-Z]+)(?:\((\d+)(?:,(\d+))?\))?$")


class Reject(Exception):
    """A value that cannot go into its column; ``reason`` is recorded in ``_etl_rejects``."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


#: ``(tag, value) → CSV cell text``; raises :class:`Reject`.
Encoder = Callable[[str, Any], str]


def _canonical_text(tag: str, v: Any) -> str:
    """A scalar's text in a VARCHAR column (where the data-schema saw conflicting scalars at one path)."""
    if tag == "S" or tag == "N":
        return str(v)
    if tag == "BOOL":
        return "true" if v else "false"
    if tag == "B":
        return as_b64(v)
    raise Reject("type_drift")


def _parse_type(type_text: str) -> tuple[str, str | None, str | None]:
    m = _TYPE.match(type_text)
    if not m:
        raise DataSchemaError(f"unsupported column type {type_text!r}")
    return m.group(1), m.group(2), m.group(3)


def _varchar_limit(a: str | None) -> int:
    return min(int(a or MAX_VARCHAR), MAX_VARCHAR)


def _decimal_rooms(a: str | None, b: str | None) -> tuple[int, int, bool]:
    """Integer digits and fractional digits a DECIMAL(p,s) takes, and whether its unscaled value is int64-bound."""
    precision, scale = int(a or 38), int(b or 0)
    # a DECIMAL(38,38) of an older data-schema still gets 37 fractional digits
    return precision - scale, min(scale, MAX_DECIMAL_SCALE), precision == INT64_DECIMAL_PRECISION


#: The kinds of cell the compiled transform (``arm_etl._transform_c``) encodes itself; the numbers are its own.
KIND_PYTHON, KIND_VARCHAR, KIND_BIGINT, KIND_DECIMAL, KIND_BOOLEAN, KIND_TIMESTAMPTZ, KIND_DATE = range(7)


def compiled_kind(type_text: str) -> tuple[int, int, int]:
    """How the compiled transform encodes the common values of a column type: ``(kind, a, b)``.

    VARCHAR strings, numbers and booleans (``a`` = the byte limit), plain BIGINT numbers, plain DECIMAL
    numbers without the int64 bound (``a``, ``b`` = integer and fractional digits), BOOLEAN, and the
    TIMESTAMPTZ and DATE strings it can tell are valid; everything else — other tags, other types, numbers
    in exponent form, a value the compiled check does not accept outright — goes to the Python encoder of
    :func:`encoder_for`, which the compiled code mirrors exactly (``tests/test_transform_compiled.py`` holds
    them to byte-identical output)."""
    base, a, b = _parse_type(type_text)
    if base == "VARCHAR":
        return KIND_VARCHAR, _varchar_limit(a), 0
    if base == "BIGINT":
        return KIND_BIGINT, 0, 0
    if base in ("DECIMAL", "NUMERIC"):
        int_room, frac_room, int64_bound = _decimal_rooms(a, b)
        return (KIND_PYTHON, 0, 0) if int64_bound else (KIND_DECIMAL, int_room, frac_room)
    kinds = {"BOOLEAN": KIND_BOOLEAN, "TIMESTAMPTZ": KIND_TIMESTAMPTZ, "DATE": KIND_DATE}
    return kinds.get(base, KIND_PYTHON), 0, 0


def encoder_for(type_text: str, dialect: CsvDialect) -> Encoder:
    """The cell encoder of one column type: returns the CSV cell text or raises :class:`Reject`."""
    base, a, b = _parse_type(type_text)

    if base == "VARCHAR":
        limit = _varchar_limit(a)

        def enc_varchar(tag: str, v: Any) -> str:
            # One call per string cell: the checks are inline, ASCII (the common case) skips encoding.
            s = v if tag == "S" else _canonical_text(tag, v)
            if "\x00" in s:
                raise Reject("nul")
            if len(s) > limit:
                raise Reject("too_long")
            if not s.isascii():
                try:
                    nbytes = len(s.encode("utf-8"))
                except UnicodeEncodeError:
                    raise Reject("invalid_utf8") from None
                if nbytes > limit:
                    raise Reject("too_long")
            if '"' in s:
                return '"' + s.replace('"', '""') + '"'
            return '"' + s + '"'

        return enc_varchar

    if base in ("BIGINT", "INTEGER", "SMALLINT"):
        lo, hi = {
            "BIGINT": (INT64_MIN, INT64_MAX),
            "INTEGER": (-(2**31), 2**31 - 1),
            "SMALLINT": (-(2**15), 2**15 - 1),
        }[base]
        fast = base == "BIGINT"

        def enc_int(tag: str, v: Any) -> str:
            if tag != "N":
                raise Reject("type_drift")
            if fast and _PLAIN_INT.match(v):
                return str(v)
            shape = number_shape(v)
            if shape.integer is None or not lo <= shape.integer <= hi:
                raise Reject("type_drift")
            return str(shape.integer)

        return enc_int

    if base in ("DECIMAL", "NUMERIC"):
        scale = int(b or 0)
        int_room, frac_room, int64_bound = _decimal_rooms(a, b)

        def enc_decimal(tag: str, v: Any) -> str:
            if tag != "N":
                raise Reject("type_drift")
            pm = _PLAIN_DEC.match(v)
            if pm:
                digits = pm.group(1).lstrip("0")
                frac = pm.group(2) or ""
                if len(digits) > int_room or len(frac) > frac_room:
                    raise Reject("type_drift")
                if int64_bound and not _unscaled_fits_int64(v, scale):
                    raise Reject("type_drift")
                return str(v)
            shape = number_shape(v)
            if shape.int_digits > int_room or shape.scale > frac_room:
                raise Reject("type_drift")
            if int64_bound and not _unscaled_fits_int64(v, scale):
                raise Reject("type_drift")
            return format(Decimal(v), "f")

        return enc_decimal

    if base == "BOOLEAN":

        def enc_bool(tag: str, v: Any) -> str:
            if tag != "BOOL":
                raise Reject("type_drift")
            return "true" if v else "false"

        return enc_bool

    if base == "TIMESTAMPTZ":

        def enc_ts(tag: str, v: Any) -> str:
            if tag != "S" or not is_timestamp(v):
                raise Reject("type_drift")
            return str(v)

        return enc_ts

    if base == "DATE":

        def enc_date(tag: str, v: Any) -> str:
            if tag != "S" or not is_date(v):
                raise Reject("type_drift")
            return str(v)

        return enc_date

    if base in ("VARBYTE", "BYTEA"):
        blimit = int(a) if a else 1_024_000
        binary = dialect.binary

        def enc_bytes(tag: str, v: Any) -> str:
            if tag != "B":
                raise Reject("type_drift")
            data = as_bytes(v)
            if not data:  # written as an empty field, which COPY loads as NULL
                raise Reject("empty_binary")
            if len(data) > blimit:
                raise Reject("too_long")
            return binary(data)

        return enc_bytes

    if base in ("SUPER", "JSONB"):

        def enc_super(tag: str, v: Any) -> str:
            av = {tag: v}
            if _has_nul(av):
                raise Reject("nul")
            try:
                text = to_json_text(av)
            except orjson.JSONEncodeError:  # a lone surrogate: no UTF-8 form
                raise Reject("invalid_utf8") from None
            if _has_long_string(av):
                raise Reject("too_long")
            return quote(text)

        return enc_super

    raise DataSchemaError(f"unsupported column type {type_text!r}")


def to_json_text(av: dict[str, Any]) -> str:
    """A DynamoDB value as plain JSON (numbers keep their exact text; sets sorted; binary as base64)."""
    ((tag, v),) = av.items()
    if tag == "S":
        return orjson.dumps(v).decode()
    if tag == "N":
        return str(v)
    if tag == "BOOL":
        return "true" if v else "false"
    if tag == "NULL":
        return "null"
    if tag == "B":
        return orjson.dumps(as_b64(v)).decode()
    if tag == "M":
        return "{" + ",".join(orjson.dumps(k).decode() + ":" + to_json_text(x) for k, x in v.items()) + "}"
    if tag == "L":
        return "[" + ",".join(to_json_text(x) for x in v) + "]"
    if tag in SET_TAGS:
        scalar = SET_TAGS[tag]
        return "[" + ",".join(to_json_text({scalar: x}) for x in sort_set(tag, v)) + "]"
    raise Reject("type_drift")


def _has_nul(av: dict[str, Any]) -> bool:
    """A NUL character anywhere in a value's strings or map keys (JSONB and Redshift text cannot hold it)."""
    for tag, v in av.items():
        if tag == "S":
            return "\x00" in v
        if tag == "SS":
            return any("\x00" in s for s in v)
        if tag == "M":
            return any("\x00" in k or _has_nul(x) for k, x in v.items())
        if tag == "L":
            return any(_has_nul(x) for x in v)
    return False


def _unscaled_fits_int64(text: str, scale: int) -> bool:
    """Whether ``text`` × 10^scale is within ±(2^63-1), all a DECIMAL(19,scale) holds: Redshift stores it as
    an 8-byte integer and documents -9223372036854775807 as its most negative value. ``text`` has at most
    ``scale`` fractional digits (checked before), so the product is an integer."""
    _, digits, exp = Decimal(text).as_tuple()
    assert isinstance(exp, int)
    unscaled = int("".join(map(str, digits))) * 10 ** (exp + scale)
    return unscaled <= INT64_MAX


def _long_text(s: str) -> bool:
    """More than 65535 UTF-8 bytes; a character is at most 4 bytes, so most strings skip the encoding."""
    n = len(s)
    return n > MAX_VARCHAR // 4 and (n > MAX_VARCHAR or len(s.encode("utf-8", "surrogatepass")) > MAX_VARCHAR)


def _long_b64(v: Any) -> bool:
    """A binary whose base64 text (its form inside SUPER) is over 65535 bytes."""
    if isinstance(v, (bytes, bytearray, memoryview)):
        return b64_len(len(v)) > MAX_VARCHAR
    return len(v) > MAX_VARCHAR


def _has_long_string(av: dict[str, Any]) -> bool:
    """A string over 65535 UTF-8 bytes anywhere in a SUPER value: a string, a set element, a map key, or a
    binary as base64. Redshift limits "a single string value loaded to SUPER" to VARCHAR's 65535 bytes."""
    for tag, v in av.items():
        if tag == "S":
            return _long_text(v)
        if tag == "SS":
            return any(_long_text(s) for s in v)
        if tag == "B":
            return _long_b64(v)
        if tag == "BS":
            return any(_long_b64(x) for x in v)
        if tag == "M":
            return any(_long_text(k) or _has_long_string(x) for k, x in v.items())
        if tag == "L":
            return any(_has_long_string(x) for x in v)
    return False
