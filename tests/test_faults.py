"""The fault catalogue: every way a run can die or be hurt, then a re-run that ends exact, row by row.

One seeded table and one data-schema are shared; each fault owns one parallel-scan segment of it (the
manifest and the segment schema are per segment), so the faults are independent of each other and of
their order. After each fault the segment is re-run in-process and compared with the oracle: every
table, every value, every reject, the manifest and the marker (``tests/exactness.py``).

- SIGKILL (``tests/faults.py`` runs the real CLI in a subprocess and kills itself) during scan,
  transform, upload, checkpoint, load (mid-COPY), before the swap and inside the swap transaction;
  centralization killed between merges and between the rename steps of the production swap;
- S3 answering 503 SlowDown and 500 InternalError on part uploads (botocore's retries, then the task's);
- the warehouse connection terminated by the server in the middle of a COPY (the load task's retry);
- DynamoDB throttling on consecutive pages, at the scanner and through the flow;
- centralization failing between the rename steps (the swap is one transaction).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import psycopg2
import pytest
from botocore.config import Config

from arm_etl.cache import SchemaCache
from arm_etl.config import SegmentId, backup_schema, live_schema, loading_schema, segment_schema, staging_schema
from arm_etl.dataschema import DataSchema
from arm_etl.extract import ExtractError, SegmentScanner, Throttle
from arm_etl.seed import seed_table
from arm_etl.upload import PartStore
from arm_etl.warehouse import PartLoad, PostgresWarehouse, Warehouse
from arm_etl.warehouse.statement import Statement
from tests import faults
from tests.exactness import check_segment, ensure_buckets, raw_segment, schema_exists
from tests.test_centralize import schemas_like, snapshot_rows

REPO = Path(__file__).resolve().parent.parent
TABLE = "faults-src"
ITEMS = 200
SEED = 13
TOTAL = 12  # moto assigns a hash key to a segment by md5(pk) % TOTAL: 11 of these 12 hold >= 10 items
TARGET = "faults"
RUN = {"page_limit": 2, "pages_per_chunk": 2, "max_in_flight": 2}
CLI_RUN = ["--page-limit", "2", "--pages-per-chunk", "2", "--max-in-flight", "2"]
# SIGKILL point (tests/faults.py) → n (the n-th time the point is reached)
KILLS: dict[str, int] = {"scan": 4, "transform": 3, "upload": 2, "checkpoint": 2, "load": 3, "finish": 1, "swap": 1}
# every fault owns one segment (manifest, parts and segment schema are per segment)
FAULTS = [*KILLS, "s3", "copy_drop", "throttle", "swap_drop"]


@dataclass
class Source:
    endpoint: str
    schema: DataSchema
    s3: Any
    data_bucket: str
    seg: dict[str, int]

    def store(self, segment: int) -> PartStore:
        return PartStore(self.s3, self.data_bucket, TABLE, segment)

    def raw(self, segment: int) -> list[dict[str, Any]]:
        return raw_segment(self.endpoint, TABLE, segment, TOTAL)

    def problems(self, pg: Any, segment: int, snapshot: str) -> list[str]:
        return check_segment(pg, self.schema, self.store(segment), TARGET, segment, self.raw(segment), snapshot)


def cli_env(stack: Any, prefect_api: str) -> dict[str, str]:
    return {**os.environ, **stack.env(), "PREFECT_API_URL": prefect_api, "PYTHONPATH": str(REPO)}


class Killed:
    """A ``python -m tests.faults`` subprocess; ``wait`` asserts it SIGKILLed itself at its point."""

    def __init__(self, point: str, n: int, args: list[str], env: dict[str, str]):
        self.point, self.n = point, n
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - kept open for the process's lifetime
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.faults", point, str(n), "--", *args],
            cwd=REPO,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait(self, timeout: float = 300) -> str:
        try:
            rc = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.seek(0)
        out = self.log.read().decode("utf-8", "replace")
        assert rc == -signal.SIGKILL, f"{self.point}: exit {rc}, not killed at its fault point:\n{out[-3000:]}"
        assert f"FAULT {self.point} {self.n}:" in out, out[-3000:]
        return out


@pytest.fixture(scope="module")
def source(stack: Any, prefect_api: str) -> Source:
    from flows.schema import determine_schema

    ensure_buckets(stack)
    ddb = boto3.client("dynamodb", endpoint_url=stack.endpoint)
    assert seed_table(ddb, TABLE, ITEMS, seed=SEED) == ITEMS
    determine_schema(TABLE, total=2, routing=["sk:#"], page_limit=25)
    s3 = boto3.client("s3", endpoint_url=stack.endpoint)
    env = stack.env()
    schema = SchemaCache(s3, env["ARM_ETL_CACHE_BUCKET"], TABLE).require()
    src = Source(stack.endpoint, schema, s3, env["ARM_ETL_DATA_BUCKET"], {})
    sizes = {i: len(src.raw(i)) for i in range(TOTAL)}
    # at least 10 items (5 pages of 2, 3 chunks of 2 pages) for a fault to strike in the middle
    usable = sorted((n, i) for i, n in sizes.items() if n >= 10)
    assert len(usable) >= len(FAULTS), sizes
    src.seg.update(zip(FAULTS, (i for _, i in usable), strict=False))
    return src


def run_segment(segment: int, snapshot: str, **extra: Any) -> dict[str, Any]:
    from flows.segment import segment_etl

    return segment_etl(TABLE, segment, TOTAL, target_schema=TARGET, snapshot=snapshot, **{**RUN, **extra})


def run_segment_state(segment: int, snapshot: str) -> Any:
    """The run's final Prefect state (``return_state``), for tests that read the run back from the API."""
    from flows.segment import segment_etl

    return segment_etl(TABLE, segment, TOTAL, target_schema=TARGET, snapshot=snapshot, return_state=True, **RUN)


