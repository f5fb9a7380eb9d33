"""The segment run's report (arm_etl.report): exact figures in human units, on success and on failure."""

from __future__ import annotations

import pytest

from arm_etl.dataschema import DataSchema
from arm_etl.extract import Throttle
from arm_etl.manifest import ChunkRecord, Manifest, Part
from arm_etl.report import SegmentReport, human_bytes
from arm_etl.segment import RunOptions, SegmentPlan, Stats


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1 KiB"),
        (1536, "1.5 KiB"),
        (10 * 1024 + 300, "10.3 KiB"),
        (1023 * 1024, "1023 KiB"),
        (64 * 1024**2, "64 MiB"),
        (int(2.25 * 1024**3), "2.25 GiB"),
        (5000 * 1024**4, "5000 TiB"),
    ],
)
def test_human_bytes(n: int, text: str) -> None:
    assert human_bytes(n) == text


def manifest() -> Manifest:
    parts = [Part("fin", "k/0", 40, 2048, 9 * 1024), Part("fin__refs", "k/1", 12, 512, 1500)]
    m = Manifest("arm-demo", 1, 3, "2026-12-03", "v7", "2026-12-03T03:00:00Z")
    m.chunks = [
        ChunkRecord(0, 30, 30, parts[:1], {"value over 65535 bytes": 2}, {"fin": 2}),
        ChunkRecord(1, 20, 21, parts[1:], {"number out of range": 1}, {"fin__refs": 1}),
    ]
    return m


def report(error: str | None = None) -> SegmentReport:
    options = RunOptions.of("arm-demo", 1, 3, "dynamodb_arm_demo", "2026-12-03")
    stats = Stats(chunks_extracted=1, items_extracted=20, chunks_reused=1, phase_seconds={"load": 0.5, "extract": 2})
    throttle = Throttle(waited_s=1.25, events=3)
    loaded = {} if error else {"fin": 40, "fin__refs": 12}
    plan = SegmentPlan(
        "resume", manifest(), DataSchema("arm-demo", "v7", "2026-12-03T02:00:00Z", 50, "relational", (), ("id",), ())
    )
    return SegmentReport(options, plan, stats, throttle, loaded, 4.0, error)


def test_result_holds_rows_bytes_rejects_rate_and_waits() -> None:
    d = report().to_dict()
    assert d["status"] == "completed" and d["error"] is None
    assert d["tables"] == [
        {"table": "fin", "rows": 40, "parts": 1, "raw_bytes": 9216, "bytes": 2048, "rejects": 2, "loaded": 40},
        {"table": "fin__refs", "rows": 12, "parts": 1, "raw_bytes": 1500, "bytes": 512, "rejects": 1, "loaded": 12},
    ]
    assert d["rejects"] == {"value over 65535 bytes": 2, "number out of range": 1}
    assert d["totals"] == {
        "items": 50,
        "rows": 52,
        "rejects": 3,
        "raw_bytes": 10716,
        "bytes": 2560,
        "chunks": 2,
        "chunks_reused": 1,
        "chunks_extracted": 1,
        "items_extracted": 20,
    }
    assert d["items_per_s"] == 5.0 and d["wall_s"] == 4.0
    assert d["throttle"] == {"waits": 3, "seconds": 1.25}
    assert d["phase_seconds"] == {"extract": 2, "load": 0.5}


def test_markdown_of_a_completed_run() -> None:
    assert report().markdown() == "\n".join(
        [
            "# Segment 1/3 of `arm-demo`: completed",
            "",
            "- mode **resume**, snapshot `2026-12-03`, data-schema `v7`, into `dynamodb_arm_demo_part_1`",
            "- 50 items in 2 chunks (1 resumed, 1 scanned now); 20 items in 4.0 s = **5 items/s**",
            "- 52 rows, 10.5 KiB of CSV, 2.5 KiB compressed",
            "- DynamoDB throttling: 3 waits, 1.2 s",
            "",
            "| table | rows | parts | CSV | compressed | rejects | loaded |",
            "|---|---:|---:|---:|---:|---:|---:|",
            "| `fin` | 40 | 1 | 9 KiB | 2 KiB | 2 | 40 |",
            "| `fin__refs` | 12 | 1 | 1.46 KiB | 512 B | 1 | 12 |",
            "",
            "| rejected values, by reason | count |",
            "|---|---:|",
            "| number out of range | 1 |",
            "| value over 65535 bytes | 2 |",
            "",
            "Phase seconds (summed over chunks): extract 2.0 s, load 0.5 s",
            "",
        ]
    )


def test_markdown_of_a_failed_run_names_the_error_and_what_was_committed() -> None:
    text = report("ClientError: AccessDenied").markdown()
    lines = text.splitlines()
    assert lines[:3] == ["# Segment 1/3 of `arm-demo`: failed", "", "**Error:** ClientError: AccessDenied"]
    assert "| `fin` | 40 | 1 | 9 KiB | 2 KiB | 2 |  |" in lines


def test_a_run_that_failed_before_its_manifest_still_reports() -> None:
    options = RunOptions.of("arm-demo", 0, 3, "t", "2026-12-03")
    r = SegmentReport(options, None, Stats(), Throttle(), {}, 0.2, "SchemaCacheError: none cached")
    assert r.to_dict()["totals"]["items"] == 0 and r.to_dict()["data_schema_version"] is None
    assert (
        r.markdown().splitlines()[4]
        == "- mode **not started**, snapshot `2026-12-03`, data-schema `?`, into `t_part_0`"
    )
