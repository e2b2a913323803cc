"""The registry refuses what would break later: outlines across the antimeridian or wider
than a field can be, and property values the metadata database cannot store as JSON."""

from __future__ import annotations

import copy
from typing import Any, Final

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fields.registry import (
    MAX_EXTENT_DEG,
    MAX_PROPERTY_INT,
    MIN_PROPERTY_INT,
    FieldValidationError,
    geometry_problem,
    parse_fields,
)
from fields.stored import to_stored
from fields.synthetic import feature, rectangle

#: The reviewer's field: a 130 m strip whose ring jumps from 179.9999° to -179.9999°.
STRIP: Final = [
    [179.9999, 21.0714698],
    [-179.9999, 21.0714698],
    [-179.9999, 21.0726416],
    [179.9999, 21.0726416],
    [179.9999, 21.0714698],
]


def ring_feature(ring: list[list[float]], **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": {"id": "strip", "coop": "htx-yen-tho", **props},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def paddy(**props: Any) -> dict[str, Any]:
    doc = feature("f-1", rectangle(50, 40), coop="htx-a", owner="nd-1")
    doc["properties"].update(props)
    return doc


def problems(doc: Any) -> list[str]:
    with pytest.raises(FieldValidationError) as info:
        parse_fields(doc)
    return list(info.value.problems)


# --- outlines --------------------------------------------------------------------------


def test_a_ring_across_the_antimeridian_is_refused_naming_where_it_crosses() -> None:
    (message,) = problems(ring_feature(STRIP))
    assert message.startswith("feature 0 (strip): crosses the antimeridian")
    assert "[179.9999, 21.0714698] and [-179.9999, 21.0714698]" in message
    assert "split in two at 180°" in message


def test_a_no_spray_zone_across_the_antimeridian_is_refused_too() -> None:
    (message,) = problems(ring_feature(STRIP, kind="no_spray"))
    assert "crosses the antimeridian" in message


def test_a_ring_whose_closing_edge_crosses_the_antimeridian_is_refused_when_repaired() -> None:
    open_ring = STRIP[:-1]
    with pytest.raises(FieldValidationError) as info:
        parse_fields(ring_feature(open_ring), repair=True)
    assert "crosses the antimeridian" in info.value.problems[0]


def test_a_field_near_but_not_across_the_antimeridian_is_accepted() -> None:
    ring = [[179.998, -16.5], [179.999, -16.5], [179.999, -16.499], [179.998, -16.499]]
    registry = parse_fields(ring_feature([*ring, ring[0]]))
    # 0.001° by 0.001° at 16.5° S: 106.7 m by 110.6 m.
    assert registry.fields[0].area_ha == pytest.approx(1.18, rel=0.01)


def test_an_outline_wider_than_the_extent_limit_is_refused_naming_extent_and_limit() -> None:
    # 11 km by 400 m: 440 ha, under the area limit, but 0.106° wide.
    (message,) = problems(feature("long", rectangle(11_000, 400)))
    assert "its bounding box spans 0.1059° of longitude by 0.0036° of latitude" in message
    assert f"at most {MAX_EXTENT_DEG:g}°" in message


def test_an_outline_taller_than_the_extent_limit_is_refused() -> None:
    (message,) = problems(feature("tall", rectangle(300, 11_500)))
    assert "of latitude" in message
    assert "at most 0.1°" in message


def test_an_outline_just_inside_the_extent_limit_is_accepted() -> None:
    registry = parse_fields(feature("long", rectangle(10_000, 400)))
    assert registry.fields[0].area_ha == pytest.approx(400, rel=1e-6)


def test_the_area_limit_is_still_named_first_for_a_huge_outline() -> None:
    (message,) = problems(feature("huge", rectangle(30_000, 30_000)))
    assert "over the 500 ha maximum" in message


def test_geometry_problem_names_what_parse_fields_would_refuse_in_a_built_field() -> None:
    good = parse_fields(paddy()).fields[0]
    assert geometry_problem(good) == ""
    wide = parse_fields(feature("w", rectangle(10_000, 400))).fields[0]
    assert geometry_problem(wide) == ""


# --- property values -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("props", "where"),
    [
        ({"extra": 2**70}, "property 'extra' is an integer of 71 bits"),
        ({"extra": 2**64}, "property 'extra' is an integer of 65 bits"),
        ({"extra": -(2**63) - 1}, "property 'extra' is an integer of 64 bits"),
        ({"extra": {"a": [1, 2**80]}}, "property 'extra'.'a'[1] is an integer of 81 bits"),
    ],
)
def test_an_integer_beyond_64_bits_is_refused_naming_the_property(
    props: dict[str, Any], where: str
) -> None:
    (message,) = problems(paddy(**props))
    assert message.startswith(f"feature 0 (f-1): {where}")
    assert "send larger numbers as text" in message


@pytest.mark.parametrize(
    ("props", "where"),
    [
        ({"name": "\ud800"}, "property 'name'"),
        ({"crop": "l\udc00a"}, "property 'crop'"),
        ({"extra": ["ok", "\ud800"]}, "property 'extra'[1]"),
        ({"extra": {"k\ud800": 1}}, "property 'extra' has a key that"),
        ({"\ud800": 1}, "a property name"),
    ],
)
def test_text_that_is_not_unicode_is_refused_naming_the_property(
    props: dict[str, Any], where: str
) -> None:
    (message,) = problems(paddy(**props))
    assert message.startswith(f"feature 0 (f-1): {where}")
    assert "not valid Unicode" in message
    message.encode("utf-8")  # the message itself can be sent


def test_an_id_with_a_lone_surrogate_is_refused_with_a_message_that_can_be_sent() -> None:
    messages = problems(paddy(id="a\ud800"))
    assert messages
    for message in messages:
        message.encode("utf-8")


@given(st.integers(min_value=MIN_PROPERTY_INT, max_value=MAX_PROPERTY_INT))
def test_every_64_bit_integer_is_accepted_and_stored(value: int) -> None:
    registry = parse_fields(paddy(extra=value))
    (row,) = to_stored(registry.fields)
    assert orjson.loads(row.feature)["properties"]["extra"] == value


@given(
    st.one_of(
        st.integers(min_value=MAX_PROPERTY_INT + 1), st.integers(max_value=MIN_PROPERTY_INT - 1)
    )
)
def test_every_wider_integer_is_refused(value: int) -> None:
    assert "integers must fit in 64 bits" in problems(paddy(extra=value))[0]


@given(st.text(max_size=20))
def test_any_text_is_accepted_exactly_when_it_can_be_stored(text: str) -> None:
    doc = paddy(note=text)
    try:
        stored = orjson.dumps(text)
    except orjson.JSONEncodeError:
        stored = None
    if stored is None:
        assert "not valid Unicode" in problems(copy.deepcopy(doc))[0]
    else:
        (row,) = to_stored(parse_fields(doc).fields)
        assert orjson.loads(row.feature)["properties"]["note"] == text
