"""``arm-etl local up``: the embedded stack and a Prefect server on loopback, its runs kept on disk.

Without ``PREFECT_API_URL`` every ``arm-etl`` command starts a temporary Prefect API (8–25 s here) and its
runs vanish with it. ``local up`` starts ``prefect server start`` once, with its database in the stack's
state folder, and prints the ``PREFECT_API_URL`` to export: commands after it start at once and their
runs, logs and artifacts stay visible in the UI, across restarts of the stack too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import IO, Final

DEFAULT_PORT: Final = 4200


class PrefectServer:
    """``prefect server start`` as a child process on 127.0.0.1; ``stop`` ends it and its workers."""

    def __init__(self, state_dir: Path, port: int = DEFAULT_PORT) -> None:
        self.home = state_dir / "prefect"
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.api_url = f"{self.url}/api"
        self.log_path = self.home / "server.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def env(self) -> dict[str, str]:
        """What a shell needs to use this server (the UI address only matters to the server itself)."""
        return {"PREFECT_API_URL": self.api_url}

    def start(self, timeout_s: float = 180) -> PrefectServer:
        self.home.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(
            PREFECT_HOME=str(self.home),
            PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{self.home / 'prefect.db'}",
            PREFECT_UI_API_URL=self.api_url,  # else the browser's UI asks port 4200 whatever the port
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            DO_NOT_TRACK="1",
        )
        self._log = self.log_path.open("ab")
        cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(self.port)]
        self._proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"prefect server exited with {self._proc.returncode} (port {self.port} in use? try "
                    f"--prefect-port): see {self.log_path}"
                )
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"prefect server not healthy after {timeout_s:.0f}s: see {self.log_path}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None


def local_up(state_dir: str, port: int, prefect_port: int | None) -> int:
    """``arm-etl local up``: the stack and (unless ``prefect_port`` is None) a Prefect server, in the foreground
    until Ctrl-C or SIGTERM; prints the exports another shell needs and the UI's address."""
    from arm_etl.localstack import LocalStack

    stack = LocalStack(state_dir, port=port).start()
    server = None
    try:
        if prefect_port is not None:
            print(f"# starting the Prefect server on 127.0.0.1:{prefect_port} …", flush=True)
            server = PrefectServer(stack.state_dir, prefect_port).start()
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        print("# arm-etl local stack is up; paste these into another shell:")
        env = {**stack.env(), **(server.env() if server else {})}
        for k, v in env.items():
            print(f"export {k}='{v}'")
        if server is not None:
            print(f"# Prefect UI: {server.url}  (runs, logs and artifacts of every command after the exports)")
        print(f"# state: {stack.state_dir}  (Ctrl-C or SIGTERM stops it)", flush=True)
        while not stop.is_set():
            time.sleep(0.2)
    finally:
        if server is not None:
            server.stop()
        stack.stop()
        print("# stopped", flush=True)
    return 0
