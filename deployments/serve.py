"""``arm-etl serve``: register every deployment of ``prefect.yaml`` and run their flow runs from this process.

No work pool or worker is needed: ``prefect.serve`` polls the API for runs of these deployments and runs
each in a subprocess. Names, schedules and parameters come from :mod:`deployments` (the same data
``prefect.yaml`` holds). Schedules are registered *paused* unless ``schedules_active=True``, so trying
``arm-etl serve`` on a laptop never starts a 03:00 run by surprise; runs you trigger (UI, ``prefect
deployment run``, full-refresh's ``run_deployment``) always run.

Serving and ``prefect deploy`` write the same deployment names: use one or the other per Prefect API.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from deployments import TAGS
from deployments.specs import SPECS, DeploymentSpec

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment
    from prefect.flows import Flow

_VARIABLE = re.compile(r"^\{\{\s*prefect\.variables\.([A-Za-z0-9_]+)\s*\}\}$")


def load_flow(spec: DeploymentSpec) -> Flow[Any, Any]:
    """The flow object behind ``spec.entrypoint`` (``flows/schema.py:determine_schema`` → ``flows.schema``)."""
    path, _, attr = spec.entrypoint.partition(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    flow: Flow[Any, Any] = getattr(module, attr)
    return flow


def resolve_parameters(parameters: Mapping[str, Any], variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Replace ``{{ prefect.variables.x }}`` values by the variable's value; drop the parameter if ``x`` is unset.

    ``variables``: name → value to use instead of asking the Prefect API (tests, offline use).
    A dropped parameter takes the flow's default (``None``: credentials from the environment), the same
    meaning as the ``""`` that ``prefect deploy`` leaves for a missing variable.
    """
    out: dict[str, Any] = {}
    for key, value in parameters.items():
        m = _VARIABLE.match(value) if isinstance(value, str) else None
        if m is None:
            out[key] = value
            continue
        name = m.group(1)
        if variables is not None:
            resolved = variables.get(name)
        else:
            from prefect.variables import Variable

            resolved = Variable.get(name, default=None)
        if resolved not in (None, ""):
            out[key] = resolved
    return out


def build_deployments(
    schedules_active: bool = False, *, variables: Mapping[str, Any] | None = None
) -> list[RunnerDeployment]:
    """The four deployments as ``RunnerDeployment`` objects (``flow.to_deployment``), same as ``prefect.yaml``.

    ``schedules_active``: register the schedules active (default: paused).
    ``variables``: Prefect variable values for the block-name parameters; ``None`` reads them from the API.
    """
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    out: list[RunnerDeployment] = []
    for spec in SPECS:
        flow = load_flow(spec)
        if flow.name != spec.flow_name:
            raise RuntimeError(f"{spec.entrypoint} is flow {flow.name!r}, expected {spec.flow_name!r}")
        schedules = [
            Cron(
                s["cron"],
                timezone=s.get("timezone"),
                active=schedules_active,
                parameters=dict(s.get("parameters") or {}),
                slug=s.get("slug"),
            )
            for s in spec.schedules
        ]
        deployment = flow.to_deployment(
            name=spec.name,
            schedules=schedules,
            parameters=resolve_parameters(spec.parameters, variables),
            description=spec.description,
            tags=list(TAGS),
            enforce_parameter_schema=True,
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
        if inspect.isawaitable(deployment):  # to_deployment is sync/async dual; this is never in async code
            raise RuntimeError("build_deployments() was called from async code; use it from sync code")
        out.append(deployment)
    return out


def serve_all(schedules_active: bool = False) -> None:
    """Register every deployment and serve them until interrupted (Ctrl-C pauses their schedules again)."""
    from prefect import serve

    serve(*build_deployments(schedules_active))


__all__ = ["build_deployments", "load_flow", "resolve_parameters", "serve_all"]
