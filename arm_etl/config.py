"""Settings from the environment: the last resort after flow parameters and Prefect blocks."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime

from arm_etl.errors import ArmEtlError

DEFAULT_DATA_BUCKET = "observes.etl-data"
DEFAULT_CACHE_BUCKET = "observes.cache"


@dataclass(frozen=True)
class Settings:
    data_bucket: str
    cache_bucket: str
    warehouse_url: str | None
    iam_role: str | None

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            data_bucket=env.get("ARM_ETL_DATA_BUCKET") or DEFAULT_DATA_BUCKET,
            cache_bucket=env.get("ARM_ETL_CACHE_BUCKET") or DEFAULT_CACHE_BUCKET,
            warehouse_url=env.get("ARM_ETL_WAREHOUSE_URL") or None,
            iam_role=env.get("ARM_ETL_IAM_ROLE") or None,
        )


class NoTableError(ArmEtlError):
    """A run was started without a DynamoDB table (a deployment whose ``arm_etl_table`` variable was unset)."""


def require_table(table: str | None) -> str:
    """``table``, or an error saying how to give one: deployments read it from a Prefect variable at deploy
    time, and a variable that did not exist then leaves ``""``, which must stop the run before it reads S3."""
    if table and table.strip():
        return table
    raise NoTableError(
        "no DynamoDB table given: the run's `table` parameter is empty. Deployments read it from the Prefect "
        "variable arm_etl_table when `prefect deploy` runs: `prefect variable set arm_etl_table <table>`, then "
        "`prefect --no-prompt deploy --all` again; or start this run with table=<table>"
    )


def snapshot_for(scheduled_start: datetime | None, now: datetime) -> str:
    """A segment run's snapshot (resume vs rescan): the UTC date of its scheduled start, else of ``now``.

    A deployment run's scheduled start never changes, so a Prefect retry, a retry from the UI or a re-run of
    the same scheduled run after 00:00 UTC still resumes (it would otherwise rescan and delete the parts it
    had uploaded). A plain call has no schedule: runs of the same UTC day share a snapshot.
    """
    when = scheduled_start if scheduled_start is not None else now
    return when.astimezone(UTC).strftime("%Y%m%d")


def target_schema(table: str, target: str | None = None) -> str:
    """The production redshift-schema name for a source table (default ``dynamodb_<table>``).

    A target given by the user is folded like every other name (DESIGN.md): Redshift folds identifiers
    to lower case (*Names and identifiers*), so an unfolded ``Prod`` would never be found again by name.
    """
    from arm_etl.names import fold

    return fold(target or f"dynamodb_{table}")


def segment_schema(target: str, segment: int) -> str:
    return f"{target}_part_{segment}"


def staging_schema(target: str, segment: int) -> str:
    return f"{target}_part_{segment}__staging"


def loading_schema(target: str) -> str:
    return f"{target}_loading"


def live_schema(target: str) -> str:
    """The physical redshift-schema behind production's views (:mod:`arm_etl.warehouse.production`)."""
    return f"{target}_live"


def backup_schema(target: str) -> str:
    return f"{target}_backup"


@dataclass(frozen=True)
class SegmentId:
    """One parallel-scan segment of one source table: made once per run and passed whole."""

    table: str
    segment: int
    total: int

    def __post_init__(self) -> None:
        if not 0 <= self.segment < self.total:
            raise ValueError(f"segment {self.segment} is not in 0..{self.total - 1} (table {self.table!r})")

    def __str__(self) -> str:
        return f"segment {self.segment}/{self.total} of {self.table}"


@dataclass(frozen=True)
class Namespaces:
    """The redshift-schemas of one production target as one segment run sees them (DESIGN.md's names):
    the segment's own, its staging, and the target's loading, production and backup."""

    production: str
    segment: str
    staging: str
    loading: str
    backup: str

    @classmethod
    def of(cls, target: str, segment: int) -> Namespaces:
        return cls(
            production=target,
            segment=segment_schema(target, segment),
            staging=staging_schema(target, segment),
            loading=loading_schema(target),
            backup=backup_schema(target),
        )
