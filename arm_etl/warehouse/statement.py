"""One SQL statement as the warehouse runs it and as ``arm-etl sql`` prints it.

Run values (snapshot, counts, timestamps) are never spliced into the text: they are psycopg2
``%(name)s`` placeholders, bound at execution and printed as ``:name``, so the reviewed text is
exactly the executed text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

_PLACEHOLDER: Final = re.compile(r"%\((\w+)\)s")


@dataclass(frozen=True)
class Statement:
    """SQL text plus the names of the run values it binds (empty: run with no parameters)."""

    sql: str
    params: tuple[str, ...] = ()
    autocommit: bool = False  # Redshift refuses it inside a transaction block (ALTER TABLE APPEND)
    moves_rows: bool = False  # it moves a segment table's rows: its row count must be the manifest's

    def __post_init__(self) -> None:
        found = tuple(dict.fromkeys(_PLACEHOLDER.findall(self.sql)))
        if set(found) != set(self.params):
            raise ValueError(f"placeholders {found} differ from params {self.params} in {self.sql!r}")

    def display(self) -> str:
        """The text a DBA reviews: run values as ``:name``, ending in ``;``."""
        return _PLACEHOLDER.sub(r":\1", self.sql) + ";"
