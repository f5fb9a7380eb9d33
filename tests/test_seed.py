"""Tests for arm_etl.seed: determinism, stable prefixes, unique keys, awkward coverage, moto round trip."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from arm_etl.seed import (
    AWKWARD_CLASSES,
    AWKWARD_PERIOD,
    KEY_SCHEMA,
    create_table,
    generate_items,
    seed_table,
)

Item = dict[str, dict[str, Any]]

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def walk(value: dict[str, Any], path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], str, Any]]:
    """Yield (path, type tag, raw value) for every typed value, nested ones included."""
    ((tag, raw),) = value.items()
    yield path, tag, raw
    if tag == "M":
        for k, v in raw.items():
            yield from walk(v, (*path, k))
    elif tag == "L":
        for idx, v in enumerate(raw):
            yield from walk(v, (*path, idx))


def all_values(items: list[Item]) -> list[tuple[tuple[str | int, ...], str, Any]]:
    return [triple for item in items for name, v in item.items() for triple in walk(v, (name,))]


def strings(items: list[Item]) -> list[str]:
    out: list[str] = []
    for _, tag, raw in all_values(items):
        if tag == "S":
            out.append(raw)
        elif tag == "SS":
            out.extend(raw)
    return out


def numbers(items: list[Item]) -> list[str]:
    out: list[str] = []
    for _, tag, raw in all_values(items):
        if tag == "N":
            out.append(raw)
        elif tag == "NS":
            out.extend(raw)
    return out


def map_depth(value: dict[str, Any]) -> int:
    ((tag, raw),) = value.items()
    if tag != "M" or not raw:
        return 0
    return 1 + max(map_depth(v) for v in raw.values())


def item_size(item: Item) -> int:
    """A conservative size: names plus values as JSON (binary as hex, i.e. twice its real size)."""
    return len(json.dumps(item, default=lambda b: b.hex(), ensure_ascii=False).encode("utf-8"))


def test_deterministic_for_same_seed_and_different_across_seeds() -> None:
    assert list(generate_items(120, seed=7)) == list(generate_items(120, seed=7))
    assert list(generate_items(120, seed=7)) != list(generate_items(120, seed=8))
    assert list(generate_items(120)) == list(generate_items(120, seed=0))


def test_prefix_is_stable() -> None:
    for seed in (0, 3):
        assert list(generate_items(10, seed)) == list(generate_items(100, seed))[:10]
    assert list(generate_items(0)) == []


def test_keys_unique_and_strings() -> None:
    items = list(generate_items(500, seed=1))
    keys = [(it["pk"]["S"], it["sk"]["S"]) for it in items]
    assert len(set(keys)) == 500
    for it in items:
        assert set(KEY_SCHEMA) <= set(it)
        assert all(list(it[k]) == ["S"] and it[k]["S"] for k in KEY_SCHEMA)


def test_kinds_and_key_prefixes() -> None:
    items = list(generate_items(50))
    prefixes = {
        "org": "ORG#",
        "group": "GROUP#",
        "finding": "FIN#",
        "vulnerability": "VULN#",
        "event": "EVENT#",
    }
    assert {it["kind"]["S"] for it in items} == set(prefixes)
    for it in items:
        assert it["pk"]["S"].startswith("ORG#")
        assert it["sk"]["S"].startswith(prefixes[it["kind"]["S"]])


def test_timestamp_date_and_severity_attributes() -> None:
    items = list(generate_items(200))
    for it in items:
        assert list(it["created_at"]) == ["S"] and RFC3339.match(it["created_at"]["S"])
        if "report_date" in it:
            assert DATE.match(it["report_date"]["S"])
    created = {it["created_at"]["S"][19:] for it in items}
    assert any(c == "Z" for c in created)
    assert any(re.fullmatch(r"\.\d{6}\+05:30", c) for c in created)
    severity_types = {next(iter(it["severity"])) for it in items if "severity" in it}
    assert severity_types == {"N", "S"}
    last_seen = [it["last_seen"]["S"] for it in items if "last_seen" in it]
    assert any(DATE.match(v) for v in last_seen) and any(RFC3339.match(v) for v in last_seen)


def test_every_awkward_class_in_first_50_items() -> None:
    assert len(AWKWARD_CLASSES) == AWKWARD_PERIOD <= 50
    items = list(generate_items(50))
    values = all_values(items)
    tags = {tag for _, tag, _ in values}
    strs = strings(items)
    nums = numbers(items)
    names = {name for it in items for name in it}

    # strings
    assert any("\r\n" in s and '"' in s and "," in s and "\\" in s for s in strs)
    assert "a\r\nb" in strs
    assert "\\N" in strs
    assert "" in strs
    assert any(any(ord(ch) > 0xFFFF for ch in s) for s in strs)
    assert "𝄞" in "".join(strs)
    assert any("\x00" in s for s in strs)
    long_strings = [s for s in strs if len(s.encode("utf-8")) > 65535]
    assert long_strings and all(len(s) <= 65535 for s in long_strings)  # bytes, not characters, overflow
    # numbers
    assert "12345678901234567890.123456789012345678" in nums
    assert {"1E+125", "-1E-130"} <= set(nums)
    assert {"9223372036854775808", "-99999999999999999999"} <= set(nums)
    assert {"9223372036854775807", "-9223372036854775808"} <= set(nums)
    # other scalars and containers
    assert {"BOOL", "NULL", "B", "SS", "NS", "BS", "M", "L"} <= tags
    assert any(tag == "B" and raw == b"" for _, tag, raw in values)
    assert any(tag == "B" and b"\x00" in raw for _, tag, raw in values)
    assert all(raw for _, tag, raw in values if tag in ("SS", "NS", "BS"))
    assert any(map_depth(it["info"]) >= 4 for it in items if "info" in it)  # info.a.b.c.d
    assert any(path[-4:] == ("a", "b", "c", "d") and path[0] == "info" for path, _, _ in values if len(path) == 5)
    assert any(tag == "M" and raw == {} for _, tag, raw in values)
    assert any(tag == "L" and raw == [] for _, tag, raw in values)
    assert any(tag == "L" and raw and all("M" in e for e in raw) for _, tag, raw in values)
    assert any(tag == "L" and raw and all("L" in e for e in raw) for _, tag, raw in values)
    # a list inside a list element's map (grandchild table)
    assert any(len(path) == 3 and isinstance(path[1], int) and tag == "L" for path, tag, _ in values)
    assert any(tag == "L" and len({next(iter(e)) for e in raw}) > 2 for _, tag, raw in values)
    # attribute names
    assert {"due date", "risk-level", "3rd_party", 'weird"name', "select", "order", "group", "user"} <= names
    assert any("Price" in it and "price" in it for it in items)
    assert any(len(n.encode("utf-8")) > 63 for n in names)


def test_long_strings_every_80_and_exact_limit_within_80() -> None:
    items = list(generate_items(80))
    lengths = sorted(len(it["evidence"]["S"].encode("utf-8")) for it in items if "evidence" in it)
    assert lengths == [65535, 70000]


def test_item_sizes() -> None:
    items = list(generate_items(400))
    sizes = sorted(item_size(it) for it in items)
    assert sizes[-1] < 350_000
    assert 300 <= sizes[len(sizes) // 2] <= 1_500


def _sorted_sets(value: dict[str, Any]) -> dict[str, Any]:
    ((tag, raw),) = value.items()
    if tag in ("SS", "NS", "BS"):
        return {tag: sorted(raw)}
    if tag == "M":
        return {tag: {k: _sorted_sets(v) for k, v in raw.items()}}
    if tag == "L":
        return {tag: [_sorted_sets(v) for v in raw]}
    return value


def _normalized(item: Item) -> Item:
    return {k: _sorted_sets(v) for k, v in item.items()}


def test_seed_round_trip_through_moto(ddb: Any) -> None:
    # The session's moto server (in-process mock_aws would wipe the state every other test shares).
    client = ddb
    assert seed_table(client, "arm-seed", 60) == 60
    create_table(client, "arm-seed")  # idempotent
    assert seed_table(client, "arm-seed", 60) == 60  # re-run: same keys, same count

    scanned: dict[tuple[str, str], Item] = {}
    for page in client.get_paginator("scan").paginate(TableName="arm-seed", PaginationConfig={"PageSize": 7}):
        for got in page["Items"]:
            scanned[(got["pk"]["S"], got["sk"]["S"])] = got
    expected = list(generate_items(60))
    assert len(scanned) == 60

    plain = expected[12]
    assert scanned[(plain["pk"]["S"], plain["sk"]["S"])] == plain
    for it in expected:  # every awkward value survives (sets compared unordered)
        assert _normalized(scanned[(it["pk"]["S"], it["sk"]["S"])]) == _normalized(it)


class _FlakyClient:
    """Wraps a client; the first batch_write_item hands back all but one request as unprocessed."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    def batch_write_item(self, RequestItems: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        self.calls += 1
        if self.calls == 1:
            ((table, requests),) = RequestItems.items()
            self.inner.batch_write_item(RequestItems={table: requests[:1]})
            return {"UnprocessedItems": {table: requests[1:]}}
        result: dict[str, Any] = self.inner.batch_write_item(RequestItems=RequestItems)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_unprocessed_items_are_retried(ddb: Any) -> None:
    client = _FlakyClient(ddb)
    assert seed_table(client, "arm-flaky", 30) == 30
    assert client.calls == 3  # 25 (1 + retry of 24) + 5
    assert client.inner.scan(TableName="arm-flaky", Select="COUNT")["Count"] == 30
