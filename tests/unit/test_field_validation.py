"""The field registry says no: unknown kinds, bad ids, oversized documents and properties.

The limits are the parser's, so ``agridrone`` commands and the API refuse the same files.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st

from fields.registry import (
    ID_PATTERN,
    MAX_EXTRA_PROPERTIES_BYTES,
    MAX_FEATURES,
    MAX_PROPERTY_DEPTH,
    MAX_TEXT_CHARS,
    MAX_VERTICES,
    MAX_VERTICES_PER_FEATURE,
    FieldValidationError,
    is_valid_id,
    load_fields,
    parse_fields,
)
from fields.synthetic import collection, feature, rectangle
from simulators.geo import DEFAULT_FIELDS_PATH


def paddy(fid: Any = "f-1", **props: Any) -> dict[str, Any]:
    return feature("x", rectangle(50, 40), **props) | {
        "properties": {"id": fid, "owner": "nd-1", "coop": "htx-a", **props}
    }


def problems(doc: Any) -> list[str]:
    with pytest.raises(FieldValidationError) as info:
        parse_fields(doc)
    return list(info.value.problems)


@pytest.mark.parametrize("kind", ["no-spray", "nospray", "exclusion", "NO_SPRAY", "", 1, ["x"]])
def test_an_unknown_kind_is_refused_listing_the_kinds(kind: Any) -> None:
    (problem,) = problems(collection(paddy(kind=kind)))
    assert problem.startswith(f"feature 0 (f-1): unknown kind {kind!r}; the kinds are")
    assert "'field', 'no_spray'" in problem


def test_a_missing_or_null_kind_is_a_field_and_no_spray_a_zone() -> None:
    doc = collection(
        paddy("a"), paddy("b", kind=None), paddy("c", kind="field"), paddy("d", kind="no_spray")
    )
    registry = parse_fields(doc)
    assert [f.id for f in registry.fields] == ["a", "b", "c"]
    assert [z.id for z in registry.no_spray] == ["d"]


@pytest.mark.parametrize(
    "fid", ["a/b", "..", "../etc", "a b", "a\x00b", "a.b", "x" * 65, "é", "a\nb", " a"]
)
def test_an_id_outside_the_pattern_is_refused_saying_what_ids_may_hold(fid: str) -> None:
    (problem,) = problems(collection(paddy(fid)))
    assert "is not a valid id: use 1 to 64 letters, digits, '_' or '-'" in problem


def test_integer_ids_are_kept_as_their_decimal_text() -> None:
    assert parse_fields(collection(paddy(42))).fields[0].id == "42"


@given(st.text(max_size=70))
def test_the_id_rule_is_the_documented_pattern(text: str) -> None:
    assert is_valid_id(text) == (re.fullmatch(ID_PATTERN, text) is not None)
    if is_valid_id(text):
        assert "/" not in text
        assert ".." not in text
        assert "\x00" not in text
        assert 1 <= len(text) <= 64


@pytest.mark.parametrize("key", ["owner", "coop"])
def test_owner_and_coop_must_be_ids(key: str) -> None:
    (problem,) = problems(collection(paddy(**{key: "htx a/b"})))
    assert problem.startswith(f"feature 0 (f-1): property {key!r} 'htx a/b' is not a valid id")


@pytest.mark.parametrize("key", ["name", "crop"])
def test_long_names_are_refused_naming_the_limit(key: str) -> None:
    assert parse_fields(collection(paddy(**{key: "ư" * MAX_TEXT_CHARS})))
    (problem,) = problems(collection(paddy(**{key: "ư" * (MAX_TEXT_CHARS + 1)})))
    assert problem == (
        f"feature 0 (f-1): property {key!r} has {MAX_TEXT_CHARS + 1} characters;"
        f" at most {MAX_TEXT_CHARS}"
    )


def test_unknown_extra_properties_are_kept() -> None:
    (f,) = parse_fields(collection(paddy(irrigation="canal", note={"by": "ops"}))).fields
    assert f.properties == {"irrigation": "canal", "note": {"by": "ops"}}


def test_deeply_nested_extra_properties_are_refused_not_crashed_on() -> None:
    deep: Any = 0
    for _ in range(5000):
        deep = [deep]
    (problem,) = problems(collection(paddy(junk=deep)))
    assert problem == (
        f"feature 0 (f-1): its other properties nest deeper than {MAX_PROPERTY_DEPTH} levels"
    )


def test_extra_properties_at_the_depth_limit_pass() -> None:
    nested: Any = 0
    for _ in range(MAX_PROPERTY_DEPTH - 1):
        nested = [nested]
    assert parse_fields(collection(paddy(junk=nested))).fields


def test_huge_extra_properties_are_refused_naming_the_limit() -> None:
    (problem,) = problems(collection(paddy(junk="x" * MAX_EXTRA_PROPERTIES_BYTES)))
    assert f"at most {MAX_EXTRA_PROPERTIES_BYTES}" in problem


def test_too_many_features_are_refused_before_any_is_parsed() -> None:
    doc = collection(*[{"type": "Feature"}] * (MAX_FEATURES + 1))
    expected = (
        f"{MAX_FEATURES + 1} features; at most {MAX_FEATURES} per document:"
        " split it into several imports"
    )
    assert problems(doc) == [expected]


def _many_vertices(count: int) -> Any:
    """A polygon in metres with ``count`` positions (closing one included)."""
    return shapely.Point(0, 0).buffer(40, quad_segs=(count - 1) // 4)


def test_too_many_positions_in_one_feature_are_refused_naming_the_limit() -> None:
    big = feature("big", _many_vertices(MAX_VERTICES_PER_FEATURE + 4))
    (problem,) = problems(collection(big))
    assert problem.startswith("feature 0 (big): ")
    assert f"positions; at most {MAX_VERTICES_PER_FEATURE} per feature" in problem


def test_too_many_positions_in_a_document_are_refused_naming_the_limit() -> None:
    count = MAX_VERTICES_PER_FEATURE - 3
    shape = _many_vertices(count)
    n = MAX_VERTICES // len(shape.exterior.coords) + 1
    doc = collection(*[feature(f"f{i}", shape) for i in range(n)])
    (problem,) = problems(doc)
    assert f"at most {MAX_VERTICES} per document" in problem


def test_a_file_nested_too_deeply_for_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "deep.geojson"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(FieldValidationError) as info:
        load_fields(path)
    assert "nested too deeply" in info.value.problems[0]


def test_the_packaged_demo_fields_pass_every_rule() -> None:
    doc = json.loads(Path(DEFAULT_FIELDS_PATH).read_text(encoding="utf-8"))
    registry = parse_fields(doc)
    assert len(registry.fields) + len(registry.no_spray) == len(doc["features"])
