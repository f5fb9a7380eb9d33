"""The approval form (arm_etl.approval): what the operator reads before the swap, exact."""

from __future__ import annotations

from arm_etl.approval import approval_markdown, shrinking
from arm_etl.centralize import SegmentCheck
from arm_etl.manifest import ChunkRecord, Manifest, Part


def check(segment: int, snapshot: str, version: str, rows: int, rejects: dict[str, int]) -> SegmentCheck:
    m = Manifest("arm-demo", segment, 2, snapshot, version, "2026-12-03T03:00:00Z", complete=True)
    m.chunks = [ChunkRecord(0, rows, rows, [Part("fin", f"k/{segment}", rows, 10, 20)], rejects, {})]
    return SegmentCheck(segment, m, {}, {"fin": rows})


def test_shrinking_flags_only_data_tables_losing_more_than_a_tenth() -> None:
    old = {"fin": 100, "org": 10, "new": 0, "_etl_rejects": 50, "gone": 4}
    new = {"fin": 89, "org": 9, "new": 5, "_etl_rejects": 0}
    assert shrinking(old, new) == [
        "`fin` would lose 11 of its 100 rows (11%)",
        "`gone` would lose 4 of its 4 rows (100%)",
    ]
    assert shrinking({"fin": 100}, {"fin": 90}) == []  # exactly 10 %: no warning


def test_the_form_shows_segments_counts_rejects_and_warnings() -> None:
    checks = [
        check(0, "2026-12-03", "v2-aa", 40, {"number out of range": 1}),
        check(1, "2026-12-02", "v1-aa", 30, {"number out of range": 2, "value over 65535 bytes": 1}),
    ]
    text = approval_markdown("t", "t_loading", "t_backup", checks, {"fin": 100}, {"fin": 70}, "Readers: none.")
    assert text == "\n\n".join(
        [
            "## Approve swapping `t_loading` into `t`?",
            "> **Warning:** `fin` would lose 30 of its 100 rows (30%).",
            "| table | production now | after swap | delta |\n|---|---:|---:|---:|\n| `fin` | 100 | 70 | -30 |",
            "| segment | snapshot | data-schema | items | rows |\n|---:|---|---|---:|---:|\n"
            "| 0 | `2026-12-03` | `v2-aa` | 40 | 40 |\n| 1 | `2026-12-02` | `v1-aa` | 30 | 30 |",
            "| rejected values, by reason | count |\n|---|---:|\n| number out of range | 3 |\n"
            "| value over 65535 bytes | 1 |",
            "The current rows move to `t_backup` (the previous backup is dropped).",
            "Readers: none.",
        ]
    )
