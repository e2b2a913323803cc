"""Overlapping fields: known areas, the thresholds at their edges, which overlaps an import
refuses, and invariants (symmetry, bounds) under hypothesis."""

from __future__ import annotations

from typing import Any

import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from fields.overlaps import (
    OVERLAP_M2,
    OVERLAP_SHARE,
    foreign_overlaps,
    import_conflicts,
    overlaps_between,
    overlaps_within,
    significant,
)
from fields.projection import LocalPlane
from fields.registry import Field, parse_fields
from fields.synthetic import collection, feature, rectangle


def field(fid: str, geometry_m: Any, coop: str = "htx-a", **kw: Any) -> Field:
    (f,) = parse_fields(collection(feature(fid, geometry_m, coop=coop, **kw))).fields
    return f


def test_two_rectangles_overlap_by_their_common_band() -> None:
    a = field("a", rectangle(100, 60))
    b = field("b", rectangle(100, 60, 0, 50), coop="htx-b")
    (o,) = overlaps_between([a], [b])
    assert (o.a.id, o.b.id) == ("a", "b")
    assert o.area_m2 == pytest.approx(100 * 10, rel=1e-6)
    assert o.share_a == pytest.approx(1000 / 6000, rel=1e-6)
    assert o.significant
    assert o.across_coops


def test_fields_that_only_share_a_boundary_do_not_overlap() -> None:
    a = field("a", rectangle(100, 60))
    b = field("b", rectangle(100, 60, 0, 60), coop="htx-b")
    assert overlaps_between([a], [b]) == []


def test_a_field_inside_another_overlaps_by_its_whole_area() -> None:
    big = field("big", rectangle(100, 60))
    small = field("small", rectangle(10, 10, 20, 20), coop="htx-b")
    (o,) = overlaps_between([small], [big])
    assert o.area_m2 == pytest.approx(100.0, rel=1e-6)
    assert o.share_a == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize(
    ("area", "a_m2", "b_m2", "expected"),
    [
        (OVERLAP_M2, 1e6, 1e6, False),  # exactly 20 m² of two big fields: tolerated
        (OVERLAP_M2 + 0.01, 1e6, 1e6, True),
        (10.0, 1000.0, 5000.0, False),  # 1 % of the smaller field exactly
        (10.01, 1000.0, 5000.0, True),
        (10.01, 5000.0, 1000.0, True),  # either field's share counts
        (0.5, 40.0, 1e6, True),  # 1.25 % of a 40 m² field
    ],
)
def test_the_thresholds_are_more_than_20_m2_or_more_than_1_percent_of_either(
    area: float, a_m2: float, b_m2: float, expected: bool
) -> None:
    assert significant(area, a_m2, b_m2) is expected


def test_the_thresholds_are_the_issues() -> None:
    assert (OVERLAP_M2, OVERLAP_SHARE) == (20.0, 0.01)


def test_an_import_is_refused_only_over_another_cooperatives_field() -> None:
    registered = [
        field("mine", rectangle(100, 60)),
        field("theirs", rectangle(100, 60, 0, 100), coop="htx-b"),
    ]
    new = field("new", rectangle(100, 80, 0, 30))  # 30 m into mine, 10 m into theirs
    (conflict,) = import_conflicts([new], registered)
    assert (conflict.a.id, conflict.b.id) == ("new", "theirs")
    assert conflict.area_m2 == pytest.approx(1000.0, rel=1e-6)


def test_a_sliver_under_the_thresholds_is_tolerated() -> None:
    theirs = field("theirs", rectangle(100, 60), coop="htx-b")
    new = field("new", rectangle(100, 60, 0, 59.85))  # 15 m² on a 6000 m² field: 0.25 %
    assert import_conflicts([new], [theirs]) == []
    (o,) = overlaps_between([new], [theirs])
    assert o.area_m2 == pytest.approx(15.0, rel=1e-4)


