"""A real ``prefect server`` and process worker for the session, with the repository's deployments.

Started once (8–25 s here) by the first test that asks for ``deployed``: the server (own PREFECT_HOME and
SQLite in a tmp dir, no scheduler: the real 03:00 schedules must not create runs while the test's worker
listens), a ``process`` work pool, ``prefect deploy --all`` from the repository root (the deployments as
users deploy them), and a worker against the moto + PostgreSQL stack. Runs are started only through the
deployments, as schedules and the UI start them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deployments import PROCESS_POOL
from deployments.specs import SPECS

REPO = Path(__file__).resolve().parents[1]
PREFECT = str(Path(sys.executable).with_name("prefect"))
SERVER_FLAGS = ("--no-scheduler", "--no-ui", "--analytics-off")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_server(port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``prefect server start`` on 127.0.0.1:``port``, healthy; no scheduler: the real 03:00 schedules must
    not create runs while a test's worker listens (triggers, actions and events stay on)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port), *SERVER_FLAGS],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_healthy(f"http://127.0.0.1:{port}/api", proc, log)
    except BaseException:
        stop(proc)
        raise
    return proc


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 150) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"prefect server not healthy after {timeout}s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    """Stop a subprocess this test started, and its process group (uvicorn, flow-run children)."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


class Deployed:
    def __init__(self, api_url: str, env: dict[str, str], readback: dict[str, Any], worker_log: Path):
        self.api_url = api_url
        self.env = env
        self.readback = readback
        self.worker_log = worker_log

    def settings(self) -> Any:
        """Point this thread (and threads started with its context copied) at the test server."""
        from prefect.settings import PREFECT_API_URL, temporary_settings

        return temporary_settings(updates={PREFECT_API_URL: self.api_url})

    def worker_tail(self) -> str:
        return self.worker_log.read_text(errors="replace")[-4000:] if self.worker_log.exists() else ""


@pytest.fixture(scope="session")
def deployed(stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """Server → process pool → ``prefect deploy --all`` → read back → worker. Everything stopped in finally."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    common = {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_CLI_PROMPT": "false",
    }
    server_env = {
        **base,
        **common,
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
    }
    client_env = {**base, **common, "PREFECT_API_URL": api_url}
    server = worker = None
    server_log, worker_log = home / "server.log", home / "worker.log"
    try:
        server = start_server(port, server_env, server_log)

        def cli(*args: str) -> str:
            r = subprocess.run([PREFECT, *args], env=client_env, cwd=REPO, capture_output=True, text=True, timeout=180)
            assert r.returncode == 0, f"prefect {' '.join(args)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
            return r.stdout

        cli("work-pool", "create", PROCESS_POOL, "--type", "process")
        worker_env = {
            **client_env,
            **stack.env(),
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_PREFETCH_SECONDS": "5",
            "PREFECT_LOGGING_TO_API_ENABLED": "true",
        }
        with worker_log.open("wb") as out:  # started now, so its start-up overlaps the deploy
            worker = subprocess.Popen(
                [PREFECT, "worker", "start", "--pool", PROCESS_POOL, "--name", "test-worker"],
                env=worker_env,
                cwd=home,  # not the repository: the pull step must move flow runs there
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        cli("--no-prompt", "deploy", "--all")

        readback: dict[str, Any] = {}
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
            for spec in SPECS:
                readback[spec.name] = client.read_deployment_by_name(spec.full_name)

        yield Deployed(api_url, worker_env, readback, worker_log)
    finally:
        stop(worker)
        stop(server)
