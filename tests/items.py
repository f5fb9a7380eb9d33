"""DynamoDB attribute-value builders for tests, in the low-level client format: ``M(a=S("x"), n=N("1"))``."""

from __future__ import annotations

from typing import Any

AV = dict[str, Any]

NULL: AV = {"NULL": True}


def S(s: str) -> AV:
    return {"S": s}


def N(s: str) -> AV:
    return {"N": s}


def B(b: bytes) -> AV:
    return {"B": b}


def BOOL(v: bool) -> AV:
    return {"BOOL": v}


def M(**kv: AV) -> AV:
    return {"M": dict(kv)}


def L(*vs: AV) -> AV:
    return {"L": list(vs)}
