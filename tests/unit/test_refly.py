"""The re-fly list (fields/refly.py): which missed pieces are listed, their flight lines and
the order a pilot flies them, on known shapes in a field's metric plane."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely import affinity
from shapely.geometry import box, shape

from fields.projection import LocalPlane
from fields.refly import (
    MAX_PIECES,
    FieldMissed,
    ReflyPiece,
    TooManyPiecesError,
    feature_collection,
    flight_line,
    heading,
    refly_pieces,
)

PLANE = LocalPlane.around(106.52, 21.11)  # Đông Triều
#: A 100 x 60 m field's missed area: a strip 100 x 5 m (500 m²) from a skipped pass, one
#: 60 x 5 m (300 m²) from a pass cut short, and a 4 x 5 m corner (20 m²) under 25 m².
STRIP_A = box(0, 10, 100, 15)
STRIP_B = box(0, 25, 60, 30)
CORNER = box(90, 40, 94, 45)
MISSED = shapely.union_all([STRIP_A, STRIP_B, CORNER])


def plane_xy(p: tuple[float, float], plane: LocalPlane = PLANE) -> tuple[float, float]:
    """A (lon, lat) point in the plane's metres."""
    x, y = plane.forward(p[0], p[1])
    return float(x), float(y)


def lonlat(x: float, y: float, plane: LocalPlane = PLANE) -> tuple[float, float]:
    lon, lat = plane.inverse(x, y)
    return float(lon), float(lat)


def near(p: tuple[float, float], xy: tuple[float, float], metres: float = 0.01) -> bool:
    return math.dist(plane_xy(p), xy) <= metres


def pieces(missed: object = MISSED, min_m2: float = 25.0, **kw: object) -> list[ReflyPiece]:
    return refly_pieces([FieldMissed("f", PLANE, missed, "Ruộng thử")], min_m2, **kw)  # type: ignore[arg-type]


# --- which pieces ---------------------------------------------------------------------------


def test_pieces_of_at_least_the_threshold_are_listed_with_their_exact_area() -> None:
    listed = pieces()
    assert sorted(p.area_m2 for p in listed) == pytest.approx([300.0, 500.0])
    assert {p.field_id for p in listed} == {"f"}
    assert {p.field_name for p in listed} == {"Ruộng thử"}


def test_a_lower_threshold_lists_the_small_corner_too() -> None:
    assert sorted(p.area_m2 for p in pieces(min_m2=20.0)) == pytest.approx([20.0, 300.0, 500.0])


def test_a_higher_threshold_leaves_only_the_big_strip() -> None:
    assert [p.area_m2 for p in pieces(min_m2=400.0)] == pytest.approx([500.0])


def test_nothing_missed_lists_nothing() -> None:
    assert pieces(shapely.Polygon()) == []


def test_a_threshold_of_zero_or_less_is_refused() -> None:
    with pytest.raises(ValueError, match="min_m2"):
        pieces(min_m2=0.0)


def test_more_pieces_than_a_list_holds_is_refused_naming_the_limit() -> None:
    many = shapely.MultiPolygon([box(3 * i, 0, 3 * i + 1, 1) for i in range(MAX_PIECES + 1)])
    with pytest.raises(TooManyPiecesError, match=f"{MAX_PIECES}.*larger min_m2"):
        pieces(many, min_m2=0.5)


# --- where to fly ---------------------------------------------------------------------------


def test_each_piece_has_its_centroid_and_a_line_along_its_long_axis() -> None:
    by_area = {round(p.area_m2): p for p in pieces()}
    a, b = by_area[500], by_area[300]
    assert near(a.centroid, (50.0, 12.5))
    assert {tuple(round(v, 2) for v in plane_xy(q)) for q in (a.start, a.end)} == {
        (0.0, 12.5),
        (100.0, 12.5),
    }
    assert (a.length_m, a.width_m) == pytest.approx((100.0, 5.0))
    assert (b.length_m, b.width_m) == pytest.approx((60.0, 5.0))
    assert near(b.centroid, (30.0, 27.5))
    assert a.heading_deg in (pytest.approx(90.0), pytest.approx(270.0))


def test_the_line_of_a_slanted_strip_follows_its_slant() -> None:
    strip = affinity.rotate(box(0, 0, 80, 5), 30, origin=(0, 0))
    [p] = pieces(strip)
    assert p.length_m == pytest.approx(80.0)
    assert p.width_m == pytest.approx(5.0)
    # 30° counter-clockwise from east is a compass bearing of 60° (or 240° back).
    assert min(abs(p.heading_deg - 60.0), abs(p.heading_deg - 240.0)) < 1e-6
    ends = sorted(plane_xy(q) for q in (p.start, p.end))
    mid_low = affinity.rotate(shapely.Point(0, 2.5), 30, origin=(0, 0))
    assert math.dist(ends[0], (mid_low.x, mid_low.y)) < 0.01


def test_a_hairline_tail_does_not_widen_or_shift_the_line() -> None:
    # GNSS hairline gaps and edge slivers hang on a missed strip: 0.05 m wide, 30 m long.
    tail = box(100, 10, 100.05, 40)
    start, end, length, width = flight_line(shapely.union_all([STRIP_A, tail]))
    assert width == pytest.approx(5.0, abs=0.1)
    assert {round(start[1], 1), round(end[1], 1)} == {12.5}
    assert length == pytest.approx(100.0, abs=0.1)


def test_a_piece_narrower_than_a_tail_still_gets_its_line() -> None:
    start, end, length, width = flight_line(box(0, 0, 40, 0.8))
    assert length == pytest.approx(40.0)
    assert width == pytest.approx(0.8)
    assert (start[1], end[1]) == pytest.approx((0.4, 0.4))


