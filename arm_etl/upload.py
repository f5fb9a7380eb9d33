"""S3 upload: gzip CSV parts per table, and the segment manifest (:mod:`arm_etl.manifest`) beside them.

Layout (DESIGN.md): ``s3://<data bucket>/<table>/part_<i>/<data-schema>/<n>.csv.gz`` and one
``<table>/part_<i>/manifest.json``. Part numbers are ``chunk * 1000 + k`` (k: rotation within a
chunk), so a re-run of the same chunk overwrites the same keys. Parts are gzip: Redshift never splits
a compressed file, so a quoted newline is never cut in two.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from arm_etl import compiled
from arm_etl.errors import ArmEtlError
from arm_etl.manifest import ChunkRecord, Manifest, Part

PARTS_PER_CHUNK = 1000


class StorageError(ArmEtlError):
    """A bucket or object is missing or unreachable."""


GZIP_LEVEL = 1  # zlib-style: the fastest level (zlib: half the CPU of level 3 for parts ~9% larger)

try:  # ISA-L's deflate: the same gzip format; 12.7 MB of seed CSV in 15 ms vs zlib's 59, 12 % smaller
    from isal import isal_zlib as _deflate_lib

    DEFLATE = "isal"
    _LEVEL_OF = {1: 1, 2: 1, 3: 2}  # zlib-style level → ISA-L's 0–3 (its 1 already beats zlib's 3 on ratio)
except ImportError:  # no wheel for this platform: the standard library's zlib, same files
    _deflate_lib = zlib  # type: ignore[misc,assignment,unused-ignore]
    DEFLATE = "zlib"
    _LEVEL_OF = {}


def encode_parts(
    lines: list[str], part_size: int, level: int = GZIP_LEVEL, raws: list[bytes] | None = None
) -> list[tuple[bytes, int, int]]:
    """Gzip CSV lines into parts of at most ``part_size`` uncompressed bytes each (a line is never split).

    ``raws``: if given, each part's uncompressed bytes are appended to it (a local load then skips gunzip).
    """
    return [_gzip(raw, rows, level, raws) for raw, rows in utf8_parts(lines, part_size)]


def utf8_parts(lines: list[str], part_size: int) -> list[tuple[bytes, int]]:
    """The lines as UTF-8, packed in order into parts of at most ``part_size`` bytes: ``[(bytes, lines)]``.

    Compiled where ``arm_etl._transform_c`` is built (each line encoded straight into its part's buffer);
    :func:`_utf8_parts` is the reference (``tests/test_upload_parts.py`` holds both to the same parts)."""
    if compiled.ENABLED:
        return compiled.ext.utf8_parts(lines, part_size)
    return _utf8_parts(lines, part_size)


def _utf8_parts(lines: list[str], part_size: int) -> list[tuple[bytes, int]]:
    # Lines are encoded one by one, not joined as str first: one wide character would widen the whole join.
    parts: list[tuple[bytes, int]] = []
    buf: list[bytes] = []
    size = 0
    for line in lines:
        data = line.encode("utf-8")
        if buf and size + len(data) > part_size:
            parts.append((b"".join(buf), len(buf)))
            buf, size = [], 0
        buf.append(data)
        size += len(data)
    if buf:
        parts.append((b"".join(buf), len(buf)))
    return parts


def _gzip(raw: bytes, rows: int, level: int, raws: list[bytes] | None) -> tuple[bytes, int, int]:
    if raws is not None:
        raws.append(raw)
    lib_level = _LEVEL_OF.get(level, 3) if DEFLATE == "isal" else level
    comp = _deflate_lib.compressobj(lib_level, _deflate_lib.DEFLATED, 31)  # wbits 31: a gzip member
    return comp.compress(raw) + comp.flush(), rows, len(raw)


class PartStore:
    """Parts and manifest of one segment in the data bucket."""

    def __init__(self, s3: Any, bucket: str, source_table: str, segment: int):
        self.s3 = s3
        self.bucket = bucket
        self.prefix = f"{source_table}/part_{segment}/"
        self.manifest_key = self.prefix + "manifest.json"
        self.checkpoint_prefix = self.prefix + "chunks/"

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def copy_manifest_key(self, table: str) -> str:
        """Where the Redshift COPY manifest of one table's parts goes."""
        return f"{self.prefix}{table}/copy.manifest"

    def part_key(self, table: str, chunk_no: int, k: int) -> str:
        if k >= PARTS_PER_CHUNK:
            raise StorageError(f"chunk {chunk_no} of table {table!r} needs over {PARTS_PER_CHUNK} parts")
        return f"{self.prefix}{table}/{chunk_no * PARTS_PER_CHUNK + k:09d}.csv.gz"

    def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        try:
            return fn(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "NoSuchBucket":
                raise StorageError(
                    f"S3 bucket {self.bucket!r} does not exist ({what}); create it or set ARM_ETL_DATA_BUCKET"
                ) from None
            raise
        except EndpointConnectionError as exc:
            raise StorageError(f"S3 unreachable ({what} in bucket {self.bucket!r}): {exc}", transient=True) from None

    def put(self, key: str, data: bytes, content_type: str = "application/gzip") -> None:
        self._call(f"put {key}", self.s3.put_object, Key=key, Body=data, ContentType=content_type)

    def get(self, key: str) -> bytes:
        body: bytes = self._call(f"get {key}", self.s3.get_object, Key=key)["Body"].read()
        return body

    def upload_chunk(
        self, chunk_no: int, tables: dict[str, list[str]], part_size: int
    ) -> tuple[list[Part], dict[str, bytes]]:
        """Encode and upload one chunk's lines; returns the parts and their *uncompressed* bytes by key.

        (A PostgreSQL load streams those: gunzipping what was just gzipped cost ~6 µs per item.)
        """
        parts: list[Part] = []
        blobs: dict[str, bytes] = {}
        for table in sorted(tables):
            raws: list[bytes] = []
            for k, (data, rows, raw) in enumerate(encode_parts(tables[table], part_size, raws=raws)):
                key = self.part_key(table, chunk_no, k)
                self.put(key, data)
                parts.append(Part(table, key, rows, len(data), raw))
                blobs[key] = raws[k]
        return parts, blobs

    def read_manifest(self) -> Manifest | None:
        """The segment's manifest: ``manifest.json``, plus the chunks committed since as checkpoint objects."""
        try:
            data = self.get(self.manifest_key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code", "") in ("NoSuchKey", "404"):
                return None  # never started
            raise
        manifest = Manifest.from_json(orjson.loads(data))
        if not manifest.complete:
            for key in sorted(self.list_keys(self.checkpoint_prefix)):
                checkpoint = orjson.loads(self.get(key))
                record = ChunkRecord.from_json(checkpoint["chunk"])
                if record.no < len(manifest.chunks):
                    continue  # already in manifest.json
                if record.no != len(manifest.chunks):
                    break  # a gap: nothing after it was committed in order
                manifest.chunks.append(record)
                manifest.position = checkpoint["position"]
        return manifest

    def write_manifest(self, manifest: Manifest) -> None:
        """The whole manifest: at a run's start (no chunks yet) and once its upload is complete."""
        self.put(self.manifest_key, orjson.dumps(manifest.to_json(), option=orjson.OPT_INDENT_2), "application/json")

    def checkpoint_key(self, chunk_no: int) -> str:
        return f"{self.checkpoint_prefix}{chunk_no:09d}.json"

    def write_checkpoint(self, record: ChunkRecord, position: dict[str, Any] | None) -> None:
        """One committed chunk and the scan position after it, as its own small object.

        Why not rewrite ``manifest.json``: it grows with the chunks, so rewriting it per chunk costs
        O(chunks²) bytes over a run; a checkpoint costs the same whatever the run's length, so chunks can
        be small (memory) at no extra S3 cost. :meth:`read_manifest` reads them back in order.
        """
        body = orjson.dumps({"chunk": record.to_json(), "position": position})
        self.put(self.checkpoint_key(record.no), body, "application/json")

    def delete_checkpoints(self) -> int:
        """Once ``manifest.json`` holds every chunk, its checkpoints are redundant."""
        return self._delete(self.list_keys(self.checkpoint_prefix))

    def write_copy_manifests(self, manifest: Manifest) -> dict[str, str]:
        """One Redshift COPY manifest per table (``mandatory`` entries with content lengths)."""
        by_table: dict[str, list[Part]] = {}
        for p in manifest.parts():
            by_table.setdefault(p.table, []).append(p)
        out: dict[str, str] = {}
        for table, parts in sorted(by_table.items()):
            entries = [{"url": self.url(p.key), "mandatory": True, "meta": {"content_length": p.bytes}} for p in parts]
            key = self.copy_manifest_key(table)
            self.put(key, orjson.dumps({"entries": entries}), "application/json")
            out[table] = key
        return out

    def list_keys(self, prefix: str | None = None) -> list[str]:
        """Every key under this segment's prefix (or ``prefix``), through S3's paginator."""

        def keys(**kwargs: Any) -> list[str]:
            pages = self.s3.get_paginator("list_objects_v2").paginate(**kwargs)
            return [o["Key"] for page in pages for o in page.get("Contents", ())]

        found: list[str] = self._call("list", keys, Prefix=prefix or self.prefix)
        return found

    def delete_except(self, keep: Iterable[str]) -> int:
        """Remove this segment's objects that the manifest does not reference (orphans of a dead run)."""
        keep_set = set(keep) | {self.manifest_key}
        return self._delete([k for k in self.list_keys() if k not in keep_set])

    def _delete(self, doomed: list[str]) -> int:
        for i in range(0, len(doomed), 1000):
            self._call(
                "delete orphans",
                self.s3.delete_objects,
                Delete={"Objects": [{"Key": k} for k in doomed[i : i + 1000]], "Quiet": True},
            )
        return len(doomed)


def bucket_region(s3: Any, bucket: str) -> str | None:
    """S3's answer for the bucket's region (``None`` from GetBucketLocation means us-east-1)."""
    try:
        location = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint")
    except (ClientError, BotoCoreError):
        return None  # no permission to ask: COPY then assumes the cluster's region (REGION omitted)
    return str(location) if location else "us-east-1"
