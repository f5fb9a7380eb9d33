"""One measured row in its own process: ``python -m bench.run_one ROW --items N --result FILE``.

Endpoints come from the environment the parent sets (``AWS_ENDPOINT_URL_DYNAMODB``: the replay endpoint;
``AWS_ENDPOINT_URL_S3``: moto; ``ARM_ETL_WAREHOUSE_URL``: embedded PostgreSQL; ``PREFECT_API_URL``).
Each row times only its work (imports and connections to the stand-ins happen before): wall seconds,
CPU seconds of this process (all threads; ``getrusage``) over that section, and the process's peak RSS.

Rows: ``floor`` (HTTP fetch + ``orjson.loads`` of every page), ``naive`` (boto3 resource scan → csv
``DictWriter`` → COPY), ``dlt`` (dlt pipeline, ``--format``), ``arm-etl`` (the Prefect segment flow),
``arm-etl-core`` (the same phases driven by ``SegmentRun`` in a thread pool, no Prefect), ``phases``
(the phases one after another per chunk, each timed alone).
"""

from __future__ import annotations

import argparse
import base64
import csv
import http.client
import json
import os
import resource
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import orjson
from boto3.dynamodb.types import Binary


def cpu_now() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def peak_rss_mb() -> float:
    """This process's peak RSS. ``VmHWM`` rather than ``ru_maxrss``: Linux carries the forking parent's
    high-water mark across ``exec`` into ``ru_maxrss``, which would report the parent's size."""
    return _proc_status_mb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (
        1 << 20 if sys.platform == "darwin" else 1024
    )


def _proc_status_mb(field: str) -> float:
    """A memory field of ``/proc/self/status`` in MB; 0.0 where there is no /proc (macOS)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class RssSampler:
    """This process's RSS every 0.2 s over the measured work: is memory flat once the chunk window is full,
    or does it keep growing with the items? ``halves`` = peak RSS (MB) in the first and the second half."""

    def __init__(self) -> None:
        import threading

        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        t0 = time.perf_counter()
        while not self._stop.wait(0.2):
            self.samples.append((time.perf_counter() - t0, _proc_status_mb("VmRSS")))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def halves(self) -> list[float]:
        if not self.samples:
            return []
        mid = self.samples[-1][0] / 2
        first = [r for t, r in self.samples if t <= mid] or [0.0]
        second = [r for t, r in self.samples if t > mid] or [0.0]
        return [round(max(first), 1), round(max(second), 1)]


class Section:
    """Wall and process-CPU seconds of the measured work."""

    def __enter__(self) -> Section:
        self.t0, self.c0 = time.perf_counter(), cpu_now()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.t0
        self.cpu = cpu_now() - self.c0


# ---------------------------------------------------------------------------------------------- floor


def row_floor(args: argparse.Namespace) -> dict[str, Any]:
    """The least any reader must do: fetch every page and ``orjson.loads`` it (no signing, no botocore)."""
    url = urllib.parse.urlsplit(os.environ["AWS_ENDPOINT_URL_DYNAMODB"])
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port)
    headers = {"X-Amz-Target": "DynamoDB_20120810.Scan", "Content-Type": "application/x-amz-json-1.0"}
    items = 0
    decode_s = 0.0
    key = None
    with Section() as s:
        while True:
            req: dict[str, Any] = {"TableName": args.table, "Segment": 0, "TotalSegments": 1}
            if key:
                req["ExclusiveStartKey"] = key
            conn.request("POST", "/", orjson.dumps(req), headers)
            body = conn.getresponse().read()
            t0 = time.perf_counter()
            doc = orjson.loads(body)
            decode_s += time.perf_counter() - t0
            items += len(doc["Items"])
            key = doc.get("LastEvaluatedKey")
            if not key:
                break
    return {"floor": {"items": items, "wall_s": s.wall, "cpu_s": s.cpu, "decode_s": decode_s}}


# ---------------------------------------------------------------------------------------------- naive


def _naive_value(v: Any) -> Any:
    """What a typical script does with a value: nested things as JSON text; NULs stripped (COPY rejects them)."""
    if isinstance(v, str):
        return v.replace("\x00", "")
    if isinstance(v, (dict, list, set)):
        return json.dumps(v, default=_naive_json).replace("\\u0000", "")
    if isinstance(v, Binary):
        return base64.b64encode(v.value).decode()
    return v


def _naive_json(o: Any) -> Any:
    if isinstance(o, set):
        return list(o)
    if isinstance(o, Binary):
        return base64.b64encode(o.value).decode()
    return str(o)


def row_naive(args: argparse.Namespace) -> dict[str, Any]:
    """boto3 resource ``Table.scan`` (botocore parser + TypeDeserializer) → ``csv.DictWriter`` → one COPY."""
    import boto3
    import psycopg2

    with open(os.environ["BENCH_INDEX"], "rb") as f:
        fields = orjson.loads(f.read())["attributes"]
    conn = psycopg2.connect(os.environ["ARM_ETL_WAREHOUSE_URL"])
    with conn.cursor() as cur:
        cols = ", ".join('"' + c.replace('"', '""') + '" TEXT' for c in fields)
        cur.execute("DROP SCHEMA IF EXISTS naive CASCADE; CREATE SCHEMA naive")
        cur.execute(f"CREATE TABLE naive.items ({cols})")
    conn.commit()
    table = boto3.resource("dynamodb").Table(args.table)
    items = 0
    with Section() as s, tempfile.TemporaryFile("w+", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        kwargs: dict[str, Any] = {}
        while True:
            page = table.scan(**kwargs)
            for item in page["Items"]:
                writer.writerow({k: _naive_value(v) for k, v in item.items()})
            items += len(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        out.seek(0)
        with conn.cursor() as cur:
            cur.copy_expert("COPY naive.items FROM STDIN WITH (FORMAT csv, HEADER true)", out, size=1 << 20)
            loaded = cur.rowcount
        conn.commit()
    conn.close()
    return {"naive": {"items": items, "wall_s": s.wall, "cpu_s": s.cpu, "rows": loaded}}


# ---------------------------------------------------------------------------------------------- dlt


def _dlt_value(v: Any, hex_binary: bool) -> Any:
    """TypeDeserializer output → what dlt accepts: Binary → bytes (``\\x…`` text for dlt's csv writer, which
    refuses bytes), sets → sorted lists, no NUL in text (PostgreSQL rejects it)."""
    if isinstance(v, str):
        return v.replace("\x00", "") if "\x00" in v else v
    if isinstance(v, dict):
        return {k: _dlt_value(x, hex_binary) for k, x in v.items()}
    if isinstance(v, list):
        return [_dlt_value(x, hex_binary) for x in v]
    if isinstance(v, set):
        return sorted(_dlt_value(x, hex_binary) for x in v)
    if isinstance(v, Binary):
        return "\\x" + v.value.hex() if hex_binary else bytes(v.value)
    return v


def _dlt_credentials(url: str) -> str:
    """dlt requires a host; pgserver's URL names its Unix socket folder in the query (``?host=/tmp/...``),
    which libpq lets override the nominal ``localhost``."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.host:
        return url
    return u.set(host="localhost").render_as_string(hide_password=False)