@pytest.fixture(scope="module")
def killed(source: Source, stack: Any, prefect_api: str) -> Iterator[dict[str, Killed]]:
    """Every segment SIGKILL run, started together (they own different segments) to share start-up time."""
    env = cli_env(stack, prefect_api)
    # The swap is killed while replacing a good segment schema: run it once completely first.
    assert run_segment(source.seg["swap"], "kill-swap")["mode"] == "fresh"
    procs = {}
    for point, n in KILLS.items():
        segment = source.seg[point]
        args = ["segment", "--table", TABLE, "--segment", str(segment), "--total", str(TOTAL)]
        args += ["--target-schema", TARGET, "--snapshot", f"kill-{point}", *CLI_RUN]
        if point == "swap":
            args += ["--phases", "load"]
        procs[point] = Killed(point, n, args, env)
    yield procs
    for k in procs.values():
        if k.proc.poll() is None:
            os.killpg(k.proc.pid, signal.SIGKILL)


# ------------------------------------------------------------------------------------------ SIGKILL


def orphans(store: PartStore) -> set[str]:
    m = store.read_manifest()
    assert m is not None
    referenced = {p.key for p in m.parts()} | {store.checkpoint_key(c.no) for c in m.chunks} | {store.manifest_key}
    return set(store.list_keys()) - referenced


