"""Tests for arm_etl.names: folding, truncation with a hash, and collision-free, order-independent naming."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Hashable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arm_etl.names import (
    POSTGRESQL_MAX_BYTES,
    REDSHIFT_MAX_BYTES,
    assign_unique,
    fit,
    fold,
    path_name,
)

IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")
METADATA = ("_segment", "_extracted_at")


def _h8(original: str) -> str:
    return hashlib.sha256(original.encode("utf-8")).hexdigest()[:8]


# --- fold ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "folded"),
    [
        ("price", "price"),
        ("Price", "price"),
        ("PRICE", "price"),
        ("ABC_def_123", "abc_def_123"),
        ("my attr", "my_attr"),
        ("a.b", "a_b"),
        ("a--b", "a__b"),  # no collapsing
        ("a  -  b", "a_____b"),
        ("__x__", "__x__"),
        ("9lives", "_9lives"),  # leading digit gets a prefix
        ("0", "_0"),
        ("_9", "_9"),
        ("a9", "a9"),
        ("ünïcødé", "_n_c_d_"),  # non-ASCII → "_", one per code point
        ("名前", "__"),
        ("😀", "_"),
        ("Kelvin\u212a", "kelvin_"),  # KELVIN SIGN lower-cases to "k" in Unicode, but is not ASCII
        ("İd", "_d"),
        ('say "hi"', "say__hi_"),
        ("it's", "it_s"),
        ("back\\slash", "back_slash"),
        ("tab\there", "tab_here"),
        ("line\nbreak", "line_break"),
        ("select", "select"),  # reserved words stay (every identifier is quoted in SQL)
        ("₁₂", "__"),  # non-ASCII digits are not digits here
        ("١٢", "__"),
    ],
)
def test_fold(name: str, folded: str) -> None:
    assert fold(name) == folded


def test_fold_keeps_one_character_per_code_point() -> None:
    for name in ["abc", "a b c", "ÄÖÜ", "😀😀", "x.y.z"]:
        assert len(fold(name)) == len(name)


# --- fit -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [POSTGRESQL_MAX_BYTES, REDSHIFT_MAX_BYTES])
def test_fit_keeps_names_up_to_the_limit(limit: int) -> None:
    name = "a" * limit
    assert fit(name, name, limit) == name
    assert fit("short", "Short", limit) == "short"


def test_fit_limits() -> None:
    assert POSTGRESQL_MAX_BYTES == 63
    assert REDSHIFT_MAX_BYTES == 127


@pytest.mark.parametrize("limit", [POSTGRESQL_MAX_BYTES, REDSHIFT_MAX_BYTES])
def test_fit_cuts_and_appends_hash_of_original(limit: int) -> None:
    original = "A" * (limit + 1)
    folded = fold(original)
    out = fit(folded, original, limit)
    assert out == "a" * (limit - 9) + "_" + _h8(original)
    assert len(out.encode()) == limit


def test_fit_hash_is_of_the_original_not_the_folded_name() -> None:
    original = "Ä" * 100
    out = fit(fold(original), original, 63)
    assert out == "_" * 55 + _h8(original)
    assert _h8(original) != _h8(fold(original))
    # Two originals folding to the same long name keep apart by their hashes.
    other = "Ö" * 100
    assert fit(fold(other), other, 63) == "_" * 55 + _h8(other)
    assert fit(fold(other), other, 63) != out


def test_fit_exact_values() -> None:
    original = "Customer Lifetime Value Including Refunds And Chargebacks Per Region"
    folded = fold(original)
    assert folded == "customer_lifetime_value_including_refunds_and_chargebacks_per_region"
    assert len(folded) == 68
    assert fit(folded, original, 63) == "customer_lifetime_value_including_refunds_and_chargeba_" + _h8(original)
    assert fit(folded, original, 127) == folded


# --- assign_unique -------------------------------------------------------------------------------


def _cands(*originals: str) -> list[tuple[Hashable, str, str]]:
    return [(o, o, fold(o)) for o in originals]


def test_assign_unique_contract_example() -> None:
    assert assign_unique(_cands("Price", "price"), 127) == {"Price": "price", "price": "price_2"}
    assert assign_unique(_cands("price", "Price"), 127) == {"Price": "price", "price": "price_2"}


def test_assign_unique_code_point_order() -> None:
    expected = {"PRICE": "price", "Price": "price_2", "price": "price_3", "pr ice": "pr_ice", "pr.ice": "pr_ice_2"}
    assert assign_unique(_cands("price", "pr.ice", "Price", "pr ice", "PRICE"), 63) == expected


def test_assign_unique_reserved_names_are_taken_first() -> None:
    out = assign_unique(_cands("_segment", "_Extracted_At", "x"), 63, reserved=METADATA)
    assert out == {"_segment": "_segment_2", "_Extracted_At": "_extracted_at_2", "x": "x"}
    assert assign_unique(_cands("Price", "price"), 63, reserved=["price"]) == {"Price": "price_2", "price": "price_3"}


def test_assign_unique_skips_suffixes_already_taken() -> None:
    out = assign_unique(_cands("a", "A", "a_2"), 63, reserved=["a_3"])
    # "A" < "a" < "a_2" in code-point order.
    assert out == {"A": "a", "a": "a_2", "a_2": "a_2_2"}


def test_assign_unique_keeps_suffixed_names_within_the_limit() -> None:
    lower, upper = "x" * 63, "X" * 63
    out = assign_unique(_cands(lower, upper), 63)
    assert out == {upper: "x" * 63, lower: "x" * 61 + "_2"}
    long_a, long_b = "Y" * 80, "y" * 80
    out = assign_unique(_cands(long_a, long_b), 63)
    assert out[long_a] == "y" * 54 + "_" + _h8(long_a)
    assert out[long_b] == "y" * 54 + "_" + _h8(long_b)


def test_assign_unique_is_independent_of_input_order() -> None:
    originals = ["b", "B", "a b", "a.b", "a-b", "Ä", "Ö", "9", "_9", "x" * 200, "X" * 200]
    first = assign_unique(_cands(*originals), 63)
    assert assign_unique(_cands(*reversed(originals)), 63) == first
    assert assign_unique(_cands(*sorted(originals)), 63) == first
    assert len(set(first.values())) == len(originals)


def test_path_name() -> None:
    assert path_name(("m", "x", "y")) == ("m.x.y", "m__x__y")
    assert path_name(("Info", "Rating")) == ("Info.Rating", "info__rating")
    assert path_name((None,)) == ("value", "value")
    assert path_name(()) == ("value", "value")
    assert path_name(("items", None, "9th")) == ("items.value.9th", "items__value___9th")
    assert path_name(("a b",)) == ("a b", "a_b")


# --- properties ----------------------------------------------------------------------------------

_SPECIAL = st.sampled_from(
    [
        "select",
        "order",
        "user",
        "table",
        '"',
        '""',
        "'",
        "a\"b'c",
        "_segment",
        "_extracted_at",
        "_idx",
        "value",
        "Price",
        "price",
        "PRICE",
        "9lives",
        "",
        "a.b",
        "😀" * 40,
        "Z" * 300,
    ]
)
_NAME = st.one_of(_SPECIAL, st.text(max_size=20), st.text(min_size=60, max_size=300))
_PATH = st.lists(st.one_of(_NAME, st.none()), min_size=1, max_size=3).map(tuple)


@settings(max_examples=200, deadline=None)
@given(paths=st.lists(_PATH, max_size=25, unique=True), limit=st.sampled_from([63, 127]))
def test_assign_unique_gives_valid_distinct_names(paths: list[tuple[str | None, ...]], limit: int) -> None:
    candidates: list[tuple[Hashable, str, str]] = [(p, *path_name(p)) for p in paths]
    out = assign_unique(candidates, limit, reserved=METADATA)
    assert set(out) == set(paths)
    names = list(out.values())
    assert len(set(names)) == len(names)
    assert not set(names) & set(METADATA)
    for name in names:
        assert IDENT.match(name), name
        assert len(name.encode("utf-8")) <= limit


@settings(max_examples=100, deadline=None)
@given(data=st.data(), names=st.lists(_NAME, max_size=20, unique=True), limit=st.sampled_from([63, 127]))
def test_assign_unique_order_independent_property(data: st.DataObject, names: list[str], limit: int) -> None:
    candidates: list[tuple[Hashable, str, str]] = [(n, *path_name((n,))) for n in names]
    shuffled = data.draw(st.permutations(candidates))
    assert assign_unique(shuffled, limit) == assign_unique(candidates, limit)
