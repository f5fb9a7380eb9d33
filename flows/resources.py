"""Where credentials and endpoints come from: flow parameters, then named Prefect blocks, then the environment."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config

from arm_etl.cache import SchemaCache
from arm_etl.config import Settings
from arm_etl.upload import bucket_region
from arm_etl.warehouse import Warehouse, WarehouseError, warehouse_for

_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=32)
# S3 as over HTTPS on every endpoint: botocore's Config documents payload signing as "disabled for streaming
# uploads (UploadPart and PutObject) by default", the body being covered by its request checksum (CRC32,
# request_checksum_calculation "when_supported"). Over plain HTTP (moto, a local S3) it would otherwise
# SHA-256 every part: ~0.5 ms of CPU per part here.
_S3_CONFIG = _CLIENT_CONFIG.merge(Config(s3={"payload_signing_enabled": False}))


class Resources:
    """AWS clients, buckets and the warehouse of one flow run. A plain class: tasks receive it as is."""

    def __init__(
        self,
        aws_credentials_block: str | None = None,
        redshift_block: str | None = None,
        data_bucket: str | None = None,
        cache_bucket: str | None = None,
    ):
        self.settings = Settings.from_env()
        self.aws_credentials_block = aws_credentials_block
        self.redshift_block = redshift_block
        self.data_bucket = data_bucket or self.settings.data_bucket
        self.cache_bucket = cache_bucket or self.settings.cache_bucket

    @cached_property
    def _aws(self) -> tuple[boto3.Session, dict[str, Any]]:
        if self.aws_credentials_block:
            from prefect_aws import AwsCredentials

            creds: Any = AwsCredentials.load(self.aws_credentials_block)
            params = creds.aws_client_parameters.get_params_override() if creds.aws_client_parameters else {}
            return creds.get_boto3_session(), {k: v for k, v in params.items() if k in ("endpoint_url", "verify")}
        return boto3.Session(), {}

    def client(self, service: str) -> Any:
        session, params = self._aws
        return session.client(service, config=_S3_CONFIG if service == "s3" else _CLIENT_CONFIG, **params)

    @cached_property
    def dynamodb(self) -> Any:
        return self.client("dynamodb")

    @cached_property
    def s3(self) -> Any:
        return self.client("s3")

    def schema_cache(self, table: str) -> SchemaCache:
        return SchemaCache(self.s3, self.cache_bucket, table)

    @cached_property
    def data_bucket_region(self) -> str | None:
        """The data bucket's own region, for COPY's REGION: all COPY sources "must be located in the
        specified Region" (*COPY from Amazon S3*), which is the bucket's, not the worker's."""
        return bucket_region(self.s3, self.data_bucket)

    @cached_property
    def warehouse(self) -> Warehouse | None:
        if self.redshift_block:
            from blocks import RedshiftCredentials

            block: Any = RedshiftCredentials.load(self.redshift_block)
            url, role, timeout = block.url(), block.iam_role, block.statement_timeout_ms
            credentials = block.credential_provider()  # None with a password; IAM: temporary credentials
        elif self.settings.warehouse_url:
            url, role, timeout, credentials = self.settings.warehouse_url, self.settings.iam_role, None, None
        else:
            return None
        kwargs: dict[str, Any] = {"iam_role": role, "credentials": credentials}
        if timeout is not None:
            kwargs["statement_timeout_ms"] = timeout
        wh = warehouse_for(url, **kwargs)
        if wh.needs_copy_manifests:
            wh.region = self.data_bucket_region
        return wh

    def require_warehouse(self) -> Warehouse:
        wh = self.warehouse
        if wh is None:
            raise WarehouseError(
                "no warehouse configured: set ARM_ETL_WAREHOUSE_URL or pass redshift_block (RedshiftCredentials)"
            )
        return wh