@pytest.mark.slow
@pytest.mark.parametrize("point", ["scan", "transform", "upload", "checkpoint"])
def test_sigkill_before_the_upload_completes_then_resume(
    point: str, killed: dict[str, Killed], source: Source, pg: Any
) -> None:
    segment = source.seg[point]
    snapshot = f"kill-{point}"
    killed[point].wait()
    store = source.store(segment)
    dead = store.read_manifest()
    assert dead is not None and not dead.complete
    if point in ("upload", "checkpoint"):
        assert orphans(store), "the kill was meant to leave uploaded, uncommitted parts"
    committed = {p.key for p in dead.parts()}
    assert not schema_exists(pg, segment_schema(TARGET, segment))

    out = run_segment(segment, snapshot)
    totals = out["totals"]
    assert out["mode"] == "resume"
    assert totals["chunks_reused"] == len(dead.chunks)
    assert totals["chunks_extracted"] == totals["chunks"] - len(dead.chunks)  # committed chunks not scanned again
    assert totals["items_extracted"] == len(source.raw(segment)) - dead.items
    final = store.read_manifest()
    assert final is not None and committed <= {p.key for p in final.parts()}
    problems = source.problems(pg, segment, snapshot)
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_sigkill_in_the_middle_of_a_copy_then_resume(killed: dict[str, Killed], source: Source, pg: Any) -> None:
    segment = source.seg["load"]
    killed["load"].wait()
    assert schema_exists(pg, staging_schema(TARGET, segment))  # half-loaded staging, never visible as the segment
    assert not schema_exists(pg, segment_schema(TARGET, segment))
    out = run_segment(segment, "kill-load")
    assert out["mode"] in ("resume", "load")
    problems = source.problems(pg, segment, "kill-load")
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_sigkill_after_staging_verified_then_reload(killed: dict[str, Killed], source: Source, pg: Any) -> None:
    segment = source.seg["finish"]
    killed["finish"].wait()
    m = source.store(segment).read_manifest()
    assert m is not None and m.complete
    assert schema_exists(pg, staging_schema(TARGET, segment))
    assert not schema_exists(pg, segment_schema(TARGET, segment))
    out = run_segment(segment, "kill-finish")
    assert out["mode"] == "load" and out["totals"]["chunks_extracted"] == 0  # straight to the load
    problems = source.problems(pg, segment, "kill-finish")
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_sigkill_inside_the_swap_keeps_the_old_segment_schema(
    killed: dict[str, Killed], source: Source, pg: Any
) -> None:
    segment = source.seg["swap"]
    out = killed["swap"].wait()
    assert "old schema dropped" in out
    # The transaction died with the client: the previous, complete segment schema is still there, exact.
    problems = source.problems(pg, segment, "kill-swap")
    assert problems == [
        f"{segment_schema(TARGET, segment)}: staging schema {staging_schema(TARGET, segment)} left behind"
    ]
    again = run_segment(segment, "kill-swap")
    assert again["mode"] == "load" and again["totals"]["chunks_extracted"] == 0
    problems = source.problems(pg, segment, "kill-swap")
    assert not problems, "\n".join(problems)


