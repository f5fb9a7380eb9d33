"""Screenshots of the real Prefect UI for the README: what an operator sees (``make screenshots``).

Everything runs on loopback in a temporary state folder: the embedded stack (moto + PostgreSQL), a
``prefect server`` with its UI, and the real flows over a seeded DynamoDB table — a data-schema
determination, a full refresh (segments as subflows, approved), then a centralization into a second
target that pauses for approval. Headless Chromium (Debian's ``chromium``, driven by Playwright; no
browser is downloaded) then photographs:

- ``segment-run.png``: segment 0's artifact (``segment-0-arm-demo``) from the full refresh, linking its run;
- ``approval-form.png``: the paused centralization with its Resume dialog open, the approval form;
- ``full-refresh-rollup.png``: the full refresh's roll-up artifact (``full-refresh-arm-demo``).

The paused run is then declined, so nothing is left waiting, and the server and the stack are stopped.
Exit code 2 with a hint when Chromium or Playwright is missing.

    python docs/screenshots.py            # or: python -m docs.screenshots; make screenshots
    python docs/screenshots.py --out /tmp/shots --keep-state
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "docs" / "screenshots"
TABLE = "arm-demo"
TOTAL = 2
ITEMS = 300
V2_TARGET = "dynamodb_arm_demo_v2"
PLAYWRIGHT_PIN = "playwright==1.65.2"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # without these Chromium's own connections are refused here
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_CHROMIUM = (
    "Chromium is needed to take the screenshots and was not found ({where}).\n"
    "Install Debian's package:  sudo apt-get install -y chromium   (Debian/Ubuntu)\n"
    "or name another binary:    --chromium /path/to/chromium  (or CHROMIUM=/path/to/chromium)"
)


def find_chromium(explicit: str | None) -> str | None:
    """The Chromium binary: ``--chromium`` (only it), else ``$CHROMIUM``, else ``chromium`` on PATH or /usr/bin."""
    candidates = [explicit] if explicit else [os.environ.get("CHROMIUM"), "chromium", "/usr/bin/chromium"]
    for candidate in candidates:
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def say(msg: str, _start: float = time.perf_counter()) -> None:
    print(f"[{time.perf_counter() - _start:6.1f}s] {msg}", flush=True)


def wait_until(what: str, check: Callable[[], Any], timeout_s: float = 120, every_s: float = 0.5) -> Any:
    """``check()``'s first truthy value, polled; ``TimeoutError`` naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(every_s)
    raise TimeoutError(f"gave up waiting for {what} after {timeout_s:.0f}s")


class Scene:
    """The runs and artifacts to photograph, made by the real flows on the embedded stack."""

    def __init__(self) -> None:
        self.segment_artifact = ""
        self.rollup_artifact = ""
        self.paused_run = ""
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def run_flows(self) -> None:
        import boto3

        from arm_etl.seed import seed_table
        from deployments.limits import create_limits
        from flows.refresh import full_refresh
        from flows.schema import artifact_key, determine_schema
        from flows.segment import segment_etl

        create_limits()
        say(f"seeding DynamoDB table {TABLE!r} with {ITEMS} items …")
        seed_table(boto3.client("dynamodb"), TABLE, ITEMS)
        say("data-schema determination …")
        determine_schema(TABLE, total=TOTAL, routing=["sk:#"])
        say(f"full refresh of {TABLE} in {TOTAL} segments (approved) …")
        full_refresh(TABLE, TOTAL, approve=True)
        self.segment_artifact = self.latest_artifact(artifact_key("segment-0", TABLE))
        self.rollup_artifact = self.latest_artifact(artifact_key("full-refresh", TABLE))
        say(f"loading the segments into {V2_TARGET} (from S3) …")
        for i in range(TOTAL):
            segment_etl(TABLE, i, TOTAL, target_schema=V2_TARGET, phases="load")
        say(f"centralization into {V2_TARGET}, waiting for approval …")
        self._thread = threading.Thread(target=self._centralize, name="centralize", daemon=True)
        self._thread.start()
        self.paused_run = wait_until("the centralization to pause", self._paused_run, timeout_s=180)

    def _centralize(self) -> None:
        from flows.centralize import centralize

        try:
            centralize(TABLE, TOTAL, target_schema=V2_TARGET, approve=False)
        except BaseException as exc:  # reported by _paused_run / finish, not lost in the thread
            self._error = exc

    def _paused_run(self) -> str:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterName,
            FlowRunFilterState,
            FlowRunFilterStateType,
        )
        from prefect.client.schemas.objects import StateType

        if self._error is not None or (self._thread is not None and not self._thread.is_alive()):
            raise RuntimeError(f"the centralization ended instead of pausing: {self._error!r}")
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    name=FlowRunFilterName(any_=[f"{TABLE}-centralize-{TOTAL}"]),
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])),
                )
            )
        return str(runs[0].id) if runs else ""

    @staticmethod
    def latest_artifact(key: str) -> str:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import ArtifactCollectionFilter, ArtifactCollectionFilterKey

        with get_client(sync_client=True) as client:
            found = client.read_latest_artifacts(
                artifact_filter=ArtifactCollectionFilter(key=ArtifactCollectionFilterKey(any_=[key]))
            )
        if not found:
            raise RuntimeError(f"no artifact {key!r} was written")
        return str(found[0].latest_id)

    def finish(self) -> None:
        """Decline the paused centralization (production unchanged), so its thread ends."""
        if self._thread is None:
            return
        if self.paused_run:
            from uuid import UUID

            from prefect.flow_runs import resume_flow_run

            try:
                resume_flow_run(UUID(self.paused_run), run_input={"approve": False, "comment": "screenshots taken"})
            except Exception as exc:
                say(f"could not resume the paused centralization: {exc}")
        self._thread.join(timeout=60)
        if self._thread.is_alive():
            say("the centralization thread is still waiting; it ends with this process")


