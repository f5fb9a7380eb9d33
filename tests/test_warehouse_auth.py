"""Redshift IAM authentication: temporary credentials through moto (GetClusterCredentials) or botocore's
Stubber (GetClusterCredentialsWithIAM and Serverless GetCredentials, which moto does not serve), their cache,
their errors, and the RedshiftCredentials block that chooses them. No server: moto runs in-process."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from prefect_aws import AwsCredentials
from pydantic import SecretStr, ValidationError

from arm_etl.warehouse.auth import (
    ClusterIamCredentials,
    CredentialProvider,
    DbCredentials,
    ServerlessIamCredentials,
    WarehouseAuthError,
)
from blocks import RedshiftCredentials

REGION = "us-east-1"
ACCOUNT = "123456789012"
CLUSTER = "etl-cluster"
WORKGROUP = "etl-wg"
T0 = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
DENIED = (
    f"User: arn:aws:sts::{ACCOUNT}:assumed-role/etl-worker/i-0abc is not authorized to perform: "
    "redshift:GetClusterCredentials on resource: arn:aws:redshift:us-east-1:123456789012:dbuser:etl-cluster/etl"
)


class FakeClock:
    """The provider's clock, moved by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(autouse=True)
def _in_process_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process moto only: a moto server endpoint left in the environment by another test would bypass it."""
    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_REDSHIFT", "AWS_ENDPOINT_URL_REDSHIFT_SERVERLESS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)


@pytest.fixture()
def cluster() -> Iterator[Any]:
    """A moto Redshift cluster; yields the client."""
    with mock_aws():
        client = boto3.client("redshift", region_name=REGION)
        client.create_cluster(
            ClusterIdentifier=CLUSTER,
            NodeType="ra3.xlplus",
            MasterUsername="admin",
            MasterUserPassword="Admin-pw-1",
            DBName="dev",
        )
        yield client


def record_params(client: Any, operation: str) -> list[dict[str, Any]]:
    """Every request's parameters, as the provider passed them to the client."""
    seen: list[dict[str, Any]] = []

    def hook(params: dict[str, Any], **_: Any) -> None:
        seen.append(dict(params))

    client.meta.events.register(f"provide-client-params.{client.meta.service_model.service_name}.{operation}", hook)
    return seen


def stubbed(service: str) -> tuple[Any, Stubber]:
    client = boto3.client(service, region_name=REGION)
    return client, Stubber(client)


def cluster_response(user: str, password: str, expires: datetime) -> dict[str, Any]:
    return {"DbUser": user, "DbPassword": password, "Expiration": expires}


# ---------------------------------------------------------------------------------------------- cluster


def test_cluster_credentials_through_moto(cluster: Any) -> None:
    provider = ClusterIamCredentials(
        cluster, CLUSTER, "dev", db_user="etl", db_groups=["loaders"], duration_seconds=1800
    )
    seen = record_params(cluster, "GetClusterCredentials")
    before = datetime.now(UTC)
    creds = provider()
    assert seen == [
        {
            "ClusterIdentifier": CLUSTER,
            "DbUser": "etl",
            "DbName": "dev",
            "DurationSeconds": 1800,
            "AutoCreate": False,
            "DbGroups": ["loaders"],
        }
    ]
    # Redshift returns the user prefixed "IAM:"; the password authorizes that exact name, so it is kept verbatim.
    assert creds.user == "IAM:etl"
    assert len(creds.password) == 32
    assert creds.expires_at is not None
    assert timedelta(seconds=1795) <= creds.expires_at - before <= timedelta(seconds=1805)
    assert isinstance(provider, CredentialProvider)


def test_auto_create_logs_on_as_iama_user(cluster: Any) -> None:
    session = boto3.Session(region_name=REGION)
    provider = ClusterIamCredentials(session, CLUSTER, "dev", db_user="etl", auto_create=True)
    seen = record_params(provider.client, "GetClusterCredentials")
    assert provider().user == "IAMA:etl"
    assert seen == [
        {"ClusterIdentifier": CLUSTER, "DbUser": "etl", "DbName": "dev", "DurationSeconds": 900, "AutoCreate": True}
    ]


def test_unknown_cluster_is_terminal_and_named(cluster: Any) -> None:
    provider = ClusterIamCredentials(cluster, "no-such-cluster", "dev", db_user="etl")
    with pytest.raises(WarehouseAuthError) as err:
        provider()
    assert err.value.transient is False
    msg = str(err.value)
    assert "redshift:GetClusterCredentials" in msg and "ClusterNotFound" in msg
    assert "no cluster 'no-such-cluster' in us-east-1" in msg