def fast_botocore_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's standard-mode backoff sleeps rand * 2**attempt seconds (up to ~31 s over 5 retries): keep
    its shape and the number of attempts, scale the sleeps down 100x so a test waits milliseconds."""
    import botocore.retries.standard

    real_delay = botocore.retries.standard.ExponentialBackoff.delay_amount
    monkeypatch.setattr(
        botocore.retries.standard.ExponentialBackoff,
        "delay_amount",
        lambda self, context: real_delay(self, context) / 100,
    )


def hook_flow_clients(monkeypatch: pytest.MonkeyPatch, event: str, handler: Any) -> None:
    """Register ``handler`` for botocore ``event`` (e.g. ``before-send.s3.PutObject``) on every client the
    flow's Resources creates for that event's service."""
    from flows.resources import Resources

    service = event.split(".")[1]
    real_client = Resources.client

    def client(self: Resources, name: str) -> Any:
        c = real_client(self, name)
        if name == service:
            c.meta.events.register(event, handler)
        return c

    monkeypatch.setattr(Resources, "client", client)


# ------------------------------------------------------------------------------------------ S3, COPY


def test_s3_slowdown_and_internal_errors_on_parts_are_absorbed(
    source: Source, pg: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """503 SlowDown twice on one part (botocore retries it); 500 InternalError seven times on another (the
    flow's client, standard mode with 5 retries, gives up after 6 attempts; the upload task then retries the
    chunk, overwriting the same keys). The run ends exact, with no orphan part."""

    plan: dict[str, list[tuple[int, str]]] = {}
    fired: list[tuple[str, str]] = []
    lock = threading.Lock()

    def on_put(request: Any, **_: Any) -> Any:
        url = request.url.split("?")[0]
        if not url.endswith(".csv.gz"):
            return None
        with lock:
            if not plan:
                plan[url] = [(503, "SlowDown")] * 2
            elif len(plan) == 1 and url not in plan:
                plan[url] = [(500, "InternalError")] * 7
            todo = plan.get(url)
            if not todo:
                return None
            status, code = todo.pop(0)
            fired.append((url, code))
        return faults.s3_error(request.url, status, code)

    hook_flow_clients(monkeypatch, "before-send.s3.PutObject", on_put)
    fast_botocore_backoff(monkeypatch)
    out = run_segment(source.seg["s3"], "s3-faults")
    # 7 failures of one key outlast botocore's 6 attempts of one call: the upload task retried the chunk
    assert sorted(code for _, code in fired) == ["InternalError"] * 7 + ["SlowDown"] * 2
    assert out["mode"] == "fresh"
    problems = source.problems(pg, source.seg["s3"], "s3-faults")
    assert not problems, "\n".join(problems)


def test_connection_dropped_mid_copy_is_retried_without_duplicates(
    source: Source, pg: Any, stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server terminates the loading connection in the middle of the second part's COPY of a chunk
    (the first part of that chunk already committed); the load task retries; counts and rows are exact."""
    import arm_etl.warehouse.base as load_module

    dropped: list[int] = []
    conns = threading.local()
    real_connect = Warehouse.connect
    real_copy_part = PostgresWarehouse.copy_part
    parts_seen: dict[str, int] = {}
    lock = threading.Lock()

    def connect(self: Warehouse) -> Any:
        conn = real_connect(self)
        conns.last = conn
        return conn

    def copy_part(self: PostgresWarehouse, conn: Any, schema: str, part: PartLoad) -> int:
        chunk = int(part.origin.rsplit("/", 1)[1].split(".")[0]) // 1000
        with lock:
            parts_seen.setdefault(f"{chunk}", 0)
            parts_seen[f"{chunk}"] += 1
            conns.drop = not dropped and chunk == 1 and parts_seen[f"{chunk}"] == 2
        return real_copy_part(self, conn, schema, part)

    class Dropping:
        def __init__(self, inner: Any):
            self.inner, self.reads = inner, 0

        def read(self, size: int = -1) -> bytes:
            self.reads += 1
            if self.reads == 2 and getattr(conns, "drop", False) and not dropped:
                pid = conns.last.get_backend_pid()
                with psycopg2.connect(stack.warehouse_url) as killer, killer.cursor() as cur:
                    cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
                dropped.append(pid)
                time.sleep(0.2)
            data: bytes = self.inner.read(size)
            return data

    real_reader = load_module.part_file

    def part_reader(data: bytes, compressed: bool) -> Any:
        return Dropping(real_reader(data, compressed))

    monkeypatch.setattr(Warehouse, "connect", connect)
    monkeypatch.setattr(PostgresWarehouse, "copy_part", copy_part)
    monkeypatch.setattr(load_module, "part_file", part_reader)
    out = run_segment(source.seg["copy_drop"], "copy-drop")
    assert dropped, "the connection was never dropped (chunk 1 has fewer than 2 parts?)"
    assert out["mode"] == "fresh"
    problems = source.problems(pg, source.seg["copy_drop"], "copy-drop")
    assert not problems, "\n".join(problems)


