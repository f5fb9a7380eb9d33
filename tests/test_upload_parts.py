"""arm_etl.upload.utf8_parts: compiled and pure-Python packing give the same parts, byte for byte."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arm_etl import compiled
from arm_etl.upload import _utf8_parts, encode_parts

needs_c = pytest.mark.skipif(compiled.ext is None, reason="arm_etl._transform_c is not built here")

_line = st.text(st.characters(exclude_categories=["Cs"]), max_size=30).map(lambda s: s + "\n")


@needs_c
@settings(max_examples=300, deadline=None)
@given(lines=st.lists(_line, max_size=40), part_size=st.integers(1, 200))
def test_compiled_packing_matches_the_reference(lines: list[str], part_size: int) -> None:
    assert compiled.ext.utf8_parts(lines, part_size) == _utf8_parts(lines, part_size)


def test_parts_never_split_a_line_and_hold_at_most_part_size() -> None:
    lines = ["a,b\n", "é𝄞\n", "x" * 12 + "\n", "z\n"]  # 4, 7, 13 (over the part size), 2 UTF-8 bytes
    assert _utf8_parts(lines, 12) == [(b"a,b\n\xc3\xa9\xf0\x9d\x84\x9e\n", 2), (b"x" * 12 + b"\n", 1), (b"z\n", 1)]
    assert [(rows, size) for _, rows, size in encode_parts(lines, 12)] == [(2, 11), (1, 13), (1, 2)]
    assert _utf8_parts([], 12) == []


@needs_c
def test_a_line_no_utf8_can_hold_raises_as_str_encode_does() -> None:
    for pack in (compiled.ext.utf8_parts, _utf8_parts):
        with pytest.raises(UnicodeEncodeError):
            pack(["ok\n", "\ud800\n"], 100)
