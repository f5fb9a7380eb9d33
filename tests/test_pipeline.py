"""The segment pipeline as plain Python: order, bounded chunks in flight, retries, failures, progress.

A recording stand-in for ``SegmentRun`` (the phase bodies are tested end to end elsewhere) lets each
property be checked exactly: commits in chunk order, never more than ``max_in_flight`` chunks between
the start of their extract and the end of their load, a transient failure retried with the same
arguments, a terminal one failing every stage at once and re-raised.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

from arm_etl.config import SegmentId
from arm_etl.errors import ArmEtlError
from arm_etl.manifest import ChunkRecord, Manifest
from arm_etl.pipeline import Pipeline, Progress
from arm_etl.segment import Chunk, Encoded, Uploaded

NO_DELAYS = {"extract": (0.0, 0.0), "transform": (), "upload": (0.0,), "load": (0.0,)}


class FakeRun:
    """Chunks 0..n-1 of ``per_chunk`` items; records calls; ``fail`` maps (phase, chunk) → exceptions."""

    def __init__(self, n: int, per_chunk: int = 2, fail: dict[tuple[str, int], list[BaseException]] | None = None):
        self.n, self.per_chunk = n, per_chunk
        self.fail = fail or {}
        self.mode = "fresh"
        self.manifest = Manifest("t", 0, 1, "snap", "v", "2026-12-02T00:00:00Z")
        self.calls: list[tuple[str, int, Any]] = []
        self.committed: list[int] = []
        self.lock = threading.Lock()
        self.open: set[int] = set()
        self.max_open = 0

        class Options:
            identity = SegmentId("t", 0, 1)

        self.o = Options()

    @property
    def next_chunk_no(self) -> int:
        return len(self.manifest.chunks)

    @property
    def start_key(self) -> dict[str, Any] | None:
        return None

    def _maybe_fail(self, phase: str, no: int) -> None:
        pending = self.fail.get((phase, no))
        if pending:
            raise pending.pop(0)

    def extract(self, no: int, key: dict[str, Any] | None) -> Chunk:
        with self.lock:
            self.calls.append(("extract", no, key))
            self.open.add(no)
            self.max_open = max(self.max_open, len(self.open))
        self._maybe_fail("extract", no)
        end = None if no == self.n - 1 else {"pk": {"S": f"k{no}"}}
        return Chunk(no, [{"pk": {"S": f"{no}.{i}"}} for i in range(self.per_chunk)], end, self.per_chunk)

    def transform(self, chunk: Chunk) -> Encoded:
        self.calls.append(("transform", chunk.no, None))
        self._maybe_fail("transform", chunk.no)
        return Encoded(chunk, {"t": [f"{chunk.no}\n"]}, Counter(), Counter())

    def upload(self, enc: Encoded, keep: bool) -> Uploaded:
        self.calls.append(("upload", enc.chunk.no, enc.items))
        self._maybe_fail("upload", enc.chunk.no)
        return Uploaded(ChunkRecord(enc.chunk.no, enc.items, enc.items, []), {})

    def commit(self, up: Uploaded, end_key: dict[str, Any] | None) -> None:
        self.committed.append(up.record.no)
        self.manifest.chunks.append(up.record)

    def load(self, up: Uploaded) -> int:
        self.calls.append(("load", up.record.no, None))
        self._maybe_fail("load", up.record.no)
        with self.lock:
            self.open.discard(up.record.no)
        return up.record.items


def test_every_chunk_goes_through_every_phase_in_order_with_bounded_chunks_in_flight() -> None:
    run = FakeRun(12)
    Pipeline(run, max_in_flight=2, retry_delays=NO_DELAYS).run_threads()  # type: ignore[arg-type]
    assert run.committed == list(range(12))
    for phase in ("extract", "transform", "upload", "load"):
        assert [no for p, no, _ in run.calls if p == phase] == list(range(12))
    assert run.max_open <= 2  # chunks between the start of their extract and the end of their load
    assert [key for p, _, key in run.calls if p == "extract"] == [None] + [{"pk": {"S": f"k{i}"}} for i in range(11)]


def test_the_pages_are_released_once_transformed_but_counted() -> None:
    run = FakeRun(3, per_chunk=5)
    Pipeline(run, retry_delays=NO_DELAYS).run_threads()  # type: ignore[arg-type]
    assert [items for p, _, items in run.calls if p == "upload"] == [5, 5, 5]
    assert run.manifest.items == 15


def test_a_transient_failure_is_retried_with_the_same_arguments() -> None:
    dropped = ArmEtlError("connection dropped", transient=True)
    run = FakeRun(4, fail={("extract", 2): [dropped, dropped], ("load", 1): [dropped]})
    Pipeline(run, retry_delays=NO_DELAYS).run_threads()  # type: ignore[arg-type]
    extracts = [(no, key) for p, no, key in run.calls if p == "extract"]
    assert extracts.count((2, {"pk": {"S": "k1"}})) == 3  # same ExclusiveStartKey each time
    assert [no for p, no, _ in run.calls if p == "load"] == [0, 1, 1, 2, 3]
    assert run.committed == [0, 1, 2, 3]


def test_a_terminal_failure_stops_every_stage_and_is_raised_once() -> None:
    denied = ArmEtlError("access denied to s3://bucket")
    run = FakeRun(50, fail={("upload", 3): [denied]})
    with pytest.raises(ArmEtlError, match="access denied"):
        Pipeline(run, max_in_flight=3, retry_delays=NO_DELAYS).run_threads()  # type: ignore[arg-type]
    assert [no for p, no, _ in run.calls if p == "upload"] == [0, 1, 2, 3]  # not retried
    assert run.committed == [0, 1, 2]
    assert len([1 for p, _, _ in run.calls if p == "extract"]) <= 3 + 3  # stopped, not scanning on


def test_retries_run_out() -> None:
    flaky: list[BaseException] = [ArmEtlError("throttled", transient=True) for _ in range(5)]
    run = FakeRun(2, fail={("extract", 0): flaky})
    with pytest.raises(ArmEtlError, match="throttled"):
        Pipeline(run, retry_delays=NO_DELAYS).run_threads()  # type: ignore[arg-type]
    assert [no for p, no, _ in run.calls if p == "extract"] == [0, 0, 0]  # 1 try + 2 retries


def test_a_resumed_run_loads_the_committed_chunks_first_and_a_load_run_only_loads() -> None:
    run = FakeRun(4)
    run.manifest.chunks = [ChunkRecord(0, 2, 2, []), ChunkRecord(1, 2, 2, [])]
    run.mode = "resume"
    pipeline = Pipeline(run, retry_delays=NO_DELAYS)  # type: ignore[arg-type]
    pipeline.run_threads()
    assert [no for p, no, _ in run.calls if p == "extract"] == [2, 3]
    assert [no for p, no, _ in run.calls if p == "load"] == [0, 1, 2, 3]
    assert pipeline.progress.done == 8

    done = FakeRun(2)
    done.manifest.chunks = [ChunkRecord(0, 2, 2, []), ChunkRecord(1, 2, 2, [])]
    done.mode = "load"
    only_load = Pipeline(done, retry_delays=NO_DELAYS)  # type: ignore[arg-type]
    assert only_load.phases == ("load",)
    only_load.run_threads()
    assert [p for p, _, _ in done.calls] == ["load", "load"]


def test_progress_is_reported_at_most_once_per_interval() -> None:
    reports: list[int] = []
    run = FakeRun(20)

    def report(p: Progress) -> None:
        reports.append(p.done)

    Pipeline(run, on_progress=report, progress_interval_s=3600, retry_delays=NO_DELAYS).run_threads()  # type: ignore[arg-type]
    assert reports == [2]  # the first chunk, then nothing within the hour
