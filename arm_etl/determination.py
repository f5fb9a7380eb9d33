"""Data-schema determination over one parallel-scan segment (the per-segment half of the flow)."""

from __future__ import annotations

from typing import Any

from arm_etl.config import SegmentId
from arm_etl.dataschema import DataSchema
from arm_etl.extract import SegmentScanner
from arm_etl.inference import Partial, infer
from arm_etl.routing import Router, RoutingRule

DEFAULT_NESTED = "relational"


def infer_segment(
    client: Any, table: str, segment: int, total: int, router: Router, page_limit: int | None = None
) -> Partial:
    """Scan a whole segment and return its partial inference; memory is one page at a time."""
    scanner = SegmentScanner(client, SegmentId(table, segment, total), page_limit=page_limit)
    partial = Partial()
    key: dict[str, Any] | None = None
    while True:
        page = scanner.page(key)
        partial = partial.merge(infer(page.items, router))
        key = page.last_key
        if key is None:
            return partial


def parse_rules(routing: list[str | dict[str, Any]] | None) -> list[RoutingRule]:
    """Rules as the CLI writes them (``sk:#``, ``kind``) or as a data-schema stores them (JSON objects)."""
    return [RoutingRule.parse(r) if isinstance(r, str) else RoutingRule.from_json(r) for r in routing or ()]


def settings(
    previous: DataSchema | None, routing: list[str | dict[str, Any]] | None, nested: str | None
) -> tuple[list[RoutingRule], str]:
    """The routing rules and nesting of a determination: what the run gives, else the cached data-schema's.

    A weekly schedule passes neither, so a table set up with ``--route 'sk:#'`` keeps its routing (and its
    ``super`` nesting) every week; an explicit empty list clears the rules.
    """
    rules = parse_rules(routing) if routing is not None else list(previous.routing) if previous else []
    mode = nested if nested is not None else previous.nested if previous else DEFAULT_NESTED
    return rules, mode
