"""How many parallel-scan segments, workers and read capacity a full copy of a table needs (``arm-etl plan``).

An operator picks ``total`` once per table, and every deployment of that table carries it: too few
segments and one worker scans terabytes alone; too many and each segment's fixed cost (a flow run, a
manifest, a ``T_part_i`` redshift-schema that centralization verifies and merges) buys nothing. This module
turns one DescribeTable answer into that choice with DynamoDB's documented limits and the benchmark's
measured cost per item, so the number is derived, not guessed. No Prefect import: it is read-only and instant.

What DynamoDB documents, quoted (and what each number below rests on):

- Segments. *Best practices for querying and scanning data*, "Choosing TotalSegments"
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-query-scan.html):
  "The best setting for ``TotalSegments`` depends on your specific data, the table's provisioned throughput
  settings, and your performance requirements. You might need to experiment to get it right. We recommend
  that you begin with a simple ratio, such as one segment per 2 GB of data. For example, for a 30 GB table,
  you could set ``TotalSegments`` to 15 (30 GB / 2 GB)." and "You can set ``TotalSegments`` to any number
  from 1 to 1000000". The Scan API reference says the same bound: "The value for TotalSegments must be
  greater than or equal to 1, and less than or equal to 1000000."
  (https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/dynamodb/aws.sdk.kotlin.services.dynamodb.model/-scan-request/total-segments.html)
- Pages. *Scan* (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Scan.html): "A single
  ``Scan`` operation first reads up to the maximum number of items set (if using the ``Limit`` parameter) or
  a maximum of 1 MB of data and then applies any filtering to the results if a ``FilterExpression`` is
  provided."
- Read units. *DynamoDB read and write operations*
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html):
  "A *strongly consistent* read request of an item up to 4 KB requires one read unit." / "An *eventually
  consistent* read request of an item up to 4 KB requires one-half read unit." / "``Scan``—Reads all items
  in a table. DynamoDB considers the size of the items that are evaluated, not the size of the items
  returned by the scan." The best-practices page does the arithmetic: "For eventually consistent reads, a
  read capacity unit is two 4 KB read requests per second. A ``Scan`` operation performs eventually
  consistent reads by default, and it can return up to 1 MB (one page) of data. Therefore, a single
  ``Scan`` request can consume (1 MB page size / 4 KB item size) / 2 (eventually consistent reads) = 128
  read operations." arm-etl's scanner (:class:`arm_etl.extract.SegmentScanner`) never sets
  ``ConsistentRead``, and "The default setting for ConsistentRead is false."
  (https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/dynamodb/aws.sdk.kotlin.services.dynamodb.model/-scan-request/consistent-read.html):
  so a full scan costs half a read unit per 4 KB of table.
- Provisioned capacity. ``ProvisionedThroughput.ReadCapacityUnits``: "The maximum number of strongly
  consistent reads consumed per second before DynamoDB returns a ThrottlingException. Eventually consistent
  reads require less effort than strongly consistent reads, so a setting of 50 ReadCapacityUnits per second
  provides 100 eventually consistent ReadCapacityUnits per second."
  (https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/dynamodb/aws.sdk.kotlin.services.dynamodb.model/-provisioned-throughput-description/read-capacity-units.html)
- On-demand. *Pricing for On-Demand Capacity* (https://aws.amazon.com/dynamodb/pricing/on-demand/): "Read
  request unit: API calls to read data from your table are billed in read request units." / "For items up
  to 4 KB in size, an eventually consistent read request requires one-half read request unit". The price per
  unit differs by region and changes; it is never hard-coded here: pass it (``--price-per-million-reads``)
  to get dollars, else the cost is given in read request units.
- DescribeTable's figures are estimates. ``TableSizeBytes``: "The total size of the specified table, in
  bytes. DynamoDB updates this value approximately every six hours. Recent changes might not be reflected in
  this value."; ``ItemCount``: "The number of items in the specified table. DynamoDB updates this value
  approximately every six hours. Recent changes might not be reflected in this value."
  (https://boto3.amazonaws.com/v1/documentation/api/latest/reference/services/dynamodb/table/table_size_bytes.html,
  .../table/item_count.html). ``BillingModeSummary`` may be missing on a provisioned table: "You may need to
  switch to on-demand mode at least once in order to return a BillingModeSummary response."
  (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BillingModeSummary.html)

Units: DynamoDB's "MB", "KB" and "GB" are taken as 2**20, 2**10 and 2**30 bytes (a Scan page is 1 MiB).
"""

