"""The warehouse: one class per dialect, owning every statement arm-etl runs and every cursor.

``warehouse_for(url)`` picks the class from the SQLAlchemy URL scheme (``redshift+psycopg2://`` or
``postgresql://``); ``warehouse_for(dialect="redshift")`` gives one that renders SQL without connecting.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import URL, make_url

from arm_etl.warehouse.base import PartLoad, TableCopy, Warehouse, WarehouseError, quote_ident
from arm_etl.warehouse.postgres import PostgresWarehouse
from arm_etl.warehouse.redshift import RedshiftWarehouse

__all__ = [
    "DIALECTS",
    "PartLoad",
    "PostgresWarehouse",
    "RedshiftWarehouse",
    "TableCopy",
    "Warehouse",
    "WarehouseError",
    "quote_ident",
    "warehouse_for",
]

DIALECTS: dict[str, type[Warehouse]] = {"postgresql": PostgresWarehouse, "redshift": RedshiftWarehouse}


def warehouse_for(url: str | URL | None = None, *, dialect: str | None = None, **kwargs: Any) -> Warehouse:
    """The warehouse for ``url`` (its scheme names the dialect), or an unconnected one for ``dialect``."""
    if url is not None:
        parsed = make_url(url)
        dialect = parsed.get_backend_name()
        if dialect not in DIALECTS:
            raise WarehouseError(
                f"unsupported warehouse URL scheme {parsed.drivername!r} "
                "(expected redshift+psycopg2:// or postgresql://)"
            )
    if dialect not in DIALECTS:
        raise WarehouseError(f"unknown warehouse dialect {dialect!r} (expected one of {', '.join(DIALECTS)})")
    return DIALECTS[dialect](url, **kwargs)
