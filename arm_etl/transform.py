"""Transform: DynamoDB items (wire form) → CSV lines per warehouse table, by a cached data-schema.

Nothing is lost silently: a value that does not fit its column (type drift since determination, a
string longer than its column or than 65535 bytes, a NUL character, an attribute or route the
data-schema never saw) leaves NULL in its cell and is kept losslessly in ``_etl_rejects`` as DynamoDB
JSON, cut into chunks of at most 65535 bytes.
"""

from __future__ import annotations

import base64
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from arm_etl.csvformat import CsvDialect, quote
from arm_etl.dataschema import REJECTS_TABLE, DataSchema, DataSchemaError, Table
from arm_etl.lattice import INT64_MAX, INT64_MIN, MAX_VARCHAR, is_date, is_timestamp, number_shape
from arm_etl.routing import Router

CHUNK_BYTES = 65535
SET_TAGS = {"SS": "S", "NS": "N", "BS": "B"}
_PLAIN_INT = re.compile(r"^-?[0-9]{1,18}$")
_PLAIN_DEC = re.compile(r"^-?([0-9]+)(?:\.([0-9]+))?$")
_TYPE = re.compile(r"^([A-Z]+)(?:\((\d+)(?:,(\d+))?\))?$")


class Reject(Exception):
    """A value that cannot go into its column; ``reason`` is recorded in ``_etl_rejects``."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


Encoder = Callable[[str, Any], str]


def as_bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return base64.b64decode(value)


def as_b64(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


def _canonical_text(tag: str, v: Any) -> str:
    if tag == "S" or tag == "N":
        return str(v)
    if tag == "BOOL":
        return "true" if v else "false"
    if tag == "B":
        return as_b64(v)
    raise Reject("type_drift")


def _checked_string(s: str, limit: int) -> str:
    if "\x00" in s:
        raise Reject("nul")
    if len(s) * 4 > limit:
        if len(s) > limit:
            raise Reject("too_long")
        try:
            nbytes = len(s.encode("utf-8"))
        except UnicodeEncodeError:
            raise Reject("invalid_utf8") from None
        if nbytes > limit:
            raise Reject("too_long")
    elif not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            raise Reject("invalid_utf8") from None
    return quote(s)


def encoder_for(type_text: str, dialect: CsvDialect) -> Encoder:
    """The cell encoder of one column type: returns the CSV cell text or raises :class:`Reject`."""
    m = _TYPE.match(type_text)
    if not m:
        raise DataSchemaError(f"unsupported column type {type_text!r}")
    base, a, b = m.group(1), m.group(2), m.group(3)

    if base == "VARCHAR":
        limit = min(int(a or MAX_VARCHAR), MAX_VARCHAR)

        def enc_varchar(tag: str, v: Any) -> str:
            return _checked_string(v if tag == "S" else _canonical_text(tag, v), limit)

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
        precision, scale = int(a or 38), int(b or 0)
        int_room = precision - scale

        def enc_decimal(tag: str, v: Any) -> str:
            if tag != "N":
                raise Reject("type_drift")
            pm = _PLAIN_DEC.match(v)
            if pm:
                digits = pm.group(1).lstrip("0")
                frac = pm.group(2) or ""
                if len(digits) <= int_room and len(frac) <= scale:
                    return str(v)
                raise Reject("type_drift")
            shape = number_shape(v)
            if shape.int_digits > int_room or shape.scale > scale:
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
            if len(data) > blimit:
                raise Reject("too_long")
            return binary(data)

        return enc_bytes

    if base in ("SUPER", "JSONB"):

        def enc_super(tag: str, v: Any) -> str:
            if _has_nul({tag: v}):
                raise Reject("nul")
            return quote(to_json_text({tag: v}))

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


def _empty(av: dict[str, Any]) -> bool:
    """A map or list with no value anywhere inside: it gives no rows and no columns, so nothing is lost."""
    for tag, v in av.items():
        if tag == "M":
            return all(_empty(x) for x in v.values())
        if tag == "L":
            return all(_empty(x) for x in v)
        return False
    return True


def sort_set(tag: str, values: list[Any]) -> list[Any]:
    """Set order for ``_idx``: strings by code point, numbers by value, binary by bytes."""
    if tag == "SS":
        return sorted(values)
    if tag == "NS":
        return sorted(values, key=Decimal)
    return sorted(values, key=as_bytes)


def wire_json(av: dict[str, Any]) -> bytes:
    """DynamoDB JSON of one value (binary as base64 text, as on the wire)."""
    return orjson.dumps(_wire(av))


def _wire(av: Any) -> Any:
    if isinstance(av, dict):
        return {k: _wire(v) for k, v in av.items()}
    if isinstance(av, list):
        return [_wire(v) for v in av]
    if isinstance(av, (bytes, bytearray, memoryview)):
        return as_b64(av)
    return av


def split_utf8(data: bytes, limit: int = CHUNK_BYTES) -> list[bytes]:
    """Cut UTF-8 bytes into pieces of at most ``limit`` bytes, never inside a character."""
    out = []
    start = 0
    while len(data) - start > limit:
        cut = start + limit
        while data[cut] & 0xC0 == 0x80:
            cut -= 1
        out.append(data[start:cut])
        start = cut
    out.append(data[start:])
    return out


# --------------------------------------------------------------------------------------------------


@dataclass
class _Col:
    slot: int
    enc: Encoder
    is_super: bool


@dataclass
class _Plan:
    table: Table
    ncols: int
    key_slots: list[int]
    idx_slots: list[int]
    lines: list[str] = field(default_factory=list)


@dataclass
class _PathNode:
    col: _Col | None = None
    children: dict[str | None, _PathNode] = field(default_factory=dict)
    list_plan: _Plan | None = None


@dataclass
class TransformResult:
    """CSV lines per table (``_etl_rejects`` included), and what went where."""

    lines: dict[str, list[str]]
    items: int
    rejects: Counter[str]

    def rows(self) -> dict[str, int]:
        return {t: len(ls) for t, ls in self.lines.items()}


class _Ctx:
    __slots__ = ("idx", "item", "key_cells", "path", "table")

    def __init__(self, item: dict[str, Any], table: str):
        self.item = item
        self.key_cells: list[str | None] = []
        self.path: list[str | int] = []
        self.idx: list[int] = []
        self.table = table


class Transformer:
    """Compiles a data-schema into path tries once, then turns item batches into CSV lines."""

    def __init__(self, schema: DataSchema, dialect: CsvDialect, segment: int, extracted_at: str):
        self.schema = schema
        self.dialect = dialect
        self.null = dialect.null
        self.meta_tail = "," + str(segment) + "," + extracted_at + "\n"
        self.segment = segment
        self.extracted_at = extracted_at
        self.router = Router(schema.source_table, list(schema.routing))
        self.key_attributes = schema.key_attributes
        self.roots: dict[str, tuple[_PathNode, _Plan]] = {}
        self.plans: dict[str, _Plan] = {}
        encoders: dict[str, Encoder] = {}
        for table in schema.tables:
            cols = table.columns
            slot = {c.name: i for i, c in enumerate(cols)}
            plan = _Plan(
                table,
                len(cols),
                [slot[k] for k in table.key_columns],
                [i for i, c in enumerate(cols) if c.path is None],
            )
            self.plans[table.name] = plan
            if table.parent is None:
                self.roots[table.route] = (_PathNode(), plan)
        for table in schema.tables:
            trie, _ = self.roots[table.route]
            plan = self.plans[table.name]
            if table.parent is not None:
                self._node(trie, table.path).list_plan = plan
            for i, c in enumerate(table.columns):
                if c.path is None or (table.parent is not None and c.name in table.key_columns):
                    continue
                enc = encoders.get(c.type)
                if enc is None:
                    enc = encoders[c.type] = encoder_for(c.type, dialect)
                self._node(trie, c.path).col = _Col(i, enc, c.type == "SUPER")
        self.rejects_lines: list[str] = []
        self.reasons: Counter[str] = Counter()

    @staticmethod
    def _node(trie: _PathNode, path: tuple[str | None, ...]) -> _PathNode:
        node = trie
        for seg in path:
            nxt = node.children.get(seg)
            if nxt is None:
                nxt = node.children[seg] = _PathNode()
            node = nxt
        return node

    def transform(self, items: Iterable[dict[str, Any]], chunk_no: int = 0) -> TransformResult:
        self.chunk_no = chunk_no
        count = 0
        for item in items:
            count += 1
            route = self.router.route(item)
            entry = self.roots.get(route)
            ctx = _Ctx(item, route)
            if entry is None:
                self._reject(ctx, {"M": item}, "new_table")
                continue
            trie, plan = entry
            row: list[str | None] = [None] * plan.ncols
            self._walk_map(trie, item, row, ctx)
            ctx.key_cells = [row[s] for s in plan.key_slots]
            self._emit(plan, row)
            self._children(trie, item, ctx)
        lines = {name: plan.lines for name, plan in self.plans.items() if plan.lines}
        if self.rejects_lines:
            lines[REJECTS_TABLE] = self.rejects_lines
        result = TransformResult(lines, count, self.reasons)
        for plan in self.plans.values():
            plan.lines = []
        self.rejects_lines = []
        self.reasons = Counter()
        return result

    def _emit(self, plan: _Plan, row: list[str | None]) -> None:
        null = self.null
        plan.lines.append(",".join([null if c is None else c for c in row]) + self.meta_tail)

    def _walk_map(self, node: _PathNode, m: dict[str, Any], row: list[str | None], ctx: _Ctx) -> None:
        """Fill scalar and SUPER cells of one row from a map (the item or a map element)."""
        children = node.children
        path = ctx.path
        for key, av in m.items():
            child = children.get(key)
            path.append(key)
            if child is None:
                if not _empty(av):
                    self._reject(ctx, av, "new_column")
            else:
                self._cell(child, av, row, ctx)
            path.pop()

    def _cell(self, node: _PathNode, av: dict[str, Any], row: list[str | None], ctx: _Ctx) -> None:
        for tag, v in av.items():
            col = node.col
            if col is not None and col.is_super:
                try:
                    row[col.slot] = col.enc(tag, v)
                except Reject as r:
                    self._reject(ctx, av, r.reason)
            elif tag == "M":
                if v:
                    self._walk_map(node, v, row, ctx)
            elif tag == "L" or tag in SET_TAGS:
                if v and node.list_plan is None:
                    self._reject(ctx, av, "type_drift" if node.col is not None else "new_column")
            elif tag == "NULL":
                if col is None and not node.children and node.list_plan is None:
                    self._reject(ctx, av, "new_column")  # a NULL at a known map/list path holds nothing to lose
            elif col is None:
                self._reject(ctx, av, "type_drift" if node.children or node.list_plan else "new_column")
            else:
                try:
                    row[col.slot] = col.enc(tag, v)
                except Reject as r:
                    self._reject(ctx, av, r.reason)

    def _children(self, node: _PathNode, m: dict[str, Any], ctx: _Ctx) -> None:
        """Emit child-table rows for every list and set under a map (after its own row)."""
        path = ctx.path
        for key, av in m.items():
            child = node.children.get(key)
            if child is None:
                continue
            path.append(key)
            self._children_of(child, av, ctx)
            path.pop()

    def _children_of(self, node: _PathNode, av: dict[str, Any], ctx: _Ctx) -> None:
        for tag, v in av.items():
            if node.col is not None and node.col.is_super:
                return
            if tag == "M":
                if v and node.children:
                    self._children(node, v, ctx)
            elif (tag == "L" or tag in SET_TAGS) and v and node.list_plan is not None:
                self._list(node, tag, v, ctx)

    def _list(self, node: _PathNode, tag: str, values: list[Any], ctx: _Ctx) -> None:
        plan = node.list_plan
        assert plan is not None
        element = node.children.get(None) or _PathNode()
        if tag in SET_TAGS:
            scalar = SET_TAGS[tag]
            elements: list[dict[str, Any]] = [{scalar: x} for x in sort_set(tag, values)]
        else:
            elements = values
        path, idx = ctx.path, ctx.idx
        for i, av in enumerate(elements):
            row: list[str | None] = [None] * plan.ncols
            for s, cell in zip(plan.key_slots, ctx.key_cells, strict=True):
                row[s] = cell
            for s, pos in zip(plan.idx_slots, (*idx, i), strict=True):
                row[s] = str(pos)
            path.append(i)
            idx.append(i)
            self._cell(element, av, row, ctx)
            self._emit(plan, row)
            self._children_of(element, av, ctx)
            idx.pop()
            path.pop()

    def item_key(self, item: dict[str, Any]) -> str:
        key: dict[str, Any] = {}
        for attr in self.key_attributes:
            av = item.get(attr) or {}
            for tag, v in av.items():
                key[attr] = as_b64(v) if tag == "B" else v
        return orjson.dumps(key).decode()

    def _reject(self, ctx: _Ctx, av: dict[str, Any], reason: str) -> None:
        self.reasons[reason] += 1
        head = ",".join(
            [
                quote(ctx.table if not ctx.path else self._table_at(ctx)),
                quote(self.item_key(ctx.item)),
                quote(orjson.dumps(ctx.path).decode()),
                quote(reason),
            ]
        )
        for n, piece in enumerate(split_utf8(wire_json(av))):
            self.rejects_lines.append(head + "," + str(n) + "," + quote(piece.decode("utf-8")) + self.meta_tail)

    def _table_at(self, ctx: _Ctx) -> str:
        """The table whose row held the rejected value: the deepest list on the path, else the root."""
        entry = self.roots.get(ctx.table)
        if entry is None:
            return ctx.table
        node, plan = entry
        name = plan.table.name
        for seg in ctx.path:
            key = None if isinstance(seg, int) else seg
            if isinstance(seg, int) and node.list_plan is not None:
                name = node.list_plan.table.name
            nxt = node.children.get(key)
            if nxt is None:
                break
            node = nxt
        return name
