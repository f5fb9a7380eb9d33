"""What an operator is asked before production is swapped: the form's text, built from what was verified.

Each segment's snapshot and data-schema version (so a stale segment stands out), rows per table now → after,
rejected values by reason, and a warning for every table that would lose more than ``SHRINK_WARNING`` of
its rows, the usual sign of a segment loaded from the wrong snapshot or a source emptied by mistake.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from arm_etl.centralize import SegmentCheck

SHRINK_WARNING: Final = 0.10
"""A table losing more than this share of its rows is flagged on the approval form."""


def counts_table(old: Mapping[str, int], new: Mapping[str, int]) -> str:
    lines = ["| table | production now | after swap | delta |", "|---|---:|---:|---:|"]
    for t in sorted(old.keys() | new.keys()):
        o, n = old.get(t, 0), new.get(t, 0)
        lines.append(f"| `{t}` | {o} | {n} | {n - o:+d} |")
    return "\n".join(lines)


def shrinking(old: Mapping[str, int], new: Mapping[str, int], limit: float = SHRINK_WARNING) -> list[str]:
    """Tables (bookkeeping ``_etl_*`` aside) that would lose more than ``limit`` of their rows."""
    out = []
    for t in sorted(old):
        o, n = old[t], new.get(t, 0)
        if not t.startswith("_etl_") and o > 0 and (o - n) / o > limit:
            out.append(f"`{t}` would lose {o - n} of its {o} rows ({(o - n) / o:.0%})")
    return out


def segments_table(checks: Sequence[SegmentCheck]) -> str:
    lines = ["| segment | snapshot | data-schema | items | rows |", "|---:|---|---|---:|---:|"]
    for c in checks:
        m = c.manifest
        if m is None:
            lines.append(f"| {c.segment} | | | | |")
        else:
            rows = sum(m.table_rows().values())
            lines.append(f"| {c.segment} | `{m.snapshot}` | `{m.data_schema_version}` | {m.items} | {rows} |")
    return "\n".join(lines)


def rejects_table(checks: Sequence[SegmentCheck]) -> str:
    total: dict[str, int] = {}
    for c in checks:
        for reason, n in (c.manifest.rejects() if c.manifest else {}).items():
            total[reason] = total.get(reason, 0) + n
    lines = ["| rejected values, by reason | count |", "|---|---:|"]
    lines += [f"| {reason} | {n} |" for reason, n in sorted(total.items())] or ["| (none) | 0 |"]
    return "\n".join(lines)


def approval_markdown(
    target: str,
    loading: str,
    backup: str,
    checks: Sequence[SegmentCheck],
    old: Mapping[str, int],
    new: Mapping[str, int],
    readers: str,
) -> str:
    """The approval form's description (markdown), and the centralization's preview artifact."""
    warnings = shrinking(old, new)
    parts = [f"## Approve swapping `{loading}` into `{target}`?"]
    if warnings:
        parts.append("\n".join(f"> **Warning:** {w}." for w in warnings))
    parts += [
        counts_table(old, new),
        segments_table(checks),
        rejects_table(checks),
        f"The current rows move to `{backup}` (the previous backup is dropped).",
        readers,
    ]
    return "\n\n".join(p for p in parts if p)