def row_dlt(args: argparse.Namespace) -> dict[str, Any]:
    """dlt 1.x pipeline (extract → normalize → load) into the same PostgreSQL from the same Scan pages."""
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    import boto3
    import dlt
    import psycopg2
    from boto3.dynamodb.types import TypeDeserializer

    client = boto3.client("dynamodb")
    deser = TypeDeserializer()
    hex_binary = args.format == "csv"
    counted = [0]

    @dlt.resource(name="items", write_disposition="replace", columns={"big_exp": {"data_type": "text"}})
    def items() -> Iterator[list[dict[str, Any]]]:
        kwargs: dict[str, Any] = {"TableName": args.table}
        while True:
            page = client.scan(**kwargs)
            counted[0] += len(page["Items"])
            yield [{k: _dlt_value(deser.deserialize(v), hex_binary) for k, v in it.items()} for it in page["Items"]]
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    dataset = f"dlt_{args.format}"
    workdir = tempfile.mkdtemp(prefix="bench-dlt-")
    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{args.format}",
        pipelines_dir=workdir,
        destination=dlt.destinations.postgres(credentials=_dlt_credentials(os.environ["ARM_ETL_WAREHOUSE_URL"])),
        dataset_name=dataset,
    )
    with Section() as s:
        info = pipeline.run(items(), loader_file_format=args.format)
    info.raise_on_failed_jobs()
    conn = psycopg2.connect(os.environ["ARM_ETL_WAREHOUSE_URL"])
    with conn.cursor() as cur:
        cur.execute(f'SELECT count(*) FROM "{dataset}"."items"')
        loaded = cur.fetchone()[0]
    conn.close()
    return {"dlt": {"items": counted[0], "wall_s": s.wall, "cpu_s": s.cpu, "rows": loaded, "format": args.format}}


# ---------------------------------------------------------------------------------------------- arm-etl


def _summary_rows(counts: dict[str, int]) -> int:
    return sum(counts.values())


