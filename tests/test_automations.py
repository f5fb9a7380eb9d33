"""Alerts as code: automations/*.yaml installed by ``python -m deployments.automations`` on a real server.

Fast tests render the shipped files offline. The slow one starts one ``prefect server`` subprocess (own
PREFECT_HOME and SQLite; triggers, actions and event services on, as ``prefect server start`` has them by
default), saves a Custom Webhook notification block pointing at an HTTP recorder on 127.0.0.1, installs the
automations with the documented command, and runs tiny flows against the server: a tagged run that fails
(→ failure notification), an untagged one that fails (→ none), a "centralization" run that pauses (→ the
approval-waiting notification with the run's UI link; then resumed), and a "segment-etl" run that outlives
a 15-second limit (→ the running-too-long notification).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from deployments.automations import (
    BLOCK_PLACEHOLDER,
    SEGMENT_AUTOMATION,
    AutomationsError,
    build_parser,
    load_automation_files,
    main,
    parse_block_name,
    render,
)
from tests.prefect_server import PREFECT, REPO, free_port, start_server, stop

BLOCK = "custom-webhook/arm-etl-alerts"
NAMES = {
    "arm-etl centralization waiting for approval",
    "arm-etl run failed or crashed",
    SEGMENT_AUTOMATION,
}

# ---------------------------------------------------------------------------------------------------- fast


def test_shipped_files_render_and_validate() -> None:
    from prefect.events.schemas.automations import AutomationCore
    from prefect.server.events.schemas.automations import AutomationCore as ServerAutomationCore

    docs = load_automation_files()
    assert {d["name"] for d in docs} == NAMES
    assert all(a["block_document_id"] == BLOCK_PLACEHOLDER for d in docs for a in d["actions"])
    block_id = uuid.uuid4()
    rendered = render(docs, block_id, 90)
    assert docs[0]["actions"][0]["block_document_id"] == BLOCK_PLACEHOLDER, "render copies"
    for d in rendered:
        model = AutomationCore.model_validate(d)
        ServerAutomationCore.model_validate(model.model_dump(mode="json"))  # the server checks the templates
        assert [a.block_document_id for a in model.actions] == [block_id]  # type: ignore[union-attr]
        assert "arm-etl" in model.tags
        within = model.trigger.within  # type: ignore[union-attr]
        assert within == (timedelta(minutes=90) if d["name"] == SEGMENT_AUTOMATION else timedelta(0))
    assert render(docs, block_id)[2]["trigger"]["within"] == 3600, "no option: the file's value"
    with pytest.raises(AutomationsError, match="at least 10 seconds"):
        render(docs, block_id, 0.1)


def test_block_names_and_help() -> None:
    assert parse_block_name("slack-webhook/ops") == ("slack-webhook", "ops")
    for bad in ("ops", "/ops", "slack-webhook/", "a/b/c"):
        with pytest.raises(AutomationsError):
            parse_block_name(bad)
    text = build_parser().format_help()
    assert "--notify-block" in text and "--segment-max-minutes" in text and "PREFECT_API_URL" in text
    r = subprocess.run(
        [sys.executable, "-m", "deployments.automations", "--help"], cwd=REPO, capture_output=True, text=True
    )
    assert r.returncode == 0 and "--notify-block TYPE/NAME" in r.stdout


def test_user_errors_exit_2_before_any_server_call(capsys: pytest.CaptureFixture[str]) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    one = str(REPO / "automations" / "run-failed.yaml")
    assert main(["--notify-block", "ops"]) == 2
    assert main(["--notify-block", "a/b", "--file", one, "--segment-max-minutes", "3"]) == 2
    assert main(["--notify-block", "a/b", "--segment-max-minutes", "0.1"]) == 2
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        assert main(["--notify-block", "a/b"]) == 2
    err = capsys.readouterr().err
    assert "BLOCK_TYPE_SLUG/BLOCK_NAME" in err and "needs the 'arm-etl segment running too long'" in err
    assert "at least 10 seconds" in err and "PREFECT_API_URL is not set" in err


# ---------------------------------------------------------------------------------------------------- slow

FLOWS = """
import pathlib, sys, time
from prefect import flow, tags
from prefect.flow_runs import pause_flow_run

@flow(name="arm-etl-test-boom", flow_run_name="{run_name}")
def boom(run_name: str) -> None:
    raise RuntimeError("boom for the alert test")

@flow(name="centralization", flow_run_name="central-1")
def centralization() -> str:
    pause_flow_run(timeout=90)
    return "resumed"

