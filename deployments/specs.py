"""The deployments of ``prefect.yaml``, the one place they are described, as plain data.

``prefect deploy --all`` reads the file itself; :mod:`deployments.serve` (``arm-etl serve``) registers the
same deployments from :data:`SPECS`, and the tests check flows and parameters against them. Change a schedule
or a parameter in ``prefect.yaml`` only (then ``python -m deployments.ecs`` for the ECS file). Reads the file
at import: import this module only where the repository is (not from the flows).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

PREFECT_YAML: Final = Path(__file__).resolve().parent.parent / "prefect.yaml"


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

__all__ = ["DEPLOYMENTS", "PARAMETERS", "PREFECT_YAML", "SCHEDULES", "SPECS", "DeploymentSpec", "read_specs"]
