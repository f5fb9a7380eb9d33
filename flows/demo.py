"""``arm-etl demo``: the whole job on the embedded stack, printed step by step."""

from __future__ import annotations

import os
import time
from typing import Any


def run_demo(table: str, items: int, total: int, state_dir: str) -> int:
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from arm_etl.localstack import LocalStack

    say = _printer()
    say(f"starting the embedded stack (moto server + PostgreSQL) in {state_dir}/ …")
    stack = LocalStack(state_dir, port=0).start()
    stack.apply_env()
    try:
        return _run(stack, table, items, total, say)
    finally:
        stack.stop()


def _printer() -> Any:
    start = time.perf_counter()

    def say(msg: str) -> None:
        print(f"[{time.perf_counter() - start:6.1f}s] {msg}", flush=True)

    return say


def _run(stack: Any, table: str, items: int, total: int, say: Any) -> int:
    import boto3

    from arm_etl.config import target_schema
    from arm_etl.seed import seed_table
    from flows.centralize import centralize
    from flows.schema import determine_schema
    from flows.segment import segment_etl

    elapsed: dict[str, float] = {}

    def timed(phase: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        elapsed[phase] = elapsed.get(phase, 0.0) + time.perf_counter() - t0
        return out

    from deployments.limits import create_limits

    say("starting a local Prefect API and creating the global concurrency limits …")
    for name, what in create_limits().items():
        say(f"  limit {name}: {what}")

    say(f"seeding DynamoDB table {table!r} with {items} synthetic items (every awkward value class) …")
    timed("seed", seed_table, boto3.client("dynamodb"), table, items, 0)

    say(f"data-schema determination over {total} parallel segments …")
    schema = timed("determination", determine_schema, table, total=total, routing=["sk:#"], page_limit=100)
    say(schema["summary"].replace("\n", "\n         "))

    rejects: dict[str, int] = {}
    for i in range(total):
        say(f"segment {i}/{total}: extract → transform → S3 → COPY, concurrently …")
        out = timed("segments", segment_etl, table, i, total, page_limit=100, pages_per_chunk=2)
        t = out["totals"]
        say(
            f"  {out['schema']}: {t['items']} items → {t['rows']} rows in {len(out['tables'])} tables, "
            f"{t['rejects']} values kept in _etl_rejects, {t['chunks']} chunks"
        )
        for reason, n in out["rejects"].items():
            rejects[reason] = rejects.get(reason, 0) + n

    target = target_schema(table)
    say(f"centralization of {total} segments into {target} (verified, swapped atomically) …")
    cen = timed("centralization", centralize, table, total, approve=True)
    say(cen["message"])

    say("summary")
    counts = cen.get("counts", {})
    width = max((len(t) for t in counts), default=10)
    for t, n in sorted(counts.items()):
        print(f"         {t:<{width}}  {n:>8} rows")
    print("         rejects by reason: " + (", ".join(f"{k}={v}" for k, v in sorted(rejects.items())) or "none"))
    print("         elapsed: " + ", ".join(f"{k} {v:.1f}s" for k, v in elapsed.items()))
    print(
        "\nThe warehouse persists in the state folder. To look at it:\n"
        "  arm-etl local up            # prints the env, including ARM_ETL_WAREHOUSE_URL\n"
        f'  psql "$ARM_ETL_WAREHOUSE_URL" -c \'SELECT count(*) FROM "{target}"."fin"\''
    )
    return 0
