"""Deployments: prefect.yaml (read by deployments.specs) ≡ the ECS file ≡ deployments.serve, and a real deploy → run.

Fast tests parse the YAML files and build the served deployments offline. The slow ones start a real
``prefect server`` subprocess (own PREFECT_HOME and SQLite in a tmp dir), run ``prefect deploy --all`` from the
repository root, read the deployments back, start a process worker against the moto + PostgreSQL stack and
run deployments through it (determination, then a full refresh fanned out as segment-etl runs).
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from arm_etl.limits import DEFAULT_LIMITS, LOAD_LIMIT, READ_LIMIT
from deployments import ECS_POOL, PROCESS_POOL, SEGMENT_DEPLOYMENT, TABLE_VARIABLE, TAGS
from deployments.specs import DEPLOYMENTS, PARAMETERS, SCHEDULES, SPECS
from tests.prefect_server import Deployed

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

REPO = Path(__file__).resolve().parents[1]
PREFECT_YAML = REPO / "prefect.yaml"
ECS_YAML = REPO / "deployments" / "prefect-ecs.yaml"

SECRET_KEY = re.compile(r"pass(word|wd)?$|secret|token|api_key|access_key|private", re.I)
SECRET_VALUE = re.compile(r"AKIA[0-9A-Z]{16}|-----BEGIN|://[^/\s:@]+:[^/\s@]+@|\bpn[ub]_[A-Za-z0-9]{20,}")


def load_yaml(path: Path) -> dict[str, Any]:
    with path.open() as f:
        data: dict[str, Any] = yaml.safe_load(f)
    return data


def by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in doc["deployments"]}


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk(v, f"{path}[{i}]")
    else:
        yield path, value


def _dump(schedule: Any) -> dict[str, Any]:
    assert schedule is not None, "a deployment schedule without its schedule"
    out: dict[str, Any] = schedule.model_dump()
    return out


def schedule_view(s: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {k: s[k] for k in ("cron", "timezone", "slug") if k in s}
    if s.get("parameters"):
        out["parameters"] = s["parameters"]
    return out


# ---------------------------------------------------------------------------------------------------- fast


@pytest.fixture(scope="module")
def flows_by_entrypoint() -> dict[str, Any]:
    """Each entrypoint loaded the way a worker loads it (file path, from the repository root)."""
    from prefect.flows import load_flow_from_entrypoint

    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        return {s.entrypoint: load_flow_from_entrypoint(s.entrypoint) for s in SPECS}
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("path", [PREFECT_YAML, ECS_YAML], ids=["process", "ecs"])
def test_yaml_matches_deployments_module(path: Path, flows_by_entrypoint: dict[str, Any]) -> None:
    """The module reads prefect.yaml, so this checks what the module adds: flows that load by entrypoint
    and carry the deployment's name, live schedules, tags; and that the generated ECS file agrees."""
    from prefect.flows import Flow

    doc = load_yaml(path)
    got = by_name(doc)
    assert list(got) == list(DEPLOYMENTS), "same deployments, same order"
    for name, d in got.items():
        spec = DEPLOYMENTS[name]
        assert d["entrypoint"] == spec.entrypoint
        flow = flows_by_entrypoint[spec.entrypoint]
        assert isinstance(flow, Flow)
        assert flow.name == spec.flow_name
        assert d["parameters"] == PARAMETERS[name]
        assert [schedule_view(s) for s in d.get("schedules") or []] == SCHEDULES[name]
        assert all(s.get("active") is True for s in d.get("schedules") or []), "prefect.yaml schedules are live"
        if not SCHEDULES[name]:  # no key at all: a redeploy keeps schedules an operator added in the UI
            assert "schedules" not in d
        assert " ".join(d["description"].split()) == spec.description
        assert d["enforce_parameter_schema"] is True
        assert d["tags"] == list(TAGS)


def test_the_ecs_file_is_generated_from_prefect_yaml() -> None:
    from deployments import ecs

    assert ecs.main(["--check"]) == 0, "run `python -m deployments.ecs` after editing prefect.yaml"
    assert ECS_YAML.read_text() == ecs.render()


def test_every_deployment_reads_the_table_from_a_variable_and_asks_for_approval(
    flows_by_entrypoint: dict[str, Any],
) -> None:
    for spec in SPECS:
        assert spec.parameters["table"] == "{{ prefect.variables." + TABLE_VARIABLE + " }}", spec.name
        signature = inspect.signature(flows_by_entrypoint[spec.entrypoint].fn).parameters
        if "approve" in signature:  # no deployment swaps production without an operator unless it says so
            assert signature["approve"].default is False, spec.name
            assert spec.parameters.get("approve", False) is False, spec.name


