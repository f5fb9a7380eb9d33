"""Session-scoped real parts: moto server (HTTP on 127.0.0.1), embedded PostgreSQL, Prefect's API."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
for _k in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
    os.environ.pop(_k, None)
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
)

from tests.prefect_server import deployed  # noqa: E402, F401  (session fixture: server, worker, deployments)

_names = itertools.count()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """moto server + pgserver for the whole session; the env points boto3 and arm-etl at them."""
    from arm_etl.localstack import LocalStack

    st = LocalStack(tmp_path_factory.mktemp("stack"), port=0).start()
    saved = {k: os.environ.get(k) for k in st.env()}
    st.apply_env()
    yield st
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    st.stop()


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """One real Prefect API (a temporary server) per session; startup costs ~10 s here."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield str(PREFECT_API_URL.value())


@pytest.fixture()
def table_name(request: pytest.FixtureRequest) -> str:
    """A fresh DynamoDB table name per test (moto state is shared by the session)."""
    base = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40]
    return f"t{next(_names)}-{base}".lower()


@pytest.fixture()
def ddb(stack: Any) -> Any:
    import boto3

    return boto3.client("dynamodb", endpoint_url=stack.endpoint)


@pytest.fixture()
def s3(stack: Any) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=stack.endpoint)


@pytest.fixture()
def pg(stack: Any) -> Iterator[Any]:
    import psycopg2

    conn = psycopg2.connect(stack.warehouse_url)
    conn.autocommit = True
    yield conn
    conn.close()
