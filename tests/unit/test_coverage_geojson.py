"""Coverage GeoJSON is valid RFC 7946: valid polygons after the move to WGS84 and the
rounding to 7 decimals, exterior rings counter-clockwise, holes clockwise, areas kept.

Area tolerance: snapping to the 1e-7 degree grid moves a vertex by at most about 0.6 cm
and drops slivers narrower than about 1 cm, so a polygon's area may change by at most
1 cm times its boundary length (plus 0.01 m² for rounding noise).
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely import affinity
from shapely.geometry import shape

from fields.coverage import GEOMETRY_KINDS, CoverageEngine, CoverageGeometry, rfc7946_polygons
from fields.registry import load_fields, parse_fields
from fields.synthetic import T0_MS, Flight, collection, feature, rectangle
from simulators.fleet import DroneState, FlightConfig, plan_job
from simulators.geo import DEFAULT_FIELDS_PATH
from simulators.geo import load_fields as load_sim_fields

MORE_THAN_7_DECIMALS = re.compile(r"\d\.\d{8,}")


def polygons(geometry: Any) -> list[Any]:
    return list(shapely.get_parts(geometry))


def check_rfc7946(features: list[dict[str, Any]], geometry: CoverageGeometry) -> None:
    """Every feature: valid, oriented, 7 decimals, area within the stated tolerance."""
    for f in features:
        g = shape(f["geometry"])
        kind = f["properties"]["kind"]
        assert f["geometry"]["type"] in ("Polygon", "MultiPolygon"), kind
        assert g.is_valid, (kind, shapely.is_valid_reason(g))
        for p in polygons(g):
            assert p.area > 0, kind
            assert p.exterior.is_ccw, kind
            assert all(not ring.is_ccw for ring in p.interiors), kind
        assert not MORE_THAN_7_DECIMALS.search(json.dumps(f["geometry"])), kind
    by_kind = {f["properties"]["kind"]: shape(f["geometry"]) for f in features}
    for kind in GEOMETRY_KINDS:
        metric = getattr(geometry, kind)
        out = by_kind.get(kind, shapely.Polygon())
        back = geometry.plane.to_plane(out) if not out.is_empty else out
        tolerance = 0.01 * float(metric.length) + 0.01
        assert abs(float(back.area) - float(metric.area)) <= tolerance, kind


def test_the_missed_area_of_the_biggest_field_after_a_day_of_spraying_is_valid() -> None:
    # dt-yt-001 (0.99 ha), one simulated job: rounding its missed area to 7 (or 8) decimals
    # as is makes a ring cross itself; the output repairs that.
    sim_field = load_sim_fields().by_id("dt-yt-001")
    state = DroneState(sim_field.coop, "d1", T0_MS)
    job = plan_job(sim_field, state, FlightConfig(), np.random.default_rng(0))
    engine = CoverageEngine(load_fields(DEFAULT_FIELDS_PATH))
    geometry = engine.geometry(engine.run(job.samples)["dt-yt-001"])
    naive = shapely.transform(geometry.plane.to_wgs84(geometry.missed), lambda c: np.round(c, 7))
    assert not naive.is_valid  # the case still shows the problem
    features = geometry.features()
    assert {f["properties"]["kind"] for f in features} >= {"covered", "missed"}
    check_rfc7946(features, geometry)


def test_a_field_with_a_pond_has_a_counter_clockwise_exterior_and_a_clockwise_hole() -> None:
    pond = rectangle(20, 10, 40, 25)
    field = rectangle(100, 60).difference(pond)
    engine = CoverageEngine(parse_fields(collection(feature("f", field))))
    flight = Flight().boustrophedon(0, 100, [3.0 + 6.0 * k for k in range(10)])
    geometry = engine.geometry(engine.run(flight.samples())["f"])
    (covered,) = [f for f in geometry.features() if f["properties"]["kind"] == "covered"]
    (p,) = polygons(shape(covered["geometry"]))
    assert p.exterior.is_ccw
    assert len(p.interiors) == 1
    assert not p.interiors[0].is_ccw


def test_a_skipped_pass_is_a_missed_strip_of_its_metric_area() -> None:
    engine = CoverageEngine(parse_fields(collection(feature("f", rectangle(100, 60)))))
    lines = [3.0 + 6.0 * k for k in range(10) if k != 4]
    flight = Flight().boustrophedon(-5, 105, lines)
    geometry = engine.geometry(engine.run(flight.samples())["f"])
    (missed,) = [f for f in geometry.features() if f["properties"]["kind"] == "missed"]
    area_m2 = float(geometry.plane.to_plane(shape(missed["geometry"])).area)
    assert area_m2 == pytest.approx(100 * 6, abs=0.01 * 2 * (100 + 6))


def test_a_polygon_thinner_than_the_grid_is_dropped_not_emitted_as_a_sliver() -> None:
    sliver = shapely.Polygon([(106.52, 21.08), (106.53, 21.08), (106.53, 21.08000001)])
    assert rfc7946_polygons(sliver).is_empty


def test_touching_rings_that_rounding_makes_cross_come_out_valid() -> None:
    # Two squares meeting along a line 4e-8 degree wide: on the 1e-7 grid they overlap.
    a = shapely.box(106.52, 21.08, 106.5201, 21.0801)
    b = shapely.box(106.52010004, 21.08, 106.5202, 21.0801)
    out = rfc7946_polygons(shapely.MultiPolygon([a, b]))
    assert out.is_valid
    assert out.area == pytest.approx(a.area + b.area, rel=1e-3)


@st.composite
def coverage_case(draw: st.DrawFn) -> CoverageGeometry:
    width = draw(st.floats(30, 200))
    height = draw(st.floats(20, 120))
    field = affinity.rotate(rectangle(width, height), draw(st.floats(0, 90)), origin=(0, 0))
    if draw(st.booleans()):
        c = field.centroid
        field = field.difference(shapely.Point(c.x, c.y).buffer(draw(st.floats(2, 9))))
    swath = draw(st.floats(3, 9))
    spacing = swath * draw(st.floats(0.7, 1.3))
    lines = list(np.arange(-height, height + width, spacing))
    flight = Flight(swath_m=swath, hz=5.0).boustrophedon(-width, 2 * width, lines)
    samples = flight.samples(noise_m=draw(st.floats(0, 1.5)), seed=draw(st.integers(0, 99)))
    engine = CoverageEngine(parse_fields(collection(feature("f", field))))
    return engine.geometry(engine.run(samples)["f"])


@settings(max_examples=25, deadline=None)
@given(coverage_case())
def test_every_coverage_polygon_out_is_valid_oriented_at_7_decimals_and_keeps_its_area(
    geometry: CoverageGeometry,
) -> None:
    check_rfc7946(geometry.features(), geometry)