from __future__ import annotations

import math
import shlex
import textwrap
from dataclasses import dataclass
from typing import Any, Final

PAGE_BYTES: Final = 1024**2
"""A Scan page: "a maximum of 1 MB of data" per request."""
READ_UNIT_BYTES: Final = 4 * 1024
"""A read unit covers "an item up to 4 KB"."""
EVENTUALLY_CONSISTENT_UNITS: Final = 0.5
"""Read units per 4 KB for an eventually consistent read ("one-half read unit"): arm-etl's Scan."""
BYTES_PER_SEGMENT: Final = 2 * 1024**3
"""AWS's starting point: "one segment per 2 GB of data"."""
TOTAL_SEGMENTS_MAX: Final = 1_000_000
"""TotalSegments "must be ... less than or equal to 1000000"."""
DEFAULT_MAX_WORKERS: Final = 8
DEFAULT_READ_SHARE: Final = 0.5
"""Half the provisioned read capacity: the scan must not starve the application that owns the table."""

# Measured: bench/results/latest.json, row "arm-etl" (median of 3 runs, 200,000 seed items, one segment run
# end to end: scan → transform → gzip CSV to S3 → COPY), run started 2026-11-26T09:03:45Z at d3bd544:
# items_per_s 4782.828719591428 (wall_s 41.816). Two shared cores with the stand-ins (PostgreSQL, moto, the
# Prefect API) competing for them (bench/NOTES.md), so a worker with its own cores is faster: an upper bound.
# Copied, not read at run time: the plan must not depend on a bench checkout; re-copy after a new bench run.
MEASURED_ITEMS_PER_S: Final = 4782.83
"""Items per second one segment run (one worker) processed in the benchmark."""
SECONDS_PER_ITEM: Final = 1 / MEASURED_ITEMS_PER_S

PROVISIONED: Final = "PROVISIONED"
PAY_PER_REQUEST: Final = "PAY_PER_REQUEST"


@dataclass(frozen=True)
class ScanPlan:
    """What DescribeTable said, what to run, and what one full scan will cost (see :func:`plan_scan`)."""

    table: str
    size_bytes: int
    item_count: int
    billing_mode: str
    provisioned_rcu: int | None
    """ReadCapacityUnits of a provisioned table; None on demand."""
    total_segments: int
    workers: int
    read_limit_rcu: float | None
    """Read units per second the whole scan may use (a share of provisioned RCU); None on demand (unbounded)."""
    est_read_units: float
    """RCU (provisioned) or RRU (on demand) one full eventually consistent scan consumes."""
    est_duration_s: float
    """The larger of :attr:`read_bound_s` and :attr:`cpu_bound_s`."""
    est_cost_usd: float | None
    """Only on demand and only with a price given; never from a hard-coded price."""
    read_bound_s: float | None
    """est_read_units / read_limit_rcu: the scan held to its read limit (None: no limit)."""
    cpu_bound_s: float
    """item_count x measured seconds per item / workers."""
    workers_within_read_limit: int
    """Workers whose measured read rate stays within the read limit (arm-etl does not pace its reads)."""
    max_workers: int
    read_share: float
    bytes_per_segment: int
    price_per_million_reads: float | None
    notes: tuple[str, ...] = ()

    @property
    def pages(self) -> int:
        """1 MB Scan pages the table holds (at least one: even an empty table is one Scan request)."""
        return max(1, math.ceil(self.size_bytes / PAGE_BYTES))


