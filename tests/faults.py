"""Subprocess fault injection: run the ``arm-etl`` CLI and SIGKILL the process at a chosen point.

Usage: ``python -m tests.faults <point> <n> -- <arm-etl arguments>``. The point's hook is installed
by monkeypatching (nothing in ``arm_etl``/``flows`` knows about it); on the ``n``-th time the point is
reached the process prints ``FAULT <point> <n>: <detail>`` to stderr and kills itself with SIGKILL, so
nothing (no ``finally``, no ``atexit``, no rollback sent by the client) runs after it: the same as a
host terminated mid-run. Exit status 0 means the point was never reached ``n`` times.

Points (segment ETL):

- ``scan``       the ``n``-th Scan page request (inside a chunk's extraction)
- ``transform``  the ``n``-th chunk transform
- ``upload``     while uploading chunk ``n``: after its first part was written, before its second
- ``checkpoint`` the ``n``-th manifest write (parts uploaded, checkpoint not yet written)
- ``load``       in the middle of the ``n``-th COPY into staging (after its first block was streamed)
- ``finish``     after staging was verified and marked, before the swap into the segment schema
- ``swap``       inside the swap transaction: the old segment schema dropped, staging not yet renamed

Points (centralization):

- ``merge``       at the start of the ``n``-th segment merge (earlier merges committed)
- ``rename``      inside the production swap transaction, before its ``n``-th ``ALTER SCHEMA … RENAME``
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

POINTS = ("scan", "transform", "upload", "checkpoint", "load", "finish", "swap", "merge", "rename")
_PART = re.compile(r"/(\d{9})\.csv\.gz$")


class RawBody:
    """The ``raw`` of a ``botocore.awsrequest.AWSResponse`` built by a ``before-send`` hook."""

    def __init__(self, body: bytes):
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


def aws_error(url: str, status: int, body: bytes, content_type: str) -> Any:
    """An AWS error response for a ``before-send`` hook to return instead of sending the request."""
    from botocore.awsrequest import AWSResponse

    headers = {"Content-Type": content_type, "x-amzn-RequestId": "fault-injected", "x-amz-request-id": "fault"}
    return AWSResponse(url, status, headers, RawBody(body))


def s3_error(url: str, status: int, code: str) -> Any:
    body = (
        f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
        f"<Message>injected {code}</Message><RequestId>fault</RequestId></Error>"
    ).encode()
    return aws_error(url, status, body, "application/xml")


def dynamodb_throttle(url: str) -> Any:
    body = (
        b'{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",'
        b'"message":"The level of configured provisioned throughput for the table was exceeded (injected)"}'
    )
    return aws_error(url, 400, body, "application/x-amz-json-1.0")


def die(point: str, n: int, detail: str) -> None:
    sys.stderr.write(f"FAULT {point} {n}: {detail}\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


class _Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.n = 0

    def next(self) -> int:
        with self.lock:
            self.n += 1
            return self.n


def _on_nth(cls: Any, attr: str, point: str, n: int, before: bool = True) -> None:
    """Kill at the ``n``-th call of ``cls.attr`` (before it runs)."""
    real = getattr(cls, attr)
    counter = _Counter()

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        k = counter.next()
        if k == n and before:
            die(point, n, f"{cls.__name__}.{attr} call {k}")
        return real(*args, **kwargs)

    setattr(cls, attr, wrapper)


def install(point: str, n: int) -> None:
    from arm_etl.centralize import Centralizer
    from arm_etl.extract import SegmentScanner
    from arm_etl.segment import SegmentRun
    from arm_etl.upload import PartStore
    from arm_etl.warehouse import Warehouse
    from arm_etl.warehouse.statement import Statement

    if point == "scan":
        _on_nth(SegmentScanner, "page", point, n)
    elif point == "transform":
        _on_nth(SegmentRun, "transform", point, n)
    elif point == "checkpoint":
        _on_nth(PartStore, "write_checkpoint", point, n)
    elif point == "finish":
        _on_nth(Warehouse, "replace_schema", point, n)
    elif point == "merge":
        _on_nth(Centralizer, "merge", point, n)
    elif point == "upload":
        real_put = PartStore.put
        per_chunk: Counter[int] = Counter()
        lock = threading.Lock()

        def put(self: PartStore, key: str, data: bytes, content_type: str = "application/gzip") -> None:
            m = _PART.search(key)
            if m:
                chunk = int(m.group(1)) // 1000
                with lock:
                    per_chunk[chunk] += 1
                    k = per_chunk[chunk]
                if chunk == n and k == 2:
                    die(point, n, f"before the 2nd part of chunk {chunk} ({key}); the 1st is in S3, uncommitted")
            real_put(self, key, data, content_type)

        PartStore.put = put  # type: ignore[method-assign]
    elif point == "load":
        import arm_etl.warehouse.base as load_module

        counter = _Counter()
        real_reader = load_module.part_file

        def part_reader(data: bytes, compressed: bool) -> Any:
            """The part file the PostgreSQL load streams: the n-th COPY dies after streaming its first block."""
            inner = real_reader(data, compressed)
            if counter.next() != n:
                return inner
            return _KillAfterFirstRead(inner, point, n)

        load_module.part_file = part_reader
    elif point in ("swap", "rename"):
        real_execute = Warehouse.execute
        counter = _Counter()
        swapping = threading.local()
        real_replace = Warehouse.replace_schema

        def replace_schema(self: Warehouse, staging: str, target: str) -> None:
            swapping.on = True
            try:
                real_replace(self, staging, target)
            finally:
                swapping.on = False

        def execute(self: Warehouse, cur: Any, statement: Statement, values: Any = None) -> None:
            sql = statement.sql
            if sql.startswith("ALTER SCHEMA") and " RENAME TO " in sql:
                if point == "swap" and getattr(swapping, "on", False):
                    die(point, n, f"in the swap transaction, old schema dropped, before {sql!r}")
                if point == "rename" and counter.next() == n:
                    die(point, n, f"in the production swap transaction, before {sql!r}")
            real_execute(self, cur, statement, values)

        Warehouse.replace_schema = replace_schema  # type: ignore[method-assign]
        Warehouse.execute = execute  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown fault point {point!r}; expected one of {', '.join(POINTS)}")


class _KillAfterFirstRead:
    def __init__(self, inner: Any, point: str, n: int):
        self.inner, self.point, self.n, self.reads = inner, point, n, 0

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        if self.reads == 2:
            die(self.point, self.n, "in the middle of a COPY into staging (first block streamed)")
        data: bytes = self.inner.read(size)
        return data

    def readline(self, size: int = -1) -> bytes:
        return self.read(size)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def main(argv: Sequence[str] | None = None, run: Callable[[list[str]], int] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 3 or args[2] != "--":
        raise SystemExit(__doc__)
    point, n, rest = args[0], int(args[1]), args[3:]
    install(point, n)
    if run is None:
        from flows.cli import main as cli_main

        run = cli_main
    return run(rest)


if __name__ == "__main__":
    raise SystemExit(main())
