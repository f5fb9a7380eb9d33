"""Prefect global concurrency limits of arm-etl: hold a slot around warehouse loads and DynamoDB reads.

Names and default sizes are in :mod:`arm_etl.limits` (no Prefect import). Create the limits once per
Prefect API (idempotent; existing limits keep their sizes unless ``--update``)::

    python -m deployments.limits                 # arm-etl-warehouse-loads = 2, arm-etl-dynamodb-reads = 4
    python -m deployments.limits --loads 4 --update

or ``prefect gcl create arm-etl-warehouse-loads --limit 2``. In a task::

    from arm_etl.limits import LOAD_LIMIT
    from deployments.limits import occupy

    with occupy(LOAD_LIMIT):
        ...  # one COPY

A limit that does not exist is not an error: :func:`occupy` logs one warning per process and runs without
a limit (Prefect's own ``strict=False`` would warn on every acquisition). It looks again after
:data:`RECHECK_SECONDS`, so a limit created while a long run is going takes effect in that run.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from arm_etl.limits import DEFAULT_LIMITS, LOAD_LIMIT, READ_LIMIT

RECHECK_SECONDS = 60.0
"""How long a limit found missing is taken as missing before asking the API again."""

_lock = threading.Lock()
# Keyed by (Prefect API URL, limit name): one process may talk to several APIs (tests, scripts).
_present: set[tuple[str, str]] = set()
_missing_since: dict[tuple[str, str], float] = {}
_warned: set[tuple[str, str]] = set()


def _api_key(name: str) -> tuple[str, str]:
    from prefect.settings import get_current_settings

    return (str(get_current_settings().api.url or "ephemeral"), name)


_log = logging.getLogger("arm_etl.limits")


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The run logger inside a flow or task run (so the warning shows in the UI), else a module logger."""
    try:
        from prefect import get_run_logger

        return get_run_logger()
    except Exception:
        return _log


def _limit_exists(name: str) -> bool:
    """Whether global concurrency limit ``name`` exists, asking the API at most once per RECHECK_SECONDS."""
    key = _api_key(name)
    if key in _present:
        return True
    with _lock:
        if key in _present:
            return True
        missing_at = _missing_since.get(key)
        if missing_at is not None and time.monotonic() - missing_at < RECHECK_SECONDS:
            return False
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound

        with get_client(sync_client=True) as client:
            try:
                client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                _missing_since[key] = time.monotonic()
                if key not in _warned:
                    _warned.add(key)
                    _logger().warning(
                        "global concurrency limit %r does not exist: running without it. Create it with "
                        "`python -m deployments.limits` (or `prefect gcl create %s --limit %d`).",
                        name,
                        name,
                        DEFAULT_LIMITS.get(name, 1),
                    )
                return False
        _missing_since.pop(key, None)
        _present.add(key)
        return True


@contextmanager
def occupy(limit_name: str, slots: int = 1, timeout_seconds: float | None = None) -> Iterator[None]:
    """Hold ``slots`` of global concurrency limit ``limit_name`` for the body; wait for them if all are taken.

    If the limit does not exist, warn once per process and run the body unlimited. A limit that exists but
    is inactive (``prefect gcl disable``) lets everything through (Prefect's own behaviour).
    ``timeout_seconds``: give up waiting with ``TimeoutError`` (default: wait as long as it takes).
    """
    if not _limit_exists(limit_name):
        yield
        return
    from prefect.concurrency.sync import concurrency

    with concurrency(limit_name, occupy=slots, timeout_seconds=timeout_seconds, strict=False):
        yield


def _reset_cache() -> None:
    """Forget what is known about limits, and stop Prefect's slot-acquisition services.

    Those services are per-process singletons bound to the API they first used; a process that moves to
    another API (a test session with several servers) must stop them, or acquisitions go to the old API.
    """
    from prefect.concurrency.services import ConcurrencySlotAcquisitionWithLeaseService

    with _lock:
        _present.clear()
        _missing_since.clear()
        _warned.clear()
    ConcurrencySlotAcquisitionWithLeaseService.drain_all(timeout=10)


def create_limits(limits: Mapping[str, int] | None = None, update: bool = False) -> dict[str, str]:
    """Create arm-etl's global concurrency limits (default :data:`arm_etl.limits.DEFAULT_LIMITS`).

    Idempotent: an existing limit is left as it is (an operator may have resized it), unless ``update``,
    which sets it to the given size. Returns ``{name: "created" | "kept (n slots)" | "updated (a → b)"}``.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    wanted = dict(DEFAULT_LIMITS if limits is None else limits)
    out: dict[str, str] = {}
    with get_client(sync_client=True) as client:
        for name, slots in wanted.items():
            try:
                existing: Any = client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                try:
                    client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=slots))
                    out[name] = f"created ({slots} slots)"
                    continue
                except ObjectAlreadyExists:  # created concurrently
                    existing = client.read_global_concurrency_limit_by_name(name)
            if update and existing.limit != slots:
                client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=slots))
                out[name] = f"updated ({existing.limit} → {slots} slots)"
            else:
                out[name] = f"kept ({existing.limit} slots)"
    _reset_cache()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m deployments.limits",
        description="Create arm-etl's Prefect global concurrency limits on the current PREFECT_API_URL.",
    )
    p.add_argument(
        "--loads",
        type=int,
        default=DEFAULT_LIMITS[LOAD_LIMIT],
        help=f"slots of {LOAD_LIMIT}: concurrent COPYs into the warehouse (default %(default)s)",
    )
    p.add_argument(
        "--reads",
        type=int,
        default=DEFAULT_LIMITS[READ_LIMIT],
        help=f"slots of {READ_LIMIT}: concurrent DynamoDB scan reads (default %(default)s)",
    )
    p.add_argument("--update", action="store_true", help="resize limits that already exist")
    a = p.parse_args(argv)
    for name, what in create_limits({LOAD_LIMIT: a.loads, READ_LIMIT: a.reads}, update=a.update).items():
        print(f"{name}: {what}")
    return 0


__all__ = ["LOAD_LIMIT", "READ_LIMIT", "RECHECK_SECONDS", "create_limits", "occupy"]

if __name__ == "__main__":
    raise SystemExit(main())
