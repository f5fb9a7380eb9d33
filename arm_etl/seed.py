"""Deterministic synthetic DynamoDB data for a single-table design, full of awkward values.

Why: every part of the pipeline (type inference, flattening, CSV round trip, rejects, loads) has to be
exercised against the values that break naive ETL code, and tests, the demo and benchmarks need the same
data every time. Items are in the low-level client format (``{"S": ...}``, ``{"N": ...}``, ...) so they
go straight into ``batch_write_item`` and compare directly with what ``scan`` returns.

Layout (``i`` is the item's index in the stream; keys depend only on ``i``, values on ``(seed, i)``):

* items come in blocks of 10 per organization, ``pk = ORG#<i // 10 + 1>``; position ``i % 10``:
  0 organization (``sk = ORG#<id>``), 1 group (``GROUP#<name>-<i>``), 2-4 findings (``FIN#<i>``),
  5-7 vulnerabilities (``VULN#<i>``), 8-9 events (``EVENT#<unique RFC 3339 timestamp>``);
* every item has ``kind``, ``created_at`` (always an RFC 3339 date-time), ``counter`` (an integer) and
  ``description``; findings, vulnerabilities and events have ``report_date`` (always ``YYYY-MM-DD``);
  findings and vulnerabilities have ``severity``, a number on even ``i`` and a string on odd ``i``;
* item ``i`` also gets the awkward values of class ``i % AWKWARD_PERIOD`` (see ``AWKWARD_CLASSES``);
* item ``i`` with ``i % LONG_PERIOD == LONG_OVER_AT`` has an ``evidence`` string of ``LONG_OVER_BYTES``
  UTF-8 bytes (too long for VARCHAR(65535)); ``i % LONG_PERIOD == LONG_EXACT_AT`` one of exactly 65535.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from botocore.exceptions import ClientError

KEY_SCHEMA = ("pk", "sk")

Item = dict[str, dict[str, Any]]

ITEMS_PER_ORG = 10
AWKWARD_PERIOD = 21
LONG_PERIOD = 80
LONG_OVER_AT = 17
LONG_EXACT_AT = 57
LONG_OVER_BYTES = 70_000
MAX_VARCHAR_BYTES = 65_535
BATCH_SIZE = 25

_BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)
_IST = timezone(timedelta(hours=5, minutes=30))
_PST = timezone(timedelta(hours=-8))
_WORDS = (
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
    "injection",
    "overflow",
    "traversal",
    "exposure",
    "token",
    "header",
    "cookie",
    "endpoint",
    "session",
    "password",
    "secret",
    "bucket",
    "policy",
)
_GROUP_NAMES = ("red-team", "Blue Team", 'Équipe "Rouge", Ops', "ops\\infra", "🚀 launch")
_STATUSES = ("open", "closed", "accepted", "in_progress")
_SEVERITY_WORDS = ("low", "medium", "high", "critical")


def _s(v: str) -> dict[str, Any]:
    return {"S": v}


def _n(v: str | int) -> dict[str, Any]:
    return {"N": str(v)}


def _bool(v: bool) -> dict[str, Any]:
    return {"BOOL": v}


def _null() -> dict[str, Any]:
    return {"NULL": True}


def _m(v: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"M": v}


def _l(*v: dict[str, Any]) -> dict[str, Any]:
    return {"L": list(v)}


def _words(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(lo, hi)))


def _timestamp(rng: random.Random, i: int) -> str:
    """An RFC 3339 date-time; the style (Z, +05:30 with micros, -08:00 with millis) cycles with i % 3."""
    dt = _BASE_TIME + timedelta(seconds=rng.randrange(365 * 86_400), microseconds=rng.randrange(1_000_000))
    style = i % 3
    if style == 0:
        return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    if style == 1:
        return dt.astimezone(_IST).isoformat(timespec="microseconds")
    return dt.astimezone(_PST).isoformat(timespec="milliseconds")


def _date(rng: random.Random) -> str:
    return (_BASE_TIME + timedelta(days=rng.randrange(730))).strftime("%Y-%m-%d")


def _long_string(rng: random.Random, total_bytes: int) -> str:
    """ASCII lines then 2500 four-byte characters: exactly total_bytes UTF-8 bytes, fewer characters."""
    tail = "𝄞" * 2500
    ascii_len = total_bytes - len(tail.encode("utf-8"))
    lines: list[str] = []
    size = 0
    while size < ascii_len:
        line = _words(rng, 8, 16) + "\n"
        lines.append(line)
        size += len(line)
    return "".join(lines)[:ascii_len] + tail


# --- awkward value classes: item i gets class i % AWKWARD_PERIOD --------------------------------------


def _aw_multiline(rng: random.Random, i: int) -> Item:
    return {
        "notes": _s("Line one, with \"double\" and 'single' quotes\r\nC:\\path\\to\\file,\tTAB\nends \\"),
        "crlf": _s("a\r\nb"),
    }


def _aw_null_marker(rng: random.Random, i: int) -> Item:
    return {"notes": _s("\\N"), "label": _s("NULL")}


def _aw_empty_string(rng: random.Random, i: int) -> Item:
    return {"notes": _s(""), "label": _s("")}


def _aw_unicode(rng: random.Random, i: int) -> Item:
    return {"title": _s("Emoji 🔥🚀 clef 𝄞 — café, 中文, עברית"), "notes": _s("😀😀😀")}


def _aw_decimal38(rng: random.Random, i: int) -> Item:
    return {"amount": _n("12345678901234567890.123456789012345678")}


def _aw_exponents(rng: random.Random, i: int) -> Item:
    return {"big_exp": _n("1E+125"), "small_exp": _n("-1E-130")}


def _aw_beyond_int64(rng: random.Random, i: int) -> Item:
    return {"big_count": _n("9223372036854775808"), "big_neg": _n("-99999999999999999999")}


def _aw_int64_edges(rng: random.Random, i: int) -> Item:
    return {"counter": _n(2**63 - 1), "counter_min": _n(-(2**63))}


def _aw_bool_null(rng: random.Random, i: int) -> Item:
    return {"owner": _null(), "nothing": _null(), "deleted": _bool(False), "archived": _bool(True)}


def _aw_binary(rng: random.Random, i: int) -> Item:
    return {
        "blob": {"B": b"\x00\x01\x02\xff\x00" + rng.randbytes(8)},
        "empty_blob": {"B": b""},
        "nul_blob": {"B": b"\x00"},
    }


def _aw_sets(rng: random.Random, i: int) -> Item:
    return {
        "labels": {"SS": ["beta", "Alpha", "é", "ζ", "😀", "a,b", 'say "hi"']},
        "scores": {"NS": ["10", "-1.5", "2", "0.001", "1E+3"]},
        "checksums": {"BS": [b"\xff", b"\x00", b"\x00\x01", b"a"]},
    }


def _aw_deep_map(rng: random.Random, i: int) -> Item:
    deep = _m({"d": _n(rng.randint(1, 99)), "e": _s("five deep")})
    return {"info": _m({"a": _m({"b": _m({"c": deep})}), "rating": _n("4.5")}), "extra": _m({})}


def _aw_list_of_maps(rng: random.Random, i: int) -> Item:
    return {
        "cves": _l(
            _m({"id": _s("CVE-2024-0001"), "score": _n("9.8"), "refs": _l(_s("https://a.example"), _s("b"))}),
            _m({"id": _s("CVE-2023-4242"), "score": _n("5"), "refs": _l()}),
        )
    }


def _aw_list_of_lists(rng: random.Random, i: int) -> Item:
    return {"matrix": _l(_l(_n(1), _n(2)), _l(_n(3)), _l()), "history": _l()}


def _aw_odd_names(rng: random.Random, i: int) -> Item:
    return {"due date": _s(_date(rng)), "risk-level": _s("elevated"), "3rd_party": _bool(True)}


def _aw_case_collision(rng: random.Random, i: int) -> Item:
    return {"Price": _n("10.5"), "price": _n(11)}


def _aw_reserved(rng: random.Random, i: int) -> Item:
    return {
        "select": _s("*"),
        "order": _n(3),
        "group": _s("admins"),
        "user": _s("alice"),
        "from": _s("x"),
        "table": _s("t"),
    }


def _aw_quoted_names(rng: random.Random, i: int) -> Item:
    return {
        'weird"name': _s("quoted"),
        "título": _s("non-ASCII name"),
        "a_very_long_attribute_name_that_goes_past_the_postgresql_limit_of_63_bytes": _n(1),
    }


def _aw_nul_char(rng: random.Random, i: int) -> Item:
    return {"notes": _s("before\x00after")}


def _aw_mixed_list(rng: random.Random, i: int) -> Item:
    return {"mixed": _l(_s("1"), _n(1), _bool(True), _null(), _s(""))}


def _aw_date_vs_datetime(rng: random.Random, i: int) -> Item:
    # events always carry last_seen as a date-time; here it is a plain date, so the column mixes both
    return {"last_seen": _s(_date(rng))}


AWKWARD_CLASSES: tuple[tuple[str, Callable[[random.Random, int], Item]], ...] = (
    ("multiline_quotes_crlf", _aw_multiline),
    ("null_marker_string", _aw_null_marker),
    ("empty_string", _aw_empty_string),
    ("four_byte_unicode", _aw_unicode),
    ("decimal_38_digits", _aw_decimal38),
    ("huge_and_tiny_exponents", _aw_exponents),
    ("beyond_int64", _aw_beyond_int64),
    ("int64_edges", _aw_int64_edges),
    ("bool_and_null", _aw_bool_null),
    ("binary", _aw_binary),
    ("sets", _aw_sets),
    ("deep_and_empty_map", _aw_deep_map),
    ("list_of_maps_with_lists", _aw_list_of_maps),
    ("list_of_lists_and_empty_list", _aw_list_of_lists),
    ("space_dash_digit_names", _aw_odd_names),
    ("case_collision", _aw_case_collision),
    ("sql_reserved_names", _aw_reserved),
    ("quote_unicode_long_names", _aw_quoted_names),
    ("nul_character", _aw_nul_char),
    ("mixed_scalar_list", _aw_mixed_list),
    ("date_vs_datetime", _aw_date_vs_datetime),
)
assert len(AWKWARD_CLASSES) == AWKWARD_PERIOD


# --- item construction ----------------------------------------------------------------------------------


def _severity(rng: random.Random, i: int) -> dict[str, Any]:
    if i % 2 == 0:
        return _n(f"{rng.randint(0, 100) / 10}")
    return _s(rng.choice(_SEVERITY_WORDS))


def _make_item(seed: int, i: int) -> Item:
    rng = random.Random(f"arm-etl-seed:{seed}:{i}")
    org_id = i // ITEMS_PER_ORG + 1
    pos = i % ITEMS_PER_ORG
    item: Item = {"pk": _s(f"ORG#{org_id}")}
    if pos == 0:
        item["sk"] = _s(f"ORG#{org_id}")
        item["kind"] = _s("org")
        item["name"] = _s(f"{rng.choice(_WORDS).title()} {rng.choice(_WORDS).title()} Inc.")
        item["active"] = _bool(rng.random() < 0.9)
        item["seats"] = _n(rng.randint(1, 5000))
        item["settings"] = _m({"mfa": _bool(rng.random() < 0.5), "retention_days": _n(rng.choice((30, 90)))})
    elif pos == 1:
        name = _GROUP_NAMES[(i // ITEMS_PER_ORG) % len(_GROUP_NAMES)]
        item["sk"] = _s(f"GROUP#{name}-{i}")
        item["kind"] = _s("group")
        item["name"] = _s(name)
        item["members"] = {"SS": sorted({f"{rng.choice(_WORDS)}@example.com" for _ in range(3)})}
        item["language"] = _s(rng.choice(("en", "es", "fr")))
    elif pos <= 4:
        item["sk"] = _s(f"FIN#{i}")
        item["kind"] = _s("finding")
        item["title"] = _s(f"{rng.choice(_WORDS)} {rng.choice(_WORDS)} finding")
        item["severity"] = _severity(rng, i)
        item["status"] = _s(rng.choice(_STATUSES))
        item["amount"] = _n(f"{rng.randint(0, 999_999) / 100:.2f}")
        item["owner"] = _s(f"{rng.choice(_WORDS)}@example.com")
        item["report_date"] = _s(_date(rng))
        item["where"] = _m({"path": _s(f"src/{rng.choice(_WORDS)}.py"), "line": _n(rng.randint(1, 2000))})
    elif pos <= 7:
        item["sk"] = _s(f"VULN#{i}")
        item["kind"] = _s("vulnerability")
        item["cve_id"] = _s(f"CVE-{rng.randint(2015, 2024)}-{rng.randint(1000, 99999)}")
        item["severity"] = _severity(rng, i)
        item["cvss"] = _m({"score": _n(f"{rng.randint(0, 100) / 10}"), "vector": _s("AV:N/AC:L")})
        item["package"] = _m({"name": _s(rng.choice(_WORDS)), "version": _s(f"1.{rng.randint(0, 20)}.0")})
        item["fixed"] = _bool(rng.random() < 0.3)
        item["owner"] = _s(f"{rng.choice(_WORDS)}@example.com")
        item["report_date"] = _s(_date(rng))
        item["references"] = _l(*(_s(f"https://nvd.example/{rng.randint(1, 9999)}") for _ in range(2)))
    else:
        # strictly increasing in i, so every event key is unique
        ts = (_BASE_TIME + timedelta(seconds=97 * i, microseconds=i % 1_000_000)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        item["sk"] = _s(f"EVENT#{ts}")
        item["kind"] = _s("event")
        item["action"] = _s(rng.choice(("login", "logout", "scan", "export")))
        item["actor"] = _s(f"{rng.choice(_WORDS)}@example.com")
        item["report_date"] = _s(ts[:10])
        item["last_seen"] = _s(ts)
        item["payload"] = _m({"ip": _s(f"10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}")})
        item["duration_ms"] = _n(rng.randint(0, 60_000))
    item["created_at"] = _s(_timestamp(rng, i))
    item["counter"] = _n(rng.randint(0, 10_000))
    item["description"] = _s(_words(rng, 30, 90))
    _, awkward = AWKWARD_CLASSES[i % AWKWARD_PERIOD]
    item.update(awkward(rng, i))
    if i % LONG_PERIOD == LONG_OVER_AT:
        item["evidence"] = _s(_long_string(rng, LONG_OVER_BYTES))
    elif i % LONG_PERIOD == LONG_EXACT_AT:
        item["evidence"] = _s(_long_string(rng, MAX_VARCHAR_BYTES))
    return item


def generate_items(n: int, seed: int = 0) -> Iterator[Item]:
    """Yield n items in low-level DynamoDB format, the same for the same (n, seed).

    Why: tests, demo and benchmarks need reproducible data that covers every awkward value class; item i
    depends only on (seed, i), so any prefix of the stream is stable and (pk, sk) is unique.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    for i in range(n):
        yield _make_item(seed, i)


