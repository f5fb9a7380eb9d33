"""What a segment run did, for the operator: its result and its markdown artifact, success or failure.

Built from the manifest (what is committed in S3, this run's chunks and the resumed ones) and the run's
own counters (what this run extracted, how long each phase took, how long DynamoDB throttled it). A
failed run is reported from whatever it had committed, with the error, so the artifact is never absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from arm_etl.extract import Throttle
from arm_etl.manifest import Manifest
from arm_etl.segment import RunOptions, SegmentPlan, Stats

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human_bytes(n: int) -> str:
    """``1536`` → ``1.5 KiB``: binary units, three significant digits, bytes exact below 1 KiB."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in _UNITS[1:]:
        value /= 1024
        if value < 1024 or unit == _UNITS[-1]:
            return f"{value:.3g} {unit}" if value < 1000 else f"{value:.0f} {unit}"
    raise AssertionError(n)  # unreachable: the loop returns at the last unit


@dataclass(frozen=True)
class SegmentReport:
    """One segment run's outcome; ``error`` is the failure's text when the run failed."""

    options: RunOptions
    plan: SegmentPlan | None  # None: the run failed before deciding what to do
    stats: Stats
    throttle: Throttle
    loaded: dict[str, int]
    wall_s: float
    error: str | None = None

    @property
    def mode(self) -> str:
        return self.plan.mode if self.plan else ""

    @property
    def manifest(self) -> Manifest | None:
        return self.plan.manifest if self.plan else None

    @property
    def status(self) -> str:
        return "failed" if self.error else "completed"

    @property
    def items_per_s(self) -> float:
        """Items this run scanned per second of its wall time (resumed chunks are not counted)."""
        return self.stats.items_extracted / self.wall_s if self.wall_s > 0 else 0.0

    def tables(self) -> list[dict[str, Any]]:
        m = self.manifest
        if m is None:
            return []
        rows: dict[str, int] = {}
        parts: dict[str, int] = {}
        nbytes: dict[str, int] = {}
        raw: dict[str, int] = {}
        for p in m.parts():
            rows[p.table] = rows.get(p.table, 0) + p.rows
            parts[p.table] = parts.get(p.table, 0) + 1
            nbytes[p.table] = nbytes.get(p.table, 0) + p.bytes
            raw[p.table] = raw.get(p.table, 0) + p.raw_bytes
        by_table = m.reject_tables()
        return [
            {
                "table": t,
                "rows": rows.get(t, 0),
                "parts": parts.get(t, 0),
                "raw_bytes": raw.get(t, 0),
                "bytes": nbytes.get(t, 0),
                "rejects": by_table.get(t, 0),
                "loaded": self.loaded.get(t),
            }
            for t in sorted(rows.keys() | by_table.keys())
        ]

    def to_dict(self) -> dict[str, Any]:
        """The flow's result (and the CLI's printout): plain JSON types only."""
        m = self.manifest
        rejects = m.rejects() if m else {}
        tables = self.tables()
        return {
            "table": self.options.identity.table,
            "segment": self.options.identity.segment,
            "schema": self.options.namespaces.segment,
            "status": self.status,
            "error": self.error,
            "mode": self.mode,
            "snapshot": self.options.snapshot,
            "data_schema_version": m.data_schema_version if m else None,
            "tables": tables,
            "rejects": rejects,
            "totals": {
                "items": m.items if m else 0,
                "rows": sum(t["rows"] for t in tables),
                "rejects": sum(rejects.values()),
                "raw_bytes": sum(t["raw_bytes"] for t in tables),
                "bytes": sum(t["bytes"] for t in tables),
                "chunks": len(m.chunks) if m else 0,
                "chunks_reused": self.stats.chunks_reused,
                "chunks_extracted": self.stats.chunks_extracted,
                "items_extracted": self.stats.items_extracted,
            },
            "items_per_s": round(self.items_per_s, 1),
            "wall_s": round(self.wall_s, 3),
            "throttle": {"waits": self.throttle.events, "seconds": round(self.throttle.waited_s, 3)},
            "phase_seconds": {k: round(v, 3) for k, v in sorted(self.stats.phase_seconds.items())},
        }

    def markdown(self) -> str:
        """The run's artifact: outcome, throughput, tables in human units, rejects by reason, waits, phases."""
        o, seg, d = self.options, self.options.identity, self.to_dict()
        t = d["totals"]
        head = f"# Segment {seg.segment}/{seg.total} of `{seg.table}`: {self.status}"
        lines = [head, ""]
        if self.error:
            lines += [f"**Error:** {self.error}", ""]
        lines += [
            f"- mode **{self.mode or 'not started'}**, snapshot `{o.snapshot}`, data-schema "
            f"`{d['data_schema_version'] or '?'}`, into `{o.namespaces.segment}`",
            f"- {t['items']} items in {t['chunks']} chunk{'' if t['chunks'] == 1 else 's'} "
            f"({t['chunks_reused']} resumed, "
            f"{t['chunks_extracted']} scanned now); {t['items_extracted']} items in {self.wall_s:.1f} s = "
            f"**{d['items_per_s']:.0f} items/s**",
            f"- {t['rows']} rows, {human_bytes(t['raw_bytes'])} of CSV, {human_bytes(t['bytes'])} compressed",
            f"- DynamoDB throttling: {self.throttle.events} waits, {self.throttle.waited_s:.1f} s",
            "",
            "| table | rows | parts | CSV | compressed | rejects | loaded |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for row in d["tables"]:
            loaded = "" if row["loaded"] is None else str(row["loaded"])
            lines.append(
                f"| `{row['table']}` | {row['rows']} | {row['parts']} | {human_bytes(row['raw_bytes'])} | "
                f"{human_bytes(row['bytes'])} | {row['rejects']} | {loaded} |"
            )
        lines += ["", "| rejected values, by reason | count |", "|---|---:|"]
        lines += [f"| {reason} | {n} |" for reason, n in sorted(d["rejects"].items())] or ["| (none) | 0 |"]
        phases = ", ".join(f"{k} {v:.1f} s" for k, v in d["phase_seconds"].items())
        lines += ["", f"Phase seconds (summed over chunks): {phases or 'none'}", ""]
        return "\n".join(lines)
