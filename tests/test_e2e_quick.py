from __future__ import annotations

from typing import Any

from arm_etl.seed import seed_table


def test_schema_then_segments(stack: Any, prefect_api: str, ddb: Any, pg: Any, table_name: str) -> None:
    from flows.schema import determine_schema
    from flows.segment import segment_etl

    seed_table(ddb, table_name, 120, seed=1)
    out = determine_schema(table_name, total=3, routing=["sk:#"], page_limit=20)
    print(out["summary"])
    for i in range(3):
        s = segment_etl(table_name, i, 3, page_limit=10, pages_per_chunk=2)
        print(s["totals"], s["rejects"])
    cur = pg.cursor()
    cur.execute("select nspname from pg_namespace where nspname like 'dynamodb_%'")
    print(cur.fetchall())
    cur.execute(f'select table_name, item_key, column_path, reason, left(chunk, 80) from "dynamodb_{table_name.replace("-", "_")}_part_1"._etl_rejects')
    for r in cur.fetchall():
        print(r)
