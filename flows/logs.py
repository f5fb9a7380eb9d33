"""The core's loggers (``arm_etl.*``) in the flow run's logs, where an operator in the UI reads them.

Prefect sends only its own loggers to the API unless ``PREFECT_LOGGING_EXTRA_LOGGERS`` names others, and
that setting is read once, when Prefect configures logging at import. The flows therefore attach the same
handler Prefect uses for extra loggers themselves, so throttling waits, merge progress and credential
refreshes reach the UI whatever the worker's environment says. Outside a flow or task run (the benchmark,
plain core calls) the handler lets records pass by silently instead of warning.
"""

from __future__ import annotations

import logging

from prefect.context import FlowRunContext, TaskRunContext
from prefect.logging.handlers import APILogHandler

CORE_LOGGER = "arm_etl"


class _InARun(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def route_core_logs() -> None:
    """Send ``arm_etl`` records at INFO and above to the current run's logs; idempotent."""
    core = logging.getLogger(CORE_LOGGER)
    if any(isinstance(h, APILogHandler) for h in core.handlers):
        return
    handler = APILogHandler()
    handler.addFilter(_InARun())
    core.addHandler(handler)
    if core.level == logging.NOTSET:
        core.setLevel(logging.INFO)