def plan_scan(
    describe: dict[str, Any],
    *,
    max_workers: int = DEFAULT_MAX_WORKERS,
    read_share: float = DEFAULT_READ_SHARE,
    bytes_per_segment: int = BYTES_PER_SEGMENT,
    price_per_million_reads: float | None = None,
) -> ScanPlan:
    """Segments, workers and read limit for one DescribeTable answer (``{"Table": {...}}`` or its ``Table``).

    - ``total = max(1, ceil(size / bytes_per_segment))``: AWS's "one segment per 2 GB" starting point, capped
      so every segment holds at least one 1 MB page (a segment with less is a whole segment run, manifest and
      redshift-schema for a part of one Scan request) and at 1,000,000.
    - ``total`` is *not* raised to ``max_workers`` on a small table. The measured per-item cost makes a 2 GB
      segment minutes of work while each segment's fixed cost (a flow run, a ``T_part_i`` redshift-schema that
      centralization verifies and merges) is paid per segment whatever its size; below 2 GB per segment that
      overhead, not the scan, dominates. To trade it for speed, lower ``bytes_per_segment``: that is the
      experiment AWS's guidance asks for, made explicit.
    - ``workers = min(total, max_workers)``: more workers than segments would idle.
    - ``read_limit_rcu = read_share x provisioned RCU``, never above the provisioned RCU; None on demand,
      where nothing is provisioned to share and every read request unit is billed instead.
    - Duration is the larger of two bounds: read units / read limit, and items x measured seconds per item /
      workers. arm-etl does not pace reads to a rate, so when the first bound is the larger one the workers
      would read faster than the limit: :attr:`ScanPlan.workers_within_read_limit` says how many would not.
    """
    if max_workers < 1:
        raise ValueError(f"max_workers must be at least 1, not {max_workers}")
    if not 0 < read_share <= 1:
        raise ValueError(f"read_share must be in (0, 1], not {read_share}")
    if bytes_per_segment < 1:
        raise ValueError(f"bytes_per_segment must be positive, not {bytes_per_segment}")
    if price_per_million_reads is not None and price_per_million_reads < 0:
        raise ValueError(f"price_per_million_reads must not be negative, not {price_per_million_reads}")

    desc = describe.get("Table", describe)
    table = str(desc.get("TableName", ""))
    size = int(desc.get("TableSizeBytes") or 0)
    items = int(desc.get("ItemCount") or 0)
    billing = str((desc.get("BillingModeSummary") or {}).get("BillingMode") or PROVISIONED)
    rcu = int((desc.get("ProvisionedThroughput") or {}).get("ReadCapacityUnits") or 0)
    notes: list[str] = []

    pages = max(1, math.ceil(size / PAGE_BYTES))
    wanted = max(1, math.ceil(size / bytes_per_segment))
    total = min(wanted, pages, TOTAL_SEGMENTS_MAX)
    if total < wanted:
        why = "1,000,000 (DynamoDB's maximum)" if total == TOTAL_SEGMENTS_MAX else f"{pages:,}, one 1 MB page each"
        notes.append(f"{wanted:,} segments of {_bytes(bytes_per_segment)} capped at {why}.")
    workers = min(total, max_workers)

    if size == 0 and items == 0:
        notes.append(
            "The table is empty (or DescribeTable has not caught up: its size and count are updated about "
            "every six hours): one segment is enough."
        )
    elif size == 0 or items == 0:
        notes.append(
            f"DescribeTable reports {size:,} bytes but {items:,} items: its figures are updated about every "
            "six hours, so the estimates below are low; plan again later or after the next update."
        )

    read_units = math.ceil(size / READ_UNIT_BYTES) * EVENTUALLY_CONSISTENT_UNITS
    cpu_bound = items * SECONDS_PER_ITEM / workers
    cost: float | None = None
    if billing == PAY_PER_REQUEST:
        provisioned: int | None = None
        read_limit: float | None = None
        read_bound: float | None = None
        notes.append(
            "On-demand table: no provisioned read capacity to share, so no read limit; DynamoDB bills every "
            "read request unit the scan consumes."
        )
        if price_per_million_reads is not None:
            cost = read_units / 1_000_000 * price_per_million_reads
    else:
        provisioned = rcu
        read_limit = min(float(rcu), rcu * read_share) if rcu > 0 else None
        read_bound = read_units / read_limit if read_limit else None
        if read_limit is None:
            notes.append("The table reports no provisioned read capacity: no read limit can be derived.")
        if price_per_million_reads is not None:
            notes.append(
                "A provisioned table is billed for the capacity it provisions, not per read request: "
                "--price-per-million-reads applies to on-demand tables, so no dollar cost is given."
            )

    within = workers
    if read_bound is not None and read_bound > cpu_bound:
        within = max(1, math.floor(workers * cpu_bound / read_bound))
        notes.append(
            f"At the measured rate {workers} workers would read {read_units / cpu_bound:,.0f} RCU/s, above the "
            f"{read_limit:,.0f} RCU/s limit, and arm-etl does not pace its reads: run {within} at a time "
            f"(max_concurrent_segments={within}, about {_duration(cpu_bound * workers / within)} in all) to stay "
            "within it, or raise the table's read capacity."
        )

    return ScanPlan(
        table=table,
        size_bytes=size,
        item_count=items,
        billing_mode=billing,
        provisioned_rcu=provisioned,
        total_segments=total,
        workers=workers,
        read_limit_rcu=read_limit,
        est_read_units=read_units,
        est_duration_s=max(read_bound or 0.0, cpu_bound),
        est_cost_usd=cost,
        read_bound_s=read_bound,
        cpu_bound_s=cpu_bound,
        workers_within_read_limit=within,
        max_workers=max_workers,
        read_share=read_share,
        bytes_per_segment=bytes_per_segment,
        price_per_million_reads=price_per_million_reads,
        notes=tuple(notes),
    )


