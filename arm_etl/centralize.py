"""Centralization: every segment's redshift-schema glued into one, verified, swapped in atomically.

Steps: inspect (read-only) → verify every segment against its manifest → prepare ``T_loading`` →
merge each segment (Redshift ``ALTER TABLE APPEND``; PostgreSQL: insert+delete in one transaction)
recording progress in ``T_loading._etl_merged`` → verify totals → swap in one transaction (``T_live``→
``T_backup``, ``T_loading``→``T_live``, production ``T``'s views re-pointed, readers' privileges kept:
:mod:`arm_etl.warehouse.production`) → drop the emptied segment schemas. Nothing destructive happens
before every segment is verified; a crash anywhere is resumed by running it again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from arm_etl.cache import SchemaCache
from arm_etl.config import backup_schema, live_schema, loading_schema, segment_schema
from arm_etl.dataschema import DataSchema
from arm_etl.errors import ArmEtlError
from arm_etl.manifest import Manifest
from arm_etl.upload import PartStore
from arm_etl.warehouse import Warehouse, WarehouseError
from arm_etl.warehouse import production as prod
from arm_etl.warehouse.bookkeeping import MERGED_COLUMNS, MERGED_TABLE, SEGMENT_MARKER, MergedRow

log = logging.getLogger("arm_etl.centralize")


SEGMENT_DEPLOYMENT = "segment-etl/segment-etl"  # prefect.yaml: flow name / deployment name


def segment_remedy(table: str, segment: int, total: int, extra: Mapping[str, Any]) -> str:
    """What to run for one segment, in the operator's terms: the deployment run with its parameters (the UI's
    "Custom run"), and the CLI command. ``extra``: the segment run's parameters beyond table/segment/total."""
    params = {"table": table, "segment": segment, "total": total, **extra}
    shown = ", ".join(f"{k}={v}" for k, v in params.items())
    flags = "".join(f" --{k.replace('_', '-')}" + ("" if v is True else f" {v}") for k, v in extra.items())
    cmd = f"arm-etl segment --table {table} --segment {segment} --total {total}{flags}"
    return f"run `{cmd}`, or start deployment {SEGMENT_DEPLOYMENT} with {shown}"


class CentralizeError(ArmEtlError):
    """Centralization refused or failed before anything destructive; the message says what to run."""


@dataclass
class SegmentCheck:
    segment: int
    manifest: Manifest | None
    marker: dict[str, Any] | None
    counts: dict[str, int]
    merged_tables: set[str] = field(default_factory=set)  # recorded in T_loading._etl_merged
    unrecorded: set[str] = field(default_factory=set)  # appended (Redshift commit) but not yet recorded

    def done(self, tables: Sequence[str]) -> bool:
        return set(tables) <= self.merged_tables | self.unrecorded


def structure(version: str) -> str:
    """The structure hash of a data-schema version (``<time>-<hash>``): equal hashes, equal columns."""
    return version.rsplit("-", 1)[-1]


