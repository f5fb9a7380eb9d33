"""arm-etl's segment run driven without Prefect: concurrently (as the flow does) or phase by phase.

``run_concurrent`` runs the flow's own pipeline (``arm_etl.pipeline.Pipeline``) on plain threads: chunk
k+1 is extracted while chunk k is transformed, uploaded and loaded, at most ``max_in_flight`` chunks
between extract and the end of their load. ``run_sequential`` runs the same phase bodies strictly one
after another per chunk and times each phase on its own: every phase then runs alone (nothing else in
the process runs meanwhile), so its total is the "phase alone" time, and the sum is the "phases in
sequence" time.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from arm_etl.config import target_schema
from arm_etl.memory import limit_malloc_arenas, quiet_gc
from arm_etl.pipeline import Pipeline
from arm_etl.segment import Chunk, RunOptions, SegmentRun, plan_segment, ready_storage
from arm_etl.upload import PartStore

PHASES = ("extract", "transform", "upload", "load")


def options_for(table: str, pages_per_chunk: int, part_size_mb: float = 64) -> RunOptions:
    return RunOptions.of(
        table,
        0,
        1,
        target_schema(table),
        f"bench-{uuid.uuid4().hex[:8]}",
        fresh=True,
        pages_per_chunk=pages_per_chunk,
        part_size=max(1, int(part_size_mb * 1024 * 1024)),
    )


def start_run(res: Any, options: RunOptions) -> SegmentRun:
    """Plan the segment (a fresh one: the options say so) and make its run, as the flow does."""
    seg = options.identity
    store = PartStore(res.s3, res.data_bucket, seg.table, seg.segment)
    plan = plan_segment(options, store, res.schema_cache(seg.table))
    ready_storage(plan, store)
    return SegmentRun(options, plan, res.dynamodb, store, res.require_warehouse())


def run_concurrent(res: Any, options: RunOptions, max_in_flight: int = 3) -> tuple[SegmentRun, dict[str, int]]:
    """The flow's own pipeline (``arm_etl.pipeline``) on plain threads instead of Prefect tasks."""
    limit_malloc_arenas()  # as the flow does
    run = start_run(res, options)
    run.begin_load()
    Pipeline(run, max_in_flight=max_in_flight, loading=True).run_threads()
    return run, run.finish()


class PhaseClock:
    """Wall and thread-CPU seconds per phase (everything runs in the calling thread)."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = dict.fromkeys(("setup", *PHASES), 0.0)
        self.cpu: dict[str, float] = dict.fromkeys(("setup", *PHASES), 0.0)

    def timed(self, phase: str, fn: Any, *args: Any) -> Any:
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            return fn(*args)
        finally:
            self.wall[phase] += time.perf_counter() - t0
            self.cpu[phase] += time.thread_time() - c0


def run_sequential(res: Any, options: RunOptions) -> tuple[SegmentRun, dict[str, int], PhaseClock]:
    """Every phase alone, with the collector settings the pipeline runs under (``quiet_gc``)."""
    with quiet_gc():
        return _sequential(res, options)


def _sequential(res: Any, options: RunOptions) -> tuple[SegmentRun, dict[str, int], PhaseClock]:
    clock = PhaseClock()
    run: SegmentRun = clock.timed("setup", start_run, res, options)
    clock.timed("load", run.begin_load)
    key = run.start_key
    no = run.next_chunk_no
    while True:
        chunk: Chunk = clock.timed("extract", run.extract, no, key)
        encoded = clock.timed("transform", run.transform, chunk)
        uploaded = clock.timed("upload", run.upload, encoded, True)
        clock.timed("upload", run.commit, uploaded, chunk.end_key)  # the manifest checkpoint
        del encoded
        chunk.items = []
        clock.timed("load", run.load, uploaded)
        if chunk.last:
            break
        key, no = chunk.end_key, no + 1
    counts = clock.timed("load", run.finish)
    return run, counts, clock
