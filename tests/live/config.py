"""What the live suite needs from the environment, and the names one run creates. Standard library only:
``make test`` imports this on every run, also when the live suite skips.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

URL_VAR = "ARM_ETL_TEST_REDSHIFT_URL"
BLOCK_VAR = "ARM_ETL_TEST_REDSHIFT_BLOCK"
ROLE_VAR = "ARM_ETL_TEST_IAM_ROLE"
BUCKET_VAR = "ARM_ETL_TEST_BUCKET"
KEEP_VAR = "ARM_ETL_TEST_KEEP"
TOTAL = 2  # segments per live run

SKIP_REASON = f"live Redshift suite: set {URL_VAR} (or {BLOCK_VAR}), {ROLE_VAR} and {BUCKET_VAR}"
PLUGIN_REASON = (
    "live Redshift suite: run it with `make test-redshift` (or `python -m pytest -p tests.live.aws_env tests/live`): "
    "tests/conftest.py replaces the AWS credentials before a test can read them"
)

_ROLE = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
DIALECTS = ("redshift", "postgresql")  # postgresql: a rehearsal of the suite itself on a stand-in


class LiveConfigError(ValueError):
    """The live variables are set but unusable; the message says which one and why."""


@dataclass(frozen=True)
class LiveConfig:
    iam_role: str
    bucket: str
    url: str | None = field(default=None, repr=False)  # holds the password: never printed
    block: str | None = None
    keep: bool = False

    @property
    def dialect(self) -> str | None:
        """``redshift`` or ``postgresql`` from the URL's scheme; None for a block (its own field says)."""
        return url_dialect(self.url) if self.url else None

    @property
    def source(self) -> str:
        """Where the connection comes from, for messages (no password)."""
        return f"block {self.block!r}" if self.block else f"{URL_VAR} ({redact(self.url or '')})"


def _get(env: Mapping[str, str], name: str) -> str:
    return (env.get(name) or "").strip()


def missing(env: Mapping[str, str]) -> list[str]:
    """The required variables that are not set (the URL and the block name count as one)."""
    out = []
    if not _get(env, URL_VAR) and not _get(env, BLOCK_VAR):
        out.append(f"{URL_VAR} (or {BLOCK_VAR})")
    out += [name for name in (ROLE_VAR, BUCKET_VAR) if not _get(env, name)]
    return out


def skip_reason(env: Mapping[str, str], loaded_early: bool) -> str | None:
    """The one line the live module skips with, or None when it can run."""
    gone = missing(env)
    if len(gone) == 3:
        return SKIP_REASON
    if gone:
        return f"{SKIP_REASON} (missing: {', '.join(gone)})"
    if not loaded_early:
        return PLUGIN_REASON
    return None


def url_dialect(url: str) -> str:
    scheme = url.split("://", 1)[0] if "://" in url else ""
    return scheme.split("+", 1)[0].lower()


def redact(url: str) -> str:
    """The URL with its password replaced by ``***``."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def normalize_bucket(raw: str) -> str:
    """``my-bucket``, ``s3://my-bucket`` and ``s3://my-bucket/`` name the same bucket; a key prefix is refused."""
    name = raw.strip()
    if name.startswith("s3://"):
        name = name[len("s3://") :]
    name = name.rstrip("/")
    if "/" in name:
        raise LiveConfigError(
            f"{BUCKET_VAR}={raw!r}: give a bucket name without a key prefix (the flows write at the bucket's "
            "root; each run uses its own arm-live-<id>/ and dynamo-etl/arm-live-<id>/ keys)"
        )
    if not _BUCKET.fullmatch(name):
        raise LiveConfigError(f"{BUCKET_VAR}={raw!r} is not an S3 bucket name")
    return name


def parse(env: Mapping[str, str]) -> LiveConfig:
    """The live configuration; raises :class:`LiveConfigError` naming the variable that is wrong."""
    gone = missing(env)
    if gone:
        raise LiveConfigError(f"{SKIP_REASON} (missing: {', '.join(gone)})")
    url, block = _get(env, URL_VAR) or None, _get(env, BLOCK_VAR) or None
    if url and block:
        raise LiveConfigError(f"set one of {URL_VAR} and {BLOCK_VAR}, not both")
    if url and url_dialect(url) not in DIALECTS:
        raise LiveConfigError(
            f"{URL_VAR} must be a redshift+psycopg2://user:password@host:5439/database URL, got {redact(url)!r}"
        )
    role = _get(env, ROLE_VAR)
    if not _ROLE.fullmatch(role):
        raise LiveConfigError(f"{ROLE_VAR}={role!r} is not an IAM role ARN (arn:aws:iam::<12 digits>:role/<name>)")
    keep = _get(env, KEEP_VAR).lower() in ("1", "true", "yes")
    return LiveConfig(iam_role=role, bucket=normalize_bucket(_get(env, BUCKET_VAR)), url=url, block=block, keep=keep)


@dataclass(frozen=True)
class RunNames:
    """One run's DynamoDB table (moto) and production redshift-schema; unique per run."""

    token: str

    @property
    def table(self) -> str:
        return f"arm-live-{self.token}"

    @property
    def target(self) -> str:
        return f"arm_live_{self.token}"

    def schemas(self, total: int) -> list[str]:
        """Every redshift-schema a run can create for ``total`` segments (and the only ones it drops)."""
        from arm_etl.config import backup_schema, live_schema, loading_schema, segment_schema, staging_schema

        t = self.target
        parts = [name for i in range(total) for name in (segment_schema(t, i), staging_schema(t, i))]
        return [t, live_schema(t), loading_schema(t), backup_schema(t), *parts]

    def s3_prefixes(self) -> list[str]:
        """The key prefixes a run writes in the bucket: parts and manifests, then cached data-schemas."""
        return [f"{self.table}/", f"dynamo-etl/{self.table}/"]


@dataclass(frozen=True)
class LiveStack:
    """What one live run uses: its configuration and names, the warehouse and where DynamoDB is."""

    config: LiveConfig
    names: RunNames
    dialect: str  # redshift (or postgresql for a rehearsal of the suite on a stand-in)
    conn: Any  # autocommit psycopg2 connection to the warehouse, for reading back
    dynamodb_endpoint: str  # the local moto server
    redshift_block: str | None  # given to the flows; None: they use ARM_ETL_WAREHOUSE_URL

    def session(self) -> Any:
        import boto3

        return boto3.Session()

    def s3(self) -> Any:
        return self.session().client("s3")

    def dynamodb(self) -> Any:
        return self.session().client("dynamodb")

    def flow_kwargs(self, *, data: bool = True) -> dict[str, Any]:
        """Buckets and warehouse block for a flow call (determination has no data bucket)."""
        kwargs: dict[str, Any] = {"cache_bucket": self.config.bucket, "redshift_block": self.redshift_block}
        if data:
            kwargs["data_bucket"] = self.config.bucket
        return kwargs