def test_an_empty_table_refuses_saying_what_to_set() -> None:
    from arm_etl.config import NoTableError, require_table

    assert require_table("orders") == "orders"
    for empty in ("", "  ", None):
        with pytest.raises(NoTableError, match=r"prefect variable set arm_etl_table <table>") as info:
            require_table(empty)
        assert "prefect --no-prompt deploy --all" in str(info.value)


def test_process_and_ecs_pools() -> None:
    proc, ecs = load_yaml(PREFECT_YAML), load_yaml(ECS_YAML)
    for d in proc["deployments"]:
        assert d["work_pool"]["name"] == PROCESS_POOL
    (step,) = proc["pull"]
    assert step["prefect.deployments.steps.set_working_directory"]["directory"] == "{{ repo-dir.stdout }}"
    (build,) = proc["build"]
    assert build["prefect.deployments.steps.run_shell_script"]["id"] == "repo-dir"
    for d in ecs["deployments"]:
        pool = d["work_pool"]
        assert pool["name"] == ECS_POOL
        jv = pool["job_variables"]
        assert {"image", "cpu", "memory", "task_role_arn", "env"} <= jv.keys()
        assert isinstance(jv["cpu"], int) and isinstance(jv["memory"], int)
    (step,) = ecs["pull"]
    assert step["prefect.deployments.steps.set_working_directory"]["directory"] == "/opt/arm-etl"


@pytest.mark.parametrize("path", [PREFECT_YAML, ECS_YAML], ids=["process", "ecs"])
def test_parameters_fit_the_flows_and_hold_no_secrets(path: Path, flows_by_entrypoint: dict[str, Any]) -> None:
    for d in load_yaml(path)["deployments"]:
        flow = flows_by_entrypoint[d["entrypoint"]]
        signature = inspect.signature(flow.fn).parameters
        required = {n for n, p in signature.items() if p.default is inspect.Parameter.empty}
        params = d["parameters"]
        assert params.keys() <= signature.keys(), f"{d['name']}: unknown parameters"
        runs = [{**params, **(s.get("parameters") or {})} for s in d.get("schedules") or []]
        for s in d.get("schedules") or []:
            assert (s.get("parameters") or {}).keys() <= signature.keys()
        if d["name"] != "segment-etl":  # segment-etl gets `segment` from each schedule or from full-refresh
            runs.append(params)
        for run in runs:
            assert required <= run.keys(), f"{d['name']}: a run would miss {required - run.keys()}"
            flow.validate_parameters(run)  # the types Prefect enforces (enforce_parameter_schema)
        for where, value in walk({"parameters": params, "schedules": d.get("schedules"), "pool": d["work_pool"]}):
            leaf = where.rsplit(".", 1)[-1]
            assert not SECRET_KEY.search(leaf), f"{d['name']}{where} looks like a secret"
            assert not (isinstance(value, str) and SECRET_VALUE.search(value)), f"{d['name']}{where} = {value!r}"
        for key in ("aws_credentials_block", "redshift_block"):
            assert params[key].startswith("{{ prefect.variables."), "block *names* come from Prefect variables"


def test_segment_schedules_cover_every_segment_on_workdays() -> None:
    spec = DEPLOYMENTS["segment-etl"]
    total = spec.parameters["total"]
    assert sorted(s["parameters"]["segment"] for s in spec.schedules) == list(range(total))
    assert {(s["cron"], s["timezone"]) for s in spec.schedules} == {("0 3 * * 1-5", "UTC")}
    assert SCHEDULES["data-schema-determination"] == [{"cron": "0 3 * * 6", "timezone": "UTC", "slug": "weekly"}]
    assert SCHEDULES["centralization"] == [] and SCHEDULES["full-refresh"] == []
    assert PARAMETERS["full-refresh"]["segment_deployment"] == SEGMENT_DEPLOYMENT == "segment-etl/segment-etl"
    assert PARAMETERS["full-refresh"]["centralization_deployment"] == "centralization/centralization"


def test_build_deployments_same_names_paused_schedules() -> None:
    from deployments.serve import build_deployments

    built = build_deployments(variables={})
    assert [d.name for d in built] == list(DEPLOYMENTS)
    for d in built:
        spec = DEPLOYMENTS[d.name]
        assert d.flow_name == spec.flow_name
        assert d.enforce_parameter_schema
        assert d.description == spec.description
        assert d.parameters == {k: v for k, v in spec.parameters.items() if not str(v).startswith("{{")}
        assert [
            schedule_view({**_dump(s.schedule), "slug": s.slug, "parameters": s.parameters}) for s in d.schedules or []
        ] == SCHEDULES[d.name]
        assert all(s.active is False for s in d.schedules or [])

    live = build_deployments(True, variables={"arm_etl_aws_credentials_block": "aws", "arm_etl_redshift_block": "rs"})
    for d in live:
        assert all(s.active is True for s in d.schedules or [])
        assert d.parameters["aws_credentials_block"] == "aws" and d.parameters["redshift_block"] == "rs"


