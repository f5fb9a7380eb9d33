"""A tiny DynamoDB stand-in on 127.0.0.1 that replays pre-rendered Scan pages (``python -m bench.replay``).

It answers ``DynamoDB_20120810.Scan`` (by ``Segment``/``TotalSegments`` and ``ExclusiveStartKey``) and
``DescribeTable`` with the page bytes rendered once by :mod:`bench.data`, so a client's whole path
(signing, HTTP, botocore's parser or arm-etl's raw hook) is measured while DynamoDB itself costs nothing.
No signature is checked.

Segments: page ``v`` of the (virtual) page sequence belongs to segment ``v % TotalSegments``. A table
named ``<name>.x<k>`` replays the pages ``k`` times (laps) for memory-growth runs at ``k·N`` items; a
lap's ``LastEvaluatedKey`` carries ``#~lap=<k>`` after the sort key, so every position is distinct.
A table named ``<name>.p<k>`` holds only the first ``k`` pages (for slow rows on a prefix of the data).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

LAP = "#~lap="
_SUFFIX = re.compile(r"^(.*)\.([xp])(\d+)$")


class Pages:
    def __init__(self, bin_path: str, index: list[list[Any]], items: int):
        with open(bin_path, "rb") as f:
            self.data = memoryview(f.read())
        self.index = index
        self.items = items
        self.position = {(p[3], p[4]): i for i, p in enumerate(index)}  # last key of page i → i

    def laps(self, table: str) -> int:
        m = _SUFFIX.match(table)
        return int(m.group(3)) if m and m.group(2) == "x" else 1

    def npages(self, table: str) -> int:
        """Pages of the (virtual) sequence: all pages times the laps, or a prefix of ``k`` pages."""
        m = _SUFFIX.match(table)
        if m and m.group(2) == "p":
            return min(int(m.group(3)), len(self.index))
        return len(self.index) * self.laps(table)

    def count(self, table: str) -> int:
        m = _SUFFIX.match(table)
        if m and m.group(2) == "p":
            return sum(p[2] for p in self.index[: self.npages(table)])
        return self.items * self.laps(table)

    def start_of(self, start_key: dict[str, Any] | None) -> int:
        """Virtual index of the page after ``start_key`` (0 without one)."""
        if not start_key:
            return 0
        pk, sk = start_key["pk"]["S"], start_key["sk"]["S"]
        lap = 0
        head, sep, tail = sk.rpartition(LAP)
        if sep:
            sk, lap = head, int(tail)
        return lap * len(self.index) + self.position[(pk, sk)] + 1

    def scan(self, req: dict[str, Any]) -> list[bytes | memoryview]:
        total = int(req.get("TotalSegments") or 1)
        segment = int(req.get("Segment") or 0)
        npages = self.npages(req["TableName"])
        v = self.start_of(req.get("ExclusiveStartKey"))
        v += (segment - v) % total  # first page of this segment at or after v
        if v >= npages:
            return [b'{"Count":0,"ScannedCount":0,"Items":[]}']
        lap, p = divmod(v, len(self.index))
        off, length, count, pk, sk = self.index[p]
        head = b'{"Count":%d,"ScannedCount":%d,"Items":' % (count, count)
        if v + total < npages:
            key = {"pk": {"S": pk}, "sk": {"S": sk + (f"{LAP}{lap}" if lap else "")}}
            tail = b',"LastEvaluatedKey":' + orjson.dumps(key) + b"}"
        else:
            tail = b"}"
        return [head, self.data[off : off + length], tail]

    def describe(self, req: dict[str, Any]) -> list[bytes | memoryview]:
        name = req["TableName"]
        table = {
            "TableName": name,
            "TableStatus": "ACTIVE",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            "ItemCount": self.count(name),
            "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
        }
        return [orjson.dumps({"Table": table})]


def make_server(pages: Pages, port: int = 0) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            target = self.headers.get("X-Amz-Target", "")
            try:
                req = orjson.loads(body or b"{}")
                if target.endswith(".Scan"):
                    parts = pages.scan(req)
                elif target.endswith(".DescribeTable"):
                    parts = pages.describe(req)
                else:
                    return self._error(400, "UnknownOperationException", f"replay does not answer {target}")
            except KeyError as exc:
                return self._error(400, "ValidationException", f"unknown position {exc}")
            self.send_response(200)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(sum(len(p) for p in parts)))
            self.send_header("x-amzn-RequestId", uuid.uuid4().hex)
            self.end_headers()
            for p in parts:
                self.wfile.write(p)

        def _error(self, status: int, code: str, message: str) -> None:
            data = orjson.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message})
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--index", required=True, help="the pages' .json index written by bench.data")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args(argv)
    with open(args.index, "rb") as f:
        meta = orjson.loads(f.read())
    pages = Pages(args.index[: -len(".json")] + ".bin", meta["index"], meta["items"])
    server = make_server(pages, args.port)
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    with contextlib.suppress(KeyboardInterrupt):
        sys.stdin.read()  # runs until the parent closes our stdin (or dies)
    server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
