"""The malloc-arena cap of the segment run: set once on glibc, never over an explicit MALLOC_ARENA_MAX."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CODE = "from arm_etl.memory import limit_malloc_arenas as f; print(f(), f())"


def run(env_extra: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env_extra
    out = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_sets_the_cap_once() -> None:
    assert run({}) == "True False"


def test_explicit_environment_wins() -> None:
    assert run({"MALLOC_ARENA_MAX": "4"}) == "False False"
