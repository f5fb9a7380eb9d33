"""``arm-etl local up``: the embedded stack and a Prefect server, whose runs outlive the commands."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.prefect_server import free_port

REPO = Path(__file__).resolve().parents[1]
ARM_ETL = str(Path(sys.executable).with_name("arm-etl"))


@pytest.mark.slow
def test_local_up_starts_a_prefect_server_that_keeps_the_runs(tmp_path: Path) -> None:
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "AWS_", "ARM_ETL_"))}
    up = subprocess.Popen(
        [ARM_ETL, "local", "up", "--dir", str(tmp_path / "state"), "--port", "0", "--prefect-port", str(port)],
        env=base,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert up.stdout is not None
        lines: list[str] = []
        for line in up.stdout:  # everything up to the state line, then the stack is up
            lines.append(line.rstrip("\n"))
            if line.startswith("# state: "):
                break
        exports = dict(re.findall(r"^export (\w+)='([^']*)'$", "\n".join(lines), re.M))
        assert exports["PREFECT_API_URL"] == f"http://127.0.0.1:{port}/api", lines
        assert (
            f"# Prefect UI: http://127.0.0.1:{port}  (runs, logs and artifacts of every command after the exports)"
            in lines
        )
        with urllib.request.urlopen(f"{exports['PREFECT_API_URL']}/health", timeout=5) as r:
            assert r.status == 200
        # a command after the exports uses that server (no temporary one) and its run stays there
        env = {**base, **exports}
        for argv in (
            ["seed", "--table", "local-up", "--items", "20"],
            ["schema", "--table", "local-up", "--total", "1"],
        ):
            done = subprocess.run([ARM_ETL, *argv], env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stdout + done.stderr
        assert "Starting temporary server" not in done.stdout + done.stderr
        runs = read_runs(exports["PREFECT_API_URL"])
        assert [r.name for r in runs] == ["local-up-data-schema"] and runs[0].state_name == "Completed"
    finally:
        os.killpg(up.pid, signal.SIGTERM)
        out, _ = up.communicate(timeout=60)
    assert up.returncode == 0 and out.rstrip().endswith("# stopped"), out
    assert (tmp_path / "state" / "prefect" / "prefect.db").exists(), "the runs are kept in the state folder"


def read_runs(api_url: str) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        for _ in range(20):
            runs = client.read_flow_runs()
            if runs:
                return runs
            time.sleep(0.5)
    return []