# --- writing to DynamoDB --------------------------------------------------------------------------------


def create_table(client: Any, table: str) -> None:
    """Create the table (pk HASH S, sk RANGE S, on demand) unless it exists, and wait until it is ACTIVE.

    Why: seeding must be re-runnable against a fresh local stack or an existing table alike.
    """
    try:
        client.create_table(
            TableName=table,
            KeySchema=[
                {"AttributeName": KEY_SCHEMA[0], "KeyType": "HASH"},
                {"AttributeName": KEY_SCHEMA[1], "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": KEY_SCHEMA[0], "AttributeType": "S"},
                {"AttributeName": KEY_SCHEMA[1], "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise
    client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 120})


def _write_batch(client: Any, table: str, requests: list[dict[str, Any]], max_attempts: int = 10) -> None:
    pending: dict[str, list[dict[str, Any]]] = {table: requests}
    delay = 0.05
    for _ in range(max_attempts):
        response = client.batch_write_item(RequestItems=pending)
        unprocessed = response.get("UnprocessedItems") or {}
        if not unprocessed.get(table):
            return
        pending = {table: unprocessed[table]}
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
    raise RuntimeError(f"batch_write_item left {len(pending[table])} items unprocessed in {table!r}")


def seed_table(client: Any, table: str, n: int, seed: int = 0) -> int:
    """Create the table if needed and write generate_items(n, seed) to it; return the number written.

    Why: one call gives a local or test stack a realistic table; writes are idempotent puts, so running
    it again with the same arguments leaves the same data. Unprocessed items are retried with backoff.
    """
    create_table(client, table)
    written = 0
    batch: list[dict[str, Any]] = []
    for item in generate_items(n, seed):
        batch.append({"PutRequest": {"Item": item}})
        if len(batch) == BATCH_SIZE:
            _write_batch(client, table, batch)
            written += len(batch)
            batch = []
    if batch:
        _write_batch(client, table, batch)
        written += len(batch)
    return written
