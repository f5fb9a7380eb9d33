"""Fixtures of the live suite: real AWS credentials, DynamoDB on a local moto server, a temporary Prefect API,
a connection to the real warehouse, and the removal of everything one run created.

Nothing here runs unless a live test asks for it, and at import this module needs only the standard library
and pytest: ``make test`` collects ``tests/live`` at no cost when the live suite skips. ``tests/conftest.py``
has no autouse fixture, and its ``stack`` (moto + pgserver) and ``prefect_api`` fixtures are not used here;
what it does at import (dummy AWS keys in the environment) is undone by :func:`live_env` from the snapshot
``tests/live/aws_env.py`` took before it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.live import config
from tests.live.config import TOTAL, LiveConfig, LiveStack, RunNames


@pytest.fixture(scope="session")
def live_config() -> LiveConfig:
    """The live configuration (``test_redshift_live.py`` has skipped already unless it is set)."""
    try:
        return config.parse(os.environ)
    except config.LiveConfigError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def live_names() -> RunNames:
    return RunNames(uuid.uuid4().hex[:8])


@pytest.fixture(scope="session")
def live_env(live_config: LiveConfig) -> Iterator[str]:
    """The caller's AWS environment back, DynamoDB (only) on a local moto server; yields its endpoint.

    S3 stays wherever boto3 sends it for the caller (real S3), except that a global ``AWS_ENDPOINT_URL``
    (e.g. pasted from ``arm-etl local up``) is dropped. ``ARM_ETL_*`` point the flows at the live bucket,
    role and warehouse, whatever the shell had.
    """
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    from tests.live import aws_env

    mp = pytest.MonkeyPatch()
    server: Any = None
    try:
        for key in [k for k in os.environ if k.startswith("AWS_")]:
            mp.delenv(key)
        for key, value in aws_env.SNAPSHOT.items():
            mp.setenv(key, value)
        for key in ("AWS_ENDPOINT_URL", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"):
            mp.delenv(key, raising=False)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        mp.setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint)  # service-specific: S3 keeps its endpoint
        mp.setenv("ARM_ETL_DATA_BUCKET", live_config.bucket)
        mp.setenv("ARM_ETL_CACHE_BUCKET", live_config.bucket)
        mp.setenv("ARM_ETL_IAM_ROLE", live_config.iam_role)
        if live_config.url:
            mp.setenv("ARM_ETL_WAREHOUSE_URL", live_config.url)
        else:
            mp.delenv("ARM_ETL_WAREHOUSE_URL", raising=False)

        if not boto3.Session().region_name:
            pytest.fail("no AWS region: set AWS_DEFAULT_REGION (or a region in your AWS profile)", pytrace=False)
        yield endpoint
    finally:
        mp.undo()
        if server is not None:
            server.stop()


@pytest.fixture(scope="session")
def live_credentials(live_config: LiveConfig, live_env: str) -> Any:
    """The warehouse's ``RedshiftCredentials``: from the URL, or the named block from the caller's Prefect API
    (read before the suite's own temporary Prefect server starts), with the test's COPY role."""
    from blocks import RedshiftCredentials

    if live_config.url:
        return RedshiftCredentials.from_url(live_config.url, iam_role=live_config.iam_role)
    assert live_config.block is not None
    block: Any = RedshiftCredentials.load(live_config.block)
    return block.model_copy(update={"iam_role": live_config.iam_role})


@pytest.fixture(scope="session")
def live_prefect(live_config: LiveConfig, live_credentials: Any) -> Iterator[None]:
    """A temporary Prefect API for the flow runs (never the caller's: no runs, limits or blocks touched there).

    With a block, a copy of it (COPY role replaced by ``ARM_ETL_TEST_IAM_ROLE``) is saved there under the
    same name, so the flows load it exactly as a deployment would; the copy goes with the temporary server.
    """
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        if live_config.block:
            live_credentials.save(live_config.block, overwrite=True)
        yield


@pytest.fixture(scope="session")
def live_conn(live_credentials: Any) -> Iterator[Any]:
    """An autocommit psycopg2 connection to the warehouse, made from the block's URL and, with IAM
    authentication, its temporary credentials (as the flows connect); TLS required on Redshift unless the
    URL or block says otherwise."""
    import psycopg2

    url = live_credentials.url()
    kwargs: dict[str, Any] = url.translate_connect_args(username="user", database="dbname")
    kwargs.update({k: v if isinstance(v, str) else v[-1] for k, v in url.query.items()})
    provider = live_credentials.credential_provider()
    if provider is not None:
        creds = provider()
        kwargs["user"], kwargs["password"] = creds.user, creds.password
    if live_credentials.dialect == "redshift":
        kwargs.setdefault("sslmode", "require")
    conn = psycopg2.connect(**kwargs)
    conn.autocommit = True
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture(scope="session")
def live(
    live_config: LiveConfig,
    live_names: RunNames,
    live_env: str,
    live_credentials: Any,
    live_prefect: None,
    live_conn: Any,
) -> Iterator[LiveStack]:
    """The live stack of one run; afterwards drops the redshift-schemas and deletes the S3 keys it created
    (only those: ``RunNames.schemas`` and ``RunNames.s3_prefixes``), unless ``ARM_ETL_TEST_KEEP=1``."""
    stack = LiveStack(
        config=live_config,
        names=live_names,
        dialect=live_credentials.dialect,
        conn=live_conn,
        dynamodb_endpoint=live_env,
        redshift_block=live_config.block,
    )
    schemas = live_names.schemas(TOTAL)
    prefixes = [f"s3://{live_config.bucket}/{p}" for p in live_names.s3_prefixes()]
    print(f"live run on {live_config.source}: redshift-schemas {', '.join(schemas)}; S3 {', '.join(prefixes)}")
    try:
        yield stack
    finally:
        if live_config.keep:
            print(f"{config.KEEP_VAR} is set: kept {', '.join(schemas)} and {', '.join(prefixes)}")
        else:
            cleanup(stack, schemas)


def cleanup(stack: LiveStack, schemas: list[str]) -> None:
    """Drop the run's redshift-schemas, delete its S3 keys; both are attempted even if one fails."""
    from tests.live.compare import drop_schemas

    try:
        drop_schemas(stack.conn, schemas)
    finally:
        s3 = stack.s3()
        for prefix in stack.names.s3_prefixes():
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=stack.config.bucket, Prefix=prefix):
                keys = [{"Key": o["Key"]} for o in page.get("Contents", ())]
                if keys:
                    s3.delete_objects(Bucket=stack.config.bucket, Delete={"Objects": keys, "Quiet": True})
