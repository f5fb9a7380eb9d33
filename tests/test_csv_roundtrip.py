"""CSV round trip through a real (embedded) PostgreSQL: what the transform writes loads back exactly.

Cells are written as the transform writes them (``quote`` for strings, unquoted empty for NULL,
``pg_binary`` for BYTEA), gzip-compressed into parts by ``encode_parts``, and loaded part by part
with ``COPY … FROM STDIN WITH (FORMAT csv)``.
"""

from __future__ import annotations

import gzip
import io
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.errors
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from arm_etl.csvformat import POSTGRESQL, pg_binary, quote
from arm_etl.dataschema import Column, DataSchema, Table
from arm_etl.encoders import Reject, encoder_for
from arm_etl.lattice import ScalarStats
from arm_etl.transform import Transformer
from arm_etl.upload import encode_parts

pgserver = pytest.importorskip("pgserver")


@pytest.fixture(scope="module")
def cur() -> Iterator[Any]:
    """A cursor on a fresh embedded PostgreSQL (autocommit), for this module only.

    Its data directory is private (not under pytest's shared basetemp, which concurrent sessions prune).
    """
    base = Path(tempfile.mkdtemp(prefix="arm-etl-csvrt-"))
    server = pgserver.get_server(base / "pg", cleanup_mode="stop")
    conn = psycopg2.connect(server.get_uri())
    conn.autocommit = True
    conn.set_client_encoding("UTF8")
    with conn.cursor() as c:
        c.execute("CREATE TABLE t (id serial PRIMARY KEY, v text)")
        c.execute("CREATE TABLE b (id serial PRIMARY KEY, v bytea)")
        c.execute("CREATE TABLE r (k integer, v text)")
        c.execute("CREATE TABLE ts (v timestamptz)")
        yield c
    conn.close()
    server.cleanup()
    shutil.rmtree(base, ignore_errors=True)


def _copy(cur: Any, target: str, part: bytes) -> None:
    cur.copy_expert(f"COPY {target} FROM STDIN WITH (FORMAT csv)", io.BytesIO(gzip.decompress(part)))


def _load(cur: Any, table: str, target: str, lines: list[str], part_size: int = 1 << 20) -> int:
    cur.execute(f"TRUNCATE {table} RESTART IDENTITY")
    parts = encode_parts(lines, part_size)
    for data, _rows, _raw in parts:
        _copy(cur, target, data)
    return len(parts)


def text_cell(v: str | None) -> str:
    """A VARCHAR cell exactly as the transform writes it."""
    return POSTGRESQL.null if v is None else quote(v)


_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
_SPECIAL = st.sampled_from(
    [
        "",
        "\\N",
        "NULL",
        "null",
        '"',
        '""',
        "a,b",
        "x\r\ny",
        "\r",
        "\n",
        "\\",
        "trailing\\",
        "\\.",
        "\\.\n",
        "\n\\.\n",
        "\\x00",
        " ",
        "😀",
        "a\tb",
    ]
)
_VALUES = st.lists(st.one_of(st.none(), _TEXT, _SPECIAL), max_size=12)


@settings(max_examples=200, deadline=None)
@given(values=_VALUES)
@example(values=["", "\\N", "NULL", '"', '""', "a,b", "x\r\ny", "\\", "trailing\\", None])
@example(values=[None])
@example(values=[""])
@example(values=["\\."])
def test_text_round_trip(cur: Any, values: list[str | None]) -> None:
    encode = encoder_for("VARCHAR(65535)", POSTGRESQL)
    lines = []
    for v in values:
        cell = text_cell(v)
        if v is not None:
            assert cell == encode("S", v)
        lines.append(cell + "\n")
    _load(cur, "t", "t (v)", lines)
    cur.execute("SELECT v FROM t ORDER BY id")
    assert [row[0] for row in cur.fetchall()] == values


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.binary(max_size=64)), max_size=10))
@example(values=[b"", None, b"\x00", b"\\x", b'"', b"\r\n", bytes(range(256))])
def test_bytea_round_trip(cur: Any, values: list[bytes | None]) -> None:
    """The BYTEA cell form round-trips any bytes. The encoder writes it for every non-empty value; zero bytes
    it rejects (Redshift's COPY loads the empty hex field as NULL, and both dialects follow one rule)."""
    encode = encoder_for("VARBYTE(1024000)", POSTGRESQL)
    lines = []
    for v in values:
        cell = POSTGRESQL.null if v is None else pg_binary(v)
        if v:
            assert cell == encode("B", v)
        elif v is not None:
            with pytest.raises(Reject, match="empty_binary"):
                encode("B", v)
        lines.append(cell + "\n")
    _load(cur, "b", "b (v)", lines)
    cur.execute("SELECT v FROM b ORDER BY id")
    assert [None if row[0] is None else bytes(row[0]) for row in cur.fetchall()] == values


