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


def redshift_dialect() -> CsvDialect:
    from arm_etl.warehouse import redshift_sql

    binary = hex_binary if redshift_sql.REDSHIFT_BINARY_ENCODING == "hex" else _b64
    return CsvDialect("redshift", redshift_sql.REDSHIFT_CSV_NULL, binary, "SUPER")


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def dialect_for(name: str) -> CsvDialect:
    """The CSV dialect of a warehouse dialect by name."""
    makers: dict[str, Callable[[], CsvDialect]] = {"postgresql": lambda: POSTGRESQL, "redshift": redshift_dialect}
    if name not in makers:
        raise ValueError(f"unknown warehouse dialect {name!r} (expected postgresql or redshift)")
    return makers[name]()
