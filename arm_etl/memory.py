"""Process memory settings for the segment run.

The phases run in threads, and glibc gives each thread that allocates its own malloc arena (up to
8 per core). Freed chunk memory then stays spread over many arenas: a 200,000-item segment's peak RSS
kept growing to ~1.2 GB while the live data stayed ~0.6 GB. Two arenas hold it flat (measured in
``bench/NOTES.md``). ``MALLOC_ARENA_MAX`` set in the environment wins; elsewhere than glibc this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

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
