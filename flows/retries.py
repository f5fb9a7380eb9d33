"""What a Prefect task retries: transient failures only (``arm_etl.errors.is_transient``).

A terminal error (access denied, a missing bucket or table, an invalid data-schema) fails the task at
once with its message instead of after every retry delay.
"""

from __future__ import annotations

from typing import Any

from arm_etl.errors import is_transient


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's ``retry_condition_fn``: retry when the failure's exception is transient."""
    exc = state.data if isinstance(state.data, BaseException) else state.result(raise_on_failure=False)
    return isinstance(exc, BaseException) and is_transient(exc)