@flow(name="segment-etl", flow_run_name="t-seg0of1")
def segment(stop_file: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not pathlib.Path(stop_file).exists():
        time.sleep(0.5)

mode = sys.argv[1]
if mode == "fail":
    boom("untagged-1", return_state=True)  # no arm-etl tag: must not notify
    with tags("arm-etl"):
        boom("boom-1", return_state=True)
elif mode == "pause":
    with tags("arm-etl"):
        assert centralization() == "resumed"
elif mode == "segment":
    with tags("arm-etl"):
        segment(sys.argv[2])
"""


class Recorder:
    """An HTTP server on 127.0.0.1 that records every POSTed JSON body (the notification webhook)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        lock = self.lock = threading.Lock()
        bodies, paths = self.bodies, self.paths

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    bodies.append(json.loads(raw or b"{}"))
                    paths.append(self.path)
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port: int = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, what: str, pred: Callable[[dict[str, Any]], bool], timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for b in self.bodies:
                    if pred(b):
                        return b
            time.sleep(0.25)
        raise AssertionError(f"no {what} notification within {timeout}s; got {self.bodies!r}")

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def spec(value: Any) -> Any:
    """A trigger's match / match_related entry as a plain dict."""
    from prefect.events.schemas.events import ResourceSpecification

    return value.model_dump() if isinstance(value, ResourceSpecification) else value


class Server:
    def __init__(self, api_url: str, ui_url: str, env: dict[str, str], log: Path) -> None:
        self.api_url, self.ui_url, self.env, self.log = api_url, ui_url, env, log

    def settings(self) -> Any:
        from prefect.settings import PREFECT_API_URL, temporary_settings

        return temporary_settings(updates={PREFECT_API_URL: self.api_url})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    api_url, ui_url = f"http://127.0.0.1:{port}/api", f"http://127.0.0.1:{port}"
    base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    common = {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    server_env = {
        **base,
        **common,
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        # what the automations need (all default on; SERVER_FLAGS only turns off the scheduler and the UI)
        "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "true",
        "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED": "true",
        "PREFECT_SERVER_EVENTS_PROACTIVE_GRANULARITY": "PT2S",
        "PREFECT_UI_URL": ui_url,  # the `ui_url` template filter runs in the server: links come from here
    }
    client_env = {
        **base,
        **common,
        "PREFECT_API_URL": api_url,
        "PREFECT_LOGGING_TO_API_ENABLED": "false",
        "PYTHONPATH": str(REPO),
    }
    log = home / "server.log"
    proc = None
    try:
        proc = start_server(port, server_env, log)
        yield Server(api_url, ui_url, client_env, log)
    finally:
        stop(proc)


@pytest.mark.slow
def test_automations_notify_through_the_named_block(server: Server, tmp_path: Path) -> None:
    from prefect import flow
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.blocks.system import Secret
    from prefect.client.orchestration import get_client
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.states import Cancelled, Running, Suspended
    from pydantic import SecretStr

    t0 = time.monotonic()
    hook = Recorder()
    token = uuid.uuid4().hex  # stands in for the secret part of a real webhook URL: never printed
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with server.settings():
            CustomWebhookNotificationBlock(
                name="arm-etl-alerts",
                url=f"http://127.0.0.1:{hook.port}/hook/{{{{token}}}}",
                method="POST",
                json_data={"subject": "{{subject}}", "body": "{{body}}"},
                secrets={"token": token},  # type: ignore[arg-type]
                headers=None,
                cookies=None,
            ).save(BLOCK.split("/")[1])

        def run_command(block: str, *extra: str) -> subprocess.CompletedProcess[str]:
            """The documented command, run against the test's server."""
            return subprocess.run(
                [sys.executable, "-m", "deployments.automations", "--notify-block", block, *extra],
                env=server.env,
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=120,
            )

        def install(*extra: str) -> str:
            r = run_command(BLOCK, *extra)
            assert r.returncode == 0, f"install failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
            assert token not in r.stdout + r.stderr
            return r.stdout

        # the alternative in automations/README.md: render, then the plain Prefect CLI
        rendered = tmp_path / "rendered.yaml"
        rendered.write_text(install("--segment-max-minutes", "5", "--print"))
        assert {a["name"] for a in yaml.safe_load(rendered.read_text())["automations"]} == NAMES
        r = subprocess.run(
            [PREFECT, "automation", "create", "--from-file", str(rendered)],
            env=server.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0 and "Created 3 automation(s)" in r.stdout, r.stdout + r.stderr
        out = install("--segment-max-minutes", "0.25")  # the documented command: replaces, never duplicates
        assert out.count("replaced 1 of the same name") == 3

        bad = run_command("custom-webhook/missing")
        assert bad.returncode == 2 and "no block 'custom-webhook/missing'" in bad.stderr
        with server.settings():
            Secret(value=SecretStr(token)).save("not-a-notifier")
        bad = run_command("secret/not-a-notifier")
        assert bad.returncode == 2 and "cannot send notifications" in bad.stderr, bad.stderr
        assert token not in bad.stdout + bad.stderr

        script = tmp_path / "alert_flows.py"
        script.write_text(FLOWS)
        stop_file = tmp_path / "stop-segment"

        def start(*args: str) -> subprocess.Popen[bytes]:
            p = subprocess.Popen(
                [sys.executable, str(script), *args],
                env=server.env,
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            procs.append(p)
            return p

        segment = start("segment", str(stop_file))
        pause = start("pause")
        fail = start("fail")

        with server.settings(), get_client(sync_client=True) as client:
            automations = {a.name: a for a in client.read_automations()}
            assert set(automations) == NAMES, "three automations, no duplicates after the second install"
            seg = automations[SEGMENT_AUTOMATION]
            trig = seg.trigger
            assert isinstance(trig, EventTrigger) and isinstance(trig.match_related, list)
            assert trig.posture == Posture.Proactive and trig.threshold == 1
            assert trig.within == timedelta(seconds=15)
            assert trig.after == {"prefect.flow-run.Running"}
            assert trig.expect == {
                f"prefect.flow-run.{s}"
                for s in ("Completed", "Failed", "Crashed", "Cancelling", "Cancelled", "AwaitingRetry")
            }
            assert trig.for_each == {"prefect.resource.id"}
            assert spec(trig.match) == {"prefect.resource.id": "prefect.flow-run.*"}
            assert [spec(m) for m in trig.match_related] == [
                {"prefect.resource.role": "tag", "prefect.resource.id": "prefect.tag.arm-etl"},
                {"prefect.resource.role": "flow", "prefect.resource.name": "segment-etl"},
            ]
            block_doc = client.read_block_document_by_name("arm-etl-alerts", "custom-webhook", include_secrets=False)
            for a in automations.values():
                assert [(x.type, x.block_document_id) for x in a.actions] == [  # type: ignore[union-attr]
                    ("send-notification", block_doc.id)
                ]
                assert a.enabled and a.tags == ["arm-etl"]

            failed = hook.wait_for("failure", lambda b: "boom-1" in b["body"])
            assert "Failed" in failed["subject"] and "Failed" in failed["body"]
            assert "boom for the alert test" in failed["body"]

            waiting = hook.wait_for("approval-waiting", lambda b: "central-1" in b["body"])
            m = re.search(r"Flow run id: ([0-9a-f-]{36})", waiting["body"])
            assert m, waiting
            run_id = uuid.UUID(m.group(1))
            assert client.read_flow_run(run_id).name == "central-1"
            assert f"{server.ui_url}/runs/flow-run/{run_id}" in waiting["body"], "the run's UI link"
            assert "waiting for approval" in waiting["subject"] and "Paused" in waiting["body"]
            client.resume_flow_run(run_id)

            # a deployment run waits with suspend_flow_run: state name "Suspended" (type PAUSED). Forced here on
            # a run of a flow named centralization, tagged arm-etl, since this test has no deployment or worker.
            @flow(name="centralization")
            def centralization() -> None:
                pass

            suspended = client.create_flow_run(centralization, name="central-suspended", tags=["arm-etl"])
            client.set_flow_run_state(suspended.id, Running(), force=True)
            client.set_flow_run_state(suspended.id, Suspended(timeout_seconds=120), force=True)
            waiting = hook.wait_for("approval-waiting (Suspended)", lambda b: "central-suspended" in b["body"])
            assert "Suspended" in waiting["body"]
            assert f"{server.ui_url}/runs/flow-run/{suspended.id}" in waiting["body"]
            client.set_flow_run_state(suspended.id, Cancelled(), force=True)

            long = hook.wait_for("segment running too long", lambda b: "t-seg0of1" in b["body"])
            assert "still running" in long["subject"] and "0:00:15" in long["body"]
            stop_file.touch()

        for p in (fail, pause, segment):
            out_b, _ = p.communicate(timeout=90)
            assert p.returncode == 0, out_b.decode(errors="replace")[-3000:]
        assert not any("untagged-1" in b["body"] for b in hook.bodies), "a run without the arm-etl tag notified"
        assert all(p == f"/hook/{token}" for p in hook.paths), "the block's secret made it into the URL"
        print(f"automations test body took {time.monotonic() - t0:.1f}s")
    finally:
        for p in procs:
            stop(p)
        hook.close()
