"""Transform: DynamoDB items (wire form) → CSV lines per warehouse table, by a cached data-schema.

Nothing is lost silently: a value that does not fit its column (type drift since determination, a
string longer than its column or than 65535 bytes, a NUL character, an attribute or route the
data-schema never saw) leaves NULL in its cell and is kept losslessly in ``_etl_rejects`` as DynamoDB
JSON, cut into pieces of at most 65535 bytes (DESIGN.md names a piece's columns ``chunk_no`` and ``chunk``;
"chunk" in the code is a batch of Scan pages). The cell encoders are in :mod:`arm_etl.encoders`, the
path trees walked here in :mod:`arm_etl.pathtree`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from arm_etl import compiled as compiled_paths
from arm_etl.csvformat import CsvDialect, quote
from arm_etl.dataschema import REJECTS_TABLE, DataSchema
from arm_etl.dynamodb_json import SET_TAGS, as_b64, json_bytes, sort_set, wire_json
from arm_etl.encoders import Reject
from arm_etl.pathtree import PathNode, build_trees
from arm_etl.routing import Router

#: Whether the walk runs compiled by default (:mod:`arm_etl.compiled`).
COMPILED = compiled_paths.ENABLED

PIECE_BYTES = 65535


def _empty(av: dict[str, Any]) -> bool:
    """A map or list with no value anywhere inside: it gives no rows and no columns, so nothing is lost."""
    for tag, v in av.items():
        if tag == "M":
            return all(_empty(x) for x in v.values())
        if tag == "L":
            return all(_empty(x) for x in v)
        return False
    return True


def split_utf8(data: bytes, limit: int = PIECE_BYTES) -> list[bytes]:
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

    __slots__ = ("idx", "item", "key_cells", "key_field", "table")

    def __init__(self, item: dict[str, Any], table: str):
        self.item = item
        self.key_field: str | None = None  # the item's key as a CSV field, made at its first reject
        self.key_cells: list[str] = []
        self.idx: list[int] = []
        self.table = table


class Transformer:
    """Compiles a data-schema into path tries once, then turns item batches into CSV lines.

    Each :meth:`transform` call walks its batch with a fresh :class:`_Walk` and returns what it made, so
    the transformer holds nothing of a batch: calls need no lock and never see each other's lines.

    ``compiled`` (default: :data:`COMPILED`) runs the walk in C (``arm_etl/_transform_c.c``), which calls
    back into the :class:`_Walk` methods for every rejected value and every cell it does not encode itself.
    """

    def __init__(
        self,
        data_schema: DataSchema,
        dialect: CsvDialect,
        segment: int,
        extracted_at: str,
        compiled: bool | None = None,
    ):
        self.null = dialect.null
        self.meta_tail = "," + str(segment) + "," + extracted_at + "\n"
        self.router = Router(data_schema.source_table, list(data_schema.routing))
        self.key_attributes = data_schema.key_attributes
        self.roots, self.plans = build_trees(data_schema, dialect)
        self.compiled = COMPILED if compiled is None else compiled and compiled_paths.ext is not None

    def transform(self, items: Iterable[dict[str, Any]]) -> TransformResult:
        walk = _Walk(self)
        if self.compiled:
            count = compiled_paths.ext.transform_items(
                walk, items, self.roots, self.router.route, _Ctx, self.null, self.meta_tail
            )
        else:
            count = walk.transform_items(items, self.router.route)
        lines = {name: walk.lines[plan.no] for name, plan in self.plans.items() if walk.lines[plan.no]}
        if walk.rejects_lines:
            lines[REJECTS_TABLE] = walk.rejects_lines
        return TransformResult(lines, count, walk.reasons, walk.reject_tables)


class _Walk:
    """One batch's walk: the CSV lines it makes (``lines[plan.no]``), its rejects and their counts.

    Hot path (every value of every item): a plain column's cell is encoded inline in ``_walk_map``; only
    maps, lists, sets, NULLs, SUPER columns and values the data-schema does not expect take the general
    ``_cell`` path. Cells start as the dialect's NULL text, so a row is joined as is. Child-table rows are
    emitted after their parent's row, visiting only attributes under which a list plan exists.
    """

    __slots__ = ("key_attributes", "lines", "meta_tail", "null", "reasons", "reject_tables", "rejects_lines", "roots")

    def __init__(self, t: Transformer) -> None:
        self.null = t.null
        self.meta_tail = t.meta_tail
        self.roots = t.roots
        self.key_attributes = t.key_attributes
        self.lines: list[list[str]] = [[] for _ in t.plans]
        self.rejects_lines: list[str] = []
        self.reasons: Counter[str] = Counter()
        self.reject_tables: Counter[str] = Counter()

    def transform_items(self, items: Iterable[dict[str, Any]], route_of: Callable[[dict[str, Any]], str]) -> int:
        """The batch loop (mirrored by ``_transform_c.transform_items``): fills ``lines``."""
        count = 0
        roots = self.roots
        lines = self.lines
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
            lines[plan.no].append(",".join(row) + tail)
            if trie.row_children:
                children(trie, item, ctx)
        return count

    def _walk_map(self, node: PathNode, m: dict[str, Any], row: list[str], ctx: _Ctx) -> None:
        """Fill scalar and SUPER cells of one row from a map (the item or a map element)."""
        children = node.children
        for key, av in m.items():
            child = children.get(key)
            if child is None:
                self._unknown(node, key, av, ctx)
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
                        self._reject_at(ctx, av, r.reason, child)

    def _unknown(self, node: PathNode, key: str, av: dict[str, Any], ctx: _Ctx) -> None:
        """An attribute the data-schema has no path for: rejected unless it holds nothing."""
        if not _empty(av):
            self._reject(ctx, av, "new_column", self._path(ctx, (*node.spath, key)))

    def _cell(self, node: PathNode, av: dict[str, Any], row: list[str], ctx: _Ctx) -> None:
        for tag, v in av.items():
            self._cell_tag(node, tag, v, av, row, ctx)

    def _cell_tag(self, node: PathNode, tag: str, v: Any, av: dict[str, Any], row: list[str], ctx: _Ctx) -> None:
        col = node.col
        if col is not None and col.is_super:
            try:
                row[col.slot] = col.enc(tag, v)
            except Reject as r:
                self._reject_at(ctx, av, r.reason, node)
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
                self._reject_at(ctx, av, r.reason, node)

    def _children(self, node: PathNode, m: dict[str, Any], ctx: _Ctx) -> None:
        """Emit child-table rows for every list and set under a map (after its own row)."""
        row_children = node.row_children
        for key, av in m.items():
            child = row_children.get(key)
            if child is not None:
                self._children_of(child, av, ctx)

    def _children_of(self, node: PathNode, av: dict[str, Any], ctx: _Ctx) -> None:
        for tag, v in av.items():
            if node.col is not None and node.col.is_super:
                return
            if tag == "M":
                if v and node.row_children:
                    self._children(node, v, ctx)
            elif (tag == "L" or tag in SET_TAGS) and v and node.list_plan is not None:
                self._list(node, tag, v, ctx)

    def _list(self, node: PathNode, tag: str, values: list[Any], ctx: _Ctx) -> None:
        plan = node.list_plan
        element = node.element
        assert plan is not None and element is not None
        elements = self._set_elements(tag, values) if tag in SET_TAGS else values
        idx = ctx.idx
        base = [self.null] * plan.ncols
        for s, cell in zip(plan.key_slots, ctx.key_cells, strict=True):
            base[s] = cell
        idx_slots = plan.idx_slots
        for s, pos in zip(idx_slots, (*idx, 0), strict=True):
            base[s] = str(pos)
        last = idx_slots[-1]
        lines = self.lines[plan.no]
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
                            self._reject_at(ctx, av, r.reason, element)
            lines.append(",".join(row) + tail)
            if more:
                self._children_of(element, av, ctx)
            idx.pop()

    @staticmethod
    def _set_elements(tag: str, values: list[Any]) -> list[dict[str, Any]]:
        """A set's elements as list elements, in the set's canonical order."""
        scalar = SET_TAGS[tag]
        return [{scalar: x} for x in sort_set(tag, values)]

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

    def _reject_at(self, ctx: _Ctx, av: dict[str, Any], reason: str, node: PathNode) -> None:
        self._reject(ctx, av, reason, self._path(ctx, node.spath))

    def _reject(self, ctx: _Ctx, av: dict[str, Any], reason: str, path: list[str | int]) -> None:
        self.reasons[reason] += 1
        table = ctx.table if not path else self._table_at(ctx.table, path)
        self.reject_tables[table] += 1
        key_field = ctx.key_field
        if key_field is None:
            key_field = ctx.key_field = quote(self.item_key(ctx.item))
        head = ",".join(
            [
                quote(table),
                key_field,
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