def test_cluster_credentials_with_iam_identity() -> None:
    """No db_user: GetClusterCredentialsWithIAM, the user derived from the IAM identity (moto lacks the call)."""
    client, stub = stubbed("redshift")
    expires = T0 + timedelta(seconds=900)
    stub.add_response(
        "get_cluster_credentials_with_iam",
        {"DbUser": "IAMR:etl-worker", "DbPassword": "tmp-pw-1", "Expiration": expires, "NextRefreshTime": expires},
        expected_params={"ClusterIdentifier": CLUSTER, "DbName": "dev", "DurationSeconds": 900},
    )
    with stub:
        creds = ClusterIamCredentials(client, CLUSTER, "dev", clock=FakeClock())()
    stub.assert_no_pending_responses()
    assert creds == DbCredentials(user="IAMR:etl-worker", password="tmp-pw-1", expires_at=expires)


def test_groups_or_auto_create_without_user_are_refused() -> None:
    client, _ = stubbed("redshift")
    with pytest.raises(ValueError, match="need a db_user"):
        ClusterIamCredentials(client, CLUSTER, "dev", db_groups=["loaders"])
    with pytest.raises(ValueError, match=r"within 900\.\.3600"):
        ClusterIamCredentials(client, CLUSTER, "dev", db_user="etl", duration_seconds=600)
    with pytest.raises(ValueError, match="needs a 'redshift' client"):
        ClusterIamCredentials(boto3.client("s3", region_name=REGION), CLUSTER, "dev", db_user="etl")


# ---------------------------------------------------------------------------------------------- serverless


def test_serverless_credentials() -> None:
    client, stub = stubbed("redshift-serverless")
    expires = T0 + timedelta(seconds=3600)
    stub.add_response(
        "get_credentials",
        {"dbUser": "IAMR:etl-worker", "dbPassword": "sls-pw-1", "expiration": expires, "nextRefreshTime": expires},
        expected_params={"workgroupName": WORKGROUP, "dbName": "dev", "durationSeconds": 3600},
    )
    with stub:
        creds = ServerlessIamCredentials(client, WORKGROUP, "dev", duration_seconds=3600, clock=FakeClock())()
    stub.assert_no_pending_responses()
    assert creds == DbCredentials(user="IAMR:etl-worker", password="sls-pw-1", expires_at=expires)


def test_serverless_errors() -> None:
    client, stub = stubbed("redshift-serverless")
    provider = ServerlessIamCredentials(client, WORKGROUP, "dev", clock=FakeClock())
    stub.add_client_error(
        "get_credentials", "ResourceNotFoundException", "Workgroup etl-wg not found", http_status_code=404
    )
    stub.add_client_error("get_credentials", "AccessDeniedException", DENIED, http_status_code=403)
    stub.add_client_error("get_credentials", "InternalServerException", "oops", http_status_code=500)
    with stub:
        with pytest.raises(WarehouseAuthError) as missing:
            provider()
        with pytest.raises(WarehouseAuthError) as denied:
            provider()
        with pytest.raises(WarehouseAuthError) as broken:
            provider()
    assert missing.value.transient is False
    assert "no workgroup 'etl-wg' in us-east-1" in str(missing.value)
    assert denied.value.transient is False
    assert (
        f"grant redshift-serverless:GetCredentials on arn:aws:redshift-serverless:us-east-1:{ACCOUNT}:"
        "workgroup/<workgroup-id>"
    ) in str(denied.value)
    assert broken.value.transient is True
    assert "InternalServerException" in str(broken.value)


# ---------------------------------------------------------------------------------------------- cache


def test_cached_until_five_minutes_before_expiry() -> None:
    client, stub = stubbed("redshift")
    clock = FakeClock()
    expected = {
        "ClusterIdentifier": CLUSTER,
        "DbUser": "etl",
        "DbName": "dev",
        "DurationSeconds": 900,
        "AutoCreate": False,
    }
    stub.add_response("get_cluster_credentials", cluster_response("IAM:etl", "pw-1", T0 + timedelta(minutes=15)))
    stub.add_response(
        "get_cluster_credentials", cluster_response("IAM:etl", "pw-2", T0 + timedelta(minutes=25)), expected
    )
    provider = ClusterIamCredentials(client, CLUSTER, "dev", db_user="etl", clock=clock)
    with stub:
        assert provider().password == "pw-1"
        clock.advance(minutes=9, seconds=59)
        assert provider().password == "pw-1"  # 5 min 1 s left: still good
        clock.advance(seconds=1)
        assert provider().password == "pw-2"  # 5 min left: renewed
    stub.assert_no_pending_responses()


