"""Names and default sizes of arm-etl's Prefect global concurrency limits (no Prefect import here).

The limits are shared by every flow run that talks to the same Prefect API, so they cap work across all
workers and machines, not per process:

- :data:`LOAD_LIMIT` caps concurrent warehouse loads (COPY / ``COPY … FROM STDIN``). The system arm-etl
  replaces ran the Redshift cluster out of memory by starting too many COPYs at once; 2 slots is a safe
  start for a small cluster (see ``deployments/GUIDE.md`` for sizing).
- :data:`READ_LIMIT` caps concurrent DynamoDB scan page reads, so N segments on N workers do not eat the
  table's read capacity (or on-demand budget) at once.

Create them with ``python -m deployments.limits`` (idempotent) or ``prefect gcl create <name> --limit <n>``.
A missing limit is never a failure: the code runs unlimited and logs a warning once per process.
"""

from __future__ import annotations

from typing import Final

LOAD_LIMIT: Final = "arm-etl-warehouse-loads"
"""Global concurrency limit held by each warehouse load (one slot per COPY transaction)."""

READ_LIMIT: Final = "arm-etl-dynamodb-reads"
"""Global concurrency limit held by each DynamoDB scan read (one slot per chunk of pages)."""

DEFAULT_LOAD_SLOTS: Final = 2
DEFAULT_READ_SLOTS: Final = 4

DEFAULT_LIMITS: Final[dict[str, int]] = {LOAD_LIMIT: DEFAULT_LOAD_SLOTS, READ_LIMIT: DEFAULT_READ_SLOTS}
"""Every limit arm-etl uses and its default number of slots."""

__all__ = ["DEFAULT_LIMITS", "DEFAULT_LOAD_SLOTS", "DEFAULT_READ_SLOTS", "LOAD_LIMIT", "READ_LIMIT"]
