"""Names the deployments share with the flows: work pools, tags, the Prefect variables they read.

The deployments themselves are described once, in ``prefect.yaml``; :mod:`deployments.specs` reads that file
(for :mod:`deployments.serve` and the tests), :mod:`deployments.ecs` generates the ECS file from it. Nothing
here reads a file or imports Prefect: the flows import this package wherever they run, prefect.yaml or not
(an ECS image, a wheel). Helpers: :mod:`deployments.limits` (concurrency limits), :mod:`deployments.serve`.
"""

from __future__ import annotations

from typing import Final

PROCESS_POOL: Final = "arm-etl-process"
"""Work pool of type ``process``: flow runs are subprocesses of a worker on this machine (local, one VM)."""

ECS_POOL: Final = "arm-etl-ecs"
"""Work pool of type ``ecs`` (prefect-aws worker): one ECS task per flow run (see deployments/prefect-ecs.yaml)."""

TABLE_VARIABLE: Final = "arm_etl_table"
"""Prefect variable holding the DynamoDB table every deployment copies (``prefect variable set arm_etl_table T``)."""

SEGMENT_DEPLOYMENT: Final = "segment-etl/segment-etl"
"""``<flow name>/<deployment name>`` that full-refresh fans segments out to (``run_deployment``)."""

TAGS: Final[tuple[str, ...]] = ("arm-etl",)


__all__ = [
    "ECS_POOL",
    "PROCESS_POOL",
    "SEGMENT_DEPLOYMENT",
    "TABLE_VARIABLE",
    "TAGS",
]