def render(plan: ScanPlan) -> str:
    """The plan as an operator reads it: DescribeTable's inputs, the recommendation, the estimates, the notes
    and the exact commands to run next (newline-terminated)."""
    p = plan
    unit = "RRU" if p.billing_mode == PAY_PER_REQUEST else "RCU"
    per_item = (
        f"{p.size_bytes / p.item_count:,.0f} bytes each on average" if p.item_count and p.size_bytes else "no average"
    )
    capacity = (
        "on demand (nothing provisioned)" if p.provisioned_rcu is None else f"{p.provisioned_rcu:,} RCU provisioned"
    )
    if p.read_limit_rcu is None:
        limit = "none (on demand: every read request unit is billed)" if p.provisioned_rcu is None else "none"
    else:
        limit = f"{_num(p.read_limit_rcu)} RCU/s ({p.read_share:.0%} of {p.provisioned_rcu:,} provisioned)"
    segments = "segment" if p.total_segments == 1 else "segments"
    workers = f"{p.workers} (at most {p.max_workers}; more than segments would idle)"
    if p.workers_within_read_limit < p.workers:
        workers += f"; {p.workers_within_read_limit} at a time to stay within the read limit (see notes)"
    per_segment = math.ceil(p.pages / p.total_segments)
    rows: list[tuple[str, str]] = [
        ("size", _bytes(p.size_bytes) + (f" ({p.size_bytes:,} bytes)" if p.size_bytes >= 1024 else "")),
        ("items", f"{p.item_count:,} ({per_item})"),
        ("billing mode", p.billing_mode),
        ("read capacity", capacity),
    ]
    recommended: list[tuple[str, str]] = [
        (
            "total",
            f"{p.total_segments:,} {segments} (one per {_bytes(p.bytes_per_segment)}; "
            f"~{per_segment:,} Scan {'page' if per_segment == 1 else 'pages'} of 1 MB per segment)",
        ),
        ("workers", workers),
        ("read limit", limit),
    ]
    read_bound = (
        "none (no read limit)"
        if p.read_bound_s is None
        else f"{_duration(p.read_bound_s)} ({_num(p.est_read_units)} / {_num(p.read_limit_rcu or 0)} RCU/s)"
    )
    if p.est_cost_usd is not None:
        cost = f"${p.est_cost_usd:,.2f} ({_num(p.est_read_units)} RRU at ${p.price_per_million_reads:g} per million)"
    elif p.billing_mode == PAY_PER_REQUEST:
        cost = f"{_num(p.est_read_units)} RRU x your price per million (--price-per-million-reads)"
    else:
        cost = f"{_num(p.est_read_units)} RCU of the provisioned capacity (billed as provisioned, not per read)"
    bound = "read capacity" if (p.read_bound_s or 0) > p.cpu_bound_s else "processing"
    estimates: list[tuple[str, str]] = [
        ("read units", f"{_num(p.est_read_units)} {unit} (0.5 per 4 KB: eventually consistent, as arm-etl scans)"),
        ("read-bound", read_bound),
        (
            "cpu-bound",
            f"{_duration(p.cpu_bound_s)} ({p.item_count:,} items / {MEASURED_ITEMS_PER_S:,.0f} items/s per worker "
            f"/ {p.workers} {'worker' if p.workers == 1 else 'workers'})",
        ),
        ("duration", f"{_duration(p.est_duration_s)} (bound by {bound})"),
        ("cost", cost),
    ]
    table = shlex.quote(p.table)
    schedules = "segment 0" if p.total_segments == 1 else f"segments 0..{p.total_segments - 1}"
    width = max(len(k) for k, _ in rows + recommended + estimates)

    def block(title: str, pairs: list[tuple[str, str]]) -> list[str]:
        return [title, *(f"  {k.ljust(width)}  {v}" for k, v in pairs)]

    out = [
        f"arm-etl plan for DynamoDB table {p.table!r}",
        "",
        *block("From DescribeTable (size and count are updated about every six hours):", rows),
        "",
        *block("Recommended:", recommended),
        "",
        *block("Estimated for one full scan:", estimates),
    ]
    if p.notes:
        out += ["", "Notes:"]
        out += [textwrap.fill(n, 110, initial_indent="  - ", subsequent_indent="    ") for n in p.notes]
    out += [
        "",
        "Next:",
        f"  arm-etl refresh --table {table} --total {p.total_segments}",
        f"  prefect deployment run 'full-refresh/full-refresh' -p table={table} -p total={p.total_segments} "
        f"-p max_concurrent_segments={p.workers_within_read_limit}",
        f"  deployment parameter total={p.total_segments} on every deployment of this table:",
        f"    data-schema-determination, segment-etl (one schedule per segment: {schedules}), centralization, "
        "full-refresh",
    ]
    return "\n".join(out) + "\n"


def _num(x: float) -> str:
    return f"{int(x):,}" if x == int(x) else f"{x:,.1f}"


def _bytes(n: float) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{int(n)} bytes"


def _duration(s: float) -> str:
    total = round(s)
    h, rest = divmod(total, 3600)
    m, sec = divmod(rest, 60)
    if h:
        return f"{h} h {m:02d} min"
    if m:
        return f"{m} min {sec:02d} s"
    return f"{s:.1f} s" if s < 10 else f"{sec} s"


__all__ = [
    "BYTES_PER_SEGMENT",
    "MEASURED_ITEMS_PER_S",
    "PAGE_BYTES",
    "READ_UNIT_BYTES",
    "SECONDS_PER_ITEM",
    "TOTAL_SEGMENTS_MAX",
    "ScanPlan",
    "plan_scan",
    "render",
]
