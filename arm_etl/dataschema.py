"""The data-schema document: tables, columns and types per routed table, versioned JSON (DESIGN.md "Formats").

Column paths are absolute from the item root; ``None`` in a path stands for "each element of the list
here" (the rejects table records the actual positions instead). Synthetic columns (``_idx…``) have no path.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from arm_etl.errors import ArmEtlError
from arm_etl.routing import RoutingRule

FORMAT = 1
Path = tuple[str | None, ...]

#: Present on every table, after the data-schema's own columns (not listed in the document).
METADATA_COLUMNS: tuple[tuple[str, str], ...] = (("_segment", "INTEGER"), ("_extracted_at", "TIMESTAMPTZ"))
REJECTS_TABLE = "_etl_rejects"
#: Bookkeeping tables arm-etl adds to redshift-schemas; no data table may take these names.
RESERVED_TABLES = frozenset({REJECTS_TABLE, "_etl_segment", "_etl_merged"})
REJECTS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("table_name", "VARCHAR(512)"),
    ("item_key", "VARCHAR(65535)"),
    ("column_path", "VARCHAR(65535)"),
    ("reason", "VARCHAR(32)"),
    ("chunk_no", "INTEGER"),
    ("chunk", "VARCHAR(65535)"),
)


class DataSchemaError(ArmEtlError):
    """A data-schema document is missing, malformed or does not fit the data."""


@dataclass(frozen=True)
class Column:
    name: str
    path: Path | None
    type: str
    nullable: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": list(self.path) if self.path is not None else None,
            "type": self.type,
            "nullable": self.nullable,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Column:
        path = d.get("path")
        return cls(d["name"], tuple(path) if path is not None else None, d["type"], bool(d.get("nullable", True)))


@dataclass(frozen=True)
class Table:
    """One warehouse table. ``path`` is where its rows come from: ``()`` for the item, else a list's path."""

    name: str
    parent: str | None
    route: str
    path: Path
    key_columns: tuple[str, ...]
    columns: tuple[Column, ...]

    @property
    def depth(self) -> int:
        """Number of list levels between the item and a row of this table (0 for a root table)."""
        return 0 if self.parent is None else sum(1 for s in self.path if s is None) + 1

    def column_types(self) -> list[tuple[str, str]]:
        """(name, Redshift type) of every warehouse column, metadata included, in load order."""
        return [(c.name, c.type) for c in self.columns] + list(METADATA_COLUMNS)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "parent": self.parent,
            "route": self.route,
            "path": list(self.path),
            "key_columns": list(self.key_columns),
            "columns": [c.to_json() for c in self.columns],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Table:
        return cls(
            d["name"],
            d.get("parent"),
            d.get("route") or d["name"],
            tuple(d.get("path") or ()),
            tuple(d.get("key_columns") or ()),
            tuple(Column.from_json(c) for c in d["columns"]),
        )


@dataclass(frozen=True)
class DataSchema:
    source_table: str
    version: str
    created_at: str
    items_scanned: int
    nested: str
    routing: tuple[RoutingRule, ...]
    key_attributes: tuple[str, ...]
    tables: tuple[Table, ...]
    name_limit: int = 127
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def table(self, name: str) -> Table:
        for t in self.tables:
            if t.name == name:
                return t
        raise DataSchemaError(f"data-schema {self.version} of {self.source_table!r} has no table {name!r}")

    @property
    def routes(self) -> list[str]:
        return [t.name for t in self.tables if t.parent is None]

    def warehouse_tables(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """Every warehouse table of this data-schema, ``_etl_rejects`` included, with (column, type) pairs."""
        tables = [(t.name, t.column_types()) for t in self.tables]
        tables.append((REJECTS_TABLE, list(REJECTS_COLUMNS) + list(METADATA_COLUMNS)))
        return tables

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "source_table": self.source_table,
            "version": self.version,
            "created_at": self.created_at,
            "items_scanned": self.items_scanned,
            "nested": self.nested,
            "routing": [r.to_json() for r in self.routing],
            "key_attributes": list(self.key_attributes),
            "name_limit": self.name_limit,
            "tables": [t.to_json() for t in self.tables],
            **self.extra,
        }

    def dumps(self) -> bytes:
        return orjson.dumps(self.to_json(), option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DataSchema:
        if d.get("format") != FORMAT:
            raise DataSchemaError(f"unsupported data-schema format {d.get('format')!r} (expected {FORMAT})")
        known = {
            "format",
            "source_table",
            "version",
            "created_at",
            "items_scanned",
            "nested",
            "routing",
            "key_attributes",
            "name_limit",
            "tables",
        }
        return cls(
            source_table=d["source_table"],
            version=d["version"],
            created_at=d["created_at"],
            items_scanned=int(d["items_scanned"]),
            nested=d.get("nested", "relational"),
            routing=tuple(RoutingRule.from_json(r) for r in d.get("routing") or ()),
            key_attributes=tuple(d.get("key_attributes") or ()),
            tables=tuple(Table.from_json(t) for t in d["tables"]),
            name_limit=int(d.get("name_limit", 127)),
            extra={k: v for k, v in d.items() if k not in known},
        )

    @classmethod
    def loads(cls, data: bytes | str, origin: str = "data-schema") -> DataSchema:
        try:
            return cls.from_json(orjson.loads(data))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise DataSchemaError(f"{origin}: not a valid data-schema document: {exc}") from exc


def content_hash(tables: tuple[Table, ...], nested: str, routing: tuple[RoutingRule, ...]) -> str:
    """8 hex of the structure, so the same inferred structure always gets the same version suffix."""
    body = orjson.dumps(
        {"tables": [t.to_json() for t in tables], "nested": nested, "routing": [r.to_json() for r in routing]},
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(body).hexdigest()[:8]


def make_version(now: datetime, digest: str) -> str:
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + digest


def diff(old: DataSchema | None, new: DataSchema) -> list[str]:
    """Human-readable changes from ``old`` to ``new``: tables and columns added, removed or retyped."""
    if old is None:
        return [f"first version: {len(new.tables)} tables"]
    lines: list[str] = []
    old_tables = {t.name: t for t in old.tables}
    new_tables = {t.name: t for t in new.tables}
    for name in sorted(new_tables.keys() - old_tables.keys()):
        lines.append(f"table added: {name} ({len(new_tables[name].columns)} columns)")
    for name in sorted(old_tables.keys() - new_tables.keys()):
        lines.append(f"table removed: {name}")
    for name in sorted(new_tables.keys() & old_tables.keys()):
        oc = {c.name: c for c in old_tables[name].columns}
        nc = {c.name: c for c in new_tables[name].columns}
        for col in sorted(nc.keys() - oc.keys()):
            lines.append(f"column added: {name}.{col} {nc[col].type}")
        for col in sorted(oc.keys() - nc.keys()):
            lines.append(f"column removed: {name}.{col}")
        for col in sorted(nc.keys() & oc.keys()):
            if nc[col].type != oc[col].type:
                lines.append(f"column retyped: {name}.{col} {oc[col].type} → {nc[col].type}")
    return lines or ["no structural change"]