def test_a_field_replaced_by_the_import_does_not_conflict_with_its_new_outline() -> None:
    old = field("f", rectangle(100, 60), coop="htx-b")
    redrawn = field("f", rectangle(100, 60, 5, 0), coop="htx-b")
    assert import_conflicts([redrawn], [old]) == []


def test_two_new_fields_of_different_cooperatives_conflict_with_each_other() -> None:
    a = field("a", rectangle(100, 60))
    b = field("b", rectangle(100, 60, 50, 0), coop="htx-b")
    (conflict,) = import_conflicts([a, b], [])
    assert {conflict.a.id, conflict.b.id} == {"a", "b"}
    assert conflict.area_m2 == pytest.approx(3000.0, rel=1e-6)


def test_a_field_without_a_cooperative_differs_from_every_cooperative() -> None:
    a = field("a", rectangle(100, 60), coop="")
    b = field("b", rectangle(100, 60, 50, 0))
    assert len(import_conflicts([a], [b])) == 1


def test_overlaps_within_lists_each_pair_once() -> None:
    fields = [
        field("a", rectangle(100, 60)),
        field("b", rectangle(100, 60, 50, 0)),
        field("c", rectangle(100, 60, 75, 0), coop="htx-b"),
    ]
    pairs = {(o.a.id, o.b.id): o.area_m2 for o in overlaps_within(fields)}
    assert pairs == pytest.approx({("a", "b"): 3000.0, ("a", "c"): 1500.0, ("b", "c"): 4500.0})


def test_foreign_overlaps_name_the_other_cooperatives_of_each_field() -> None:
    fields = [
        field("a1", rectangle(100, 60)),
        field("a2", rectangle(100, 60, 50, 0)),
        field("b1", rectangle(100, 60, 75, 0), coop="htx-b"),
    ]
    assert foreign_overlaps(overlaps_within(fields)) == {
        "a1": frozenset({"htx-b"}),
        "a2": frozenset({"htx-b"}),
        "b1": frozenset({"htx-a"}),
    }


def test_fields_on_different_planes_overlap_by_the_same_area() -> None:
    # Plane centres are rounded to 0.01°: these two centroids fall either side of 106.525.
    west = LocalPlane(21.08, 106.52)
    x_edge, _ = west.forward(106.525, 21.08)
    a = field("a", rectangle(60, 60, float(x_edge) - 50, 0), plane=west)
    b = field("b", rectangle(60, 60, float(x_edge) - 10, 10), plane=west, coop="htx-b")
    assert a.plane != b.plane
    (o,) = overlaps_between([a], [b])
    (back,) = overlaps_between([b], [a])
    assert o.area_m2 == pytest.approx(20 * 50, rel=1e-5)
    assert back.area_m2 == pytest.approx(o.area_m2, rel=1e-5)


@settings(max_examples=40, deadline=None)
@given(
    dx=st.floats(-120, 120),
    dy=st.floats(-80, 80),
    w=st.floats(5, 150),
    h=st.floats(5, 90),
)
def test_an_overlap_is_symmetric_and_no_larger_than_either_field(
    dx: float, dy: float, w: float, h: float
) -> None:
    a = field("a", rectangle(100, 60))
    b = field("b", rectangle(w, h, dx, dy), coop="htx-b")
    forward, backward = overlaps_between([a], [b]), overlaps_between([b], [a])
    assert len(forward) == len(backward)
    expected = shapely.intersection(rectangle(100, 60), rectangle(w, h, dx, dy)).area
    if forward:
        assert forward[0].area_m2 == pytest.approx(backward[0].area_m2, rel=1e-6, abs=1e-6)
        assert forward[0].area_m2 <= min(a.area_m2, b.area_m2) * (1 + 1e-9)
        assert forward[0].area_m2 == pytest.approx(expected, rel=1e-4, abs=1e-3)
    else:
        assert expected == pytest.approx(0.0, abs=1e-3)
