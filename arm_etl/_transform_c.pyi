"""Types of the compiled transform (``_transform_c.c``); its reference is ``transform._Walk.transform_items``."""

from collections.abc import Callable, Iterable
from typing import Any

def transform_items(
    walk: Any,
    items: Iterable[dict[str, Any]],
    roots: dict[str, tuple[Any, Any]],
    route: Callable[[dict[str, Any]], str],
    ctx_type: type,
    null: str,
    tail: str,
) -> int: ...
def utf8_parts(lines: list[str], part_size: int) -> list[tuple[bytes, int]]: ...
