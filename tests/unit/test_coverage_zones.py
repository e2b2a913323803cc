"""No-spray zones have a scope: a cooperative's zone binds only its members' fields, a
commune-wide zone binds every field. Known answers in metres, issue 3's tolerances.

The layout: field "a" of cooperative htx-a is 100 m by 60 m at y 0..60; field "b" of htx-b
is the same size right beside it at y 60..120 (they share the line y = 60). Passes 6 m wide
along y = 3, 9, ... cover a field exactly.
"""

from __future__ import annotations

from typing import Any

import pytest
import shapely

from fields.coverage import CoverageEngine, CoverageResult
from fields.registry import FieldValidationError, parse_fields
from fields.synthetic import Flight, collection, feature, rectangle
from flights.segment import segment_flights
from flights.summary import summarize_flight
from storage.records import Sample

SWATH = 6.0
A_LINES = [3.0 + 6.0 * k for k in range(10)]
B_LINES = [63.0 + 6.0 * k for k in range(10)]
FIELD_A = feature("a", rectangle(100, 60), coop="htx-a", owner="nd-a")
FIELD_B = feature("b", rectangle(100, 60, 0, 60), coop="htx-b", owner="nd-b")


def zone(zid: str, geometry_m: Any, **props: Any) -> dict[str, Any]:
    return feature(zid, geometry_m, kind="no_spray", **props)


def flown(lines: list[float]) -> Flight:
    return Flight(flow_lpm=6.0, swath_m=SWATH).boustrophedon(0.0, 100.0, lines)


def results(*zones: dict[str, Any], lines: list[float]) -> dict[str, CoverageResult]:
    engine = CoverageEngine(parse_fields(collection(FIELD_A, FIELD_B, *zones)))
    states = engine.run(flown(lines).samples())
    return {fid: engine.result(state) for fid, state in states.items()}


def m2(ha: float) -> float:
    return ha * 10_000


def test_a_cooperatives_zone_over_another_cooperatives_field_leaves_its_coverage_intact() -> None:
    pond = zone("pond-a", rectangle(20, 10, 40, 85), coop="htx-a")
    b = results(pond, lines=B_LINES)["b"]
    assert m2(b.field_ha) == pytest.approx(6000.0, rel=1e-6)
    assert b.coverage_pct == pytest.approx(100.0, abs=0.5)
    assert m2(b.no_spray_ha) == pytest.approx(0.0, abs=1e-6)
    assert m2(b.off_target_ha) == pytest.approx(0.0, abs=20.0)


def test_a_cooperatives_zone_over_its_own_field_is_excluded_and_spray_in_it_reported() -> None:
    pond = zone("pond-a", rectangle(20, 10, 40, 25), coop="htx-a")
    a = results(pond, lines=A_LINES)["a"]
    assert m2(a.field_ha) == pytest.approx(6000.0 - 200.0, rel=1e-6)
    assert a.coverage_pct == pytest.approx(100.0, abs=0.5)
    assert m2(a.no_spray_ha) == pytest.approx(200.0, rel=0.02)
    assert m2(a.off_target_ha) == pytest.approx(200.0, rel=0.02)


def test_a_commune_zone_binds_the_fields_of_every_cooperative() -> None:
    # 20 m wide across the shared edge: 10 m into each field.
    school = zone("school", rectangle(20, 20, 40, 50), scope="commune")
    for fid, lines in (("a", A_LINES), ("b", B_LINES)):
        r = results(school, lines=lines)[fid]
        assert m2(r.field_ha) == pytest.approx(6000.0 - 200.0, rel=1e-6), fid
        assert r.coverage_pct == pytest.approx(100.0, abs=0.5), fid
        # Each field's passes spray its own 200 m² of the school ground.
        assert m2(r.no_spray_ha) == pytest.approx(200.0, rel=0.02), fid


def test_a_zone_without_a_cooperative_is_commune_wide() -> None:
    school = zone("school", rectangle(20, 10, 40, 85))
    b = results(school, lines=B_LINES)["b"]
    assert m2(b.field_ha) == pytest.approx(6000.0 - 200.0, rel=1e-6)
    assert m2(b.no_spray_ha) == pytest.approx(200.0, rel=0.02)


def test_spray_on_a_neighbours_field_under_my_zone_is_its_coverage_not_forbidden_spray() -> None:
    # htx-a's zone lies on b (y 60..66). A pass along y = 61 sprays a's top 2 m and b's
    # bottom 4 m: that is b's coverage, since htx-a's zone does not bind b.
    strip = zone("strip-a", rectangle(20, 6, 40, 60), coop="htx-a")
    a = results(strip, lines=[*A_LINES, 61.0])["a"]
    assert m2(a.no_spray_ha) == pytest.approx(0.0, abs=1e-6)
    assert m2(a.off_target_ha) == pytest.approx(0.0, abs=20.0)
    assert m2(a.field_ha) == pytest.approx(6000.0, rel=1e-6)


