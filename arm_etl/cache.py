"""The data-schema cache in S3: ``dynamo-etl/<table>/schema-<version>.json`` and ``latest.json``."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError, EndpointConnectionError

from arm_etl.dataschema import DataSchema, DataSchemaError

PREFIX = "dynamo-etl"


class SchemaMissing(DataSchemaError):
    """No cached data-schema: the operator must run the determination first."""


class SchemaCache:
    def __init__(self, s3: Any, bucket: str, source_table: str):
        self.s3 = s3
        self.bucket = bucket
        self.table = source_table
        self.prefix = f"{PREFIX}/{source_table}/"

    def key(self, version: str | None) -> str:
        return self.prefix + ("latest.json" if version is None else f"schema-{version}.json")

    def url(self, version: str | None = None) -> str:
        return f"s3://{self.bucket}/{self.key(version)}"

    def write(self, schema: DataSchema) -> str:
        """Write the versioned document, then ``latest.json`` (a full copy); returns the versioned key."""
        body = schema.dumps()
        key = self.key(schema.version)
        for k in (key, self.key(None)):
            try:
                self.s3.put_object(Bucket=self.bucket, Key=k, Body=body, ContentType="application/json")
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
                    raise DataSchemaError(
                        f"cache bucket {self.bucket!r} does not exist; create it or set ARM_ETL_CACHE_BUCKET"
                    ) from None
                raise
        return key

    def read(self, version: str | None = None) -> DataSchema | None:
        """The cached data-schema (latest, or a pinned version), or None if there is none."""
        key = self.key(version)
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404"):
                return None
            if code == "NoSuchBucket":
                raise DataSchemaError(
                    f"cache bucket {self.bucket!r} does not exist; create it or set ARM_ETL_CACHE_BUCKET"
                ) from None
            raise
        except EndpointConnectionError as exc:
            raise DataSchemaError(f"S3 unreachable reading {self.url(version)}: {exc}", transient=True) from None
        return DataSchema.loads(body, origin=f"s3://{self.bucket}/{key}")

    def require(self, version: str | None = None) -> DataSchema:
        schema = self.read(version)
        if schema is None:
            what = "no cached data-schema" if version is None else f"no cached data-schema version {version}"
            raise SchemaMissing(
                f"{what} for table {self.table!r} at {self.url(version)}: "
                f"run `arm-etl schema --table {self.table}` first"
            )
        return schema
