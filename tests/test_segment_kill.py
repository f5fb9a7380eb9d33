"""A segment run SIGKILLed after its first uploaded chunk resumes from the manifest and ends exact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from typing import Any

import orjson

from arm_etl.config import segment_schema
from arm_etl.seed import seed_table
from arm_etl.upload import PartStore


def rows_without_extracted_at(pg: Any, schema: str) -> dict[str, Counter[tuple[Any, ...]]]:
    cur = pg.cursor()
    cur.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind = 'r' AND c.relname <> '_etl_segment'",
        (schema,),
    )
    out: dict[str, Counter[tuple[Any, ...]]] = {}
    for (name,) in cur.fetchall():
        cur.execute(f'SELECT * FROM "{schema}"."{name}"')
        cols = [d[0] for d in cur.description]
        keep = [i for i, c in enumerate(cols) if c != "_extracted_at"]
        out[name] = Counter(
            tuple(bytes(r[i]) if isinstance(r[i], memoryview) else repr(r[i]) for i in keep) for r in cur.fetchall()
        )
    return out


def test_sigkill_after_first_upload_then_resume(
    stack: Any, prefect_api: str, ddb: Any, s3: Any, pg: Any, table_name: str
) -> None:
    from flows.schema import determine_schema
    from flows.segment import segment_etl

    seed_table(ddb, table_name, 160, seed=5)
    determine_schema(table_name, total=1, routing=["sk:#"], page_limit=40)
    store = PartStore(s3, stack.env()["ARM_ETL_DATA_BUCKET"], table_name, 0)
    args = ["--table", table_name, "--segment", "0", "--total", "1", "--snapshot", "kill-test"]
    args += ["--page-limit", "4", "--pages-per-chunk", "1", "--max-in-flight", "2"]
    env = {**os.environ, **stack.env(), "PREFECT_API_URL": prefect_api}
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows", "segment", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        manifest = None
        while time.monotonic() < deadline and proc.poll() is None:
            manifest = store.read_manifest()
            if manifest is not None and len(manifest.chunks) >= 1:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run finished before it could be killed; make the chunks smaller"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    killed = store.read_manifest()
    assert killed is not None and not killed.complete and len(killed.chunks) >= 1
    committed = {p.key: s3.head_object(Bucket=store.bucket, Key=p.key)["ETag"] for p in killed.parts()}
    mtimes = {k: s3.head_object(Bucket=store.bucket, Key=k)["LastModified"] for k in committed}

    out = segment_etl(table_name, 0, 1, snapshot="kill-test", page_limit=4, pages_per_chunk=1, max_in_flight=2)
    totals = out["totals"]
    assert out["mode"] == "resume"
    assert totals["chunks_reused"] == len(killed.chunks)
    assert totals["chunks_extracted"] == totals["chunks"] - len(killed.chunks)  # uploaded chunks not extracted again
    assert totals["items_extracted"] == 160 - killed.items
    assert totals["items"] == 160
    for key, etag in committed.items():  # the uploaded parts were not written again
        head = s3.head_object(Bucket=store.bucket, Key=key)
        assert (head["ETag"], head["LastModified"]) == (etag, mtimes[key])
    final = store.read_manifest()
    assert final is not None and final.complete
    assert [c.no for c in final.chunks] == list(range(len(final.chunks)))
    assert orjson.loads(orjson.dumps(final.to_json()))["scan"]["position"] is None

    resumed = rows_without_extracted_at(pg, segment_schema(out["schema"].rsplit("_part_", 1)[0], 0))
    reference = segment_etl(
        table_name, 0, 1, target_schema="kill_reference", snapshot="kill-reference", fresh=True, page_limit=40
    )
    assert reference["mode"] == "fresh"
    assert rows_without_extracted_at(pg, segment_schema("kill_reference", 0)) == resumed
    assert sum(sum(c.values()) for c in resumed.values()) == totals["rows"]
