"""Smoke run of ``make bench`` (``python -m bench --items 2000 --repeat 1``) so the benchmark cannot rot.

It runs every row end to end against its own stand-ins and checks the shape of ``latest.json``; it asserts
no timing threshold (timings on a shared CI machine mean nothing at this size).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
ROWS = (
    "floor",
    "naive",
    "dlt",
    "arm-etl",
    "arm-etl-core",
    "phase-extract",
    "phase-transform",
    "phase-upload",
    "phase-load",
    "phases-sequence",
    "arm-etl-10x",
)
RATIOS = (
    "vs_dlt",
    "vs_naive",
    "cpu_vs_floor",
    "wall_vs_slowest_phase",
    "overlap",
    "rss_10x",
    "peak_rss_mb",
    "api_requests",
    "api_requests_10x",
)


def test_bench_smoke(tmp_path: Path) -> None:
    missing = [m for m in ("dlt", "matplotlib", "psutil", "pgserver", "moto") if importlib.util.find_spec(m) is None]
    if missing:
        message = f"the bench extra is not installed (missing {', '.join(missing)}): pip install -e '.[bench]'"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "bench",
        "--items",
        "2000",
        "--repeat",
        "1",
        "--out",
        str(out),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--baseline-items",
        "2000",
        "--dlt-probe-items",
        "500",
        "--x10",
        "full",
        "--rows",
        "floor,naive,dlt,arm-etl,phases,arm-etl-core,arm-etl-10x",  # every row, the diagnostic one too
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=840, check=False)
    assert proc.returncode == 0, (proc.stdout[-6000:], proc.stderr[-6000:])

    doc = json.loads((out / "latest.json").read_text())
    assert doc["items"] == 2000
    assert set(ROWS) <= set(doc["rows"]), sorted(doc["rows"])
    for name in ROWS:
        row = doc["rows"][name]
        for key in ("items_per_s", "cpu_s", "peak_rss_mb"):
            assert isinstance(row[key], (int, float)) and row[key] > 0, (name, key, row)
    assert doc["rows"]["arm-etl-10x"]["items"] == 10 * doc["rows"]["arm-etl"]["items"] == 20_000
    for name in ("arm-etl", "arm-etl-10x"):  # the segment flow's requests to the Prefect API, counted
        assert isinstance(doc["rows"][name]["api_requests"], (int, float)) and doc["rows"][name]["api_requests"] > 0
    for key in RATIOS:
        value = doc["ratios"][key]
        assert isinstance(value, (int, float)) and value > 0, (key, doc["ratios"])
    assert set(doc["goals"]) == set(RATIOS)
    md = (out / "latest.md").read_text()
    assert md.startswith("# arm-etl benchmark")
    for name in ROWS:
        assert f"| {name} " in md
    assert (out / "latest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| floor " in proc.stdout  # the table is printed too
