"""A reference model of DESIGN.md's "Data contract" (item → rows), written independently of arm_etl.transform.

Given a data-schema document and the source items in DynamoDB wire form (``{"S": ...}``, ``{"N": "<exact
text>"}``, ``{"B": "<base64>"}``, …, e.g. raw ``Scan`` items), :func:`expected` computes every table's rows as
the Python values psycopg2 returns for the warehouse columns, and every value that must land in
``_etl_rejects``. It is deliberately slow and plain: one recursive walk per item, one conversion function
per column type, no tries, no CSV. It reads the schema for names and types only; all routing, flattening,
set ordering, fitting and reject decisions are made here from the contract's text.

Python forms (as psycopg2 returns them): VARCHAR → str, SMALLINT/INTEGER/BIGINT → int, DECIMAL →
decimal.Decimal, BOOLEAN → bool, TIMESTAMPTZ → aware datetime, DATE → date, VARBYTE/BYTEA → bytes,
SUPER/JSONB → parsed JSON (numbers as Decimal here; normalize before comparing), NULL → None.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Context, Decimal
from typing import Any

from arm_etl.dataschema import Column, DataSchema, Table

MAX_VARCHAR_BYTES = 65535
CHUNK_BYTES = 65535
# Amazon Redshift, *Numeric types*: "The maximum scale is 37."; "The maximum positive value that you can insert
# into a DECIMAL(19,0) column is 9223372036854775807 (2^63-1)" (the most negative, -9223372036854775807).
MAX_DECIMAL_SCALE = 37
DECIMAL_19_MAX_UNSCALED = 2**63 - 1
# *Datetime types*: fractional seconds "up to a maximum of six digits"; the only documented offset range is
# TIMETZ's "00:00:00+1459 to 00:00:00+1459".
MAX_FRACTION_DIGITS = 6
MAX_OFFSET = timedelta(hours=14, minutes=59)
SETS = {"SS": "S", "NS": "N", "BS": "B"}

_TYPE = re.compile(r"^([A-Z]+)(?:\((\d+)(?:,(\d+))?\))?$")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_WIDE = Context(prec=1000)  # exact decimal arithmetic for any DynamoDB number (≤ 38 significant digits)


class Misfit(Exception):
    """A value that does not fit its column; ``reason`` is what ``_etl_rejects`` must say."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Reject:
    """One value expected in ``_etl_rejects`` (before chunking)."""

    table: str
    item_key: dict[str, Any]
    column_path: tuple[str | int, ...]
    reason: str
    value_json: str  # the exact DynamoDB JSON of the value (binary as base64), compact, UTF-8

    @property
    def ident(self) -> tuple[str, str, str]:
        return (self.table, canonical_json(self.item_key), canonical_json(list(self.column_path)))


@dataclass
class Expected:
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # table → rows (column → value)
    rejects: list[Reject] = field(default_factory=list)
    items: int = 0


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def dynamodb_json(av: dict[str, Any]) -> str:
    """The DynamoDB JSON text of one attribute value: compact, non-ASCII kept, binary as base64 text."""
    return json.dumps(av, ensure_ascii=False, separators=(",", ":"))


# ---------------------------------------------------------------------------------------------- scalars


def fold(name: str) -> str:
    """DESIGN.md "Names": lower-case, anything outside [a-z0-9_] → '_', a leading digit gets '_'."""
    out = "".join(
        ch.lower() if "A" <= ch <= "Z" else ch if ("a" <= ch <= "z" or "0" <= ch <= "9" or ch == "_") else "_"
        for ch in name
    )
    out = out or "_"
    return "_" + out if out[0].isdigit() else out


def canonical_text(tag: str, v: Any) -> str:
    """A scalar as VARCHAR text: a number's exact text, true/false, binary as base64."""
    if tag in ("S", "N"):
        return v
    if tag == "BOOL":
        return "true" if v else "false"
    if tag == "B":
        return base64.b64encode(base64.b64decode(v)).decode("ascii")
    raise Misfit("type_drift")