class Centralizer:
    def __init__(
        self,
        table: str,
        total: int,
        target: str,
        warehouse: Warehouse,
        stores: Sequence[PartStore],
        cache: SchemaCache,
        grants: Mapping[str, Sequence[str]] | None = None,
    ):
        self.table = table
        self.total = total
        self.target = target
        self.wh = warehouse
        self.stores = list(stores)
        self.cache = cache
        self.loading = loading_schema(target)
        self.live = live_schema(target)
        self.backup = backup_schema(target)
        self.grants = grants
        try:
            prod.grants_privileges(grants, [])  # a wrong setting fails before anything runs
        except ValueError as exc:
            raise CentralizeError(f"centralization of {table} into {target}: {exc}") from None
        self.schema: DataSchema | None = None

    # ------------------------------------------------------------------ read-only

    def inspect(self) -> list[SegmentCheck]:
        loading_merged = self.wh.read_merged(self.loading)
        loading_counts = self.wh.counts(self.loading) if loading_merged else {}
        recorded: dict[str, int] = {}
        for r in loading_merged:
            recorded[r["table_name"]] = recorded.get(r["table_name"], 0) + int(r["rows"])
        checks = []
        for i, store in enumerate(self.stores):
            manifest = store.read_manifest()
            part = segment_schema(self.target, i)
            marker = self.wh.read_marker(part)
            counts = self.wh.counts(part) if marker is not None else {}
            check = SegmentCheck(i, manifest, marker, counts)
            if manifest is not None:
                check.merged_tables = {
                    r["table_name"] for r in loading_merged if r["segment"] == i and r["snapshot"] == manifest.snapshot
                }
                # A Redshift APPEND commits by itself: a crash before its progress row leaves the segment's
                # table empty and T_loading holding exactly the manifest's rows more than recorded.
                for t, n in manifest.table_rows().items():
                    if (
                        n
                        and t not in check.merged_tables
                        and marker is not None
                        and counts.get(t, 0) == 0
                        and loading_counts.get(t, 0) - recorded.get(t, 0) == n
                    ):
                        check.unrecorded.add(t)
            checks.append(check)
        return checks

    def already_centralized(self, checks: list[SegmentCheck], drop_leftovers: bool = True) -> bool:
        """Production holds exactly the segments' completed manifests, and no segment waits to merge.

        A segment redshift-schema still there after its merge (a crash between the swap and the drops)
        is empty and recorded in production: it is a leftover, dropped here, not a segment to merge again."""
        if any(c.manifest is None or not c.manifest.complete for c in checks):
            return False
        if self.wh.schema_exists(self.loading):
            return False
        merged = self.wh.read_merged(self.target)
        have = {(r["segment"], r["snapshot"], r["data_schema_version"]) for r in merged}
        if not all(
            (c.segment, c.manifest.snapshot, c.manifest.data_schema_version) in have
            for c in checks
            if c.manifest is not None
        ):
            return False
        leftovers = [c for c in checks if c.marker is not None]
        if any(
            c.marker is None
            or c.manifest is None
            or c.marker.get("snapshot") != c.manifest.snapshot
            or any(n for t, n in c.counts.items() if t != SEGMENT_MARKER)
            for c in leftovers
        ):
            return False
        for c in leftovers if drop_leftovers else []:
            log.info(
                "dropping %s: merged into %s already, left by an interrupted run", self.part(c.segment), self.target
            )
            self.wh.drop_schema(self.part(c.segment))
        return True

    def part(self, segment: int) -> str:
        return segment_schema(self.target, segment)

    def problem(self, c: SegmentCheck, latest_version: str) -> tuple[str, dict[str, Any]] | None:
        """Why segment ``c`` cannot be centralized yet, and the segment run's extra parameters that fix it."""
        m = c.manifest
        if m is None:
            return "no manifest (never extracted)", {}
        if not m.complete:
            return f"upload incomplete ({len(m.chunks)} chunks)", {}
        if structure(m.data_schema_version) != structure(latest_version):
            return (
                f"extracted with data-schema {m.data_schema_version}, whose columns differ from the latest "
                f"{latest_version}",
                {"fresh": True},
            )
        if c.merged_tables and c.done(list(m.table_rows())):
            return None
        load = {"phases": "load"}
        if c.marker is None:
            return f"schema {self.part(c.segment)} missing (a load reloads the completed upload, no scan)", load
        if c.marker.get("snapshot") != m.snapshot or c.marker.get("data_schema_version") != m.data_schema_version:
            return f"loaded from snapshot {c.marker.get('snapshot')} but the manifest is {m.snapshot}", load
        short = [
            f"{t} {c.counts.get(t, 0)}/{n}"
            for t, n in sorted(m.table_rows().items())
            if c.counts.get(t, 0) != n and t not in c.merged_tables | c.unrecorded
        ]
        if short:
            return f"row counts differ from its manifest ({', '.join(short)})", load
        return None

    def verify(self, checks: list[SegmentCheck]) -> DataSchema:
        """Every segment complete, loaded from its manifest, with equal counts, all of one data-schema."""
        latest = self.cache.require()
        problems: list[str] = []
        versions = {c.manifest.data_schema_version for c in checks if c.manifest is not None and c.manifest.complete}
        for c in checks:
            found = self.problem(c, latest.version)
            if found is not None:
                problems.append(
                    f"segment {c.segment}: {found[0]} → {segment_remedy(self.table, c.segment, self.total, found[1])}"
                )
        if problems:
            raise CentralizeError(
                f"centralization of {self.table} into {self.target} refused; nothing was changed:\n  "
                + "\n  ".join(problems)
            )
        if len(versions) > 1:
            raise CentralizeError(
                f"segments of {self.table} were extracted with different data-schemas {sorted(versions)}; "
                "re-run the older ones with --fresh"
            )
        self.schema = self.cache.require(versions.pop()) if versions else latest
        return self.schema

    # ------------------------------------------------------------------ destructive (after verify)

    def prepare(self, checks: list[SegmentCheck]) -> bool:
        """Create ``T_loading`` unless a previous run's merge is in progress there; True if resumed."""
        assert self.schema is not None
        if any(c.merged_tables or c.unrecorded for c in checks):
            log.info("resuming the merge already in %s", self.loading)
            return True
        tables = [*self.schema.warehouse_tables(), (MERGED_TABLE, MERGED_COLUMNS)]
        self.wh.recreate_schema(self.loading, tables)
        return False

    def merge(self, check: SegmentCheck) -> dict[str, int]:
        """Move every table of one segment into ``T_loading`` and record it, exactly once."""
        assert self.schema is not None and check.manifest is not None
        part = segment_schema(self.target, check.segment)
        m = check.manifest
        # Progress is re-read here, not trusted from inspect(): a retried merge must skip what it already moved.
        done = check.merged_tables | {
            r["table_name"]
            for r in self.wh.read_merged(self.loading)
            if r["segment"] == check.segment and r["snapshot"] == m.snapshot
        }
        moved: dict[str, int] = {}
        for name, cols in self.schema.warehouse_tables():
            if name in done:
                continue
            rows = m.table_rows().get(name, 0)
            record = MergedRow(check.segment, m.snapshot, m.data_schema_version, name, rows, datetime.now(UTC))
            if name in check.unrecorded:
                self.wh.record_merged(self.loading, record)  # appended (and committed) before a crash
            else:
                self.wh.append(self.loading, part, name, cols, record)
            moved[name] = rows
        return moved

    def verify_loading(self, checks: list[SegmentCheck]) -> dict[str, int]:
        """``T_loading`` holds exactly the sum of the manifests, table by table."""
        assert self.schema is not None
        expected: dict[str, int] = {}
        for c in checks:
            assert c.manifest is not None
            for t, n in c.manifest.table_rows().items():
                expected[t] = expected.get(t, 0) + n
        names = [n for n, _ in self.schema.warehouse_tables()]
        actual = self.wh.counts(self.loading, names)
        wrong = [
            f"{t} {actual.get(t, 0)}/{expected.get(t, 0)}" for t in names if actual.get(t, 0) != expected.get(t, 0)
        ]
        if wrong:
            raise CentralizeError(
                f"{self.loading} does not hold the segments' rows ({', '.join(wrong)}); production untouched"
            )
        return actual

    def production_counts(self) -> dict[str, int]:
        if not self.wh.schema_exists(self.target):
            return {}
        return {t: n for t, n in self.wh.counts(self.target).items() if t != MERGED_TABLE}

    def preview_swap(self) -> prod.SwapReport:
        """What the swap will do for production's readers (read-only); refuses now if it would refuse then."""
        try:
            return prod.preview(self.wh, self.target, self.loading, self.live, self.grants)
        except WarehouseError as exc:
            raise CentralizeError(str(exc)) from None

    def swap(self) -> prod.SwapReport:
        """Old backup dropped, ``T_live``→``T_backup``, ``T_loading``→``T_live``, ``T``'s views re-pointed,
        privileges kept: one transaction; then the emptied segment schemas are dropped."""
        report = prod.swap(self.wh, self.target, self.loading, self.live, self.backup, self.grants)
        for i in range(self.total):
            self.wh.drop_schema(self.part(i))
        return report
