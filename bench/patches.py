"""Experiments, not the product: monkeypatches a row applies when ``BENCH_PATCHES`` names them.

They measure a proposed change before it is made in a file the benchmark does not own; every result
produced with one is labelled with its name (``python -m bench --patch NAME``).

* ``copy-1mb``: ``Warehouse.copy_part`` feeds COPY 1 MB per read instead of psycopg2's default 8 KB
  (``copy_expert(..., size=8192)`` over a ``GzipFile``): each read needs the GIL, and with the transform
  and extract threads busy a reader waits up to a switch interval (5 ms) per read.
* ``switch-0.5ms``: ``sys.setswitchinterval(0.0005)``: GIL hand-offs every 0.5 ms instead of 5 ms, so
  I/O threads (HTTP reads, COPY feeding) wait less behind the CPU-bound phases.
"""

from __future__ import annotations

import io
import os
import sys
import zlib
from types import SimpleNamespace
from typing import Any

BLOCK = 1 << 20


class _BigReads(io.BytesIO):
    """A decompressed part that hands psycopg2 1 MB per ``read`` whatever size it asks for."""

    def read(self, n: int | None = -1) -> bytes:
        return super().read(-1 if n is None or n < 0 else max(n, BLOCK))


def _copy_1mb() -> None:
    from arm_etl import load

    def gzip_file(fileobj: Any = None, **_: Any) -> _BigReads:
        return _BigReads(zlib.decompress(fileobj.getvalue(), 47))

    load.gzip = SimpleNamespace(GzipFile=gzip_file)  # type: ignore[assignment]


def _switch() -> None:
    sys.setswitchinterval(0.0005)


PATCHES = {"copy-1mb": _copy_1mb, "switch-0.5ms": _switch}


def apply_from_env() -> list[str]:
    names = [n for n in os.environ.get("BENCH_PATCHES", "").split(",") if n]
    for n in names:
        PATCHES[n]()
    return names