def drain_prefect() -> None:
    """Send the logs and events still queued while the server is up: at exit they would retry against a
    stopped server for a minute."""
    if "prefect" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        try:
            worker.drain_all(timeout=10, at_exit=False)
        except Exception as exc:
            say(f"could not flush Prefect's {worker.__name__}: {exc}")


def photograph(
    scene: Scene, ui: str, chromium: str, out: Path, width: int, height: int, form_height: int
) -> list[Path]:
    """Open each page in headless Chromium, wait for its content to render, and save it as a PNG."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="arm-etl-chromium-") as profile, sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            profile,
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": width, "height": height},
            device_scale_factor=1,
        )
        browser.set_default_timeout(60_000)
        try:
            page = browser.new_page()

            def shoot(name: str) -> None:
                page.wait_for_timeout(800)  # let the layout settle after the content appeared
                path = out / name
                page.screenshot(path=str(path))
                written.append(path)
                say(f"wrote {path}")

            say("photographing the segment artifact …")
            page.goto(f"{ui}/artifacts/artifact/{scene.segment_artifact}")
            page.get_by_text(f"Segment 0/{TOTAL} of").first.wait_for()
            page.get_by_text("DynamoDB throttling", exact=False).first.wait_for()
            shoot("segment-run.png")

            say("photographing the approval form …")
            page.set_viewport_size({"width": width, "height": form_height})  # the form's dialog is tall
            page.goto(f"{ui}/runs/flow-run/{scene.paused_run}")
            page.get_by_role("button", name="Resume").first.click()
            page.get_by_text("Approve swapping", exact=False).first.wait_for()
            shoot("approval-form.png")

            page.set_viewport_size({"width": width, "height": height})
            say("photographing the full-refresh roll-up …")
            page.goto(f"{ui}/artifacts/artifact/{scene.rollup_artifact}")
            page.get_by_text(f"Full refresh of {TABLE}", exact=False).first.wait_for()
            page.get_by_text(f"{TABLE}-seg1of{TOTAL}").first.wait_for()
            shoot("full-refresh-rollup.png")
        finally:
            browser.close()
    return written


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python docs/screenshots.py",
        description="Take the README's screenshots of the real Prefect UI (headless Chromium) from real flow runs "
        "on the embedded stack, all on loopback in a temporary state folder.",
    )
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"folder for the PNGs (default: {DEFAULT_OUT})")
    ap.add_argument("--chromium", help="Chromium binary (default: $CHROMIUM, else chromium on PATH)")
    ap.add_argument("--width", type=int, default=1400, help="viewport width in CSS pixels (default: 1400)")
    ap.add_argument("--height", type=int, default=900, help="viewport height in CSS pixels (default: 900)")
    ap.add_argument(
        "--form-height", type=int, default=1200, help="viewport height for the approval form (default: 1200)"
    )
    ap.add_argument("--keep-state", action="store_true", help="keep the temporary state folder (server log, db)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    chromium = find_chromium(args.chromium)
    if chromium is None:
        print(INSTALL_CHROMIUM.format(where=args.chromium or "chromium on PATH, /usr/bin/chromium"), file=sys.stderr)
        return 2
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        print(f"Playwright is missing: `make screenshots` installs it (pip install {PLAYWRIGHT_PIN})", file=sys.stderr)
        return 2
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # run by path: the repo's packages, even without the editable install

    state = Path(tempfile.mkdtemp(prefix="arm-etl-screenshots-"))
    # Before Prefect is imported: its settings are read once. Quiet console, own PREFECT_HOME.
    os.environ.update(
        PREFECT_HOME=str(state / "client"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL="WARNING",
        PREFECT_LOGGING_HANDLERS_CONSOLE_FLOW_RUNS_LEVEL="WARNING",
        PREFECT_LOGGING_HANDLERS_CONSOLE_TASK_RUNS_LEVEL="WARNING",
    )
    from arm_etl.localstack import LocalStack
    from flows.local import PrefectServer

    stack: LocalStack | None = None
    server: PrefectServer | None = None
    scene = Scene()
    try:
        say(f"starting the embedded stack and a Prefect server in {state} …")
        stack = LocalStack(state, port=0).start()
        stack.apply_env()
        server = PrefectServer(state, free_port()).start()
        os.environ["PREFECT_API_URL"] = server.api_url
        say(f"Prefect UI at {server.url}")
        scene.run_flows()
        written = photograph(scene, server.url, chromium, args.out.resolve(), args.width, args.height, args.form_height)
    finally:
        try:
            scene.finish()
            drain_prefect()
        finally:
            if server is not None:
                server.stop()
            if stack is not None:
                stack.stop()
            if args.keep_state:
                say(f"state kept in {state}")
            else:
                shutil.rmtree(state, ignore_errors=True)
    print("\n".join(["screenshots written:", *(f"  {p}" for p in written)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
