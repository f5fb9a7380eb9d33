"""Data-schema inference: items → mergeable partial results → one data-schema per routed table.

A :class:`Partial` holds, per route, a tree of :class:`Node` statistics (scalar values, map keys, list
elements at each path). Partials merge associatively and commutatively, so every segment can infer on
its own machine and the results combine in any order. :func:`finalize` turns the merged tree into
tables (flattened maps, child tables for lists and sets, or SUPER columns) with normalized names.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from arm_etl.dataschema import (
    METADATA_COLUMNS,
    RESERVED_TABLES,
    Column,
    DataSchema,
    DataSchemaError,
    Path,
    Table,
    content_hash,
    make_version,
)
from arm_etl.dynamodb_json import SET_TAGS
from arm_etl.lattice import ScalarStats
from arm_etl.names import REDSHIFT_MAX_BYTES, SYSTEM_COLUMNS, assign_unique, fold, path_name
from arm_etl.routing import Router, RoutingRule

NESTED_MODES = ("relational", "super")


@dataclass
class Node:
    """Statistics at one path: its scalar values, its map keys, and its list/set elements."""

    scalar: ScalarStats | None = None
    children: dict[str, Node] = field(default_factory=dict)
    element: Node | None = None
    maps: int = 0
    lists: int = 0

    def observe(self, av: dict[str, Any]) -> None:
        """Add one DynamoDB attribute value in wire form (``{"S": "x"}``, ``{"M": {...}}``, …)."""
        for tag, value in av.items():
            if tag == "M":
                self.maps += 1
                children = self.children
                for key, sub in value.items():
                    child = children.get(key)
                    if child is None:
                        child = children[key] = Node()
                    child.observe(sub)
            elif tag == "L":
                self.lists += 1
                if value:
                    element = self._element()
                    for sub in value:
                        element.observe(sub)
            elif tag in SET_TAGS:
                self.lists += 1
                if value:
                    stats = self._element()._scalar()
                    scalar_tag = SET_TAGS[tag]
                    for sub in value:
                        stats.add(scalar_tag, sub)
            else:
                self._scalar().add(tag, value)

    def _scalar(self) -> ScalarStats:
        if self.scalar is None:
            self.scalar = ScalarStats()
        return self.scalar

    def _element(self) -> Node:
        if self.element is None:
            self.element = Node()
        return self.element

    def merge(self, other: Node) -> Node:
        out = Node(maps=self.maps + other.maps, lists=self.lists + other.lists)
        if self.scalar is None or other.scalar is None:
            out.scalar = self.scalar or other.scalar
        else:
            out.scalar = self.scalar.merge(other.scalar)
        if self.element is None or other.element is None:
            out.element = self.element or other.element
        else:
            out.element = self.element.merge(other.element)
        for key in self.children.keys() | other.children.keys():
            a, b = self.children.get(key), other.children.get(key)
            out.children[key] = a.merge(b) if a is not None and b is not None else (a or b)  # type: ignore[assignment]
        return out

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.scalar is not None:
            out["s"] = self.scalar.to_json()
        if self.children:
            out["c"] = {k: v.to_json() for k, v in self.children.items()}
        if self.element is not None:
            out["e"] = self.element.to_json()
        if self.maps:
            out["m"] = self.maps
        if self.lists:
            out["l"] = self.lists
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Node:
        return cls(
            scalar=ScalarStats.from_json(d["s"]) if "s" in d else None,
            children={k: cls.from_json(v) for k, v in (d.get("c") or {}).items()},
            element=cls.from_json(d["e"]) if "e" in d else None,
            maps=d.get("m", 0),
            lists=d.get("l", 0),
        )


@dataclass
class Partial:
    """Inference over some items: per route, the root :class:`Node` and the number of items."""

    roots: dict[str, Node] = field(default_factory=dict)
    items: dict[str, int] = field(default_factory=dict)

    def merge(self, other: Partial) -> Partial:
        out = Partial()
        for route in self.roots.keys() | other.roots.keys():
            a, b = self.roots.get(route), other.roots.get(route)
            out.roots[route] = a.merge(b) if a is not None and b is not None else (a or b)  # type: ignore[assignment]
            out.items[route] = self.items.get(route, 0) + other.items.get(route, 0)
        return out

    @property
    def items_scanned(self) -> int:
        return sum(self.items.values())

    def to_json(self) -> dict[str, Any]:
        return {"roots": {k: v.to_json() for k, v in self.roots.items()}, "items": dict(self.items)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Partial:
        return cls({k: Node.from_json(v) for k, v in d["roots"].items()}, dict(d["items"]))


def infer(items: Iterable[dict[str, Any]], router: Router) -> Partial:
    """Partial inference over ``items`` (wire-form DynamoDB items)."""
    partial = Partial()
    roots, counts = partial.roots, partial.items
    for item in items:
        route = router.route(item)
        root = roots.get(route)
        if root is None:
            root = roots[route] = Node()
            counts[route] = 0
        counts[route] += 1
        root.observe({"M": item})
    for root in roots.values():
        root.maps = 0  # the item itself is not a map attribute
    return partial


def merge_all(partials: Iterable[Partial]) -> Partial:
    out = Partial()
    for p in partials:
        out = out.merge(p)
    return out


# --------------------------------------------------------------------------------------------------
# finalize: tree → tables


@dataclass
class _PendingTable:
    route: str
    parent: _PendingTable | None
    path: Path  # absolute path of the list (root: ())
    rel: Path  # path of the list relative to the parent's element (root: ())
    node: Node  # root node, or the list's element node
    name: str = ""


def _walk(node: Node, rel: Path, super_mode: bool, at_root: bool) -> Iterable[tuple[str, Path, Any]]:
    """Yield ("col", rel, type) and ("list", rel, element) for everything under ``node``."""
    if super_mode and at_root and rel and (node.children or node.element is not None or node.maps or node.lists):
        yield ("col", rel, "SUPER")
        return
    if rel and node.scalar is not None and node.scalar.values + node.scalar.nulls:
        yield ("col", rel, node.scalar.column_type())
    for key in sorted(node.children):
        yield from _walk(node.children[key], (*rel, key), super_mode, at_root=False)
    if rel and node.element is not None:
        yield ("list", rel, node.element)


def finalize(
    partial: Partial,
    source_table: str,
    key_attributes: Sequence[str],
    routing: Sequence[RoutingRule] = (),
    nested: str = "relational",
    name_limit: int = REDSHIFT_MAX_BYTES,
    now: datetime | None = None,
) -> DataSchema:
    """Turn merged statistics into the data-schema document for ``source_table``."""
    if nested not in NESTED_MODES:
        raise DataSchemaError(f"nested must be one of {NESTED_MODES}, not {nested!r}")
    super_mode = nested == "super"
    if not key_attributes:
        raise DataSchemaError(f"table {source_table!r}: no key attributes given")

    pending: list[_PendingTable] = [
        _PendingTable(route, None, (), (), partial.roots[route]) for route in sorted(partial.roots)
    ]
    # Discover child tables breadth-first so names are assigned parents-first.
    level = list(pending)
    while level:
        nxt: list[_PendingTable] = []
        for table in level:
            element_prefix = table.path if table.parent is None else (*table.path, None)
            for kind, rel, payload in _walk_element(table.node, super_mode and table.parent is None):
                if kind == "list":
                    child = _PendingTable(table.route, table, (*element_prefix, *rel), rel, payload)
                    nxt.append(child)
        pending.extend(nxt)
        level = nxt

    # Table names: roots, then each depth, unique across the whole document.
    used: set[str] = set(RESERVED_TABLES)
    depth_groups: dict[int, list[_PendingTable]] = {}
    for t in pending:
        depth_groups.setdefault(_depth(t), []).append(t)
    for depth in sorted(depth_groups):
        group = depth_groups[depth]
        candidates = []
        for t in group:
            if t.parent is None:
                original, folded = t.route, fold(t.route)
            else:
                rel_original, rel_folded = path_name(t.rel)
                original = f"{t.parent.name}.{rel_original}"
                folded = f"{t.parent.name}__{rel_folded}"
            candidates.append((_identity(t), original, folded))
        names = assign_unique(candidates, name_limit, reserved=used)
        for t in group:
            t.name = names[_identity(t)]
            used.add(t.name)

    tables: list[Table] = []
    root_keys: dict[str, list[Column]] = {}
    for t in pending:
        tables.append(_build_table(t, key_attributes, super_mode, name_limit, root_keys, source_table))

    routing_t = tuple(routing)
    tables_t = tuple(tables)
    now = now or datetime.now().astimezone()
    return DataSchema(
        source_table=source_table,
        version=make_version(now, content_hash(tables_t, nested, routing_t)),
        created_at=now.isoformat(timespec="seconds"),
        items_scanned=partial.items_scanned,
        nested=nested,
        routing=routing_t,
        key_attributes=tuple(key_attributes),
        tables=tables_t,
        name_limit=name_limit,
    )


def _identity(t: _PendingTable) -> tuple[str, tuple[str, ...]]:
    """A stable, comparable identity of a table (route and list path), so name ties never depend on memory."""
    return (t.route, tuple("\x00" if s is None else s for s in t.path))


def _walk_element(node: Node, root_super: bool) -> Iterable[tuple[str, Path, Any]]:
    """Columns and lists of one row source: the item (root) or one list element."""
    if node.scalar is not None and node.scalar.values + node.scalar.nulls:
        yield ("col", (), node.scalar.column_type())
    for key in sorted(node.children):
        yield from _walk(node.children[key], (key,), root_super, at_root=True)
    if node.element is not None:
        yield ("list", (), node.element)


def _depth(t: _PendingTable) -> int:
    d = 0
    p = t.parent
    while p is not None:
        d += 1
        p = p.parent
    return d


def _build_table(
    t: _PendingTable,
    key_attributes: Sequence[str],
    super_mode: bool,
    limit: int,
    root_keys: dict[str, list[Column]],
    source_table: str,
) -> Table:
    depth = _depth(t)
    element_prefix: Path = t.path if t.parent is None else (*t.path, None)
    data = [(rel, typ) for kind, rel, typ in _walk_element(t.node, super_mode and t.parent is None) if kind == "col"]
    if t.parent is None:
        # The root's own scalar (rel ()) cannot occur: an item is always a map.
        names = assign_unique(
            [(rel, *path_name(rel)) for rel, _ in data],
            limit,
            reserved=[*SYSTEM_COLUMNS, *(n for n, _ in METADATA_COLUMNS)],
        )
        columns = [Column(names[rel], (*element_prefix, *rel), typ) for rel, typ in data]
        by_path = {c.path: c for c in columns}
        keys = []
        for attr in key_attributes:
            col = by_path.get((attr,))
            if col is None:
                raise DataSchemaError(
                    f"table {source_table!r}: key attribute {attr!r} missing from data-schema {t.route!r}"
                )
            keys.append(Column(col.name, col.path, col.type, nullable=False))
        root_keys[t.route] = keys
        key_names = {k.name for k in keys}
        ordered = keys + sorted((c for c in columns if c.name not in key_names), key=lambda c: c.name)
        return Table(t.name, None, t.route, (), tuple(k.name for k in keys), tuple(ordered))

    keys = root_keys[t.route]
    idx_names = [f"_idx{i}" for i in range(depth - 1)] + ["_idx"]
    reserved = [k.name for k in keys] + idx_names + [n for n, _ in METADATA_COLUMNS] + sorted(SYSTEM_COLUMNS)
    names = assign_unique([(rel, *path_name(rel)) for rel, _ in data], limit, reserved=reserved)
    columns = [Column(names[rel], (*element_prefix, *rel), typ) for rel, typ in data]
    ordered = (
        list(keys)
        + [Column(n, None, "INTEGER", nullable=False) for n in idx_names]
        + sorted(columns, key=lambda c: c.name)
    )
    assert t.parent is not None
    return Table(t.name, t.parent.name, t.route, t.path, tuple(k.name for k in keys), tuple(ordered))
