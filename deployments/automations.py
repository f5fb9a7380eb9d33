"""Alerts as code: install the automations in ``automations/*.yaml`` on a Prefect server.

The YAML files are plain ``prefect automation create`` documents, except for one thing Prefect cannot take
from a file: the ``send-notification`` action needs the notification block's *document id* (a UUID), and a
user knows the block by its *name*. This module resolves a name such as ``custom-webhook/arm-etl-alerts`` or
``slack-webhook/ops`` (``BLOCK_TYPE_SLUG/BLOCK_NAME``, as in ``prefect block ls``) to that id, puts it into
every ``send-notification`` action, optionally sets the segment time limit, and creates the automations,
replacing any automation with the same name (so running it again is safe).

    python -m deployments.automations --notify-block custom-webhook/arm-etl-alerts --segment-max-minutes 90

Prefect is imported only inside the functions that talk to the API, so ``--help`` needs no server.
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import httpx
import yaml

from arm_etl.errors import ArmEtlError

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

AUTOMATIONS_DIR = Path(__file__).resolve().parents[1] / "automations"
"""The shipped automation files (``automations/*.yaml`` at the repository root)."""

BLOCK_PLACEHOLDER = "NOTIFY-BLOCK-ID"
"""The ``block_document_id`` the shipped files carry until :func:`render` fills it in."""

SEGMENT_AUTOMATION = "arm-etl segment running too long"
"""The automation whose trigger ``within`` is the segment time limit."""

MIN_PROACTIVE_SECONDS = 10.0
"""Prefect refuses Proactive triggers with ``within`` below 10 seconds."""


class AutomationsError(ArmEtlError):
    """A problem the user can fix (bad block name, missing block, bad file); the CLI prints it, exit code 2."""


@dataclass(frozen=True)
class Installed:
    """One automation created on the server (``replaced`` counts same-named automations deleted first)."""

    name: str
    id: UUID
    replaced: int


def parse_block_name(value: str) -> tuple[str, str]:
    """Split ``"TYPE_SLUG/NAME"`` (e.g. ``"slack-webhook/ops"``) into ``(type_slug, name)``."""
    slug, sep, name = value.strip().partition("/")
    if not sep or not slug or not name or "/" in name:
        raise AutomationsError(
            f"--notify-block {value!r}: expected BLOCK_TYPE_SLUG/BLOCK_NAME, e.g. custom-webhook/arm-etl-alerts "
            "or slack-webhook/ops (see `prefect block ls`)"
        )
    return slug, name


def load_automation_files(paths: Sequence[Path] | None = None) -> list[dict[str, Any]]:
    """The automation documents in ``paths`` (default: every ``automations/*.yaml``), in file-name order.

    A file may hold one automation, a list, or ``{"automations": [...]}``, like ``prefect automation create``.
    """
    files = sorted(AUTOMATIONS_DIR.glob("*.yaml")) if paths is None else list(paths)
    if not files:
        raise AutomationsError(f"no automation files found (looked in {AUTOMATIONS_DIR})")
    docs: list[dict[str, Any]] = []
    for path in files:
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as e:
            raise AutomationsError(f"{path}: {e}") from e
        if isinstance(data, dict) and "automations" in data:
            data = data["automations"]
        items = data if isinstance(data, list) else [data]
        for item in items:
            if not isinstance(item, dict) or "name" not in item:
                raise AutomationsError(f"{path}: each automation must be a mapping with a name")
            docs.append(item)
    return docs


def render(
    docs: Sequence[dict[str, Any]], block_document_id: UUID, segment_max_minutes: float | None = None
) -> list[dict[str, Any]]:
    """Copies of ``docs`` with every ``send-notification`` action pointed at ``block_document_id``.

    ``segment_max_minutes`` (if given) becomes the ``within`` (in seconds) of :data:`SEGMENT_AUTOMATION`'s
    trigger; otherwise the file's value stays.
    """
    if segment_max_minutes is not None and not any(d.get("name") == SEGMENT_AUTOMATION for d in docs):
        raise AutomationsError(f"--segment-max-minutes needs the {SEGMENT_AUTOMATION!r} automation among the files")
    out: list[dict[str, Any]] = []
    for doc in docs:
        d = copy.deepcopy(doc)
        for key in ("actions", "actions_on_trigger", "actions_on_resolve"):
            for action in d.get(key) or []:
                if action.get("type") == "send-notification":
                    action["block_document_id"] = str(block_document_id)
        if segment_max_minutes is not None and d["name"] == SEGMENT_AUTOMATION:
            seconds = float(segment_max_minutes) * 60
            if seconds < MIN_PROACTIVE_SECONDS:
                raise AutomationsError(
                    f"--segment-max-minutes {segment_max_minutes}: Prefect needs at least "
                    f"{MIN_PROACTIVE_SECONDS:g} seconds for a Proactive trigger"
                )
            d["trigger"]["within"] = int(seconds) if seconds.is_integer() else seconds
        out.append(d)
    return out


def resolve_block_document_id(client: SyncPrefectClient, block: str) -> UUID:
    """The document id of the notification block named ``"TYPE_SLUG/NAME"`` on the client's server.

    Secrets are not read (``include_secrets=False``). Raises :class:`AutomationsError` when the block does not
    exist or cannot send notifications (its block type lacks the ``notify`` capability).
    """
    from prefect.exceptions import ObjectNotFound

    slug, name = parse_block_name(block)
    try:
        document = client.read_block_document_by_name(name, block_type_slug=slug, include_secrets=False)
    except ObjectNotFound as e:
        raise AutomationsError(
            f"no block {block!r} on this Prefect server; create it first (UI: Blocks, or Python: "
            f"Block(...).save({name!r})) and check `prefect block ls`"
        ) from e
    capabilities = document.block_schema.capabilities if document.block_schema else []
    if "notify" not in capabilities:
        raise AutomationsError(
            f"block {block!r} cannot send notifications (capabilities {capabilities}); use a notification "
            "block such as custom-webhook, slack-webhook, ms-teams-webhook or sendgrid-email"
        )
    return document.id


def install(client: SyncPrefectClient, docs: Sequence[dict[str, Any]]) -> list[Installed]:
    """Validate every document first, then create each one, deleting same-named automations before."""
    from prefect.events.schemas.automations import AutomationCore
    from pydantic import ValidationError

    models: list[AutomationCore] = []
    for doc in docs:
        try:
            models.append(AutomationCore.model_validate(doc))
        except ValidationError as e:
            raise AutomationsError(f"automation {doc.get('name')!r} is invalid: {e}") from e
    installed: list[Installed] = []
    for model in models:
        existing = client.read_automations_by_name(model.name)
        for old in existing:
            client.delete_automation(old.id)
        installed.append(Installed(model.name, client.create_automation(model), len(existing)))
    return installed


def build_parser(prog: str = "python -m deployments.automations") -> argparse.ArgumentParser:
    """The ``python -m deployments.automations`` / ``arm-etl alerts`` argument parser."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Create (or replace) the arm-etl alert automations from automations/*.yaml on the Prefect server "
            "at PREFECT_API_URL: a run tagged arm-etl Failed or Crashed; a centralization waiting for approval "
            "(Paused or Suspended), with the run's link; a segment-etl run Running longer than a limit. "
            "Every notification goes through the notification block you name."
        ),
        epilog=(
            "Examples:  --notify-block custom-webhook/arm-etl-alerts   |   --notify-block slack-webhook/ops "
            "--segment-max-minutes 90   |   --notify-block slack-webhook/ops --print > rendered.yaml "
            "(then: prefect automation create --from-file rendered.yaml). Links need PREFECT_UI_URL on the "
            "server. See automations/README.md."
        ),
    )
    parser.add_argument(
        "--notify-block",
        required=True,
        metavar="TYPE/NAME",
        help="the notification block, BLOCK_TYPE_SLUG/BLOCK_NAME as in `prefect block ls`, "
        "e.g. custom-webhook/arm-etl-alerts, slack-webhook/ops, sendgrid-email/oncall",
    )
    parser.add_argument(
        "--segment-max-minutes",
        type=float,
        default=None,
        metavar="N",
        help="notify when a segment-etl run is still Running after N minutes "
        "(default: the file's `within`, 3600 s = 60 minutes; at least 10 seconds)",
    )
    parser.add_argument(
        "--file",
        dest="files",
        action="append",
        type=Path,
        metavar="PATH",
        help="an automation YAML file to install instead of all of automations/*.yaml (repeatable)",
    )
    parser.add_argument(
        "--print",
        dest="print_only",
        action="store_true",
        help="print the rendered YAML (block id filled in) instead of creating the automations",
    )
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "python -m deployments.automations") -> int:
    """Entry point: resolve the block, render the files, create or replace the automations. Returns 0 or 2."""
    args = build_parser(prog).parse_args(argv)
    try:
        parse_block_name(args.notify_block)
        docs = load_automation_files(args.files)
        render(docs, UUID(int=0), args.segment_max_minutes)  # bad options fail before any API call
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL

        if not PREFECT_API_URL.value():  # else Prefect would start a throwaway ephemeral server
            raise AutomationsError(
                "PREFECT_API_URL is not set: point it at the Prefect server that should send the alerts"
            )
        with get_client(sync_client=True) as client:
            block_id = resolve_block_document_id(client, args.notify_block)
            rendered = render(docs, block_id, args.segment_max_minutes)
            if args.print_only:
                sys.stdout.write(yaml.safe_dump({"automations": rendered}, sort_keys=False))
                return 0
            installed = install(client, rendered)
    except AutomationsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except httpx.HTTPError as e:  # no URL in the message: PREFECT_API_URL is the user's to check
        print(f"error: the Prefect API (PREFECT_API_URL) failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    for item in installed:
        how = f"replaced {item.replaced} of the same name" if item.replaced else "new"
        print(f"created {item.name!r} (id {item.id}, {how}); notifies via block {args.notify_block!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
