"""Process memory settings for the segment run.

The phases run in threads, and glibc gives each thread that allocates its own malloc arena (up to
8 per core). Freed chunk memory then stays spread over many arenas: a 200,000-item segment's peak RSS
kept growing to ~1.2 GB while the live data stayed ~0.6 GB. Two arenas hold it flat (measured in
``bench/NOTES.md``). ``MALLOC_ARENA_MAX`` set in the environment wins; elsewhere than glibc this is a no-op.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import logging
import os
import sys
from collections.abc import Iterator

log = logging.getLogger("arm_etl.memory")

M_ARENA_MAX = -8  # glibc <malloc.h>
DEFAULT_ARENAS = 2

_done = False


def limit_malloc_arenas(arenas: int = DEFAULT_ARENAS) -> bool:
    """Cap glibc's malloc arenas for threads created from now on; True if the cap was set here."""
    global _done
    if _done or not sys.platform.startswith("linux") or os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    if mallopt(M_ARENA_MAX, arenas) != 1:
        log.debug("mallopt(M_ARENA_MAX, %d) refused", arenas)
        return False
    _done = True
    return True


GC_GEN0_THRESHOLD = 50_000
"""Allocations between two young-generation collections while the stages run (CPython's default: 700)."""


@contextlib.contextmanager
def quiet_gc(gen0: int = GC_GEN0_THRESHOLD) -> Iterator[None]:
    """Fewer, cheaper garbage collections while a segment's stages run.

    The transform allocates a dict per cell and item, nearly all freed by reference counting; with the
    default threshold the collector runs every 700 allocations, and its full passes walk every object the
    process holds (Prefect alone is hundreds of MB). ``gc.freeze()`` moves what exists before the run out of
    the collector's sight; the higher threshold makes young collections rare. Both are undone after.
    """
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(gen0, old[1], old[2])
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()
