"""The path trees a :class:`~arm_etl.transform.Transformer` walks: one per route, compiled once per data-schema.

Each node is an attribute path (``None`` as a segment: the elements of the list there) with the column
and the child table found at it, so a row is built by walking the item's maps against the tree instead
of looking every path up in the data-schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from arm_etl.csvformat import CsvDialect
from arm_etl.dataschema import DataSchema, Table
from arm_etl.encoders import Encoder, compiled_kind, encoder_for


@dataclass(slots=True)
class _Col:
    """A column at a path: its slot in the row, its encoder, and whether it is SUPER (takes maps and lists)."""

    slot: int
    enc: Encoder
    is_super: bool
    kind: tuple[int, int, int] = (0, 0, 0)  # encoders.compiled_kind of its type (read by the compiled walk)


@dataclass(slots=True)
class Plan:
    """One table's row layout; ``no`` is its place in a batch's lines (``lines[no]``: this table's CSV lines)."""

    no: int
    table: Table
    ncols: int
    key_slots: list[int]
    idx_slots: list[int]


@dataclass(eq=False, slots=True)
class PathNode:
    """One attribute path of a route's tree: the column there, the paths below it, the child table of a list."""

    col: _Col | None = None
    children: dict[str | None, PathNode] = field(default_factory=dict)
    list_plan: Plan | None = None
    # Compiled once the trie is complete (``_compile``):
    spath: tuple[str | None, ...] = ()  # path from the item root; None = "an element of the list here"
    fast_enc: Encoder | None = None  # encoder of a plain (non-SUPER) column here
    fast_slot: int = -1
    yields_rows: bool = False  # a child-table row can come from a value here (a list plan at or under it)
    row_children: dict[str, PathNode] = field(default_factory=dict)  # the children that can yield rows
    element: PathNode | None = None  # the list element's node (an empty one where the data-schema has none)


def build_trees(schema: DataSchema, dialect: CsvDialect) -> tuple[dict[str, tuple[PathNode, Plan]], dict[str, Plan]]:
    """The compiled tree and root plan of every route, and the plan of every table by name."""
    roots: dict[str, tuple[PathNode, Plan]] = {}
    plans: dict[str, Plan] = {}
    encoders: dict[str, Encoder] = {}
    for table in schema.tables:
        cols = table.columns
        slot = {c.name: i for i, c in enumerate(cols)}
        plan = Plan(
            len(plans),
            table,
            len(cols),
            [slot[k] for k in table.key_columns],
            [i for i, c in enumerate(cols) if c.path is None],
        )
        plans[table.name] = plan
        if table.parent is None:
            roots[table.route] = (PathNode(), plan)
    for table in schema.tables:
        trie, _ = roots[table.route]
        plan = plans[table.name]
        if table.parent is not None:
            _node(trie, table.path).list_plan = plan
        for i, c in enumerate(table.columns):
            if c.path is None or (table.parent is not None and c.name in table.key_columns):
                continue
            enc = encoders.get(c.type)
            if enc is None:
                enc = encoders[c.type] = encoder_for(c.type, dialect)
            _node(trie, c.path).col = _Col(i, enc, c.type == "SUPER", compiled_kind(c.type))
    for trie, _ in roots.values():
        _compile(trie, ())
    return roots, plans


def _node(trie: PathNode, path: tuple[str | None, ...]) -> PathNode:
    """The node at ``path``, created (with its ancestors) where missing."""
    node = trie
    for seg in path:
        nxt = node.children.get(seg)
        if nxt is None:
            nxt = node.children[seg] = PathNode()
        node = nxt
    return node


def _compile(node: PathNode, spath: tuple[str | None, ...]) -> bool:
    """Fill the compiled fields of ``node`` and below; returns ``node.yields_rows``."""
    node.spath = spath
    col = node.col
    if col is not None and not col.is_super:
        node.fast_enc, node.fast_slot = col.enc, col.slot
    for key, child in node.children.items():
        below = _compile(child, (*spath, key))
        if key is not None and below:
            node.row_children[key] = child
    if node.list_plan is not None:
        element = node.children.get(None)
        if element is None:
            element = PathNode()
            _compile(element, (*spath, None))
        node.element = element
    node.yields_rows = not (col is not None and col.is_super) and (
        node.list_plan is not None or bool(node.row_children)
    )
    return node.yields_rows
