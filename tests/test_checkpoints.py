"""The segment's checkpoint: ``manifest.json`` written at the start and at completion, one small object per
committed chunk between (``arm_etl.upload.PartStore``), read back as one manifest, in order."""

from __future__ import annotations

from typing import Any

import pytest

from arm_etl.manifest import ChunkRecord, Manifest, Part
from arm_etl.upload import PartStore


@pytest.fixture()
def store(stack: Any, s3: Any, table_name: str) -> PartStore:
    """On the session's moto server (an in-process ``mock_aws`` would reset the state other tests share)."""
    from tests.exactness import ensure_buckets

    ensure_buckets(stack)
    return PartStore(s3, stack.env()["ARM_ETL_DATA_BUCKET"], table_name, 3)


def record(no: int) -> ChunkRecord:
    return ChunkRecord(no, 10, 11, [Part("t", f"x/part_3/t/{no:09d}.csv.gz", 10, 100, 400)], {"nul": no}, {})


def header() -> Manifest:
    return Manifest("x", 3, 4, "20261203", "v1", "2026-12-03T03:00:00Z")


def position(no: int) -> dict[str, Any]:
    return {"pk": {"S": f"k{no}"}}


def test_checkpoints_read_back_as_one_manifest_in_order(store: PartStore) -> None:
    store.write_manifest(header())
    for no in range(3):
        store.write_checkpoint(record(no), position(no))
    m = store.read_manifest()
    assert m is not None and not m.complete
    assert m.chunks == [record(0), record(1), record(2)]
    assert m.position == position(2)
    assert store.list_keys(store.checkpoint_prefix) == [store.checkpoint_key(n) for n in range(3)]
    assert store.checkpoint_key(2) == f"{store.prefix}chunks/000000002.json" and store.prefix.endswith("/part_3/")


def test_a_gap_ends_the_committed_chunks(store: PartStore) -> None:
    store.write_manifest(header())
    store.write_checkpoint(record(0), position(0))
    store.write_checkpoint(record(2), position(2))  # chunk 1 never committed: chunk 2 cannot count
    m = store.read_manifest()
    assert m is not None and m.chunks == [record(0)] and m.position == position(0)


def test_chunks_already_in_manifest_json_are_not_counted_twice(store: PartStore) -> None:
    """A manifest written whole with chunks (as before checkpoints existed) resumes with the ones after."""
    m = header()
    m.chunks = [record(0), record(1)]
    m.position = position(1)
    store.write_manifest(m)
    store.write_checkpoint(record(1), position(1))
    store.write_checkpoint(record(2), position(2))
    got = store.read_manifest()
    assert got is not None and got.chunks == [record(0), record(1), record(2)] and got.position == position(2)


def test_a_complete_manifest_is_read_alone_and_its_checkpoints_removed(store: PartStore) -> None:
    store.write_manifest(header())
    for no in range(2):
        store.write_checkpoint(record(no), position(no))
    m = header()
    m.chunks, m.complete = [record(0), record(1)], True
    store.write_manifest(m)
    assert store.delete_checkpoints() == 2
    assert store.list_keys() == [store.manifest_key]
    got = store.read_manifest()
    assert got is not None and got.complete and got.chunks == m.chunks


def test_no_manifest_is_none(store: PartStore) -> None:
    store.write_checkpoint(record(0), position(0))  # a checkpoint without a header is not a run
    assert store.read_manifest() is None
