"""Prefect blocks of arm-etl. Register with ``prefect block register -m blocks``.

AWS access uses prefect-aws's own ``AwsCredentials`` and ``S3Bucket`` blocks; the warehouse uses
:class:`RedshiftCredentials` below (PostgreSQL is accepted too, for local runs and tests).
"""

from __future__ import annotations

import os
from typing import Any, Literal

from prefect.blocks.core import Block
from pydantic import Field, SecretStr
from sqlalchemy.engine import URL, Engine, create_engine, make_url

__all__ = ["RedshiftCredentials"]


class RedshiftCredentials(Block):
    """Connection to the Redshift warehouse (or a PostgreSQL stand-in) and the IAM role COPY assumes."""

    _block_type_name = "Redshift Credentials"
    _block_type_slug = "arm-etl-redshift-credentials"
    _description = "Connection and COPY IAM role for the arm-etl warehouse (Amazon Redshift or PostgreSQL)."

    dialect: Literal["redshift", "postgresql"] = Field(
        default="redshift", description="Warehouse kind: 'redshift', or 'postgresql' for local runs and tests."
    )
    host: str = Field(description="Cluster endpoint host name, or a unix-socket directory for PostgreSQL.")
    port: int = Field(default=5439, description="TCP port (Redshift default 5439, PostgreSQL 5432).")
    database: str = Field(description="Database name.")
    username: str = Field(description="Database user.")
    password: SecretStr | None = Field(default=None, description="Database password (stored encrypted).")
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

    def url(self) -> URL:
        """The SQLAlchemy URL (password included: never log it; use ``render_as_string(hide_password=True)``)."""
        drivername = "redshift+psycopg2" if self.dialect == "redshift" else "postgresql+psycopg2"
        query: dict[str, str] = {}
        host: str | None = self.host
        if self.host.startswith("/"):
            query["host"], host = self.host, None
        if self.sslmode:
            query["sslmode"] = self.sslmode
        return URL.create(
            drivername,
            username=self.username,
            password=self.password.get_secret_value() if self.password else None,
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
        dialect: Literal["redshift", "postgresql"] = "redshift" if u.get_backend_name() == "redshift" else "postgresql"
        host = u.host or (u.query.get("host") if isinstance(u.query.get("host"), str) else None) or "localhost"
        sslmode = u.query.get("sslmode")
        return cls(
            dialect=dialect,
            host=str(host),
            port=u.port or (5439 if dialect == "redshift" else 5432),
            database=u.database or ("dev" if dialect == "redshift" else "postgres"),
            username=u.username or "",
            password=SecretStr(u.password) if u.password else None,
            iam_role=iam_role,
            sslmode=str(sslmode) if isinstance(sslmode, str) else None,
        )
