"""One exception base for arm-etl, and the rule that decides what is worth retrying.

Transient: the same call can succeed a moment later (a dropped connection, throttling, a 5xx, a
serialization conflict, a lock wait that timed out). Terminal: it will fail again until someone
acts (access denied, a missing bucket or table, an invalid data-schema); retrying only delays the
message. Prefect tasks retry on :func:`is_transient` alone.
"""

from __future__ import annotations

from typing import Final

# SQLSTATE classes/codes worth retrying: connection exceptions, serialization failure, deadlock,
# operator intervention (admin shutdown, crash shutdown, cannot connect now), insufficient resources.
_TRANSIENT_SQLSTATES: Final = ("08", "40001", "40P01", "57P01", "57P02", "57P03", "53")
# AWS error codes that mean "slow down" or "try again"; any HTTP 5xx is transient too.
_TRANSIENT_AWS_CODES: Final = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "SlowDown",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalServerError",
        "InternalServerException",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "TransactionConflictException",
    }
)


class ArmEtlError(Exception):
    """Base of every error arm-etl raises on purpose; the message names what failed and what to run."""

    transient: bool = False

    def __init__(self, message: str, *, transient: bool | None = None) -> None:
        super().__init__(message)
        if transient is not None:
            self.transient = transient


def is_transient(exc: BaseException) -> bool:
    """True when retrying the same step unchanged may succeed."""
    if isinstance(exc, ArmEtlError):
        return exc.transient
    import botocore.exceptions
    import psycopg2

    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return error.get("Code") in _TRANSIENT_AWS_CODES or status >= 500
    if isinstance(
        exc,
        (
            botocore.exceptions.ConnectionError,
            botocore.exceptions.ConnectionClosedError,
            botocore.exceptions.ReadTimeoutError,
        ),
    ):
        return True
    if isinstance(exc, psycopg2.Error):
        code = exc.pgcode or ""
        if code == "XX000":  # Redshift reports its serialization conflict (error 1023) as an internal error
            return "1023" in str(exc) or "serializable isolation violation" in str(exc).lower()
        if code:
            return code.startswith(_TRANSIENT_SQLSTATES)
        return isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError))  # no code: connection lost
    return isinstance(exc, (ConnectionError, TimeoutError))
