"""Transform: DynamoDB items (wire form) → CSV lines per warehouse table, by a cached data-schema.

Nothing is lost silently: a value that does not fit its column (type drift since determination, a
string longer than its column or than 65535 bytes, a NUL character, an attribute or route the
data-schema never saw) leaves NULL in its cell and is kept losslessly in ``_etl_rejects`` as DynamoDB
JSON, cut into chunks of at most 65535 bytes.

The encoders follow Amazon Redshift's documented limits on both dialects (PostgreSQL is its stand-in, so
the same rules keep the stand-in faithful): a DECIMAL(19,s) holds only unscaled values within ±(2^63-1) and
no DECIMAL a scale over 37 (*Numeric types*); a string inside SUPER is at most 65535 bytes (*Limitations*,
unless a database parameter raises it); an empty binary would be an empty field, which COPY loads as NULL
(*Data conversion parameters*, EMPTYASNULL), so it is rejected as ``empty_binary``.
"""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from arm_etl.csvformat import CsvDialect, quote
from arm_etl.dataschema import REJECTS_TABLE, DataSchema, DataSchemaError, Table
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


def encoder_for(type_text: str, dialect: CsvDialect) -> Encoder:
    """The cell encoder of one column type: returns the CSV cell text or raises :class:`Reject`."""
    m = _TYPE.match(type_text)
    if not m:
        raise DataSchemaError(f"unsupported column type {type_text!r}")
    base, a, b = m.group(1), m.group(2), m.group(3)

    if base == "VARCHAR":
        limit = min(int(a or MAX_VARCHAR), MAX_VARCHAR)

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
        precision, scale = int(a or 38), int(b or 0)
        int_room = precision - scale
        frac_room = min(scale, MAX_DECIMAL_SCALE)  # a DECIMAL(38,38) of an older data-schema still gets 37
        int64_bound = precision == INT64_DECIMAL_PRECISION

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
    return json_bytes(_wire(av))


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def json_bytes(obj: Any) -> bytes:
    """Compact JSON as UTF-8. Text holding a lone surrogate (not encodable as UTF-8, so orjson refuses it)
    gets that code unit written as a ``\\uXXXX`` escape: still JSON that parses back to the same value."""
    try:
        return orjson.dumps(obj)
    except TypeError:  # orjson.JSONEncodeError: "str is not valid UTF-8: surrogates not allowed"
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
        return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text).encode("utf-8")


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


@dataclass(slots=True)
class _Col:
    slot: int
    enc: Encoder
    is_super: bool


@dataclass(slots=True)
class _Plan:
    table: Table
    ncols: int
    key_slots: list[int]
    idx_slots: list[int]
    lines: list[str] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class _PathNode:
    col: _Col | None = None
    children: dict[str | None, _PathNode] = field(default_factory=dict)
    list_plan: _Plan | None = None
    # Compiled once the trie is complete (``Transformer._compile``):
    spath: tuple[str | None, ...] = ()  # path from the item root; None = "an element of the list here"
    fast_enc: Encoder | None = None  # encoder of a plain (non-SUPER) column here
    fast_slot: int = -1
    yields_rows: bool = False  # a child-table row can come from a value here (a list plan at or under it)
    row_children: dict[str, _PathNode] = field(default_factory=dict)  # the children that can yield rows
    element: _PathNode | None = None  # the list element's node (an empty one where the data-schema has none)


#: Tags that a plain column cell never takes directly (handled by the general path).
_NOT_PLAIN = frozenset({"M", "L", "SS", "NS", "BS", "NULL"})


@dataclass
class TransformResult:
    """CSV lines per table (``_etl_rejects`` included), and what went where."""

    lines: dict[str, list[str]]
    items: int
    rejects: Counter[str]  # by reason
    reject_tables: Counter[str] = field(default_factory=Counter)  # by the table whose row held the value

    def rows(self) -> dict[str, int]:
        return {t: len(ls) for t, ls in self.lines.items()}


class _Ctx:
    """Per item: the item, its route, its key cells, and the positions of the list elements being walked.

    The path of a rejected value is rebuilt from the node's static path and ``idx`` (see ``_path``), so the
    walk keeps no path of its own."""

    __slots__ = ("idx", "item", "key_cells", "table")

    def __init__(self, item: dict[str, Any], table: str):
        self.item = item
        self.key_cells: list[str] = []
        self.idx: list[int] = []
        self.table = table