def is_rfc3339(s: str) -> bool:
    """An RFC 3339 date-time Redshift's TIMESTAMPTZ holds exactly: at most six fractional digits, an offset
    within ±14:59."""
    m = _RFC3339.match(s)
    if not m or len((m.group(1) or ".")[1:]) > MAX_FRACTION_DIGITS:
        return False
    try:
        offset = datetime.fromisoformat(s).utcoffset()
    except ValueError:
        return False
    return offset is not None and abs(offset) <= MAX_OFFSET


def is_full_date(s: str) -> bool:
    if not _DATE.match(s):
        return False
    try:
        date.fromisoformat(s)
    except ValueError:
        return False
    return True


def convert(column_type: str, tag: str, v: Any) -> Any:
    """The cell value of DynamoDB scalar ``{tag: v}`` in a column of ``column_type``, or raise Misfit."""
    m = _TYPE.match(column_type)
    assert m, column_type
    base, a, b = m.group(1), m.group(2), m.group(3)
    if base == "VARCHAR":
        text = canonical_text(tag, v)
        if "\x00" in text:
            raise Misfit("nul")
        if len(text.encode("utf-8")) > min(int(a or MAX_VARCHAR_BYTES), MAX_VARCHAR_BYTES):
            raise Misfit("too_long")
        return text
    if base in ("SMALLINT", "INTEGER", "BIGINT"):
        bits = {"SMALLINT": 16, "INTEGER": 32, "BIGINT": 64}[base]
        if tag != "N":
            raise Misfit("type_drift")
        d = Decimal(v)
        if d != d.to_integral_value(context=_WIDE) or not -(2 ** (bits - 1)) <= d <= 2 ** (bits - 1) - 1:
            raise Misfit("type_drift")
        return int(d)
    if base in ("DECIMAL", "NUMERIC"):
        precision, scale = int(a or 38), int(b or 0)
        if tag != "N":
            raise Misfit("type_drift")
        d = Decimal(v)
        exact = d.quantize(Decimal(1).scaleb(-scale), context=_WIDE) == d
        if not exact or d.copy_abs() >= Decimal(10) ** (precision - scale):  # copy_abs: exact, no rounding
            raise Misfit("type_drift")
        exponent = d.as_tuple().exponent
        assert isinstance(exponent, int)
        if -exponent > MAX_DECIMAL_SCALE:  # the value's own fractional digits, as written
            raise Misfit("type_drift")
        if precision == 19 and d.copy_abs().scaleb(scale, context=_WIDE) > DECIMAL_19_MAX_UNSCALED:
            raise Misfit("type_drift")
        return d
    if base == "BOOLEAN":
        if tag != "BOOL":
            raise Misfit("type_drift")
        return bool(v)
    if base == "TIMESTAMPTZ":
        if tag != "S" or not is_rfc3339(v):
            raise Misfit("type_drift")
        return datetime.fromisoformat(v)
    if base == "DATE":
        if tag != "S" or not is_full_date(v):
            raise Misfit("type_drift")
        return date.fromisoformat(v)
    if base in ("VARBYTE", "BYTEA"):
        if tag != "B":
            raise Misfit("type_drift")
        data = base64.b64decode(v)
        if not data:  # an empty field: Redshift's COPY loads it as NULL (EMPTYASNULL or not)
            raise Misfit("empty_binary")
        if a is not None and len(data) > int(a):
            raise Misfit("too_long")
        return data
    raise AssertionError(f"oracle: unexpected column type {column_type}")