def test_the_no_spray_layer_holds_the_spray_inside_an_applicable_zone() -> None:
    pond = zone("pond-a", rectangle(20, 10, 40, 25), coop="htx-a")
    engine = CoverageEngine(parse_fields(collection(FIELD_A, FIELD_B, pond)))
    state = engine.run(flown(A_LINES).samples())["a"]
    layer = engine.geometry(state).no_spray
    assert layer.area == pytest.approx(200.0, rel=0.02)
    assert shapely.within(layer.centroid, rectangle(20, 10, 40, 25))
    kinds = [f["properties"]["kind"] for f in engine.geometry(state).features()]
    assert "no_spray" in kinds


def test_another_cooperatives_zone_leaves_the_no_spray_layer_empty() -> None:
    pond = zone("pond-b", rectangle(20, 10, 40, 25), coop="htx-b")
    engine = CoverageEngine(parse_fields(collection(FIELD_A, FIELD_B, pond)))
    state = engine.run(flown(A_LINES).samples())["a"]
    assert engine.geometry(state).no_spray.is_empty
    assert m2(engine.result(state).field_ha) == pytest.approx(6000.0, rel=1e-6)


# --- the registry: how a zone says its scope ---------------------------------------------


def test_a_zone_with_a_cooperative_has_that_cooperatives_scope() -> None:
    registry = parse_fields(collection(zone("z", rectangle(10, 10), coop="htx-a")))
    (z,) = registry.no_spray
    assert z.scope == "coop"
    assert z.to_feature()["properties"]["scope"] == "coop"


def test_a_commune_zone_is_written_out_with_its_scope() -> None:
    registry = parse_fields(collection(zone("z", rectangle(10, 10), scope="commune")))
    (z,) = registry.no_spray
    assert (z.scope, z.coop) == ("commune", "")
    assert z.to_feature()["properties"]["scope"] == "commune"
    assert parse_fields(z.to_feature()).no_spray[0].scope == "commune"


def test_a_field_has_no_scope() -> None:
    (f,) = parse_fields(collection(FIELD_A)).fields
    assert f.scope is None
    assert "scope" not in f.to_feature()["properties"]


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({"scope": "commune", "coop": "htx-a"}, "belongs to no cooperative"),
        ({"scope": "coop"}, "scope 'coop' needs the zone's 'coop'"),
        ({"scope": "village", "coop": "htx-a"}, "expected one of coop, commune"),
    ],
)
def test_a_scope_that_contradicts_the_zone_is_refused(props: dict[str, str], expected: str) -> None:
    with pytest.raises(FieldValidationError) as info:
        parse_fields(collection(zone("z", rectangle(10, 10), **props)))
    (problem,) = info.value.problems
    assert "(z)" in problem
    assert expected in problem


def test_a_scope_on_a_field_is_refused() -> None:
    with pytest.raises(FieldValidationError) as info:
        parse_fields(collection(feature("f", rectangle(10, 10), scope="commune")))
    assert "for no-spray zones only" in info.value.problems[0]


# --- a flight's own no-spray figure ----------------------------------------------------


def drone_track(coop: str) -> list[Sample]:
    """One 100 m pass along y = 130, past the fields, over a zone drawn there."""
    s = Flight(flow_lpm=6.0, swath_m=SWATH).boustrophedon(0.0, 100.0, [130.0]).samples()
    return [
        Sample(
            coop,
            "d1",
            int(s.ts_ms[i]),
            float(s.lat[i]),
            float(s.lon[i]),
            spraying=bool(s.spraying[i]),
            seq=i,
            alt_m=3.0,
            flow_lpm=6.0,
            swath_m=SWATH,
            fix="rtk_fixed",
        )
        for i in range(len(s))
    ]


@pytest.mark.parametrize(("coop", "expected_m2"), [("htx-a", 20 * 6.0), ("htx-b", 0.0)])
def test_a_flight_reports_spray_in_the_zones_that_bind_its_cooperative(
    coop: str, expected_m2: float
) -> None:
    beehives = zone("bees-a", rectangle(20, 20, 40, 120), coop="htx-a")
    engine = CoverageEngine(parse_fields(collection(FIELD_A, FIELD_B, beehives)))
    (flight,) = segment_flights(drone_track(coop), ())
    s = summarize_flight(flight, engine).summary
    assert m2(s.sprayed_no_spray_ha) == pytest.approx(expected_m2, abs=0.5)
    assert m2(s.sprayed_outside_fields_ha + s.sprayed_no_spray_ha) == pytest.approx(
        m2(s.sprayed_ha), abs=0.5
    )
