"""Prefect blocks of arm-etl. Register with ``prefect block register -m blocks``.

AWS access uses prefect-aws's own ``AwsCredentials`` and ``S3Bucket`` blocks; the warehouse uses
:class:`RedshiftCredentials` below (PostgreSQL is accepted too, for local runs and tests).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Self, cast

from prefect.blocks.core import Block
from prefect_aws import AwsCredentials
from pydantic import Field, SecretStr, model_validator
from sqlalchemy.engine import URL, Engine, create_engine, make_url

if TYPE_CHECKING:
    from arm_etl.warehouse.auth import CredentialProvider

__all__ = ["RedshiftCredentials"]

Dialect = Literal["redshift", "postgresql"]


class _Defaults(NamedTuple):
    drivername: str
    port: int
    database: str
    iam: bool  # has IAM temporary credentials


_DEFAULTS: dict[str, _Defaults] = {
    "redshift": _Defaults("redshift+psycopg2", 5439, "dev", iam=True),
    "postgresql": _Defaults("postgresql+psycopg2", 5432, "postgres", iam=False),
}

AuthMode = Literal["password", "iam-cluster", "iam-serverless"]


class RedshiftCredentials(Block):
    """Connection to the Redshift warehouse (or a PostgreSQL stand-in) and the IAM role COPY assumes.

    ``auth`` chooses how to log on: a stored password, or IAM temporary credentials fetched at connect time
    (GetClusterCredentials for a provisioned cluster, GetCredentials for a Serverless workgroup), signed with
    ``aws_credentials`` or, when that is empty, the worker's own role. IAM modes store no password at all.
    """

    _block_type_name = "Redshift Credentials"
    _block_type_slug = "arm-etl-redshift-credentials"
    _description = "Connection and COPY IAM role for the arm-etl warehouse (Amazon Redshift or PostgreSQL)."

    dialect: Literal["redshift", "postgresql"] = Field(
        default="redshift", description="Warehouse kind: 'redshift', or 'postgresql' for local runs and tests."
    )
    host: str = Field(description="Cluster endpoint host name, or a unix-socket directory for PostgreSQL.")
    port: int = Field(default=5439, description="TCP port (Redshift default 5439, PostgreSQL 5432).")
    database: str = Field(description="Database name.")
    username: str = Field(
        default="",
        description=(
            "Database user. With auth 'iam-cluster': the DbUser to request credentials for (logs on as "
            "'IAM:<user>'); empty to derive the user from the IAM identity. Unused with 'iam-serverless'."
        ),
    )
    password: SecretStr | None = Field(
        default=None, description="Database password (stored encrypted); only with auth 'password'."
    )
    auth: AuthMode = Field(
        default="password",
        description=(
            "How to log on: 'password'; 'iam-cluster' (temporary credentials from "
            "redshift:GetClusterCredentials, or GetClusterCredentialsWithIAM without a username); "
            "'iam-serverless' (redshift-serverless:GetCredentials)."
        ),
    )
    cluster_identifier: str | None = Field(
        default=None, description="Provisioned cluster identifier (required with auth 'iam-cluster')."
    )
    workgroup_name: str | None = Field(
        default=None, description="Redshift Serverless workgroup name (required with auth 'iam-serverless')."
    )
    db_groups: list[str] = Field(
        default_factory=list,
        description="Database groups the user joins at log on (auth 'iam-cluster' with a username; "
        "needs redshift:JoinGroup).",
    )
    auto_create_user: bool = Field(
        default=False,
        description="Create the database user if it does not exist (auth 'iam-cluster' with a username; "
        "logs on as 'IAMA:<user>', needs redshift:CreateClusterUser).",
    )
    credentials_duration_seconds: int = Field(
        default=900,
        ge=900,
        le=3600,
        description="Lifetime of the temporary password, 900 to 3600 seconds; renewed 5 minutes before it ends.",
    )
    aws_credentials: AwsCredentials | None = Field(
        default=None,
        description="AWS credentials that sign the IAM credentials call; empty: the worker's role "
        "(boto3's default chain).",
    )
    iam_role: str | None = Field(
        default=None,
        description="IAM role ARN that Redshift assumes for COPY from S3 (no access keys ever go into SQL).",
    )
    sslmode: str | None = Field(
        default=None, description="libpq sslmode; default 'require' for Redshift, libpq's default for PostgreSQL."
    )
    statement_timeout_ms: int = Field(
        default=3_600_000, description="Statement timeout for every warehouse statement, in milliseconds."
    )

    def __repr_args__(self) -> list[tuple[str | None, Any]]:
        """Prefect's repr, but with the nested AwsCredentials' session token masked (prefect-aws keeps it a
        plain str, and a session token is as much a credential as the secret key)."""
        args = super().__repr_args__()
        aws = self.aws_credentials
        if aws is None or not aws.aws_session_token:
            return args
        masked = aws.model_copy(update={"aws_session_token": "**********"})
        return [(k, masked if k == "aws_credentials" else v) for k, v in args]

    @model_validator(mode="after")
    def _check_auth(self) -> Self:
        """Refuse a block that could only fail at connect time, with what to set instead."""
        if self.auth == "password":
            return self
        if not _DEFAULTS[self.dialect].iam:
            raise ValueError(f"auth {self.auth!r} needs dialect 'redshift' (PostgreSQL has no IAM credentials)")
        if self.password is not None:
            raise ValueError(f"auth {self.auth!r} uses temporary credentials: leave the password empty")
        if self.auth == "iam-cluster":
            if not self.cluster_identifier:
                raise ValueError("auth 'iam-cluster' needs cluster_identifier")
            if not self.username and (self.db_groups or self.auto_create_user):
                raise ValueError(
                    "db_groups and auto_create_user need a username: without one the database user is derived "
                    "from the IAM identity (GetClusterCredentialsWithIAM), which takes neither"
                )
        elif not self.workgroup_name:
            raise ValueError("auth 'iam-serverless' needs workgroup_name")
        return self

    def credential_provider(self) -> CredentialProvider | None:
        """What the warehouse calls at each connect for a user and password; None with auth 'password'.

        Build it once per run and keep it: it caches the temporary credentials until 5 minutes before
        they expire. The region is ``aws_credentials``' region, else the boto3 session's default.
        """
        if self.auth == "password":
            return None
        import boto3

        from arm_etl.warehouse.auth import ClusterIamCredentials, ServerlessIamCredentials

        client_kwargs: dict[str, Any] = {}
        if self.aws_credentials is not None:
            session = self.aws_credentials.get_boto3_session()
            region = self.aws_credentials.region_name or session.region_name
            params = self.aws_credentials.aws_client_parameters.get_params_override()
            client_kwargs = {k: v for k, v in params.items() if k in ("endpoint_url", "verify")}
        else:
            session = boto3.Session()
            region = session.region_name
        if self.auth == "iam-cluster":
            assert self.cluster_identifier  # checked by _check_auth
            return ClusterIamCredentials(
                session,
                self.cluster_identifier,
                self.database,
                db_user=self.username or None,
                db_groups=self.db_groups,
                auto_create=self.auto_create_user,
                duration_seconds=self.credentials_duration_seconds,
                region_name=region,
                client_kwargs=client_kwargs,
            )
        assert self.workgroup_name  # checked by _check_auth
        return ServerlessIamCredentials(
            session,
            self.workgroup_name,
            self.database,
            duration_seconds=self.credentials_duration_seconds,
            region_name=region,
            client_kwargs=client_kwargs,
        )

    def url(self) -> URL:
        """The SQLAlchemy URL (password included: never log it; use ``render_as_string(hide_password=True)``).

        In IAM modes it carries no password: the warehouse takes user and password from
        :meth:`credential_provider` at each connect.
        """
        drivername = _DEFAULTS[self.dialect].drivername
        query: dict[str, str] = {}
        host: str | None = self.host
        if self.host.startswith("/"):
            query["host"], host = self.host, None
        if self.sslmode:
            query["sslmode"] = self.sslmode
        iam = self.auth != "password"
        return URL.create(
            drivername,
            username=(self.username or None) if iam else self.username,
            password=self.password.get_secret_value() if self.password and not iam else None,
            host=host,
            port=self.port if host else None,
            database=self.database,
            query=query,
        )

    def get_engine(self, **kwargs: Any) -> Engine:
        """A SQLAlchemy engine for either dialect (sqlalchemy-redshift for Redshift)."""
        return create_engine(self.url(), **kwargs)

    @classmethod
    def from_env(cls) -> RedshiftCredentials:
        """Build from ``ARM_ETL_WAREHOUSE_URL`` and ``ARM_ETL_IAM_ROLE``."""
        raw = os.environ.get("ARM_ETL_WAREHOUSE_URL")
        if not raw:
            raise ValueError("ARM_ETL_WAREHOUSE_URL is not set (e.g. redshift+psycopg2://user:pw@host:5439/db)")
        return cls.from_url(raw, iam_role=os.environ.get("ARM_ETL_IAM_ROLE") or None)

    @classmethod
    def from_url(cls, raw: str, iam_role: str | None = None) -> RedshiftCredentials:
        u = make_url(raw)
        backend = u.get_backend_name()
        dialect: Dialect = cast(Dialect, backend) if backend in _DEFAULTS else "postgresql"
        defaults = _DEFAULTS[dialect]
        host = u.host or (u.query.get("host") if isinstance(u.query.get("host"), str) else None) or "localhost"
        sslmode = u.query.get("sslmode")
        return cls(
            dialect=dialect,
            host=str(host),
            port=u.port or defaults.port,
            database=u.database or defaults.database,
            username=u.username or "",
            password=SecretStr(u.password) if u.password else None,
            iam_role=iam_role,
            sslmode=str(sslmode) if isinstance(sslmode, str) else None,
        )
