"""The deployments of arm-etl, as plain data: one place for names, entrypoints, schedules and parameters.

``prefect.yaml`` (for ``prefect deploy --all`` and workers) and :mod:`deployments.serve` (for ``arm-etl serve``)
describe the same four deployments; ``tests/test_deployments.py`` checks that ``prefect.yaml`` says exactly
what :data:`SCHEDULES` and :data:`PARAMETERS` say here. Change a schedule here *and* in ``prefect.yaml``.

This module imports nothing from Prefect, so reading it is cheap (the CLI, tests, docs tooling).
The Prefect-side helpers live in :mod:`deployments.limits` (concurrency limits) and :mod:`deployments.serve`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

PROCESS_POOL: Final = "arm-etl-process"
"""Work pool of type ``process``: flow runs are subprocesses of a worker on this machine (local, one VM)."""

ECS_POOL: Final = "arm-etl-ecs"
"""Work pool of type ``ecs`` (prefect-aws worker): one ECS task per flow run (see deployments/prefect-ecs.yaml)."""

DEFAULT_TABLE: Final = "arm-demo"
DEFAULT_TOTAL: Final = 4
"""Parallel-scan segments of the default table; one scheduled segment-etl run per segment."""

SEGMENT_DEPLOYMENT: Final = "segment-etl/segment-etl"
"""``<flow name>/<deployment name>`` that full-refresh fans segments out to (``run_deployment``)."""

BLOCK_VARIABLES: Final[dict[str, str]] = {
    "aws_credentials_block": "arm_etl_aws_credentials_block",
    "redshift_block": "arm_etl_redshift_block",
}
"""Flow parameter → Prefect variable holding the *name* of the block to use (never a secret).

``prefect deploy`` resolves ``{{ prefect.variables.<name> }}`` when it registers a deployment; a variable that
does not exist becomes ``""``, which the flows treat like ``None`` (credentials from the environment).
"""

TAGS: Final[tuple[str, ...]] = ("arm-etl",)


def variable_placeholder(variable: str) -> str:
    """The Jinja placeholder ``prefect deploy`` replaces with the value of Prefect variable ``variable``."""
    return "{{ prefect.variables." + variable + " }}"


BLOCK_PARAMETERS: Final[dict[str, str]] = {p: variable_placeholder(v) for p, v in BLOCK_VARIABLES.items()}


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment: what ``prefect.yaml`` and ``deployments.serve`` both register."""

    name: str
    flow_name: str
    entrypoint: str
    description: str
    parameters: dict[str, Any]
    schedules: list[dict[str, Any]] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        return f"{self.flow_name}/{self.name}"


def _cron(cron: str, slug: str, **parameters: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"cron": cron, "timezone": "UTC", "slug": slug}
    if parameters:
        out["parameters"] = parameters
    return out


DETERMINATION_CRON: Final = "0 3 * * 6"
"""Saturdays 03:00 UTC: a fresh data-schema before the next working week."""

SEGMENT_CRON: Final = "0 3 * * 1-5"
"""Workdays 03:00 UTC, one schedule per segment (each schedule carries its ``segment`` parameter)."""

SPECS: Final[tuple[DeploymentSpec, ...]] = (
    DeploymentSpec(
        name="data-schema-determination",
        flow_name="data-schema-determination",
        entrypoint="flows/schema.py:determine_schema",
        description=(
            "Weekly: scan the DynamoDB table in parallel segments, infer one data-schema per routed table and "
            "cache it as versioned JSON in the cache bucket (segment-etl reads the latest one)."
        ),
        parameters={"table": DEFAULT_TABLE, "total": DEFAULT_TOTAL, **BLOCK_PARAMETERS},  # routing, nesting kept
        schedules=[_cron(DETERMINATION_CRON, "weekly")],
    ),
    DeploymentSpec(
        name="segment-etl",
        flow_name="segment-etl",
        entrypoint="flows/segment.py:segment_etl",
        description=(
            "One parallel-scan segment: extract → transform → S3 → COPY into <target>_part_<segment>. "
            "Workdays each schedule runs one segment; full-refresh fans every segment out to this deployment "
            "(one flow run per segment, so N segments can run on N workers). Re-running the same day resumes."
        ),
        parameters={"table": DEFAULT_TABLE, "total": DEFAULT_TOTAL, **BLOCK_PARAMETERS},
        schedules=[_cron(SEGMENT_CRON, f"segment-{i}", segment=i) for i in range(DEFAULT_TOTAL)],
    ),
    DeploymentSpec(
        name="centralization",
        flow_name="centralization",
        entrypoint="flows/centralize.py:centralize",
        description=(
            "Operator-run from the UI (no schedule). Verifies every <target>_part_<i> against its manifest, merges "
            "them into <target>_loading, pauses for approval (unless approve=true) showing row counts old vs new, "
            "then swaps it into <target> keeping the previous one as <target>_backup. Safe to run again."
        ),
        parameters={"table": DEFAULT_TABLE, "total": DEFAULT_TOTAL, "approve": False, **BLOCK_PARAMETERS},
    ),
    DeploymentSpec(
        name="full-refresh",
        flow_name="full-refresh",
        entrypoint="flows/refresh.py:full_refresh",
        description=(
            "Operator-run (or add a schedule): determination if the cached data-schema is stale, then every "
            f"segment as its own run of {SEGMENT_DEPLOYMENT}, then centralization."
        ),
        parameters={
            "table": DEFAULT_TABLE,
            "total": DEFAULT_TOTAL,
            "segment_deployment": SEGMENT_DEPLOYMENT,
            "max_concurrent_segments": DEFAULT_TOTAL,
            **BLOCK_PARAMETERS,
        },
    ),
)

DEPLOYMENTS: Final[dict[str, DeploymentSpec]] = {s.name: s for s in SPECS}
"""Deployment name → spec."""

SCHEDULES: Final[dict[str, list[dict[str, Any]]]] = {s.name: s.schedules for s in SPECS}
"""Deployment name → its schedules (``cron``, ``timezone``, ``slug``, optional ``parameters``); ``[]``: none."""

PARAMETERS: Final[dict[str, dict[str, Any]]] = {s.name: s.parameters for s in SPECS}
"""Deployment name → default parameters (block names as Prefect-variable placeholders)."""

__all__ = [
    "BLOCK_PARAMETERS",
    "BLOCK_VARIABLES",
    "DEFAULT_TABLE",
    "DEFAULT_TOTAL",
    "DEPLOYMENTS",
    "DETERMINATION_CRON",
    "ECS_POOL",
    "PARAMETERS",
    "PROCESS_POOL",
    "SCHEDULES",
    "SEGMENT_CRON",
    "SEGMENT_DEPLOYMENT",
    "SPECS",
    "TAGS",
    "DeploymentSpec",
    "variable_placeholder",
]
