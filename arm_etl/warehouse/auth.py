"""Redshift IAM authentication: temporary database credentials instead of a stored password.

A provisioned cluster hands them out through ``redshift:GetClusterCredentials`` (a named database user) or
``redshift:GetClusterCredentialsWithIAM`` (the user derived from the caller's IAM identity); a Serverless
workgroup through ``redshift-serverless:GetCredentials``. Either returns a user name, a password and its
expiration; the connection must use the returned user name verbatim (``IAM:etl``, ``IAMA:etl`` …), since the
password authorizes exactly that name.

Each provider is a callable the warehouse calls at every connect. It caches the credentials and asks again
only 5 minutes before they expire, so a long run opening hundreds of connections calls the API once per
credential lifetime, not once per connection. Prefect-free: it takes a boto3 session (or a ready client).
"""

from __future__ import annotations

import logging
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

import botocore.exceptions
from botocore.config import Config

from arm_etl.errors import ArmEtlError, is_transient

__all__ = [
    "REFRESH_BEFORE_EXPIRY",
    "ClusterIamCredentials",
    "CredentialProvider",
    "DbCredentials",
    "ServerlessIamCredentials",
    "WarehouseAuthError",
]

log = logging.getLogger("arm_etl.warehouse.auth")

REFRESH_BEFORE_EXPIRY = timedelta(minutes=5)
MIN_DURATION_SECONDS, MAX_DURATION_SECONDS = 900, 3600  # both APIs: "between 900 seconds and 3600 seconds"

_ACCESS_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
_BAD_SIGNER_CODES = frozenset(
    {"InvalidClientTokenId", "UnrecognizedClientException", "ExpiredToken", "ExpiredTokenException"}
)
_ACCOUNT_IN_ARN = re.compile(r"arn:[\w-]+:[\w-]+:[\w-]*:(\d{12}):")
_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})


class WarehouseAuthError(ArmEtlError):
    """Temporary warehouse credentials could not be obtained; the message says which call failed and why.

    ``transient`` is True when the same call may succeed a moment later (throttling, a 5xx, a dropped
    connection), False when someone must act first (a missing grant, a wrong cluster or workgroup name).
    """


@dataclass(frozen=True)
class DbCredentials:
    """A database user and password for one connection; the password never shows in ``repr``/``str``."""

    user: str
    password: str = field(repr=False)
    expires_at: datetime | None = None


