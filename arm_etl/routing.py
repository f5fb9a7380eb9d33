"""Routing: which data-schema an item belongs to. Nothing is dropped: no rule matching → the default."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from arm_etl.names import fold


@dataclass(frozen=True)
class RoutingRule:
    """Route by a string attribute: the text before ``separator`` (``sk = FIN#12`` → ``fin``), or the whole
    value when ``separator`` is None (a type attribute). ``names`` optionally renames matched values."""

    attribute: str
    separator: str | None = None
    names: dict[str, str] = field(default_factory=dict)

    def route(self, item: dict[str, Any]) -> str | None:
        av = item.get(self.attribute)
        if not av or "S" not in av:
            return None
        value: str = av["S"]
        if self.separator is not None:
            head, sep, _ = value.partition(self.separator)
            if not sep or not head:
                return None
            value = head
        if not value:
            return None
        return fold(self.names.get(value, value))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"attribute": self.attribute, "separator": self.separator}
        if self.names:
            out["names"] = dict(self.names)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RoutingRule:
        return cls(data["attribute"], data.get("separator"), dict(data.get("names") or {}))

    @classmethod
    def parse(cls, spec: str) -> RoutingRule:
        """CLI form: ``sk:#`` (prefix of ``sk`` before ``#``) or ``kind`` (value of ``kind``)."""
        attribute, sep, separator = spec.partition(":")
        if not attribute:
            raise ValueError(f"routing rule {spec!r}: expected ATTRIBUTE or ATTRIBUTE:SEPARATOR")
        return cls(attribute, separator if sep else None)


class Router:
    """Applies rules in order; the first match wins, else the source table's own data-schema."""

    def __init__(self, source_table: str, rules: list[RoutingRule]):
        self.default = fold(source_table)
        self.rules = rules

    def route(self, item: dict[str, Any]) -> str:
        for rule in self.rules:
            name = rule.route(item)
            if name is not None:
                return name
        return self.default
