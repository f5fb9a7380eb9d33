"""The type lattice: per-path value statistics that merge associatively and widen, never narrow.

A :class:`ScalarStats` summarises every scalar value seen at one path. ``merge`` is associative and
commutative (sums, maxima, minima), so per-segment partial results can be combined in any grouping and
order. ``column_type`` turns the summary into the Redshift type of DESIGN.md's type table.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_DECIMAL_PRECISION = 38
# Redshift's *Numeric types* page: "The maximum scale is 37."
MAX_DECIMAL_SCALE = 37
# ... and a DECIMAL(19,s) is an 8-byte integer: it cannot hold every 19-digit value (see ``decimal_type``).
INT64_DECIMAL_PRECISION = 19
MAX_VARCHAR = 65535
MAX_VARBYTE = 1_024_000
MIN_VARCHAR = 16

# Offsets up to ±14:59: the only offset range Redshift documents (*Datetime types*, TIMETZ "00:00:00+1459");
# PostgreSQL accepts ±15:59 and RFC 3339 ±23:59, but an offset Redshift may refuse would fail the COPY.
_TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-](?:0\d|1[0-4]):[0-5]\d)$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def is_timestamp(s: str) -> bool:
    """Strict RFC 3339 date-time with ``T``, seconds and an offset; at most microseconds so no rounding."""
    if len(s) < 20 or not _TS_RE.match(s):
        return False
    try:
        datetime.fromisoformat(s)
    except ValueError:
        return False
    return True


def is_date(s: str) -> bool:
    """A full date ``YYYY-MM-DD`` that exists in the calendar."""
    if len(s) != 10 or not _DATE_RE.match(s):
        return False
    try:
        date.fromisoformat(s)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class NumberShape:
    """What a DynamoDB number needs: integer digits, scale, and (if integral) its value."""

    int_digits: int
    scale: int
    integer: int | None  # the value when it has no fractional part


def number_shape(text: str) -> NumberShape:
    """Measure a DynamoDB ``N`` text exactly (no float), e.g. ``12.50`` → 2 integer digits, scale 2."""
    try:
        d = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"not a DynamoDB number: {text!r}") from exc
    if not d.is_finite():
        raise ValueError(f"not a DynamoDB number: {text!r}")
    _, digits, exp = d.as_tuple()
    assert isinstance(exp, int)
    ndigits = len(digits)
    if d.is_zero():
        return NumberShape(1, max(0, -exp), 0 if exp >= 0 else None)
    if exp >= 0:
        return NumberShape(ndigits + exp, 0, int(d))
    scale = -exp
    return NumberShape(max(ndigits - scale, 0), scale, None)


def decimal_type(int_digits: int, scale: int) -> str | None:
    """The Redshift DECIMAL holding every number of ``int_digits`` integer digits and ``scale`` fractional
    ones, or None when none does (precision over 38 or scale over 37: the caller falls back to VARCHAR).

    Precision 19 is never used: Redshift stores DECIMAL(19,s) as an 8-byte integer, so its unscaled value
    is limited to ±(2^63-1) ("The maximum positive value that you can insert into a DECIMAL(19,0) column is
    9223372036854775807"), while precision 20..38 (16 bytes) holds every value of its digit count.
    """
    precision = max(int_digits + scale, 1)
    if precision > MAX_DECIMAL_PRECISION or scale > MAX_DECIMAL_SCALE:
        return None
    if precision == INT64_DECIMAL_PRECISION:
        precision += 1
    return f"DECIMAL({precision},{scale})"


def round_up(n: int, cap: int) -> int:
    """Measured length → declared length: the next power of two (at least 16), at most ``cap``.

    Headroom between weekly determinations without the old "everything is 256" guess.
    """
    size = MIN_VARCHAR
    while size < n:
        size *= 2
    return min(size, cap)


def b64_len(nbytes: int) -> int:
    return 4 * ((nbytes + 2) // 3)


@dataclass
class ScalarStats:
    """Counts and extremes of the scalar values at one path. All fields merge by sum, max or min."""

    nulls: int = 0
    # N
    n_count: int = 0
    n_nonint: int = 0  # numbers with a fractional part, or integral beyond int64
    n_int_digits: int = 0
    n_scale: int = 0
    n_text_bytes: int = 0
    # S
    s_count: int = 0
    s_bytes: int = 0
    s_timestamps: int = 0
    s_dates: int = 0
    # BOOL
    bool_count: int = 0
    # B
    b_count: int = 0
    b_bytes: int = 0

    _MAX_FIELDS = frozenset({"n_int_digits", "n_scale", "n_text_bytes", "s_bytes", "b_bytes"})

    def add_number(self, text: str) -> None:
        shape = number_shape(text)
        self.n_count += 1
        if shape.integer is None or not (INT64_MIN <= shape.integer <= INT64_MAX):
            self.n_nonint += 1
        self.n_int_digits = max(self.n_int_digits, shape.int_digits)
        self.n_scale = max(self.n_scale, shape.scale)
        self.n_text_bytes = max(self.n_text_bytes, len(text))

    def add_string(self, s: str) -> None:
        self.s_count += 1
        self.s_bytes = max(self.s_bytes, len(s.encode("utf-8", "surrogatepass")))
        if s[:1].isdigit():
            if is_timestamp(s):
                self.s_timestamps += 1
            elif is_date(s):
                self.s_dates += 1

    def add_bool(self) -> None:
        self.bool_count += 1

    def add_binary(self, nbytes: int) -> None:
        self.b_count += 1
        self.b_bytes = max(self.b_bytes, nbytes)

    def add(self, tag: str, value: Any) -> None:
        """Add one DynamoDB scalar in wire form (``B`` as base64 text or bytes)."""
        if tag == "S":
            self.add_string(value)
        elif tag == "N":
            self.add_number(value)
        elif tag == "BOOL":
            self.add_bool()
        elif tag == "NULL":
            self.nulls += 1
        elif tag == "B":
            self.add_binary(binary_len(value))
        else:
            raise ValueError(f"not a scalar DynamoDB type: {tag}")

    def merge(self, other: ScalarStats) -> ScalarStats:
        out = ScalarStats()
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            setattr(out, f.name, max(a, b) if f.name in self._MAX_FIELDS else a + b)
        return out

    @property
    def values(self) -> int:
        return self.n_count + self.s_count + self.bool_count + self.b_count

    def to_json(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}

    @classmethod
    def from_json(cls, data: dict[str, int]) -> ScalarStats:
        return cls(**data)

    def column_type(self) -> str:
        """The Redshift type holding every value seen (DESIGN.md type table)."""
        kinds = sum(1 for c in (self.n_count, self.s_count, self.bool_count, self.b_count) if c)
        if kinds == 0:
            return f"VARCHAR({MIN_VARCHAR})"
        if kinds > 1:
            text = max(
                self.n_text_bytes if self.n_count else 0,
                self.s_bytes if self.s_count else 0,
                5 if self.bool_count else 0,
                b64_len(self.b_bytes) if self.b_count else 0,
            )
            return f"VARCHAR({round_up(text, MAX_VARCHAR)})"
        if self.n_count:
            if not self.n_nonint:
                return "BIGINT"
            decimal = decimal_type(self.n_int_digits, self.n_scale)
            if decimal is not None:
                return decimal
            return f"VARCHAR({round_up(self.n_text_bytes, MAX_VARCHAR)})"
        if self.s_count:
            if self.s_timestamps == self.s_count:
                return "TIMESTAMPTZ"
            if self.s_dates == self.s_count:
                return "DATE"
            return f"VARCHAR({round_up(self.s_bytes, MAX_VARCHAR)})"
        if self.bool_count:
            return "BOOLEAN"
        return f"VARBYTE({round_up(self.b_bytes, MAX_VARBYTE)})"


def binary_len(value: Any) -> int:
    """Byte length of a ``B`` value given as raw bytes or as the wire's base64 text."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return len(value)
    return len(base64.b64decode(value))