def plain_json(av: dict[str, Any]) -> Any:
    """A value for a SUPER/JSONB column: maps → objects, lists and (ranked) sets → arrays.

    Raises Misfit when a text the JSON holds (a string, a map key, a binary as its base64) has a NUL
    ("nul"), else has no UTF-8 form ("invalid_utf8"), else is over 65535 UTF-8 bytes ("too_long": Redshift
    limits "a single string value loaded to SUPER" to VARCHAR's 65535 bytes)."""
    texts = list(super_texts(av))
    if any("\x00" in t for t in texts):
        raise Misfit("nul")
    try:
        sizes = [len(t.encode("utf-8")) for t in texts]
    except UnicodeEncodeError:
        raise Misfit("invalid_utf8") from None
    if any(n > MAX_VARCHAR_BYTES for n in sizes):
        raise Misfit("too_long")
    return _plain(av)


def super_texts(av: dict[str, Any]) -> Iterator[str]:
    """Every text of a value as SUPER JSON: strings, set elements, map keys, binary as base64."""
    ((tag, v),) = av.items()
    if tag in ("S", "B"):
        yield canonical_text(tag, v)
    elif tag in SETS:
        for x in set_elements(tag, v):
            yield from super_texts(x)
    elif tag == "M":
        for k, x in v.items():
            yield k
            yield from super_texts(x)
    elif tag == "L":
        for x in v:
            yield from super_texts(x)


def _plain(av: dict[str, Any]) -> Any:
    ((tag, v),) = av.items()
    if tag == "M":
        return {k: _plain(x) for k, x in v.items()}
    if tag == "L":
        return [_plain(x) for x in v]
    if tag in SETS:
        return [_plain(x) for x in set_elements(tag, v)]
    if tag == "NULL":
        return None
    if tag == "N":
        return Decimal(v)
    return canonical_text(tag, v) if tag != "BOOL" else bool(v)


def set_elements(tag: str, values: list[Any]) -> list[dict[str, Any]]:
    """Set elements in rank order: strings by code point, numbers by value, binary by bytes."""
    if tag == "SS":
        ordered = sorted(values)
    elif tag == "NS":
        ordered = sorted(values, key=Decimal)
    else:
        ordered = sorted(values, key=base64.b64decode)
    return [{SETS[tag]: x} for x in ordered]


# ---------------------------------------------------------------------------------------------- items


class Oracle:
    def __init__(self, schema: DataSchema):
        self.schema = schema
        self.roots: dict[str, Table] = {t.route: t for t in schema.tables if t.parent is None}
        self.lists: dict[tuple[str, tuple[str | None, ...]], Table] = {
            (t.route, tuple(t.path)): t for t in schema.tables if t.parent is not None
        }
        self.columns: dict[tuple[str, tuple[str | None, ...]], Column] = {}
        for t in schema.tables:
            for c in t.columns:
                if c.path is not None:
                    self.columns[(t.name, tuple(c.path))] = c

    def route(self, item: dict[str, Any]) -> str:
        """The first rule whose attribute is a string with a non-empty prefix (or value) wins, else ``X``."""
        for rule in self.schema.routing:
            av = item.get(rule.attribute) or {}
            if "S" not in av:
                continue
            value = av["S"]
            if rule.separator is not None:
                if rule.separator not in value:
                    continue
                value = value.split(rule.separator, 1)[0]
            if value:
                return fold(rule.names.get(value, value))
        return fold(self.schema.source_table)

    def expected(self, items: list[dict[str, Any]], segment: int, extracted_at: datetime) -> Expected:
        out = Expected(rows={t.name: [] for t in self.schema.tables})
        for item in items:
            self._item(item, segment, extracted_at, out)
            out.items += 1
        return out

    # ------------------------------------------------------------------ one item

    def _item(self, item: dict[str, Any], segment: int, extracted_at: datetime, out: Expected) -> None:
        key = {a: canonical_text(*next(iter(item[a].items()))) for a in self.schema.key_attributes}
        route = self.route(item)
        root = self.roots.get(route)
        if root is None:
            out.rejects.append(Reject(route, key, (), "new_table", dynamodb_json({"M": item})))
            return
        key_cells = {}
        for name in root.key_columns:
            col = next(c for c in root.columns if c.name == name)
            assert col.path is not None and col.path[0] is not None, f"key column {name} has no attribute path"
            ((tag, v),) = item[col.path[0]].items()
            key_cells[name] = convert(col.type, tag, v)
        walk = _Walk(self, route, key, key_cells, segment, extracted_at, out)
        row = walk.new_row(root, ())
        for attr, av in item.items():
            walk.visit(root, row, (), (attr,), (attr,), av)


