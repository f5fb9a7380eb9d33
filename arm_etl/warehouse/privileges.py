"""Who may read production, as the catalog says and the ``grants`` setting asks: grantees and privileges.

Their own module because every dialect spells a grantee (``grantee_from_catalog``, ``grantee_sql``) and
production's swap carries privileges across; the names follow *GRANT* (Redshift) and PostgreSQL's ``aclitem``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

GranteeKind = Literal["user", "role", "group", "public"]

# *GRANT* (Redshift): schema privileges CREATE | USAGE | ALTER (*SVV_SCHEMA_PRIVILEGES* lists these); table
# privileges SELECT | INSERT | UPDATE | DELETE | DROP | REFERENCES | ALTER | TRUNCATE. PostgreSQL adds TRIGGER.
SCHEMA_PRIVILEGES: Final = frozenset({"USAGE", "CREATE", "ALTER"})
RELATION_PRIVILEGES: Final = frozenset(
    {"SELECT", "INSERT", "UPDATE", "DELETE", "DROP", "REFERENCES", "ALTER", "TRUNCATE", "TRIGGER"}
)
GRANT_KEYS: Final = frozenset({"select"})  # the ``grants`` setting declares readers only


@dataclass(frozen=True, order=True)
class Grantee:
    """Who holds a privilege: a user, a role, a group (Redshift) or PUBLIC."""

    kind: GranteeKind
    name: str

    @classmethod
    def parse(cls, text: str) -> Grantee:
        """``name`` (a user; on PostgreSQL any role), ``role:name``, ``group:name`` or ``PUBLIC``."""
        if text.upper() == "PUBLIC":
            return cls("public", "PUBLIC")
        kind, sep, name = text.partition(":")
        if sep and kind in ("role", "group", "user") and name:
            return cls(kind, name)  # type: ignore[arg-type]
        if sep:
            raise ValueError(f"grantee {text!r}: expected a user name, role:<name>, group:<name> or PUBLIC")
        return cls("user", text)

    def __str__(self) -> str:
        return self.name if self.kind in ("user", "public") else f"{self.kind}:{self.name}"


@dataclass(frozen=True)
class Privilege:
    """One privilege read from the catalog: on the redshift-schema itself (``relation`` None) or a relation."""

    relation: str | None
    privilege: str
    grantee: Grantee
    grant_option: bool = False

    def key(self) -> tuple[bool, str, str, Grantee]:
        """The schema's own privileges first, then by relation, privilege, grantee."""
        return (self.relation is not None, self.relation or "", self.privilege, self.grantee)

    def __str__(self) -> str:
        on = f"view {self.relation}" if self.relation is not None else "the redshift-schema"
        return f"{self.privilege} on {on} to {self.grantee}" + (" WITH GRANT OPTION" if self.grant_option else "")
