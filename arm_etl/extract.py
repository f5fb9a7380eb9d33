"""Extract: one parallel-scan segment, page by page, through the low-level DynamoDB client.

botocore's Scan parser walks every attribute of every item (~80% of a scan's CPU) and turns numbers
into Decimal. A ``before-parse`` hook keeps the raw ``Items`` of a 200 response (decoded once with
orjson, numbers as their exact text, binary as base64) and hands the parser the body without them;
errors still parse normally, so botocore keeps signing, retries and error classes.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from botocore.exceptions import ClientError, EndpointConnectionError

from arm_etl.config import SegmentId
from arm_etl.errors import ArmEtlError, is_transient

log = logging.getLogger("arm_etl.extract")

THROTTLE_CODES = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"})
RAW_ITEMS = "ArmEtlRawItems"


class ExtractError(ArmEtlError):
    """The source table cannot be read (missing, unreachable, or throttled beyond the wait budget)."""


def _keep_raw_items(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    if response_dict.get("status_code") != 200:
        return
    body = response_dict.get("body") or b"{}"
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = json.loads(body)  # lone surrogates: stdlib accepts them; the transform rejects the value
    customized_response_dict[RAW_ITEMS] = doc.pop("Items", [])
    response_dict["body"] = orjson.dumps(doc)


def install_raw_scan(client: Any) -> Any:
    """Make ``client.scan`` return wire-form items under ``ArmEtlRawItems`` (idempotent per client)."""
    if not getattr(client, "_arm_etl_raw_scan", False):
        client.meta.events.register("before-parse.dynamodb.Scan", _keep_raw_items)
        client._arm_etl_raw_scan = True
    return client


def describe_table(client: Any, table: str) -> dict[str, Any]:
    """DescribeTable's ``Table`` description; a missing or unreachable table is an :class:`ExtractError`
    naming the table, endpoint and region."""
    try:
        desc: dict[str, Any] = client.describe_table(TableName=table)["Table"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise ExtractError(
                f"DynamoDB table {table!r} not found at {client.meta.endpoint_url} (region {client.meta.region_name})"
            ) from None
        raise ExtractError(f"DynamoDB table {table!r}: {exc}", transient=is_transient(exc)) from exc
    except EndpointConnectionError as exc:
        raise ExtractError(f"DynamoDB endpoint unreachable for table {table!r}: {exc}", transient=True) from None
    return desc


def describe_keys(client: Any, table: str) -> tuple[list[str], int]:
    """Key attribute names (hash first) and DynamoDB's approximate item count; clear error if missing."""
    desc = describe_table(client, table)
    keys = sorted(desc["KeySchema"], key=lambda k: 0 if k["KeyType"] == "HASH" else 1)
    return [k["AttributeName"] for k in keys], int(desc.get("ItemCount") or 0)


@dataclass
class Page:
    items: list[dict[str, Any]]
    last_key: dict[str, Any] | None
    scanned: int


@dataclass
class Throttle:
    """Backoff on throttling: same ``ExclusiveStartKey`` again, exponential with jitter, total bounded."""

    base_s: float = 0.05
    cap_s: float = 5.0
    budget_s: float = 600.0
    waited_s: float = 0.0
    events: int = 0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def wait(self, attempt: int, table: str, segment: int, code: str) -> None:
        delay = min(self.cap_s, self.base_s * (2**attempt)) * (0.5 + random.random() / 2)
        if self.waited_s + delay > self.budget_s:
            raise ExtractError(
                f"table {table!r} segment {segment}: still throttled ({code}) after waiting "
                f"{self.waited_s:.1f}s (budget {self.budget_s:.0f}s); raise read capacity or the budget"
            )
        self.events += 1
        self.waited_s += delay
        log.warning(
            "table %s segment %d throttled (%s): retrying the same page in %.2fs (waited %.1fs so far)",
            table,
            segment,
            code,
            delay,
            self.waited_s,
        )
        self.sleep(delay)


class SegmentScanner:
    """Scans one segment of a parallel scan; each call returns one page from a given position."""

    def __init__(
        self,
        client: Any,
        identity: SegmentId,
        page_limit: int | None = None,
        throttle: Throttle | None = None,
    ):
        self.client = install_raw_scan(client)
        self.identity = identity
        self.page_limit = page_limit
        self.throttle = throttle or Throttle()

    def page(self, start_key: dict[str, Any] | None) -> Page:
        seg = self.identity
        kwargs: dict[str, Any] = {"TableName": seg.table, "Segment": seg.segment, "TotalSegments": seg.total}
        if self.page_limit:
            kwargs["Limit"] = self.page_limit
        if start_key:
            kwargs["ExclusiveStartKey"] = start_key
        attempt = 0
        while True:
            try:
                resp = self.client.scan(**kwargs)
                break
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code in THROTTLE_CODES:
                    self.throttle.wait(attempt, seg.table, seg.segment, code)
                    attempt += 1
                    continue
                if code == "ResourceNotFoundException":
                    raise ExtractError(f"DynamoDB table {seg.table!r} not found") from None
                raise
        items = resp.get(RAW_ITEMS)
        if items is None:  # hook not applied (e.g. a stubbed client): fall back to parsed items
            items = resp.get("Items", [])
        return Page(items, resp.get("LastEvaluatedKey"), int(resp.get("ScannedCount", len(items))))

    def chunk(
        self, start_key: dict[str, Any] | None, pages: int
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None, int]:
        """Up to ``pages`` pages from ``start_key``: (items, position after them or None at the end, scanned)."""
        items: list[dict[str, Any]] = []
        scanned = 0
        key = start_key
        for _ in range(pages):
            page = self.page(key)
            items.extend(page.items)
            scanned += page.scanned
            key = page.last_key
            if key is None:
                break
        return items, key, scanned