def test_part_rotation_never_splits_a_row(cur: Any) -> None:
    values: list[str | None] = [
        "short",
        "two\nlines",
        "x" * 150,  # longer than a part on its own
        None,
        "",
        'quote "inside"\r\nand CRLF',
        "a,b,c",
        "\\N",
        "last\n",
    ] * 3
    lines = [f"{k},{text_cell(v)}\n" for k, v in enumerate(values)]
    parts = encode_parts(lines, 100)
    assert len(parts) > 5
    assert sum(rows for _, rows, _ in parts) == len(lines)
    assert b"".join(gzip.decompress(data) for data, _, _ in parts) == "".join(lines).encode()

    loaded: list[tuple[int, str | None]] = []
    for data, rows, raw in parts:
        assert raw == len(gzip.decompress(data))
        assert raw <= 100 or rows == 1
        cur.execute("TRUNCATE r")
        _copy(cur, "r (k, v)", data)  # each part loads on its own: no row is cut in two
        cur.execute("SELECT k, v FROM r ORDER BY k")
        got = cur.fetchall()
        assert len(got) == rows
        loaded.extend(got)
    assert loaded == list(enumerate(values))


def test_transformed_rows_load_into_typed_columns(cur: Any) -> None:
    def c(name: str, typ: str) -> Column:
        return Column(name, (name,), typ, name != "pk")

    cols = (
        c("pk", "VARCHAR(16)"),
        c("b", "VARBYTE(16)"),
        c("d", "DECIMAL(6,2)"),
        c("dt", "DATE"),
        c("flag", "BOOLEAN"),
        c("n", "BIGINT"),
        c("s", "VARCHAR(16)"),
        c("ts", "TIMESTAMPTZ"),
    )
    schema = DataSchema("T", "v", "now", 2, "relational", (), ("pk",), (Table("t", None, "t", (), ("pk",), cols),))
    items: list[dict[str, Any]] = [
        {
            "pk": {"S": "a"},
            "b": {"B": b"\x00\xff"},
            "d": {"N": "1234.5"},
            "dt": {"S": "2024-02-29"},
            "flag": {"BOOL": True},
            "n": {"N": "1E+2"},
            "s": {"S": 'x\r\n"y"'},
            "ts": {"S": "2024-01-01T00:00:00.5+05:30"},
        },
        {"pk": {"S": "b"}, "s": {"S": ""}, "d": {"N": "1.5E-1"}, "n": {"S": "drift"}},
    ]
    result = Transformer(schema, POSTGRESQL, segment=3, extracted_at="2024-01-01T00:00:00Z").transform(items)
    cur.execute(
        "CREATE TEMP TABLE typed (pk varchar(16), b bytea, d numeric(6,2), dt date, flag boolean, n bigint,"
        " s varchar(16), ts timestamptz, _segment integer, _extracted_at timestamptz)"
    )
    for data, _, _ in encode_parts(result.lines["t"], 1 << 20):
        _copy(cur, "typed", data)
    cur.execute(
        "SELECT pk, encode(b, 'hex'), d::text, dt::text, flag, n, s,"
        " to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), _segment,"
        " to_char(_extracted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM typed ORDER BY pk"
    )
    assert cur.fetchall() == [
        ("a", "00ff", "1234.50", "2024-02-29", True, 100, 'x\r\n"y"', "2023-12-31 18:30:00.500000", 3,
         "2024-01-01 00:00:00"),
        ("b", None, "0.15", None, None, None, "", None, 3, "2024-01-01 00:00:00"),
    ]  # fmt: skip
    assert result.rejects == {"type_drift": 1}


@pytest.mark.parametrize("value", ["2024-01-01T00:00:00+16:00", "2024-01-01T00:00:00-15:59"])
def test_timestamp_offsets_beyond_redshift_range_are_not_timestamps(cur: Any, value: str) -> None:
    # RFC 3339 allows offsets to ±23:59, PostgreSQL's timestamptz to ±15:59, and the only offset range Redshift
    # documents is ±14:59 (TIMETZ): such a value must make the column VARCHAR, and a TIMESTAMPTZ column must
    # reject it (kept in _etl_rejects), never fail the COPY.
    stats = ScalarStats()
    stats.add("S", value)
    assert stats.column_type() == "VARCHAR(32)"
    with pytest.raises(Reject, match="type_drift"):
        encoder_for("TIMESTAMPTZ", POSTGRESQL)("S", value)
    edge = encoder_for("TIMESTAMPTZ", POSTGRESQL)("S", "2024-01-01T00:00:00-14:59")
    cur.execute("TRUNCATE ts")
    _copy(cur, "ts (v)", encode_parts([edge + "\n"], 1 << 20)[0][0])
    cur.execute("SELECT count(*) FROM ts")
    assert cur.fetchone() == (1,)


@pytest.mark.parametrize("lib", ["isal", "zlib"])
def test_parts_are_the_same_gzip_with_isal_or_the_zlib_fallback(lib: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """ISA-L where its wheel exists, zlib elsewhere: the parts decompress to the same CSV either way."""
    import zlib

    from arm_etl import upload

    if lib == "zlib":
        monkeypatch.setattr(upload, "_deflate_lib", zlib)
        monkeypatch.setattr(upload, "DEFLATE", "zlib")
    else:
        pytest.importorskip("isal")
        assert upload.DEFLATE == "isal"
    lines = [f"{k},{text_cell('é' * (k % 7))}\n" for k in range(500)]
    parts = encode_parts(lines, 1000)
    assert len(parts) > 3 and all(data[:2] == b"\x1f\x8b" for data, _, _ in parts)  # gzip members
    assert b"".join(gzip.decompress(data) for data, _, _ in parts) == "".join(lines).encode()
    assert [raw for _, _, raw in parts] == [len(gzip.decompress(data)) for data, _, _ in parts]
