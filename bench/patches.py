"""Experiments, not the product: monkeypatches a row applies when ``BENCH_PATCHES`` names them.

They measure a proposed change before it is made in a file the benchmark does not own; every result
produced with one is labelled with its name (``python -m bench --patch NAME``).

* ``switch-0.5ms``: ``sys.setswitchinterval(0.0005)``: GIL hand-offs every 0.5 ms instead of 5 ms, so
  I/O threads (HTTP reads, COPY feeding) wait less behind the CPU-bound phases. (With 8 KB COPY reads it
  helped; with the load's 1 MB reads of uncompressed parts it measured no different: 27.7/26.9 s vs 27.2 s.)
"""

from __future__ import annotations

import os
import sys


def _switch() -> None:
    sys.setswitchinterval(0.0005)


PATCHES = {"switch-0.5ms": _switch}


def apply_from_env() -> list[str]:
    names = [n for n in os.environ.get("BENCH_PATCHES", "").split(",") if n]
    for n in names:
        PATCHES[n]()
    return names