class _Walk:
    """One item's walk: fills the current row, opens child rows for list and set elements."""

    def __init__(
        self,
        oracle: Oracle,
        route: str,
        key: dict[str, Any],
        key_cells: dict[str, Any],
        segment: int,
        extracted_at: datetime,
        out: Expected,
    ):
        self.o = oracle
        self.route = route
        self.key = key
        self.key_cells = key_cells
        self.segment = segment
        self.extracted_at = extracted_at
        self.out = out

    def new_row(self, table: Table, idx: tuple[int, ...]) -> dict[str, Any]:
        row: dict[str, Any] = {c.name: None for c in table.columns}
        row.update(self.key_cells)
        idx_names = [f"_idx{k}" for k in range(len(idx) - 1)] + ["_idx"] if idx else []
        row.update(zip(idx_names, idx, strict=True))
        row["_segment"] = self.segment
        row["_extracted_at"] = self.extracted_at
        self.out.rows[table.name].append(row)
        return row

    def reject(self, table: Table, path: tuple[str | int, ...], av: dict[str, Any], reason: str) -> None:
        self.out.rejects.append(Reject(table.name, self.key, path, reason, dynamodb_json(av)))

    def visit(
        self,
        table: Table,
        row: dict[str, Any],
        idx: tuple[int, ...],
        path: tuple[str | int, ...],
        gpath: tuple[str | None, ...],
        av: dict[str, Any],
    ) -> None:
        """Place value ``av`` found at ``path`` (list positions as ints; ``gpath`` has None for them)."""
        ((tag, v),) = av.items()
        col = self.o.columns.get((table.name, gpath))
        if col is not None and col.type in ("SUPER", "JSONB"):
            try:
                row[col.name] = plain_json(av)
            except Misfit as m:
                self.reject(table, path, av, m.reason)
            return
        if tag == "M":
            for k, sub in v.items():
                self.visit(table, row, idx, (*path, k), (*gpath, k), sub)
            return
        if tag == "L" or tag in SETS:
            elements = v if tag == "L" else set_elements(tag, v)
            if not elements:
                return  # an empty list or set gives no rows
            child = self.o.lists.get((self.route, gpath))
            if child is None:
                self.reject(table, path, av, "type_drift" if col is not None else "new_column")
                return
            for i, element in enumerate(elements):
                crow = self.new_row(child, (*idx, i))
                self.visit(child, crow, (*idx, i), (*path, i), (*gpath, None), element)
            return
        if col is None:
            # no column at this path: a scalar where the schema has maps or lists is type drift; anything
            # else (a NULL included) is a path the schema never saw (DESIGN.md leaves that reason open)
            drift = tag != "NULL" and self._known(gpath)
            self.reject(table, path, av, "type_drift" if drift else "new_column")
            return
        if tag == "NULL":
            return  # SQL NULL
        try:
            row[col.name] = convert(col.type, tag, v)
        except Misfit as m:
            self.reject(table, path, av, m.reason)

    def _known(self, gpath: tuple[str | None, ...]) -> bool:
        """Whether the schema has maps or lists under ``gpath`` (a scalar there is type drift, not new)."""
        n = len(gpath)
        return any(p[:n] == gpath and len(p) > n for (_, p) in self.o.columns) or any(
            r == self.route and p[:n] == gpath for (r, p) in self.o.lists
        )


def expected(schema: DataSchema, items: list[dict[str, Any]], segment: int, extracted_at: datetime) -> Expected:
    """Expected rows of every table and expected rejects for ``items`` loaded as segment ``segment``."""
    return Oracle(schema).expected(items, segment, extracted_at)
