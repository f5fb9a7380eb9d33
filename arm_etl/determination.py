"""Data-schema determination over one parallel-scan segment (the per-segment half of the flow)."""

from __future__ import annotations

from typing import Any

from arm_etl.extract import SegmentScanner
from arm_etl.inference import Partial, infer
from arm_etl.routing import Router


def infer_segment(
    client: Any, table: str, segment: int, total: int, router: Router, page_limit: int | None = None
) -> Partial:
    """Scan a whole segment and return its partial inference; memory is one page at a time."""
    scanner = SegmentScanner(client, table, segment, total, page_limit=page_limit)
    partial = Partial()
    key: dict[str, Any] | None = None
    while True:
        page = scanner.page(key)
        partial = partial.merge(infer(page.items, router))
        key = page.last_key
        if key is None:
            return partial