class Transformer:
    """Compiles a data-schema into path tries once, then turns item batches into CSV lines.

    Hot path (every value of every item): a plain column's cell is encoded inline in ``_walk_map``; only
    maps, lists, sets, NULLs, SUPER columns and values the data-schema does not expect take the general
    ``_cell`` path. Cells start as the dialect's NULL text, so a row is joined as is. Child-table rows are
    emitted after their parent's row, visiting only attributes under which a list plan exists.
    """

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
        for trie, _ in self.roots.values():
            self._compile(trie, ())
        self.rejects_lines: list[str] = []
        self.reasons: Counter[str] = Counter()
        self.reject_tables: Counter[str] = Counter()

    @staticmethod
    def _node(trie: _PathNode, path: tuple[str | None, ...]) -> _PathNode:
        node = trie
        for seg in path:
            nxt = node.children.get(seg)
            if nxt is None:
                nxt = node.children[seg] = _PathNode()
            node = nxt
        return node

    def _compile(self, node: _PathNode, spath: tuple[str | None, ...]) -> bool:
        """Fill the compiled fields of ``node`` and below; returns ``node.yields_rows``."""
        node.spath = spath
        col = node.col
        if col is not None and not col.is_super:
            node.fast_enc, node.fast_slot = col.enc, col.slot
        for key, child in node.children.items():
            below = self._compile(child, (*spath, key))
            if key is not None and below:
                node.row_children[key] = child
        if node.list_plan is not None:
            element = node.children.get(None)
            if element is None:
                element = _PathNode()
                self._compile(element, (*spath, None))
            node.element = element
        node.yields_rows = not (col is not None and col.is_super) and (
            node.list_plan is not None or bool(node.row_children)
        )
        return node.yields_rows

    def transform(self, items: Iterable[dict[str, Any]], chunk_no: int = 0) -> TransformResult:
        self.chunk_no = chunk_no
        count = 0
        roots = self.roots
        route_of = self.router.route
        null = self.null
        tail = self.meta_tail
        walk = self._walk_map
        children = self._children
        for item in items:
            count += 1
            route = route_of(item)
            entry = roots.get(route)
            ctx = _Ctx(item, route)
            if entry is None:
                self._reject(ctx, {"M": item}, "new_table", [])
                continue
            trie, plan = entry
            row = [null] * plan.ncols
            walk(trie, item, row, ctx)
            ctx.key_cells = [row[s] for s in plan.key_slots]
            plan.lines.append(",".join(row) + tail)
            if trie.row_children:
                children(trie, item, ctx)
        lines = {name: plan.lines for name, plan in self.plans.items() if plan.lines}
        if self.rejects_lines:
            lines[REJECTS_TABLE] = self.rejects_lines
        result = TransformResult(lines, count, self.reasons, self.reject_tables)
        for plan in self.plans.values():
            plan.lines = []
        self.rejects_lines = []
        self.reasons = Counter()
        self.reject_tables = Counter()
        return result

    def _walk_map(self, node: _PathNode, m: dict[str, Any], row: list[str], ctx: _Ctx) -> None:
        """Fill scalar and SUPER cells of one row from a map (the item or a map element)."""
        children = node.children
        for key, av in m.items():
            child = children.get(key)
            if child is None:
                if not _empty(av):
                    self._reject(ctx, av, "new_column", self._path(ctx, (*node.spath, key)))
                continue
            enc = child.fast_enc
            if enc is None:
                self._cell(child, av, row, ctx)
                continue
            for tag, v in av.items():
                if tag in _NOT_PLAIN:
                    self._cell_tag(child, tag, v, av, row, ctx)
                else:
                    try:
                        row[child.fast_slot] = enc(tag, v)
                    except Reject as r:
                        self._reject(ctx, av, r.reason, self._path(ctx, child.spath))

    def _cell(self, node: _PathNode, av: dict[str, Any], row: list[str], ctx: _Ctx) -> None:
        for tag, v in av.items():
            self._cell_tag(node, tag, v, av, row, ctx)

    def _cell_tag(self, node: _PathNode, tag: str, v: Any, av: dict[str, Any], row: list[str], ctx: _Ctx) -> None:
        col = node.col
        if col is not None and col.is_super:
            try:
                row[col.slot] = col.enc(tag, v)
            except Reject as r:
                self._reject(ctx, av, r.reason, self._path(ctx, node.spath))
        elif tag == "M":
            if v:
                self._walk_map(node, v, row, ctx)
        elif tag == "L" or tag in SET_TAGS:
            if v and node.list_plan is None:
                reason = "type_drift" if node.col is not None else "new_column"
                self._reject(ctx, av, reason, self._path(ctx, node.spath))
        elif tag == "NULL":
            if col is None and not node.children and node.list_plan is None:
                # a NULL at a known map/list path holds nothing to lose
                self._reject(ctx, av, "new_column", self._path(ctx, node.spath))
        elif col is None:
            reason = "type_drift" if node.children or node.list_plan else "new_column"
            self._reject(ctx, av, reason, self._path(ctx, node.spath))
        else:
            try:
                row[col.slot] = col.enc(tag, v)
            except Reject as r:
                self._reject(ctx, av, r.reason, self._path(ctx, node.spath))

    def _children(self, node: _PathNode, m: dict[str, Any], ctx: _Ctx) -> None:
        """Emit child-table rows for every list and set under a map (after its own row)."""
        row_children = node.row_children
        for key, av in m.items():
            child = row_children.get(key)
            if child is not None:
                self._children_of(child, av, ctx)

    def _children_of(self, node: _PathNode, av: dict[str, Any], ctx: _Ctx) -> None:
        for tag, v in av.items():
            if node.col is not None and node.col.is_super:
                return
            if tag == "M":
                if v and node.row_children:
                    self._children(node, v, ctx)
            elif (tag == "L" or tag in SET_TAGS) and v and node.list_plan is not None:
                self._list(node, tag, v, ctx)

    def _list(self, node: _PathNode, tag: str, values: list[Any], ctx: _Ctx) -> None:
        plan = node.list_plan
        element = node.element
        assert plan is not None and element is not None
        if tag in SET_TAGS:
            scalar = SET_TAGS[tag]
            elements: list[dict[str, Any]] = [{scalar: x} for x in sort_set(tag, values)]
        else:
            elements = values
        idx = ctx.idx
        base = [self.null] * plan.ncols
        for s, cell in zip(plan.key_slots, ctx.key_cells, strict=True):
            base[s] = cell
        idx_slots = plan.idx_slots
        for s, pos in zip(idx_slots, (*idx, 0), strict=True):
            base[s] = str(pos)
        last = idx_slots[-1]
        lines = plan.lines
        tail = self.meta_tail
        enc = element.fast_enc
        slot = element.fast_slot
        more = element.yields_rows
        for i, av in enumerate(elements):
            row = base.copy()
            row[last] = str(i)
            idx.append(i)
            if enc is None:
                self._cell(element, av, row, ctx)
            else:
                for t, v in av.items():
                    if t in _NOT_PLAIN:
                        self._cell_tag(element, t, v, av, row, ctx)
                    else:
                        try:
                            row[slot] = enc(t, v)
                        except Reject as r:
                            self._reject(ctx, av, r.reason, self._path(ctx, element.spath))
            lines.append(",".join(row) + tail)
            if more:
                self._children_of(element, av, ctx)
            idx.pop()

    @staticmethod
    def _path(ctx: _Ctx, spath: tuple[str | None, ...]) -> list[str | int]:
        """The actual path of a value: the static path with each list level's current position."""
        positions = iter(ctx.idx)
        return [next(positions) if seg is None else seg for seg in spath]

    def item_key(self, item: dict[str, Any]) -> str:
        key: dict[str, Any] = {}
        for attr in self.key_attributes:
            av = item.get(attr) or {}
            for tag, v in av.items():
                key[attr] = as_b64(v) if tag == "B" else v
        return json_bytes(key).decode()

    def _reject(self, ctx: _Ctx, av: dict[str, Any], reason: str, path: list[str | int]) -> None:
        self.reasons[reason] += 1
        table = ctx.table if not path else self._table_at(ctx.table, path)
        self.reject_tables[table] += 1
        head = ",".join(
            [
                quote(table),
                quote(self.item_key(ctx.item)),
                quote(json_bytes(path).decode()),
                quote(reason),
            ]
        )
        for n, piece in enumerate(split_utf8(wire_json(av))):
            self.rejects_lines.append(head + "," + str(n) + "," + quote(piece.decode("utf-8")) + self.meta_tail)

    def _table_at(self, table: str, path: list[str | int]) -> str:
        """The table whose row held the rejected value: the deepest list on the path, else the root."""
        entry = self.roots.get(table)
        if entry is None:
            return table
        node, plan = entry
        name = plan.table.name
        for seg in path:
            key = None if isinstance(seg, int) else seg
            if isinstance(seg, int) and node.list_plan is not None:
                name = node.list_plan.table.name
            nxt = node.children.get(key)
            if nxt is None:
                break
            node = nxt
        return name
