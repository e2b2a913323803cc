"""Cutting a flight's track to where a caller seeing it through their fields may see it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from api.flight_tracks import (
    TRACK_MARGIN_M,
    around,
    clip_layout,
    positions_kept,
    span_inside,
    visible_region,
)
from api.routes.drones import TrackLayout, TrackPiece
from fields.projection import LocalPlane
from fields.registry import Field, parse_fields

LON0, LAT0 = 106.52, 21.08
PLANE = LocalPlane.around(LON0, LAT0)


def _square(field_id: str, x0: float, y0: float, size: float = 40.0) -> dict[str, Any]:
    """A square field ``size`` m wide whose south-west corner is (x0, y0) m from the origin."""
    xs = np.array([x0, x0 + size, x0 + size, x0, x0])
    ys = np.array([y0, y0, y0 + size, y0 + size, y0])
    lon, lat = PLANE.inverse(xs, ys)
    ring = [[float(a), float(b)] for a, b in zip(lon, lat, strict=True)]
    return {
        "type": "Feature",
        "properties": {"id": field_id, "owner": field_id, "coop": "htx-a"},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def _fields(*features: dict[str, Any]) -> list[Field]:
    return list(parse_fields({"type": "FeatureCollection", "features": list(features)}).fields)


def _lonlat(xs: list[float], ys: list[float]) -> tuple[Any, Any]:
    return PLANE.inverse(np.array(xs), np.array(ys))


MINE, NEXT_DOOR = _fields(_square("mine", 0, 0), _square("next-door", 45, 0))


def test_the_region_reaches_the_margin_around_the_field_over_unregistered_ground() -> None:
    region = visible_region([MINE], [NEXT_DOOR])
    # Inside, 19 m west of the field (a bund, a road), 21 m west, 19 m north.
    lon, lat = _lonlat([20, -19, -21, 20], [20, 20, 20, 59])
    assert region.contains(lon, lat).tolist() == [True, True, False, True]
    assert TRACK_MARGIN_M == 20.0


def test_the_region_never_reaches_into_another_field_inside_the_margin() -> None:
    region = visible_region([MINE], [NEXT_DOOR])
    # The 5 m strip between the fields, 1 m and 10 m into the neighbour's field.
    lon, lat = _lonlat([42, 46, 55], [20, 20, 20])
    assert region.contains(lon, lat).tolist() == [True, False, False]
    assert around([MINE]).contains(lon, lat).tolist() == [True, True, True]


def test_the_callers_own_field_shows_whole_even_where_another_overlaps_it() -> None:
    [over] = _fields(_square("over", 30, 0))
    region = visible_region([MINE], [over])
    lon, lat = _lonlat([35, 45], [20, 20])
    assert region.contains(lon, lat).tolist() == [True, False]


def _layout(pieces: list[TrackPiece], n: int) -> TrackLayout:
    return TrackLayout(
        np.arange(n, dtype=np.int64) * 100,
        np.full(n, LAT0),
        np.full(n, LON0),
        np.zeros(n, dtype=bool),
        pieces,
    )


def test_lines_are_cut_where_the_track_leaves_the_region() -> None:
    layout = _layout([TrackPiece(0, 9, spraying=True)], 10)
    inside = np.array([0, 1, 1, 1, 0, 0, 1, 1, 0, 1], dtype=bool)
    clipped = clip_layout(layout, inside)
    assert clipped.pieces == [
        TrackPiece(1, 3, spraying=True),
        TrackPiece(6, 7, spraying=True),
        TrackPiece(9, 9, spraying=True),
    ]
    assert positions_kept(clipped) == 6


def test_a_spray_change_position_kept_alone_is_drawn_once() -> None:
    # Spraying 0..4, then not 4..8 (position 4 shared); only 4 and 6..7 inside.
    layout = _layout([TrackPiece(0, 4, spraying=True), TrackPiece(4, 8, spraying=False)], 9)
    inside = np.array([0, 0, 0, 0, 1, 0, 1, 1, 0], dtype=bool)
    assert clip_layout(layout, inside).pieces == [
        TrackPiece(4, 4, spraying=True),
        TrackPiece(6, 7, spraying=False),
    ]


def test_a_spray_change_inside_keeps_both_lines_meeting_there() -> None:
    layout = _layout([TrackPiece(0, 4, spraying=True), TrackPiece(4, 8, spraying=False)], 9)
    inside = np.array([0, 0, 1, 1, 1, 1, 0, 0, 0], dtype=bool)
    assert clip_layout(layout, inside).pieces == [
        TrackPiece(2, 4, spraying=True),
        TrackPiece(4, 5, spraying=False),
    ]


def test_nothing_inside_draws_nothing() -> None:
    layout = _layout([TrackPiece(0, 4, spraying=True)], 5)
    assert clip_layout(layout, np.zeros(5, dtype=bool)).pieces == []


@pytest.mark.parametrize(
    ("inside", "expected"),
    [
        # From the position before the first inside to the bucket after the last inside.
        ([0, 0, 1, 1, 0, 0], (1000, 4000 + 1000)),
        ([1, 0, 0, 0, 0, 0], (0, 1000 + 1000)),  # from the window's start
        ([0, 0, 0, 0, 0, 1], (4000, 6000)),  # to the window's end
        ([0, 0, 0, 0, 0, 0], None),
    ],
)
def test_the_span_read_again_holds_every_sample_near_the_region(
    inside: list[int], expected: tuple[int, int] | None
) -> None:
    ts = np.arange(6, dtype=np.int64) * 1000
    mask = np.array(inside, dtype=bool)
    assert span_inside(ts, mask, 1000, 0, 6000) == expected