def test_connection_dropped_during_the_segment_swap_is_retried_exactly(
    source: Source, pg: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The swap of staging into the segment schema fails once (connection lost); the finish task retries
    the whole finish (verify, mark, swap): one marker row, exact rows."""
    real_replace = Warehouse.replace_schema
    calls: list[str] = []

    def replace_schema(self: Warehouse, staging: str, target: str) -> None:
        calls.append(target)
        if len(calls) == 1:
            raise psycopg2.OperationalError("server closed the connection unexpectedly (injected)")
        real_replace(self, staging, target)

    monkeypatch.setattr(Warehouse, "replace_schema", replace_schema)
    seg = source.seg["swap_drop"]
    out = run_segment(seg, "swap-drop")
    assert len(calls) == 2 and out["mode"] == "fresh"
    problems = source.problems(pg, seg, "swap-drop")
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------------------------------ throttling


class ScanThrottler:
    """A ``before-send.dynamodb.Scan`` hook: throttles calls ``first … first+count-1``; records every request."""

    def __init__(self, first: int, count: int):
        self.first, self.count = first, count
        self.calls: list[tuple[Any, bool]] = []  # (ExclusiveStartKey, throttled)
        self.lock = threading.Lock()

    def __call__(self, request: Any, **_: Any) -> Any:
        body = json.loads(request.body)
        with self.lock:
            k = len(self.calls) + 1
            throttle = self.first <= k < self.first + self.count
            self.calls.append((body.get("ExclusiveStartKey"), throttle))
        return faults.dynamodb_throttle(request.url) if throttle else None

    def check_same_page(self) -> None:
        """Each throttled request is retried with the same ExclusiveStartKey until one goes through."""
        for i, (key, throttled) in enumerate(self.calls):
            if throttled:
                nxt = next(k for k, t in self.calls[i + 1 :] if not t)
                assert key == nxt and key is not None, (i, key, nxt)


def no_retry_client(endpoint: str) -> Any:
    return boto3.client(
        "dynamodb", endpoint_url=endpoint, config=Config(retries={"mode": "standard", "total_max_attempts": 1})
    )


def test_throttled_pages_are_retried_from_the_same_key_with_bounded_logged_backoff(
    source: Source, caplog: pytest.LogCaptureFixture
) -> None:
    client = no_retry_client(source.endpoint)
    hook = ScanThrottler(first=3, count=6)
    client.meta.events.register("before-send.dynamodb.Scan", hook)
    sleeps: list[float] = []
    throttle = Throttle(base_s=0.05, cap_s=2.0, budget_s=30.0, sleep=sleeps.append)
    scanner = SegmentScanner(client, SegmentId(TABLE, source.seg["throttle"], TOTAL), page_limit=2, throttle=throttle)
    with caplog.at_level(logging.WARNING, logger="arm_etl.extract"):
        items, end, _ = scanner.chunk(None, 10_000)
    assert end is None
    assert items == source.raw(source.seg["throttle"])  # exact, in scan order: nothing skipped, nothing twice
    assert sum(t for _, t in hook.calls) == 6
    hook.check_same_page()
    assert throttle.events == 6 and throttle.waited_s == pytest.approx(sum(sleeps))
    assert throttle.waited_s <= throttle.budget_s
    assert all(later >= 0 for later in sleeps) and max(sleeps) <= throttle.cap_s
    warnings = [r.getMessage() for r in caplog.records if r.name == "arm_etl.extract"]
    assert len(warnings) == 6
    assert all(f"table {TABLE} segment {source.seg['throttle']} throttled" in w and "same page" in w for w in warnings)
    assert f"waited {throttle.waited_s:.1f}s so far" in warnings[-1]


def test_throttling_beyond_the_budget_fails_naming_table_and_segment(source: Source) -> None:
    client = no_retry_client(source.endpoint)
    hook = ScanThrottler(first=2, count=10_000)
    client.meta.events.register("before-send.dynamodb.Scan", hook)
    sleeps: list[float] = []
    throttle = Throttle(base_s=0.05, cap_s=1.0, budget_s=3.0, sleep=sleeps.append)
    scanner = SegmentScanner(client, SegmentId(TABLE, source.seg["throttle"], TOTAL), page_limit=2, throttle=throttle)
    with pytest.raises(ExtractError) as err:
        scanner.chunk(None, 10_000)
    msg = str(err.value)
    assert (
        repr(TABLE) in msg
        and f"segment {source.seg['throttle']}" in msg
        and "ProvisionedThroughputExceededException" in msg
    )
    assert "budget 3s" in msg
    assert sum(sleeps) == pytest.approx(throttle.waited_s) and throttle.waited_s <= 3.0
    assert len({json.dumps(k, sort_keys=True) for k, t in hook.calls if t}) == 1  # always the same page


@pytest.mark.slow
def test_throttled_segment_flow_finishes_exact(
    source: Source, pg: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Through the flow's own client (botocore standard mode, ``max_attempts`` 5 retries = 6 attempts):
    8 consecutive throttles exhaust botocore once; the scanner backs off (logged) and retries the same page,
    botocore absorbs the remaining 2; the result is exact."""

    fast_botocore_backoff(monkeypatch)
    hook = ScanThrottler(first=3, count=8)
    hook_flow_clients(monkeypatch, "before-send.dynamodb.Scan", hook)
    from prefect.settings import PREFECT_LOGGING_TO_API_ENABLED, temporary_settings

    with (
        caplog.at_level(logging.WARNING, logger="arm_etl.extract"),
        temporary_settings(updates={PREFECT_LOGGING_TO_API_ENABLED: True}),  # off elsewhere in the suite
    ):
        state = run_segment_state(source.seg["throttle"], "throttled")
    out = state.result()
    assert out["mode"] == "fresh" and out["status"] == "completed"
    assert sum(t for _, t in hook.calls) == 8
    hook.check_same_page()
    warnings = [r.getMessage() for r in caplog.records if r.name == "arm_etl.extract"]
    assert len(warnings) == 1 and f"segment {source.seg['throttle']} throttled" in warnings[0]
    problems = source.problems(pg, source.seg["throttle"], "throttled")
    assert not problems, "\n".join(problems)
    # the operator sees the wait: in the flow run's logs (the core's logger) and in the run's artifact
    run_id = state.state_details.flow_run_id
    assert out["throttle"]["waits"] == 1 and out["throttle"]["seconds"] > 0
    assert warnings[0] in run_logs(run_id, "arm_etl.extract")
    artifact = run_artifact(run_id, f"segment-{source.seg['throttle']}-{TABLE}")
    assert f"# Segment {source.seg['throttle']}/{TOTAL} of `{TABLE}`: completed" in artifact
    assert f"- DynamoDB throttling: 1 waits, {out['throttle']['seconds']:.1f} s" in artifact


def run_logs(flow_run_id: Any, logger: str, deadline_s: float = 20) -> list[str]:
    """The messages of ``logger`` in a flow run's logs, read back from the Prefect API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    end = time.monotonic() + deadline_s
    with get_client(sync_client=True) as client:
        while True:  # logs are sent in batches, a moment after the run ends
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
            found = [log.message for log in logs if log.name == logger]
            if found or time.monotonic() > end:
                return found
            time.sleep(0.5)


def run_artifact(flow_run_id: Any, key: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[key]), flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])
            )
        )
    return str(artifact.data)


@pytest.mark.slow
def test_a_failed_segment_run_leaves_its_summary_artifact(source: Source, monkeypatch: pytest.MonkeyPatch) -> None:
    """S3 refusing the third part (403, terminal: not retried) fails the run; its artifact says so, with the
    error and what the run had committed, so an operator sees why without opening the logs."""
    puts: list[str] = []

    def on_put(request: Any, **_: Any) -> Any:
        url = request.url.split("?")[0]
        if not url.endswith(".csv.gz"):
            return None
        puts.append(url)
        return faults.s3_error(request.url, 403, "AccessDenied") if len(puts) == 3 else None

    hook_flow_clients(monkeypatch, "before-send.s3.PutObject", on_put)
    segment = source.seg["throttle"]  # its own checks ran above; this run replaces its manifest
    state = run_segment_state(segment, "denied")
    assert state.is_failed()
    artifact = run_artifact(state.state_details.flow_run_id, f"segment-{segment}-{TABLE}")
    lines = artifact.splitlines()
    assert lines[0] == f"# Segment {segment}/{TOTAL} of `{TABLE}`: failed"
    assert lines[2].startswith("**Error:** ") and "AccessDenied" in lines[2]
    assert lines[4].startswith("- mode **fresh**, snapshot `denied`")
    committed = source.store(segment).read_manifest()
    assert committed is not None and not committed.complete
    assert f"- {committed.items} items in {len(committed.chunks)} chunk" in artifact and "(0 resumed, " in artifact


# ------------------------------------------------------------------------------------------ centralization

CTABLE = "faults-central"
CTOTAL = 2


@pytest.fixture(scope="module")
def central_source(stack: Any, prefect_api: str) -> str:
    from flows.schema import determine_schema
    from flows.segment import segment_etl

    ensure_buckets(stack)
    seed_table(boto3.client("dynamodb", endpoint_url=stack.endpoint), CTABLE, 60, seed=17)
    determine_schema(CTABLE, total=CTOTAL, routing=["sk:#"], page_limit=20)
    for i in range(CTOTAL):
        segment_etl(CTABLE, i, CTOTAL, phases="extract", page_limit=20)
    return CTABLE


def load_central(pg: Any, target: str) -> Any:
    """Rebuild every segment schema from its completed upload; their rows, as multisets per table."""
    from flows.segment import segment_etl

    for i in range(CTOTAL):
        out = segment_etl(CTABLE, i, CTOTAL, target_schema=target, phases="load")
        assert out["mode"] == "load"
    return snapshot_rows(pg, [segment_schema(target, i) for i in range(CTOTAL)])


def production_rows(pg: Any, schema: str) -> Any:
    return snapshot_rows(pg, [schema])


def test_centralize_failing_between_rename_steps_leaves_production_unchanged(
    central_source: str, pg: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.centralize import centralize

    target = "fc_rename"
    first = load_central(pg, target)
    assert centralize(CTABLE, CTOTAL, target_schema=target, approve=True)["changed"] is True
    assert production_rows(pg, target) == first
    second = load_central(pg, target)

    real_execute = Warehouse.execute
    renames: list[str] = []

    def failing(self: Warehouse, cur: Any, statement: Statement, values: Any = None) -> None:
        if statement.sql.startswith("ALTER SCHEMA") and " RENAME TO " in statement.sql:
            renames.append(statement.sql)
            if len(renames) == 2:  # production is already renamed to backup inside the transaction
                raise psycopg2.OperationalError("server closed the connection unexpectedly (injected)")
        real_execute(self, cur, statement, values)

    monkeypatch.setattr(Warehouse, "execute", failing)
    with pytest.raises(psycopg2.OperationalError, match="injected"):
        centralize(CTABLE, CTOTAL, target_schema=target, approve=True)
    monkeypatch.setattr(Warehouse, "execute", real_execute)
    assert renames[0] == f'ALTER SCHEMA "{live_schema(target)}" RENAME TO "{backup_schema(target)}"'
    assert production_rows(pg, target) == first  # the whole swap rolled back
    assert not schema_exists(pg, backup_schema(target))
    assert schema_exists(pg, loading_schema(target))

    out = centralize(CTABLE, CTOTAL, target_schema=target, approve=True)
    assert out["changed"] is True
    assert production_rows(pg, target) == second
    assert production_rows(pg, backup_schema(target)) == first
    assert schemas_like(pg, target) == {target, live_schema(target), backup_schema(target)}


def centralize_killed(point: str, n: int, target: str, stack: Any, prefect_api: str) -> str:
    args = ["centralize", "--table", CTABLE, "--total", str(CTOTAL), "--target-schema", target, "--yes"]
    return Killed(point, n, args, cli_env(stack, prefect_api)).wait()


@pytest.mark.slow
def test_centralize_sigkilled_between_merges_then_rerun_is_exact(
    central_source: str, pg: Any, stack: Any, prefect_api: str
) -> None:
    from flows.centralize import centralize

    target = "fc_kill_merge"
    expected = load_central(pg, target)
    centralize_killed("merge", 2, target, stack, prefect_api)
    assert not schema_exists(pg, target)
    with pg.cursor() as cur:
        cur.execute(f'SELECT DISTINCT segment FROM "{loading_schema(target)}"."_etl_merged"')
        assert [r[0] for r in cur.fetchall()] == [0]  # segment 0 merged and recorded, segment 1 not
    out = centralize(CTABLE, CTOTAL, target_schema=target, approve=True)
    assert out["changed"] is True
    assert production_rows(pg, target) == expected
    assert schemas_like(pg, target) == {target, live_schema(target)}


@pytest.mark.slow
def test_centralize_sigkilled_between_rename_steps_keeps_production(
    central_source: str, pg: Any, stack: Any, prefect_api: str
) -> None:
    from flows.centralize import centralize

    target = "fc_kill_rename"
    first = load_central(pg, target)
    assert centralize(CTABLE, CTOTAL, target_schema=target, approve=True)["changed"] is True
    second = load_central(pg, target)
    out = centralize_killed("rename", 2, target, stack, prefect_api)
    assert f'RENAME TO "{live_schema(target)}"' in out
    assert production_rows(pg, target) == first
    assert not schema_exists(pg, backup_schema(target))
    again = centralize(CTABLE, CTOTAL, target_schema=target, approve=True)
    assert again["changed"] is True
    assert production_rows(pg, target) == second
    assert production_rows(pg, backup_schema(target)) == first