def test_long_run_calls_the_api_once_per_credential_lifetime() -> None:
    """An hour of connections every 10 s: 360 connects, 6 calls (900 s credentials renewed after 600 s)."""
    client, stub = stubbed("redshift")
    clock = FakeClock()
    for k in range(6):
        expires = T0 + timedelta(seconds=600 * k + 900)
        stub.add_response("get_cluster_credentials", cluster_response("IAM:etl", f"pw-{k}", expires))
    provider = ClusterIamCredentials(client, CLUSTER, "dev", db_user="etl", clock=clock)
    passwords = []
    with stub:
        for _ in range(360):
            creds = provider()
            assert creds.expires_at is not None and clock.now < creds.expires_at
            passwords.append(creds.password)
            clock.advance(seconds=10)
    stub.assert_no_pending_responses()
    assert sorted(set(passwords)) == [f"pw-{k}" for k in range(6)]


def test_concurrent_connects_fetch_once() -> None:
    client, stub = stubbed("redshift-serverless")
    stub.add_response(
        "get_credentials", {"dbUser": "IAMR:w", "dbPassword": "pw", "expiration": T0 + timedelta(minutes=15)}
    )
    provider = ServerlessIamCredentials(client, WORKGROUP, "dev", clock=FakeClock())
    got: list[DbCredentials] = []
    start = threading.Barrier(8)

    def connect() -> None:
        start.wait()
        got.append(provider())

    with stub:
        threads = [threading.Thread(target=connect) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    stub.assert_no_pending_responses()
    assert len(got) == 8 and {c.password for c in got} == {"pw"}


def test_failed_fetch_is_not_cached() -> None:
    client, stub = stubbed("redshift")
    stub.add_client_error("get_cluster_credentials", "Throttling", "Rate exceeded", http_status_code=400)
    stub.add_response("get_cluster_credentials", cluster_response("IAM:etl", "pw", T0 + timedelta(minutes=15)))
    provider = ClusterIamCredentials(client, CLUSTER, "dev", db_user="etl", clock=FakeClock())
    with stub:
        with pytest.raises(WarehouseAuthError) as err:
            provider()
        assert provider().password == "pw"
    assert err.value.transient is True
    assert "Throttling" in str(err.value) and f"cluster {CLUSTER!r}" in str(err.value)


# ---------------------------------------------------------------------------------------------- errors


def test_access_denied_is_terminal_and_names_the_grants() -> None:
    client, stub = stubbed("redshift")
    stub.add_client_error("get_cluster_credentials", "AccessDenied", DENIED, http_status_code=403)
    provider = ClusterIamCredentials(
        client, CLUSTER, "dev", db_user="etl", db_groups=["loaders"], auto_create=True, clock=FakeClock()
    )
    with stub, pytest.raises(WarehouseAuthError) as err:
        provider()
    assert err.value.transient is False
    msg = str(err.value)
    arn = f"arn:aws:redshift:us-east-1:{ACCOUNT}"
    assert f"redshift:GetClusterCredentials for cluster {CLUSTER!r} in us-east-1 failed with AccessDenied" in msg
    assert f"grant redshift:GetClusterCredentials on {arn}:dbuser:{CLUSTER}/etl and {arn}:dbname:{CLUSTER}/dev" in msg
    assert f"grant redshift:CreateClusterUser on {arn}:dbuser:{CLUSTER}/etl" in msg
    assert f"grant redshift:JoinGroup on {arn}:dbgroup:{CLUSTER}/loaders" in msg


def test_access_denied_with_iam_identity_names_its_action() -> None:
    client, stub = stubbed("redshift")
    stub.add_client_error("get_cluster_credentials_with_iam", "AccessDenied", "not authorized", http_status_code=403)
    with stub, pytest.raises(WarehouseAuthError) as err:
        ClusterIamCredentials(client, CLUSTER, "dev", clock=FakeClock())()
    assert err.value.transient is False
    # no account in AWS's message: a placeholder, not a guess
    assert (
        f"grant redshift:GetClusterCredentialsWithIAM on arn:aws:redshift:us-east-1:<account-id>:dbname:{CLUSTER}/dev"
        in str(err.value)
    )


@pytest.mark.parametrize(
    ("code", "status", "transient"),
    [
        ("Throttling", 400, True),
        ("ServiceUnavailable", 503, True),
        ("SomethingNew", 502, True),
        ("InvalidParameterValue", 400, False),
        ("UnsupportedOperation", 400, False),
        ("ExpiredToken", 400, False),
    ],
)
def test_error_codes_map_to_transient_or_terminal(code: str, status: int, transient: bool) -> None:
    client, stub = stubbed("redshift")
    stub.add_client_error("get_cluster_credentials", code, "message from AWS", http_status_code=status)
    with stub, pytest.raises(WarehouseAuthError) as err:
        ClusterIamCredentials(client, CLUSTER, "dev", db_user="etl", clock=FakeClock())()
    assert err.value.transient is transient
    assert code in str(err.value) and "message from AWS" in str(err.value)


# ---------------------------------------------------------------------------------------------- secrecy


def test_db_credentials_never_print_the_password() -> None:
    creds = DbCredentials(user="IAM:etl", password="s3cr3t-tmp-pw", expires_at=T0)
    for text in (repr(creds), str(creds), f"{creds}", f"{creds!r}"):
        assert "s3cr3t-tmp-pw" not in text and "IAM:etl" in text


def test_block_reprs_never_print_secrets() -> None:
    pw = RedshiftCredentials(host="h", database="dev", username="etl", password=SecretStr("blockPw-123"))
    iam = RedshiftCredentials(
        host="h",
        database="dev",
        auth="iam-serverless",
        workgroup_name=WORKGROUP,
        aws_credentials=AwsCredentials(
            aws_access_key_id="AKIAEXAMPLE",
            aws_secret_access_key=SecretStr("awsSecret-456"),
            aws_session_token="awsToken-789",
        ),
    )
    for text in (repr(pw), str(pw), repr(iam), str(iam)):
        for secret in ("blockPw-123", "awsSecret-456", "awsToken-789"):
            assert secret not in text
    assert "workgroup_name='etl-wg'" in repr(iam)
    assert iam.aws_credentials is not None and iam.aws_credentials.aws_session_token == "awsToken-789"


# ---------------------------------------------------------------------------------------------- block


def test_password_path_unchanged() -> None:
    block = RedshiftCredentials.from_url("redshift+psycopg2://etl:pw%2F1@cluster.example:5439/dev")
    assert block.auth == "password"
    assert block.credential_provider() is None
    url = block.url()
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "etl",
        "pw/1",
        "cluster.example",
        5439,
        "dev",
    )
    pg = RedshiftCredentials.from_url("postgresql://u:p@/db?host=/tmp/sock")
    assert pg.credential_provider() is None and pg.url().password == "p"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"auth": "iam-cluster"}, "needs cluster_identifier"),
        ({"auth": "iam-serverless"}, "needs workgroup_name"),
        ({"auth": "iam-cluster", "cluster_identifier": CLUSTER, "password": "pw"}, "leave the password empty"),
        ({"auth": "iam-serverless", "workgroup_name": WORKGROUP, "dialect": "postgresql"}, "needs dialect 'redshift'"),
        ({"auth": "iam-cluster", "cluster_identifier": CLUSTER, "db_groups": ["g"]}, "need a username"),
        ({"auth": "iam-cluster", "cluster_identifier": CLUSTER, "credentials_duration_seconds": 4000}, "3600"),
        ({"auth": "iam-ldap"}, "auth"),
    ],
)
def test_block_refuses_incomplete_iam_settings(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RedshiftCredentials(host="h", database="dev", **fields)


def test_iam_blocks_need_no_password_and_url_carries_none() -> None:
    cluster_block = RedshiftCredentials(
        host="c.example", database="dev", username="etl", auth="iam-cluster", cluster_identifier=CLUSTER
    )
    serverless_block = RedshiftCredentials(
        host="wg.example", database="dev", auth="iam-serverless", workgroup_name=WORKGROUP
    )
    assert cluster_block.password is None and cluster_block.url().password is None
    assert cluster_block.url().render_as_string(hide_password=False) == "redshift+psycopg2://etl@c.example:5439/dev"
    assert serverless_block.url().render_as_string(hide_password=False) == "redshift+psycopg2://wg.example:5439/dev"


def test_block_builds_cluster_provider_signed_by_its_aws_credentials(cluster: Any) -> None:
    block = RedshiftCredentials(
        host="c.example",
        database="dev",
        username="etl",
        auth="iam-cluster",
        cluster_identifier=CLUSTER,
        db_groups=["loaders"],
        credentials_duration_seconds=1200,
        aws_credentials=AwsCredentials(
            aws_access_key_id="AKIABLOCK", aws_secret_access_key=SecretStr("block-secret"), region_name=REGION
        ),
    )
    provider = block.credential_provider()
    assert isinstance(provider, ClusterIamCredentials)
    assert provider.client.meta.region_name == REGION
    assert provider.client._request_signer._credentials.access_key == "AKIABLOCK"  # the block's keys sign
    seen = record_params(provider.client, "GetClusterCredentials")
    assert provider().user == "IAM:etl"
    assert seen == [
        {
            "ClusterIdentifier": CLUSTER,
            "DbUser": "etl",
            "DbName": "dev",
            "DurationSeconds": 1200,
            "AutoCreate": False,
            "DbGroups": ["loaders"],
        }
    ]


def test_block_without_aws_credentials_uses_the_default_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-southeast-2")
    monkeypatch.setenv("AWS_REGION", "ap-southeast-2")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWORKER")
    block = RedshiftCredentials(host="wg.example", database="dev", auth="iam-serverless", workgroup_name=WORKGROUP)
    provider = block.credential_provider()
    assert isinstance(provider, ServerlessIamCredentials)
    assert provider.client.meta.region_name == "ap-southeast-2"
    assert provider.client._request_signer._credentials.access_key == "AKIAWORKER"
    with Stubber(provider.client) as stub:
        stub.add_response(
            "get_credentials",
            {"dbUser": "IAMR:worker", "dbPassword": "pw", "expiration": datetime.now(UTC) + timedelta(minutes=15)},
            expected_params={"workgroupName": WORKGROUP, "dbName": "dev", "durationSeconds": 900},
        )
        assert provider().user == "IAMR:worker"


def test_block_schema_nests_the_aws_credentials_block() -> None:
    schema = RedshiftCredentials._to_block_schema(block_type_id=uuid.uuid4())
    assert schema.fields["block_schema_references"]["aws_credentials"]["block_type_slug"] == "aws-credentials"
    assert set(schema.fields["secret_fields"]) == {"password", "aws_credentials.aws_secret_access_key"}
    for name in (
        "auth",
        "cluster_identifier",
        "workgroup_name",
        "db_groups",
        "auto_create_user",
        "credentials_duration_seconds",
        "aws_credentials",
    ):
        assert schema.fields["properties"][name].get("description"), name


# ---------------------------------------------------------------------------------------------- warehouse


def test_warehouse_logs_on_with_the_providers_user_and_password() -> None:
    """The contract the warehouse relies on: at each connect, the provider's user and password replace the
    URL's (which in IAM modes has none)."""
    from arm_etl.warehouse import warehouse_for

    client, stub = stubbed("redshift")
    stub.add_response("get_cluster_credentials", cluster_response("IAM:etl", "tmp-pw", T0 + timedelta(minutes=15)))
    block = RedshiftCredentials(
        host="c.example", database="dev", username="etl", auth="iam-cluster", cluster_identifier=CLUSTER
    )
    provider = ClusterIamCredentials(client, CLUSTER, "dev", db_user="etl", clock=FakeClock())
    wh = warehouse_for(block.url(), credentials=provider)
    with stub:
        kwargs = wh.connect_kwargs()
    assert (kwargs["user"], kwargs["password"], kwargs["host"], kwargs["dbname"]) == (
        "IAM:etl",
        "tmp-pw",
        "c.example",
        "dev",
    )
    assert "tmp-pw" not in repr(wh)


@pytest.mark.slow
def test_block_round_trips_through_prefect_with_nested_aws_credentials(prefect_api: str) -> None:
    """Saved and loaded through a real Prefect API: the nested AwsCredentials (and its secret) come back."""
    name = f"auth-{uuid.uuid4().hex[:8]}"
    RedshiftCredentials(
        host="c.example",
        database="dev",
        auth="iam-cluster",
        cluster_identifier=CLUSTER,
        aws_credentials=AwsCredentials(
            aws_access_key_id="AKIABLOCK", aws_secret_access_key=SecretStr("block-secret"), region_name="eu-west-1"
        ),
    ).save(name)
    loaded = RedshiftCredentials.load(name)
    assert isinstance(loaded, RedshiftCredentials)  # load is sync here (no running event loop)
    assert (loaded.auth, loaded.cluster_identifier, loaded.password) == ("iam-cluster", CLUSTER, None)
    assert loaded.aws_credentials is not None and loaded.aws_credentials.aws_secret_access_key is not None
    assert loaded.aws_credentials.aws_secret_access_key.get_secret_value() == "block-secret"
    provider = loaded.credential_provider()
    assert isinstance(provider, ClusterIamCredentials) and provider.db_user is None
    assert provider.client.meta.region_name == "eu-west-1"
