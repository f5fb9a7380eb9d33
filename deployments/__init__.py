"""The deployments of arm-etl, read from ``prefect.yaml``: the one place they are described.

``prefect deploy --all`` reads that file; :mod:`deployments.serve` (``arm-etl serve``) registers the same
deployments from :data:`SPECS`, read from it here; ``deployments/prefect-ecs.yaml`` is generated from it by
:mod:`deployments.ecs`. Change a schedule or a parameter in ``prefect.yaml`` only.

This module imports nothing from Prefect, so reading it is cheap (the CLI, tests, docs tooling).
The Prefect-side helpers live in :mod:`deployments.limits` (concurrency limits) and :mod:`deployments.serve`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

PROCESS_POOL: Final = "arm-etl-process"
"""Work pool of type ``process``: flow runs are subprocesses of a worker on this machine (local, one VM)."""

ECS_POOL: Final = "arm-etl-ecs"
"""Work pool of type ``ecs`` (prefect-aws worker): one ECS task per flow run (see deployments/prefect-ecs.yaml)."""

PREFECT_YAML: Final = Path(__file__).resolve().parent.parent / "prefect.yaml"

TABLE_VARIABLE: Final = "arm_etl_table"
"""Prefect variable holding the DynamoDB table every deployment copies (``prefect variable set arm_etl_table T``)."""

SEGMENT_DEPLOYMENT: Final = "segment-etl/segment-etl"
"""``<flow name>/<deployment name>`` that full-refresh fans segments out to (``run_deployment``)."""

TAGS: Final[tuple[str, ...]] = ("arm-etl",)


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


def read_specs(path: Path = PREFECT_YAML) -> tuple[DeploymentSpec, ...]:
    """The deployments of a ``prefect.yaml``, anchors resolved, in file order."""
    with path.open() as f:
        doc = yaml.safe_load(f)
    return tuple(
        DeploymentSpec(
            name=d["name"],
            flow_name=d["name"],  # each deployment is named after its flow
            entrypoint=d["entrypoint"],
            description=" ".join(d["description"].split()),
            parameters=dict(d.get("parameters") or {}),
            schedules=[{k: v for k, v in s.items() if k != "active"} for s in d.get("schedules") or []],
        )
        for d in doc["deployments"]
    )


SPECS: Final[tuple[DeploymentSpec, ...]] = read_specs()

DEPLOYMENTS: Final[dict[str, DeploymentSpec]] = {s.name: s for s in SPECS}
"""Deployment name → spec."""

SCHEDULES: Final[dict[str, list[dict[str, Any]]]] = {s.name: s.schedules for s in SPECS}
"""Deployment name → its schedules (``cron``, ``timezone``, ``slug``, optional ``parameters``); ``[]``: none."""

PARAMETERS: Final[dict[str, dict[str, Any]]] = {s.name: s.parameters for s in SPECS}
"""Deployment name → default parameters (block names as Prefect-variable placeholders)."""

__all__ = [
    "DEPLOYMENTS",
    "ECS_POOL",
    "PARAMETERS",
    "PREFECT_YAML",
    "PROCESS_POOL",
    "SCHEDULES",
    "SEGMENT_DEPLOYMENT",
    "SPECS",
    "TABLE_VARIABLE",
    "TAGS",
    "DeploymentSpec",
    "read_specs",
]