@runtime_checkable
class CredentialProvider(Protocol):
    """What the warehouse calls at each connect: the user and password to log on with right now."""

    def __call__(self) -> DbCredentials: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _CachedIamCredentials(ABC):
    """Shared machinery: one lazily made client, one cached credential, one fetch at a time."""

    service: str  # boto3 service name of the client
    action: str  # IAM action of the call, for messages

    def __init__(
        self,
        session_or_client: Any,
        duration_seconds: int,
        *,
        region_name: str | None,
        client_kwargs: Mapping[str, Any] | None,
        clock: Callable[[], datetime],
    ) -> None:
        if not MIN_DURATION_SECONDS <= duration_seconds <= MAX_DURATION_SECONDS:
            raise ValueError(
                f"duration_seconds must be within {MIN_DURATION_SECONDS}..{MAX_DURATION_SECONDS}, "
                f"not {duration_seconds}"
            )
        self.duration_seconds = duration_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: DbCredentials | None = None
        self._refresh_at: datetime | None = None
        self._client: Any = None
        self._session: Any = None
        meta = getattr(session_or_client, "meta", None)
        if meta is not None and hasattr(meta, "service_model"):  # a botocore client
            name = meta.service_model.service_name
            if name != self.service:
                raise ValueError(f"{type(self).__name__} needs a {self.service!r} client, not {name!r}")
            self._client = session_or_client
        else:
            self._session = session_or_client
        self._region_name = region_name
        self._client_kwargs = dict(client_kwargs or {})

    @property
    def client(self) -> Any:
        """The botocore client, made on first use so that building a provider never needs AWS."""
        if self._client is None:
            try:
                self._client = self._session.client(
                    self.service,
                    region_name=self._region_name,
                    **{"config": _CLIENT_CONFIG, **self._client_kwargs},
                )
            except botocore.exceptions.NoRegionError:
                raise WarehouseAuthError(
                    f"{self.action} for {self._target()} needs an AWS region: set region_name in the "
                    "AwsCredentials block, or AWS_REGION for the worker"
                ) from None
        return self._client

    @property
    def region(self) -> str:
        return str(self.client.meta.region_name)

    def __call__(self) -> DbCredentials:
        with self._lock:  # the phases connect from several threads: fetch once, not once per thread
            now = self._clock()
            if self._cached is None or self._refresh_at is None or now >= self._refresh_at:
                self._cached = self._fetch(now)
                self._refresh_at = self._refresh_time(now, self._cached.expires_at)
            return self._cached

    def _refresh_time(self, fetched_at: datetime, expires_at: datetime | None) -> datetime:
        """5 minutes before expiry; half the lifetime if the credential lives shorter than 10 minutes (skew)."""
        expires = expires_at or fetched_at + timedelta(seconds=self.duration_seconds)
        return expires - min(REFRESH_BEFORE_EXPIRY, (expires - fetched_at) / 2)

    def _fetch(self, now: datetime) -> DbCredentials:
        try:
            response = self._request()
        except botocore.exceptions.ClientError as exc:
            raise self._client_error(exc) from None
        except botocore.exceptions.NoCredentialsError:
            raise WarehouseAuthError(
                f"{self.action} for {self._target()}: no AWS credentials to sign the call; set the "
                "RedshiftCredentials block's aws_credentials, or give the worker an IAM role"
            ) from None
        except (
            botocore.exceptions.EndpointConnectionError,
            botocore.exceptions.ConnectionClosedError,
            botocore.exceptions.ReadTimeoutError,
            botocore.exceptions.ConnectTimeoutError,
        ) as exc:
            raise WarehouseAuthError(
                f"{self.action} for {self._target()}: cannot reach the AWS endpoint ({exc})", transient=True
            ) from None
        user, password, expires = self._parse(response)
        expires_at = expires if isinstance(expires, datetime) else now + timedelta(seconds=self.duration_seconds)
        log.info("temporary Redshift credentials for %s on %s, valid until %s", user, self._target(), expires_at)
        return DbCredentials(user=user, password=password, expires_at=expires_at)

    def _client_error(self, exc: botocore.exceptions.ClientError) -> WarehouseAuthError:
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "Unknown")
        message = str(error.get("Message") or "").strip()
        head = f"{self.action} for {self._target()} in {self.region} failed with {code}"
        if message:
            head += f": {message}"
        if code in _ACCESS_DENIED_CODES:
            account = m.group(1) if (m := _ACCOUNT_IN_ARN.search(message)) else "<account-id>"
            return WarehouseAuthError(f"{head}\n{self._grant_hint(account)}")
        if code in _BAD_SIGNER_CODES:
            return WarehouseAuthError(
                f"{head}\nthe AWS credentials signing the call are invalid or expired: check the block's "
                "aws_credentials, or the worker's role"
            )
        if is_transient(exc):
            return WarehouseAuthError(f"{head} (transient: retry later)", transient=True)
        hint = self._not_found_hint(code)
        return WarehouseAuthError(f"{head}\n{hint}" if hint else head)

    def _arn(self, service: str, resource: str, account: str) -> str:
        partition = getattr(self.client.meta, "partition", None) or "aws"
        return f"arn:{partition}:{service}:{self.region}:{account}:{resource}"

    @abstractmethod
    def _target(self) -> str:
        """What the credentials are for, for messages: the cluster or the workgroup."""

    @abstractmethod
    def _request(self) -> Mapping[str, Any]:
        """The API call."""

    @abstractmethod
    def _parse(self, response: Mapping[str, Any]) -> tuple[str, str, Any]:
        """User, password and expiration (a datetime, or None) from the response."""

    @abstractmethod
    def _grant_hint(self, account: str) -> str:
        """Which IAM action on which resource ARN the signer lacks."""

    @abstractmethod
    def _not_found_hint(self, code: str) -> str | None:
        """What to check when the cluster or workgroup does not exist."""


