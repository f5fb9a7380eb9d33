"""DynamoDB attribute values (``{"S": "x"}``, ``{"B": …}``): binary in either form, set order, JSON text.

Binary arrives as raw bytes from botocore and as base64 text in DynamoDB JSON; every helper here takes
both, so a value reads the same whichever way it came.
"""

from __future__ import annotations

import base64
import json
import re
from decimal import Decimal
from typing import Any

import orjson

#: Each set tag and the scalar tag of its elements.
SET_TAGS = {"SS": "S", "NS": "N", "BS": "B"}


def as_bytes(value: Any) -> bytes:
    """A ``B`` value's bytes, whether given as raw bytes or as the wire's base64 text."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return base64.b64decode(value)


def as_b64(value: Any) -> str:
    """A ``B`` value as base64 text (its form in DynamoDB JSON and inside SUPER)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


def sort_set(tag: str, values: list[Any]) -> list[Any]:
    """Set order for ``_idx``: strings by code point, numbers by value, binary by bytes."""
    if tag == "SS":
        return sorted(values)
    if tag == "NS":
        return sorted(values, key=Decimal)
    return sorted(values, key=as_bytes)


def wire_json(av: dict[str, Any]) -> bytes:
    """DynamoDB JSON of one value (binary as base64 text, as on the wire)."""
    try:
        return orjson.dumps(av, default=_b64_default)  # one C call: no Python copy of the value first
    except TypeError:  # a lone surrogate
        return _escaped_json(_wire(av))


def _b64_default(o: Any) -> str:
    if isinstance(o, (bytes, bytearray, memoryview)):
        return as_b64(o)
    raise TypeError(f"{type(o).__name__} is not DynamoDB JSON")


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def json_bytes(obj: Any) -> bytes:
    """Compact JSON as UTF-8. Text holding a lone surrogate (not encodable as UTF-8, so orjson refuses it)
    gets that code unit written as a ``\\uXXXX`` escape: still JSON that parses back to the same value."""
    try:
        return orjson.dumps(obj)
    except TypeError:  # orjson.JSONEncodeError: "str is not valid UTF-8: surrogates not allowed"
        return _escaped_json(obj)


def _escaped_json(obj: Any) -> bytes:
    """json_bytes for a value orjson refused: each lone surrogate written as a ``\\uXXXX`` escape."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text).encode("utf-8")


def _wire(av: Any) -> Any:
    if isinstance(av, dict):
        return {k: _wire(v) for k, v in av.items()}
    if isinstance(av, list):
        return [_wire(v) for v in av]
    if isinstance(av, (bytes, bytearray, memoryview)):
        return as_b64(av)
    return av
