"""``arm-etl status``: would centralization proceed, segment by segment? Read-only.

The same checks and remedies as centralization's refusal (:meth:`Centralizer.problem`), as one row per
segment, so an operator sees what is missing before pressing the button, and what to run for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from arm_etl.centralize import Centralizer, SegmentCheck, segment_remedy


@dataclass(frozen=True)
class SegmentStatus:
    """One segment as centralization sees it."""

    segment: int
    manifest: bool
    snapshot: str
    data_schema_version: str
    complete: bool
    loaded: bool  # its redshift-schema holds a loaded segment, or production already merged it
    counts_match: bool
    problem: str | None  # None: ready
    remedy: str | None


@dataclass(frozen=True)
class Status:
    table: str
    target: str
    segments: tuple[SegmentStatus, ...]
    already_centralized: bool

    @property
    def would_proceed(self) -> bool:
        return self.already_centralized or all(s.problem is None for s in self.segments)

    def verdict(self) -> str:
        if self.already_centralized:
            return f"{self.target} already holds every segment of {self.table}: centralization has nothing to do"
        if self.would_proceed:
            return f"every segment is ready: centralization of {self.table} into {self.target} would proceed"
        waiting = [s.segment for s in self.segments if s.problem is not None]
        return f"centralization of {self.table} into {self.target} would refuse: segment(s) {waiting} not ready"

    def text(self) -> str:
        head = ("segment", "manifest", "snapshot", "data-schema", "complete", "loaded", "counts match")
        rows = [head, *(_cells(s) for s in self.segments)]
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
        lines += [f"segment {s.segment}: {s.problem} → {s.remedy}" for s in self.segments if s.problem]
        return "\n".join([*lines, self.verdict()]) + "\n"

    def markdown(self) -> str:
        head = ("segment", "manifest", "snapshot", "data-schema", "complete", "loaded", "counts match", "to do")
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for s in self.segments:
            todo = f"{s.problem} → {s.remedy}" if s.problem else "ready"
            lines.append("| " + " | ".join([*_cells(s), todo]) + " |")
        return "\n".join([*lines, "", self.verdict()]) + "\n"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _cells(s: SegmentStatus) -> tuple[str, ...]:
    return (
        str(s.segment),
        _yes(s.manifest),
        s.snapshot or "-",
        s.data_schema_version or "-",
        _yes(s.complete),
        _yes(s.loaded),
        _yes(s.counts_match),
    )


def status(c: Centralizer, checks: Sequence[SegmentCheck] | None = None) -> Status:
    """Every segment's state and remedy; changes nothing (leftover segments are left for centralization)."""
    checks = list(checks) if checks is not None else c.inspect()
    done = c.already_centralized(checks, drop_leftovers=False)
    latest = c.cache.require().version
    rows = []
    for check in checks:
        m = check.manifest
        found = None if done else c.problem(check, latest)
        merged = bool(check.merged_tables) or done
        counts_ok = merged or (
            m is not None
            and check.marker is not None
            and all(check.counts.get(t, 0) == n for t, n in m.table_rows().items() if t not in check.unrecorded)
        )
        rows.append(
            SegmentStatus(
                segment=check.segment,
                manifest=m is not None,
                snapshot=m.snapshot if m is not None else "",
                data_schema_version=m.data_schema_version if m is not None else "",
                complete=m is not None and m.complete,
                loaded=check.marker is not None or merged,
                counts_match=counts_ok,
                problem=found[0] if found else None,
                remedy=segment_remedy(c.table, check.segment, c.total, found[1]) if found else None,
            )
        )
    return Status(c.table, c.target, tuple(rows), done)
