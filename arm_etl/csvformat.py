"""CSV dialects for the warehouse load: how NULL, '' and binary are written so they load exactly.

PostgreSQL CSV: an unquoted empty field is NULL, a quoted ``""`` is ``''``; every string is written
quoted, so a string equal to any marker still loads as itself. Redshift: see ``redshift_sql``.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from dataclasses import dataclass


def quote(s: str) -> str:
    """A CSV string field, always quoted: keeps '' apart from NULL and newlines inside the field."""
    return '"' + s.replace('"', '""') + '"' if '"' in s else '"' + s + '"'


def pg_binary(data: bytes) -> str:
    return "\\x" + binascii.hexlify(data).decode("ascii")


def hex_binary(data: bytes) -> str:
    return binascii.hexlify(data).decode("ascii")


@dataclass(frozen=True)
class CsvDialect:
    name: str
    null: str  # written unquoted for a SQL NULL
    binary: Callable[[bytes], str]
    json_type: str  # what a SUPER column is on this warehouse


POSTGRESQL = CsvDialect("postgresql", "", pg_binary, "JSONB")

REDSHIFT_CSV_NULL = "\x00"
"""What the CSV writer emits, unquoted, for SQL NULL on Redshift (one NUL character; COPY ``NULL AS '\\000'``)."""

REDSHIFT_BINARY_ENCODING = "hex"
"""How VARBYTE values are written in the CSV for Redshift (lowercase hex digits, no prefix)."""

REDSHIFT = CsvDialect("redshift", REDSHIFT_CSV_NULL, hex_binary, "SUPER")


def redshift_dialect() -> CsvDialect:
    return REDSHIFT


def dialect_for(name: str) -> CsvDialect:
    """The CSV dialect of a warehouse dialect by name."""
    makers: dict[str, Callable[[], CsvDialect]] = {"postgresql": lambda: POSTGRESQL, "redshift": redshift_dialect}
    if name not in makers:
        raise ValueError(f"unknown warehouse dialect {name!r} (expected postgresql or redshift)")
    return makers[name]()
