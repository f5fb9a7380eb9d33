"""``arm-etl status``: read-only, one row per segment, exit 0 when centralization would proceed, 1 when not."""

from __future__ import annotations

from typing import Any

import pytest

from arm_etl.config import segment_schema
from flows.cli import main
from tests.test_centralize import TOTAL, extracted, load_segments, schemas_like

__all__ = ["extracted"]  # the module fixture: a seeded table whose segments are extracted once


def run_status(capsys: pytest.CaptureFixture[str], table: str, target: str) -> tuple[int, list[str]]:
    code = main(["status", "--table", table, "--total", str(TOTAL), "--target-schema", target])
    return code, capsys.readouterr().out.splitlines()


def manifest_fields(stack: Any, table: str) -> list[tuple[str, str]]:
    import boto3

    from arm_etl.upload import PartStore

    s3 = boto3.client("s3", endpoint_url=stack.endpoint)
    out = []
    for i in range(TOTAL):
        m = PartStore(s3, stack.env()["ARM_ETL_DATA_BUCKET"], table, i).read_manifest()
        assert m is not None
        out.append((m.snapshot, m.data_schema_version))
    return out


def test_status_of_complete_missing_and_short_segments(
    extracted: str, stack: Any, pg: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    target = "c_status"
    (snap, version), *_ = manifest_fields(stack, extracted)
    load_segments(extracted, target)

    code, out = run_status(capsys, extracted, target)
    assert code == 0
    assert out[0].split() == ["segment", "manifest", "snapshot", "data-schema", "complete", "loaded", "counts", "match"]
    assert [line.split() for line in out[1:4]] == [
        [str(i), "yes", snap, version, "yes", "yes", "yes"] for i in range(3)
    ]
    assert out[4:] == [f"every segment is ready: centralization of {extracted} into {target} would proceed"]

    cur = pg.cursor()
    cur.execute(f'DROP SCHEMA "{segment_schema(target, 1)}" CASCADE')  # test setup only
    part2 = segment_schema(target, 2)
    cur.execute(f'DELETE FROM "{part2}"."fin" WHERE ctid IN (SELECT ctid FROM "{part2}"."fin" LIMIT 1)')
    cur.execute(f'SELECT count(*) FROM "{part2}"."fin"')
    left = cur.fetchone()[0]
    before = schemas_like(pg, target)

    code, out = run_status(capsys, extracted, target)
    assert code == 1
    assert [line.split() for line in out[1:4]] == [
        ["0", "yes", snap, version, "yes", "yes", "yes"],
        ["1", "yes", snap, version, "yes", "no", "no"],
        ["2", "yes", snap, version, "yes", "yes", "no"],
    ]
    cli = f"arm-etl segment --table {extracted} --segment {{i}} --total 3 --phases load"
    deployment = f"start deployment segment-etl/segment-etl with table={extracted}, segment={{i}}, total=3, phases=load"
    assert out[4:] == [
        f"segment 1: schema {segment_schema(target, 1)} missing (a load reloads the completed upload, no scan) → "
        f"run `{cli.format(i=1)}`, or {deployment.format(i=1)}",
        f"segment 2: row counts differ from its manifest (fin {left}/{left + 1}) → "
        f"run `{cli.format(i=2)}`, or {deployment.format(i=2)}",
        f"centralization of {extracted} into {target} would refuse: segment(s) [1, 2] not ready",
    ]
    assert schemas_like(pg, target) == before  # read-only

    load_segments(extracted, target)
    assert run_status(capsys, extracted, target)[0] == 0