@pytest.mark.parametrize(
    ("to", "bearing"),
    [((0.0, 1.0), 0.0), ((1.0, 0.0), 90.0), ((0.0, -1.0), 180.0), ((-1.0, 0.0), 270.0),
     ((-1e-16, 1.0), 0.0)],
)  # fmt: skip
def test_headings_are_compass_bearings_from_0_to_under_360(
    to: tuple[float, float], bearing: float
) -> None:
    assert heading((0.0, 0.0), to) == pytest.approx(bearing)
    assert heading((0.0, 0.0), to) < 360.0


# --- the order to fly them --------------------------------------------------------------------


def test_without_a_start_the_largest_goes_first_towards_the_others_then_the_nearest() -> None:
    first, second = pieces()
    assert first.area_m2 == pytest.approx(500.0)
    # Flown west, to finish at (0, 12.5), the end nearer the other piece ...
    assert near(first.start, (100.0, 12.5))
    assert near(first.end, (0.0, 12.5))
    assert first.heading_deg == pytest.approx(270.0)
    # ... which is then flown from its nearer end, eastwards.
    assert near(second.start, (0.0, 27.5))
    assert near(second.end, (60.0, 27.5))
    assert second.heading_deg == pytest.approx(90.0)
    assert [first.order, second.order] == [1, 2]


def test_from_a_start_the_nearest_end_goes_first() -> None:
    first, second = pieces(start=lonlat(70.0, 28.0))
    assert near(first.start, (60.0, 27.5))
    assert near(first.end, (0.0, 27.5))
    assert near(second.start, (0.0, 12.5))
    assert near(second.end, (100.0, 12.5))


def test_fields_are_flown_in_the_given_order_and_the_next_starts_nearest() -> None:
    other = LocalPlane.around(106.53, 21.11)  # a field about 1 km east, its own plane
    here_x, _ = plane_xy(lonlat(0.0, 0.0), other)
    west = box(here_x + 150, 0, here_x + 200, 5)  # 250 m² each, 150 and 300 m from f
    east = box(here_x + 300, 20, here_x + 350, 25)
    listed = refly_pieces(
        [
            FieldMissed("f", PLANE, MISSED, "f"),
            FieldMissed("g", other, shapely.union_all([east, west]), "g"),
        ]
    )
    assert [p.field_id for p in listed] == ["f", "f", "g", "g"]
    # f's tour ends at (60, 27.5); g's nearer piece (west) comes next, from its west end.
    assert math.dist(plane_xy(listed[2].start, other), (here_x + 150, 2.5)) < 0.01
    assert math.dist(plane_xy(listed[3].start, other), (here_x + 300, 22.5)) < 0.01


# --- GeoJSON ------------------------------------------------------------------------------------


def test_the_feature_collection_has_each_piece_and_its_line_in_rfc7946() -> None:
    listed = pieces()
    doc = feature_collection(listed, job="c.d.j", min_m2=25.0)
    assert (doc["type"], doc["job"], doc["min_m2"]) == ("FeatureCollection", "c.d.j", 25.0)
    kinds = [(f["properties"]["order"], f["properties"]["kind"]) for f in doc["features"]]
    assert kinds == [(1, "missed"), (1, "line"), (2, "missed"), (2, "line")]
    for f in doc["features"]:
        g = shape(f["geometry"])
        assert g.is_valid
        if f["properties"]["kind"] == "missed":
            assert g.geom_type == "Polygon"
            assert g.exterior.is_ccw
            metric = PLANE.to_plane(g)  # within 1 cm times the boundary of the exact area
            assert metric.area == pytest.approx(
                f["properties"]["area_m2"], abs=0.01 * metric.length + 0.01
            )
        else:
            assert len(f["geometry"]["coordinates"]) == 2
    json.dumps(doc)  # plain JSON types only


# --- invariants ---------------------------------------------------------------------------------

rects = st.lists(
    st.tuples(
        st.floats(0, 200),
        st.floats(0, 200),
        st.floats(0.5, 60),
        st.floats(0.5, 60),
        st.floats(0, 180),
    ),
    min_size=0,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(rects, st.floats(0.01, 800), st.booleans())
def test_listed_pieces_are_big_enough_and_never_more_than_the_missed_area(
    shapes: list[tuple[float, float, float, float, float]], min_m2: float, with_start: bool
) -> None:
    missed = shapely.union_all(
        [affinity.rotate(box(x, y, x + w, y + h), a, origin=(x, y)) for x, y, w, h, a in shapes]
    )
    start = lonlat(-50.0, 90.0) if with_start else None
    listed = pieces(missed, min_m2, start=start)
    total = float(missed.area) if not missed.is_empty else 0.0
    assert sum(p.area_m2 for p in listed) <= total + 1e-6
    assert all(p.area_m2 >= min_m2 for p in listed)
    parts = shapely.get_parts(missed) if not missed.is_empty else []
    assert len(listed) == sum(1 for q in parts if q.area >= min_m2)
    assert [p.order for p in listed] == list(range(1, len(listed) + 1))
    for p in listed:
        assert p.length_m + 1e-6 >= p.width_m
        line = math.dist(plane_xy(p.start), plane_xy(p.end))
        assert line == pytest.approx(p.length_m, abs=0.01)
        assert 0.0 <= p.heading_deg < 360.0
        assert 0.0 <= p.to_dict()["line"]["heading_deg"] < 360.0
    assert np.isfinite([c for p in listed for c in (*p.start, *p.end, *p.centroid)]).all()