class ApiRequests:
    """Counts the HTTP requests this process sends to the Prefect API (both of Prefect's httpx clients).

    Every state change, task run, slot lease, artifact and log batch is one; events go over a websocket
    and are not requests. Prefect Cloud rate-limits these per account, so the count per segment run is
    what matters at scale.
    """

    def __init__(self) -> None:
        self.count = 0

    def __enter__(self) -> ApiRequests:
        from prefect.client.base import PrefectHttpxAsyncClient, PrefectHttpxSyncClient

        self._saved = (PrefectHttpxAsyncClient.send, PrefectHttpxSyncClient.send)
        real_async, real_sync = self._saved
        counter = self

        async def send_async(client: Any, request: Any, *a: Any, **kw: Any) -> Any:
            counter.count += 1
            return await real_async(client, request, *a, **kw)

        def send_sync(client: Any, request: Any, *a: Any, **kw: Any) -> Any:
            counter.count += 1
            return real_sync(client, request, *a, **kw)

        PrefectHttpxAsyncClient.send = send_async  # type: ignore[method-assign,assignment]
        PrefectHttpxSyncClient.send = send_sync  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        from prefect.client.base import PrefectHttpxAsyncClient, PrefectHttpxSyncClient

        PrefectHttpxAsyncClient.send, PrefectHttpxSyncClient.send = self._saved  # type: ignore[method-assign]


def row_arm_etl(args: argparse.Namespace) -> dict[str, Any]:
    """The product: the Prefect segment-ETL flow, one segment of one (``total=1``)."""
    import logging

    from flows.segment import segment_etl

    logging.getLogger("botocore").setLevel(logging.WARNING)
    with RssSampler() as rss, Section() as s, ApiRequests() as api:
        summary = segment_etl(
            args.table,
            0,
            1,
            fresh=True,
            snapshot=f"bench-{os.getpid()}",
            pages_per_chunk=args.pages_per_chunk,
            max_in_flight=args.max_in_flight,
        )
    totals = summary["totals"]
    loaded = sum(t["loaded"] or 0 for t in summary["tables"])
    if loaded != totals["rows"]:
        raise SystemExit(f"arm-etl loaded {loaded} rows, manifest says {totals['rows']}")
    return {
        args.row: {
            "items": totals["items"],
            "wall_s": s.wall,
            "cpu_s": s.cpu,
            "rows": loaded,
            "rejects": totals["rejects"],
            "chunks": totals["chunks"],
            "phase_seconds": summary["phase_seconds"],
            "rss_halves_mb": rss.halves,
            "api_requests": api.count,
        }
    }


def row_arm_etl_core(args: argparse.Namespace) -> dict[str, Any]:
    from bench.pipeline import options_for, run_concurrent
    from flows.resources import Resources

    res, options = Resources(), options_for(args.table, args.pages_per_chunk)
    with RssSampler() as rss, Section() as s:
        run, counts = run_concurrent(res, options, args.max_in_flight)
    return {
        "arm-etl-core": {
            "items": run.manifest.items,
            "wall_s": s.wall,
            "cpu_s": s.cpu,
            "rows": _summary_rows(counts),
            "phase_seconds": {k: round(v, 3) for k, v in run.stats.phase_seconds.items()},
            "rss_halves_mb": rss.halves,
        }
    }


def row_phases(args: argparse.Namespace) -> dict[str, Any]:
    from bench.pipeline import PHASES, options_for, run_sequential
    from flows.resources import Resources

    res, options = Resources(), options_for(args.table, args.pages_per_chunk)
    with Section() as s:
        run, counts, clock = run_sequential(res, options)
    items = run.manifest.items
    out: dict[str, Any] = {
        f"phase-{p}": {"items": items, "wall_s": clock.wall[p], "cpu_s": clock.cpu[p], "rss_shared": True}
        for p in PHASES
    }
    out["phases-sequence"] = {
        "items": items,
        "wall_s": s.wall,
        "cpu_s": s.cpu,
        "rows": _summary_rows(counts),
        "setup_s": clock.wall["setup"],
    }
    return out


ROWS = {
    "floor": row_floor,
    "naive": row_naive,
    "dlt": row_dlt,
    "arm-etl": row_arm_etl,
    "arm-etl-10x": row_arm_etl,
    "arm-etl-core": row_arm_etl_core,
    "phases": row_phases,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("row", choices=sorted(ROWS))
    ap.add_argument("--table", default="bench")
    ap.add_argument("--result", required=True, help="where to write this row's JSON")
    ap.add_argument("--format", default="insert_values", help="dlt loader_file_format")
    ap.add_argument("--pages-per-chunk", type=int, default=4)
    ap.add_argument("--max-in-flight", type=int, default=3)
    args = ap.parse_args(argv)
    from bench.patches import apply_from_env

    patches = apply_from_env()
    c0 = cpu_now()
    rows = ROWS[args.row](args)
    rss = peak_rss_mb()
    for r in rows.values():
        r["peak_rss_mb"] = rss
        r["items_per_s"] = r["items"] / r["wall_s"] if r["wall_s"] > 0 else 0.0
    doc = {"row": args.row, "rows": rows, "process_cpu_s": cpu_now() - c0, "pid": os.getpid(), "patches": patches}
    with open(args.result, "wb") as f:
        f.write(orjson.dumps(doc))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
