"""Identifier normalization: DynamoDB names → warehouse names, deterministic and collision-free.

Rules (DESIGN.md "Names"): lower-case; each character outside ``[a-z0-9_]`` becomes ``_`` (no
collapsing); a leading digit gets a ``_`` prefix; names longer than the dialect's limit are cut and end
in ``_`` plus 8 hex of a hash of the original; collisions get ``_2``, ``_3`` … assigned in code-point
order of the original names.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Iterable, Sequence

REDSHIFT_MAX_BYTES = 127
POSTGRESQL_MAX_BYTES = 63

_ALLOWED = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


#: Column names PostgreSQL reserves for its system columns, refused in CREATE TABLE ("column name … conflicts
#: with a system column name"); Redshift lists the same among *Unsupported PostgreSQL features*. Taken.
SYSTEM_COLUMNS = frozenset({"oid", "tableoid", "xmin", "cmin", "xmax", "cmax", "ctid"})


def fold(name: str) -> str:
    """Fold one name segment; one output character per input character, so folding never merges runs."""
    out = []
    for ch in name:
        if "A" <= ch <= "Z":
            out.append(chr(ord(ch) + 32))
        elif ch in _ALLOWED:
            out.append(ch)
        else:
            out.append("_")
    folded = "".join(out) or "_"
    if folded[0].isdigit():
        folded = "_" + folded
    return folded


def fit(folded: str, original: str, limit: int) -> str:
    """Cut a folded name to ``limit`` bytes, ending in ``_`` + 8 hex of the original's hash when cut."""
    if len(folded) <= limit:
        return folded
    digest = hashlib.sha256(original.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return folded[: limit - 9] + "_" + digest


def with_suffix(base: str, n: int, limit: int) -> str:
    suffix = f"_{n}"
    return base[: limit - len(suffix)] + suffix


def assign_unique(
    candidates: Sequence[tuple[Hashable, str, str]],
    limit: int,
    reserved: Iterable[str] = (),
) -> dict[Hashable, str]:
    """Give each candidate ``(key, original, folded)`` a unique name within ``limit`` bytes.

    Reserved names are taken first; the rest are assigned in code-point order of ``original`` (ties by
    the key's repr, so the result never depends on input order).
    """
    used = set(reserved)
    result: dict[Hashable, str] = {}
    for key, original, folded in sorted(candidates, key=lambda c: (c[1], repr(c[0]))):
        base = fit(folded, original, limit)
        name = base
        n = 2
        while name in used:
            name = with_suffix(base, n, limit)
            n += 1
        used.add(name)
        result[key] = name
    return result


def path_name(path: Sequence[str | None]) -> tuple[str, str]:
    """(original, folded) for a column path relative to its table: ``m.x.y`` → ``m__x__y``.

    ``None`` marks "the list element itself" and folds to ``value``.
    """
    segments = [s if s is not None else "value" for s in path] or ["value"]
    original = ".".join(segments)
    return original, "__".join(fold(s) for s in segments)
