"""The embedded local stack: moto server (DynamoDB + S3 over real HTTP) and an embedded PostgreSQL.

State lives in one folder (default ``.arm-etl/``): PostgreSQL's data directory persists there; moto's
DynamoDB and S3 are in memory and last as long as the process.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from arm_etl.config import DEFAULT_CACHE_BUCKET, DEFAULT_DATA_BUCKET

DUMMY_KEY = "testing"


class LocalStack:
    def __init__(self, state_dir: str | os.PathLike[str] = ".arm-etl", port: int = 0, fresh_db: bool = False):
        self.state_dir = Path(state_dir).resolve()
        self.port = port
        self.fresh_db = fresh_db
        self._moto: Any = None
        self._pg: Any = None
        self.endpoint = ""
        self.warehouse_url = ""

    def start(self) -> LocalStack:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.warehouse_url = self._start_postgres()
        self.create_buckets()
        return self

    def _start_postgres(self) -> str:
        import pgserver

        pgdata = self.state_dir / "pg"
        if self.fresh_db and pgdata.exists():
            shutil.rmtree(pgdata)
        self._pg = pgserver.get_server(pgdata, cleanup_mode="stop")
        uri: str = self._pg.get_uri()
        return uri

    def env(self) -> dict[str, str]:
        """The variables a shell (or a subprocess) needs to use this stack."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": DUMMY_KEY,
            "AWS_SECRET_ACCESS_KEY": DUMMY_KEY,
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "ARM_ETL_WAREHOUSE_URL": self.warehouse_url,
            "ARM_ETL_DATA_BUCKET": os.environ.get("ARM_ETL_DATA_BUCKET") or DEFAULT_DATA_BUCKET,
            "ARM_ETL_CACHE_BUCKET": os.environ.get("ARM_ETL_CACHE_BUCKET") or DEFAULT_CACHE_BUCKET,
        }

    def apply_env(self) -> None:
        os.environ.update(self.env())

    def create_buckets(self) -> None:
        import boto3

        env = self.env()
        s3 = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=DUMMY_KEY,
            aws_secret_access_key=DUMMY_KEY,
            region_name="us-east-1",
        )
        for bucket in (env["ARM_ETL_DATA_BUCKET"], env["ARM_ETL_CACHE_BUCKET"]):
            s3.create_bucket(Bucket=bucket)

    def stop(self) -> None:
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        if self._pg is not None:
            self._pg.cleanup()
            self._pg = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