def test_limits_module_is_prefect_free() -> None:
    code = (
        "import sys, arm_etl.limits, deployments; "
        "bad = [m for m in sys.modules if m.split('.')[0] == 'prefect']; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert DEFAULT_LIMITS == {LOAD_LIMIT: 2, READ_LIMIT: 4}
    assert LOAD_LIMIT == "arm-etl-warehouse-loads" and READ_LIMIT == "arm-etl-dynamodb-reads"


def test_the_flows_import_without_prefect_yaml(tmp_path: Path) -> None:
    """As in the ECS image or a wheel: the code without the repository's prefect.yaml still imports."""
    import shutil

    for folder in ("arm_etl", "flows", "blocks", "deployments"):
        shutil.copytree(REPO / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    code = "import flows.schema, flows.segment, flows.centralize, flows.refresh, blocks"
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


# ---------------------------------------------------------------------------------------------------- slow


@pytest.mark.slow
def test_deploy_all_reads_back(deployed: Deployed) -> None:
    for name, d in deployed.readback.items():
        spec = DEPLOYMENTS[name]
        assert d.work_pool_name == PROCESS_POOL
        assert d.entrypoint == spec.entrypoint
        assert d.enforce_parameter_schema
        # block-name variables are unset on this server: prefect deploy leaves "" (= use the environment)
        expected = {k: ("" if str(v).startswith("{{") else v) for k, v in spec.parameters.items()}
        assert d.parameters == expected
        got = sorted(
            (
                {
                    "cron": s.schedule.cron,
                    "timezone": s.schedule.timezone,
                    "slug": s.slug,
                    **({"parameters": s.parameters} if s.parameters else {}),
                }
                for s in d.schedules
            ),
            key=lambda s: s["slug"],
        )
        assert got == sorted(SCHEDULES[name], key=lambda s: s["slug"])
        assert all(s.active for s in d.schedules)
        (step,) = d.pull_steps or []
        assert Path(step["prefect.deployments.steps.set_working_directory"]["directory"]) == REPO


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.slow
def test_limits_on_a_real_server(deployed: Deployed) -> None:
    from deployments import limits

    limits._reset_cache()
    seen = Records()
    logging.getLogger("arm_etl.limits").addHandler(seen)
    try:
        with deployed.settings():
            for _ in range(3):
                with limits.occupy(LOAD_LIMIT):
                    pass
    finally:
        logging.getLogger("arm_etl.limits").removeHandler(seen)
    warnings = [r for r in seen.records if r.levelno == logging.WARNING and "does not exist" in r.getMessage()]
    assert len(warnings) == 1, "a missing limit warns once, then runs unlimited"

    with deployed.settings():
        assert limits.create_limits() == {LOAD_LIMIT: "created (2 slots)", READ_LIMIT: "created (4 slots)"}
        assert limits.create_limits() == {LOAD_LIMIT: "kept (2 slots)", READ_LIMIT: "kept (4 slots)"}

        inside, peak, lock = 0, 0, threading.Lock()

        def hold() -> None:
            nonlocal inside, peak
            with limits.occupy(LOAD_LIMIT):
                with lock:
                    inside += 1
                    peak = max(peak, inside)
                time.sleep(0.5)
                with lock:
                    inside -= 1

        # a bare thread sees Prefect's root settings (fixed at import), so carry this context into each
        threads = [threading.Thread(target=contextvars.copy_context().run, args=(hold,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert peak == 2, "at most 2 concurrent warehouse loads"
    # Prefect's slot service is bound to this server; later tests in this process use another API.
    limits._reset_cache()


@pytest.mark.slow
def test_determination_runs_through_the_worker(deployed: Deployed, ddb: Any, s3: Any, table_name: str) -> None:
    from prefect.deployments import run_deployment

    from arm_etl.seed import seed_table

    seed_table(ddb, table_name, 60)
    with deployed.settings():
        run: FlowRun = run_deployment(  # type: ignore[assignment]  # sync context: a FlowRun
            name="data-schema-determination/data-schema-determination",
            parameters={"table": table_name, "total": 2},
            timeout=150,
            poll_interval=1,
        )
    assert run.state is not None and run.state.is_completed(), f"{run.state}\n{deployed.worker_tail()}"
    bucket = deployed.env["ARM_ETL_CACHE_BUCKET"]
    head = s3.head_object(Bucket=bucket, Key=f"dynamo-etl/{table_name}/latest.json")
    assert head["ContentLength"] > 0


def schemas(pg: Any) -> set[str]:
    with pg.cursor() as cur:
        cur.execute("select nspname from pg_namespace")
        return {r[0] for r in cur.fetchall()}


@pytest.mark.slow
def test_full_refresh_fans_segments_out_to_the_segment_deployment(
    deployed: Deployed, ddb: Any, pg: Any, table_name: str
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        DeploymentFilter,
        DeploymentFilterId,
    )
    from prefect.deployments import run_deployment

    from arm_etl.config import target_schema
    from arm_etl.seed import seed_table

    seed_table(ddb, table_name, 60)
    with deployed.settings():
        run: FlowRun = run_deployment(  # type: ignore[assignment]  # sync context: a FlowRun
            name="full-refresh/full-refresh",
            parameters={"table": table_name, "total": 2, "segment_deployment": SEGMENT_DEPLOYMENT},
            timeout=170,
            poll_interval=1,
        )
        assert run.state is not None and run.state.is_completed(), f"{run.state}\n{deployed.worker_tail()}"
        seg = deployed.readback["segment-etl"]
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[seg.id])))
    children = [r for r in runs if r.parameters.get("table") == table_name]
    assert sorted(r.parameters["segment"] for r in children) == [0, 1], "one run of segment-etl per segment"
    assert all(r.parameters["table"] == table_name for r in children)
    assert all(r.state is not None and r.state.is_completed() for r in children)
    assert len({r.id for r in children} | {run.id}) == 3, "separate flow runs, not subflows of the orchestrator"
    assert sorted(r.name for r in children) == [f"{table_name}-seg0of2", f"{table_name}-seg1of2"]

    # The deployment's defaults: centralization as its own run, which suspends for approval (its process
    # exits, freeing the worker); the refresh ends, its roll-up linking every run.
    with deployed.settings(), get_client(sync_client=True) as client:
        cen = deployed.readback["centralization"]
        (waiting,) = [
            r
            for r in client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[cen.id])))
            if r.parameters.get("table") == table_name
        ]
        assert waiting.state is not None and waiting.state.name == "Suspended", waiting.state
        assert waiting.name == f"{table_name}-centralize-2"
        (rollup,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))
        )
        text = str(rollup.data)
        assert f"centralization {waiting.name} waits for approval at " in text
        assert f"Centralization: [{waiting.name}](" in text and text.rstrip().endswith(", Suspended")
        assert target_schema(table_name) not in schemas(pg), "nothing swapped while waiting"
        # the operator approves in the UI: the run is resumed with input, resubmitted to the worker, and
        # runs again from the top (its merges already recorded), then swaps
        client.resume_flow_run(waiting.id, run_input={"approve": True, "comment": "week 1"})
        for _ in range(170):
            waiting = client.read_flow_run(waiting.id)
            if waiting.state is not None and waiting.state.is_final():
                break
            time.sleep(1)
    assert waiting.state is not None and waiting.state.is_completed(), f"{waiting.state}\n{deployed.worker_tail()}"

    target = target_schema(table_name)
    with pg.cursor() as cur:
        cur.execute(
            "select table_name from information_schema.tables where table_schema = %s and table_name not like %s",
            (target, r"\_etl%"),
        )
        tables = [r[0] for r in cur.fetchall()]
        assert tables, f"no tables in {target}"
        rows = 0
        for t in tables:
            cur.execute(f'select count(*) from "{target}"."{t}"')
            rows += cur.fetchone()[0]
    assert rows >= 60

    # Exact: production equals the source row for row (independent oracle over each segment's items).
    import boto3

    from arm_etl.cache import SchemaCache
    from arm_etl.upload import PartStore
    from tests.exactness import check_production
    from tests.test_segment_exact import scan_segment

    endpoint = ddb.meta.endpoint_url
    s3 = boto3.client("s3", endpoint_url=endpoint)
    schema = SchemaCache(s3, "observes.cache", table_name).require()
    stores = [PartStore(s3, "observes.etl-data", table_name, i) for i in range(2)]
    items = [scan_segment(boto3.client("dynamodb", endpoint_url=endpoint), table_name, i, 2) for i in range(2)]
    assert sum(len(i) for i in items) == 60
    assert check_production(pg, schema, stores, target, items) == []
