"""The stand-ins the rows run against, started once by the parent: replay, moto (S3), PostgreSQL, Prefect API."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.data import PageSet

ROOT = Path(__file__).resolve().parent.parent


class Stack:
    def __init__(self, pages: PageSet, index_path: Path, tables: dict[str, Any]):
        self.pages = pages
        self.index_path = index_path
        self.tables = tables  # source table name → its data-schema (written to the cache bucket)
        self.replay: subprocess.Popen[str] | None = None
        self.replay_url = ""
        self.local: Any = None
        self.prefect_url = ""
        self._exit = contextlib.ExitStack()
        self.tmp = Path(tempfile.mkdtemp(prefix="arm-etl-bench-"))

    def start(self, log: Any = print) -> Stack:
        self.replay = subprocess.Popen(
            [sys.executable, "-m", "bench.replay", "--index", str(self.index_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.replay.stdout is not None
        self.replay_url = self.replay.stdout.readline().strip()
        if not self.replay_url.startswith("http"):
            raise RuntimeError("the replay endpoint did not start")
        log(f"replay endpoint: {self.replay_url}")

        from arm_etl.localstack import LocalStack

        self.local = LocalStack(self.tmp / "stack", port=0, fresh_db=True).start()
        log(f"moto (S3): {self.local.endpoint}; PostgreSQL: {self.local.warehouse_url.split('@')[-1]}")

        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        os.environ.setdefault("DO_NOT_TRACK", "1")
        from prefect.settings import PREFECT_API_URL
        from prefect.testing.utilities import prefect_test_harness

        self._exit.enter_context(prefect_test_harness(server_startup_timeout=180))
        self.prefect_url = str(PREFECT_API_URL.value())
        log(f"Prefect API: {self.prefect_url}")
        self.reset()
        return self

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "PREFECT_PROFILES_PATH"):
            env.pop(k, None)
        env.update(self.local.env())
        env.update(
            {
                "AWS_ENDPOINT_URL_DYNAMODB": self.replay_url,
                "AWS_ENDPOINT_URL_S3": self.local.endpoint,
                "PREFECT_API_URL": self.prefect_url,
                "PREFECT_LOGGING_LEVEL": "WARNING",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "DO_NOT_TRACK": "1",
                "RUNTIME__DLTHUB_TELEMETRY": "false",
                "BENCH_INDEX": str(self.index_path),
                "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
            }
        )
        return env

    def reset(self) -> None:
        """Between rows: empty moto (S3), recreate the buckets and the cached data-schemas, drop row schemas."""
        import boto3
        import psycopg2

        from arm_etl.cache import SchemaCache

        req = urllib.request.Request(f"{self.local.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=60).read()
        self.local.create_buckets()
        env = self.local.env()
        s3 = boto3.client(
            "s3",
            endpoint_url=self.local.endpoint,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_REGION"],
        )
        for table, schema in self.tables.items():
            SchemaCache(s3, env["ARM_ETL_CACHE_BUCKET"], table).write(schema)
        conn = psycopg2.connect(self.local.warehouse_url)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
                "AND nspname NOT IN ('information_schema', 'public')"
            )
            for (name,) in cur.fetchall():
                cur.execute(f'DROP SCHEMA "{name}" CASCADE')
            cur.execute("CHECKPOINT")
        conn.close()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._exit.close()
        if self.local is not None:
            with contextlib.suppress(Exception):
                self.local.stop()
        if self.replay is not None:
            with contextlib.suppress(Exception):
                assert self.replay.stdin is not None
                self.replay.stdin.close()
                self.replay.wait(timeout=10)
            if self.replay.poll() is None:
                self.replay.kill()
        import shutil

        shutil.rmtree(self.tmp, ignore_errors=True)

    @contextlib.contextmanager
    def running(self, log: Any = print) -> Iterator[Stack]:
        try:
            yield self.start(log)
        finally:
            self.stop()
