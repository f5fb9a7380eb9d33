"""The segment pipeline: four phases as four long-lived stages joined by bounded queues.

extract → transform → upload (+ the in-order commit to the manifest) → load. Each stage is one thread
(one Prefect task in the flow, a plain thread in the benchmark) that takes chunks in order, so the
orchestration work per segment run is four stages whatever the number of chunks. At most
``max_in_flight`` chunks are between the start of their extract and the end of their load: memory is
bounded by design (a chunk's pages are released once transformed, its CSV lines once uploaded).

A stage retries its own failed chunk, for transient errors only (:func:`arm_etl.errors.is_transient`),
with the same arguments: the same ExclusiveStartKey, the same part keys (an upload retry overwrites),
a load retry skips the parts already committed. The first failure stops every stage; :meth:`Pipeline.
raise_first` re-raises it once all have returned.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, TypeVar

from arm_etl.errors import is_transient
from arm_etl.memory import quiet_gc
from arm_etl.segment import Chunk, Encoded, SegmentRun, Uploaded

log = logging.getLogger("arm_etl.pipeline")

T = TypeVar("T")
PHASES: Final = ("extract", "transform", "upload", "load")
#: Seconds to wait before each retry of a chunk's phase (transient errors only).
RETRY_DELAYS: Final[Mapping[str, tuple[float, ...]]] = {
    "extract": (1, 5, 20),
    "transform": (),
    "upload": (1, 5, 20),
    "load": (5, 20),
}
_END: Final = object()
_POLL_S: Final = 0.2


class Progress:
    """Items whose rows are in the warehouse (or in S3 when not loading)."""

    def __init__(self, done: int = 0) -> None:
        self.done = done


class Pipeline:
    """One segment run's stages; ``stage(name)`` is a body to run on its own thread."""

    def __init__(
        self,
        run: SegmentRun,
        *,
        max_in_flight: int = 3,
        loading: bool = True,
        on_progress: Callable[[Progress], None] | None = None,
        progress_interval_s: float = 5.0,
        retry_delays: Mapping[str, tuple[float, ...]] = RETRY_DELAYS,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        self.run = run
        self.loading = loading
        self.retry_delays = retry_delays
        manifest = run.manifest
        self._committed = [Uploaded(rec, None) for rec in manifest.chunks]  # loaded first, from S3
        if run.mode == "load":  # the upload is complete: only (re)load it
            self.phases: tuple[str, ...] = ("load",) if loading else ()
        else:
            self.phases = PHASES if loading else PHASES[:3]
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._to_transform: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._to_upload: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._to_load: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self.progress = Progress(done=0 if loading else manifest.items)
        self._on_progress = on_progress
        self._interval = progress_interval_s
        self._last_report = float("-inf")  # the first finished chunk is reported

    # ------------------------------------------------------------------ running

    def stage(self, phase: str) -> Callable[[], None]:
        body = {"extract": self._extract, "transform": self._transform, "upload": self._upload, "load": self._load}
        work = body[phase]

        def guarded() -> None:
            try:
                work()
            except BaseException as exc:
                with self._lock:
                    if self._error is None:
                        self._error = exc
                self._stop.set()
                raise

        return guarded

    def run_threads(self) -> None:
        """Every stage on a plain thread (the benchmark and plain-Python use); raises the first failure."""
        threads = [threading.Thread(target=self._quiet(p), name=f"phase-{p}", daemon=True) for p in self.phases]
        with quiet_gc():
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        self.raise_first()

    def raise_first(self) -> None:
        if self._error is not None:
            raise self._error

    def _quiet(self, phase: str) -> Callable[[], None]:
        body = self.stage(phase)

        def run() -> None:
            with contextlib.suppress(BaseException):  # recorded by stage(); raise_first() re-raises it
                body()

        return run

    # ------------------------------------------------------------------ stages

    def _extract(self) -> None:
        no, key = self.run.next_chunk_no, self.run.start_key
        while self._acquire():
            chunk: Chunk = self._retrying("extract", no, self.run.extract, no, key)
            if not self._put(self._to_transform, chunk) or chunk.last:
                break
            no, key = no + 1, chunk.end_key
        self._put(self._to_transform, _END)

    def _transform(self) -> None:
        for chunk in self._take(self._to_transform):
            encoded: Encoded = self._retrying("transform", chunk.no, self.run.transform, chunk)
            chunk.items = []  # the pages are released once transformed
            if not self._put(self._to_upload, encoded):
                return
        self._put(self._to_upload, _END)

    def _upload(self) -> None:
        for encoded in self._take(self._to_upload):
            uploaded: Uploaded = self._retrying("upload", encoded.chunk.no, self.run.upload, encoded, self.loading)
            self.run.commit(uploaded, encoded.chunk.end_key)  # one uploader: chunks commit in order
            del encoded  # the CSV lines are released once uploaded
            if self.loading:
                if not self._put(self._to_load, uploaded):
                    return
            else:
                self._done(uploaded)
        self._put(self._to_load, _END)

    def _load(self) -> None:
        for uploaded in self._committed:  # committed by an earlier run of this snapshot
            self._retrying("load", uploaded.record.no, self.run.load, uploaded)
            self.progress.done += uploaded.record.items
        if self.run.mode == "load":
            return
        for uploaded in self._take(self._to_load):
            self._retrying("load", uploaded.record.no, self.run.load, uploaded)
            self._done(uploaded)

    # ------------------------------------------------------------------ plumbing

    def _done(self, uploaded: Uploaded) -> None:
        uploaded.data = None
        self._slots.release()
        self.progress.done += uploaded.record.items
        now = time.monotonic()
        if self._on_progress is not None and now - self._last_report >= self._interval:
            self._last_report = now
            self._on_progress(self.progress)

    def _retrying(self, phase: str, chunk_no: int, fn: Callable[..., T], *args: Any) -> T:
        delays = self.retry_delays.get(phase, ())
        for attempt in range(len(delays) + 1):
            try:
                return fn(*args)
            except Exception as exc:
                if attempt == len(delays) or not is_transient(exc) or self._stop.is_set():
                    raise
                log.warning(
                    "%s: %s of chunk %d failed (%s); retry %d of %d in %gs",
                    self.run.o.identity,
                    phase,
                    chunk_no,
                    exc,
                    attempt + 1,
                    len(delays),
                    delays[attempt],
                )
                if self._stop.wait(delays[attempt]):
                    raise
        raise AssertionError("unreachable")

    def _acquire(self) -> bool:
        while not self._stop.is_set():
            if self._slots.acquire(timeout=_POLL_S):
                return True
        return False

    def _put(self, q: queue.Queue[Any], item: Any) -> bool:
        while not self._stop.is_set():
            try:
                q.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _take(self, q: queue.Queue[Any]) -> Iterator[Any]:
        while not self._stop.is_set():
            try:
                item = q.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if item is _END:
                return
            yield item
