"""The benchmark's input: N seed items rendered once as DynamoDB Scan pages (wire JSON, at most 1 MB each).

``prepare`` writes two files into the cache folder and reuses them while the seed generator is unchanged:

* ``pages-<N>-<seed>-<hash>.bin``: each page's ``Items`` array (``[{...},{...}]``) back to back;
* ``pages-<N>-<seed>-<hash>.json``: per page ``[offset, length, count, last pk, last sk]``, the top-level
  attribute names (first seen order, for the naive script's ``DictWriter``) and the data-schema inference
  over every item (a :class:`arm_etl.inference.Partial`), so the cached data-schema is determined once.

Items are generated and rendered in worker processes (item ``i`` depends only on ``(seed, i)``).
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from arm_etl import seed as seed_module
from arm_etl.inference import Partial, finalize, infer, merge_all
from arm_etl.routing import Router

TABLE = "bench"
PAGE_BYTES = 1 << 20  # DynamoDB returns at most 1 MB of items per Scan page
BLOCK = 4000  # items per worker task
FORMAT = 2


def _default(o: Any) -> Any:
    if isinstance(o, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(o)).decode("ascii")  # binary travels as base64 text on the wire
    raise TypeError(type(o).__name__)


def render(item: dict[str, Any]) -> bytes:
    """One item as DynamoDB's wire JSON (what a Scan response holds)."""
    return orjson.dumps(item, default=_default)


def _block(args: tuple[int, int, int]) -> tuple[int, list[bytes], dict[str, Any], list[str]]:
    start, stop, seed = args
    # generate_items(n, seed) is _make_item(seed, i) for i in range(n); a block starts at `start`.
    rendered = [render(seed_module._make_item(seed, i)) for i in range(start, stop)]
    decoded = orjson.loads(b"[" + b",".join(rendered) + b"]")
    partial = infer(decoded, Router(TABLE, []))
    attrs: dict[str, None] = {}
    for item in decoded:
        for k in item:
            attrs.setdefault(k, None)
    return start, rendered, partial.to_json(), list(attrs)


def _generator_hash() -> str:
    src = Path(seed_module.__file__).read_bytes()
    return hashlib.sha256(src + str(FORMAT).encode()).hexdigest()[:10]


@dataclass
class PageSet:
    bin_path: Path
    index: list[list[Any]]  # [offset, length, count, last pk, last sk]
    items: int
    seed: int
    attributes: list[str]
    partial: Partial
    generate_s: float

    @property
    def pages(self) -> int:
        return len(self.index)

    @property
    def nbytes(self) -> int:
        return sum(p[1] for p in self.index)

    def schema(self, table: str, name_limit: int = 63) -> Any:
        """The data-schema of ``table`` (determined over every item, as the determination flow would)."""
        (root,) = self.partial.roots.values()  # one route: the source table's own
        route = Router(table, []).default
        partial = Partial({route: root}, {route: self.items})
        return finalize(partial, table, list(seed_module.KEY_SCHEMA), name_limit=name_limit)

    def page_bytes(self) -> Iterator[bytes]:
        with open(self.bin_path, "rb") as f:
            for off, length, *_ in self.index:
                f.seek(off)
                yield f.read(length)


def prepare(n: int, seed: int, cache_dir: Path, workers: int | None = None, log: Any = print) -> PageSet:
    cache_dir.mkdir(parents=True, exist_ok=True)
    stem = cache_dir / f"pages-{n}-{seed}-{_generator_hash()}"
    bin_path, idx_path = stem.with_suffix(".bin"), stem.with_suffix(".json")
    if bin_path.exists() and idx_path.exists():
        meta = orjson.loads(idx_path.read_bytes())
        log(f"pages: reusing {bin_path} ({len(meta['index'])} pages)")
        return PageSet(
            bin_path,
            meta["index"],
            meta["items"],
            meta["seed"],
            meta["attributes"],
            Partial.from_json(meta["partial"]),
            meta["generate_s"],
        )
    t0 = time.perf_counter()
    workers = workers or os.cpu_count() or 1
    tasks = [(s, min(n, s + BLOCK), seed) for s in range(0, n, BLOCK)]
    index: list[list[Any]] = []
    partials: list[Partial] = []
    attrs: dict[str, None] = {}
    tmp = bin_path.with_suffix(".bin.tmp")
    with open(tmp, "wb") as out, ProcessPoolExecutor(max_workers=workers) as pool:
        page: list[bytes] = []
        size = 1  # "["
        offset = 0

        def flush() -> None:
            nonlocal page, size, offset
            body = b"[" + b",".join(page) + b"]"
            out.write(body)
            key = orjson.loads(page[-1])
            index.append([offset, len(body), len(page), key["pk"]["S"], key["sk"]["S"]])
            offset += len(body)
            page, size = [], 1

        for _start, rendered, pj, names in pool.map(_block, tasks):  # in order
            partials.append(Partial.from_json(pj))
            for k in names:
                attrs.setdefault(k, None)
            for r in rendered:
                if page and size + len(r) + 1 > PAGE_BYTES:
                    flush()
                page.append(r)
                size += len(r) + 1
        if page:
            flush()
    os.replace(tmp, bin_path)
    partial = merge_all(partials)
    generate_s = time.perf_counter() - t0
    meta = {
        "format": FORMAT,
        "items": n,
        "seed": seed,
        "index": index,
        "attributes": list(attrs),
        "partial": partial.to_json(),
        "generate_s": generate_s,
    }
    idx_path.write_bytes(orjson.dumps(meta))
    ps = PageSet(bin_path, index, n, seed, list(attrs), partial, generate_s)
    log(f"pages: generated {n} items in {generate_s:.1f}s → {ps.pages} pages, {ps.nbytes / 1e6:.0f} MB ({bin_path})")
    return ps