class ClusterIamCredentials(_CachedIamCredentials):
    """Temporary credentials for a provisioned cluster.

    With ``db_user``: GetClusterCredentials, logging on as that database user (``IAM:<user>``, or
    ``IAMA:<user>`` with ``auto_create``), optionally joining ``db_groups``. Without: GetClusterCredentialsWithIAM,
    the database user mapped 1:1 to the caller's IAM identity (groups and auto-create do not apply).
    """

    service = "redshift"

    def __init__(
        self,
        session_or_client: Any,
        cluster_identifier: str,
        database: str,
        db_user: str | None = None,
        db_groups: Sequence[str] = (),
        auto_create: bool = False,
        duration_seconds: int = 900,
        *,
        region_name: str | None = None,
        client_kwargs: Mapping[str, Any] | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if not cluster_identifier:
            raise ValueError("cluster_identifier is required for IAM authentication to a provisioned cluster")
        if db_user is None and (db_groups or auto_create):
            raise ValueError(
                "db_groups and auto_create need a db_user: GetClusterCredentialsWithIAM derives the database "
                "user from the IAM identity and takes neither"
            )
        self.action = "redshift:GetClusterCredentials" if db_user else "redshift:GetClusterCredentialsWithIAM"
        self.cluster_identifier = cluster_identifier
        self.database = database
        self.db_user = db_user or None
        self.db_groups = list(db_groups)
        self.auto_create = auto_create
        super().__init__(
            session_or_client,
            duration_seconds,
            region_name=region_name,
            client_kwargs=client_kwargs,
            clock=clock,
        )

    def __repr__(self) -> str:
        who = f"db_user={self.db_user!r}" if self.db_user else "db_user from the IAM identity"
        return f"ClusterIamCredentials(cluster={self.cluster_identifier!r}, database={self.database!r}, {who})"

    def _target(self) -> str:
        return f"cluster {self.cluster_identifier!r}"

    def _request(self) -> Mapping[str, Any]:
        if self.db_user is None:
            return dict(
                self.client.get_cluster_credentials_with_iam(
                    ClusterIdentifier=self.cluster_identifier,
                    DbName=self.database,
                    DurationSeconds=self.duration_seconds,
                )
            )
        params: dict[str, Any] = {
            "ClusterIdentifier": self.cluster_identifier,
            "DbUser": self.db_user,
            "DbName": self.database,
            "DurationSeconds": self.duration_seconds,
            "AutoCreate": self.auto_create,
        }
        if self.db_groups:
            params["DbGroups"] = self.db_groups
        return dict(self.client.get_cluster_credentials(**params))

    def _parse(self, response: Mapping[str, Any]) -> tuple[str, str, Any]:
        return str(response["DbUser"]), str(response["DbPassword"]), response.get("Expiration")

    def _grant_hint(self, account: str) -> str:
        cluster = self.cluster_identifier
        dbname = self._arn("redshift", f"dbname:{cluster}/{self.database}", account)
        if self.db_user is None:
            return f"grant redshift:GetClusterCredentialsWithIAM on {dbname} to the IAM identity signing the call"
        dbuser = self._arn("redshift", f"dbuser:{cluster}/{self.db_user}", account)
        grants = [f"grant redshift:GetClusterCredentials on {dbuser} and {dbname}"]
        if self.auto_create:
            grants.append(f"grant redshift:CreateClusterUser on {dbuser} (auto_create_user is on)")
        if self.db_groups:
            groups = ", ".join(self._arn("redshift", f"dbgroup:{cluster}/{g}", account) for g in self.db_groups)
            grants.append(f"grant redshift:JoinGroup on {groups}")
        return "; ".join(grants) + " to the IAM identity signing the call"

    def _not_found_hint(self, code: str) -> str | None:
        if code == "ClusterNotFound":
            return f"no cluster {self.cluster_identifier!r} in {self.region}: check cluster_identifier and the region"
        return None


class ServerlessIamCredentials(_CachedIamCredentials):
    """Temporary credentials for a Redshift Serverless workgroup (GetCredentials).

    The database user is derived from the caller's IAM identity; the returned ``dbUser`` is what to log on as.
    """

    service = "redshift-serverless"
    action = "redshift-serverless:GetCredentials"

    def __init__(
        self,
        session_or_client: Any,
        workgroup_name: str,
        database: str,
        duration_seconds: int = 900,
        *,
        region_name: str | None = None,
        client_kwargs: Mapping[str, Any] | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if not workgroup_name:
            raise ValueError("workgroup_name is required for IAM authentication to Redshift Serverless")
        self.workgroup_name = workgroup_name
        self.database = database
        super().__init__(
            session_or_client,
            duration_seconds,
            region_name=region_name,
            client_kwargs=client_kwargs,
            clock=clock,
        )

    def __repr__(self) -> str:
        return f"ServerlessIamCredentials(workgroup={self.workgroup_name!r}, database={self.database!r})"

    def _target(self) -> str:
        return f"workgroup {self.workgroup_name!r}"

    def _request(self) -> Mapping[str, Any]:
        return dict(
            self.client.get_credentials(
                workgroupName=self.workgroup_name, dbName=self.database, durationSeconds=self.duration_seconds
            )
        )

    def _parse(self, response: Mapping[str, Any]) -> tuple[str, str, Any]:
        return str(response["dbUser"]), str(response["dbPassword"]), response.get("expiration")

    def _grant_hint(self, account: str) -> str:
        workgroup = self._arn("redshift-serverless", "workgroup/<workgroup-id>", account)
        return (
            f"grant redshift-serverless:GetCredentials on {workgroup} (the workgroup's id, not its name: "
            f"aws redshift-serverless get-workgroup --workgroup-name {self.workgroup_name}) to the IAM identity "
            "signing the call"
        )

    def _not_found_hint(self, code: str) -> str | None:
        if code == "ResourceNotFoundException":
            return f"no workgroup {self.workgroup_name!r} in {self.region}: check workgroup_name and the region"
        return None
