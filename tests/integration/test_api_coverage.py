"""A field's coverage over real HTTP, from flights summarized out of both real stores: the
same answer as the engine over all the samples at once, a per-flight breakdown, GeoJSON,
and nothing about a field the caller may not see."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from fields.coverage import GEOMETRY_KINDS, METRIC_KEYS, CoverageEngine
from fields.registry import load_fields
from simulators.geo import DEFAULT_FIELDS_PATH
from tests.integration.api_world import THE_DAY, World, jobs

pytestmark = pytest.mark.integration

FIELD = "dt-hp-004"  # sprayed by Hồng Phong's d-hp-a in three flights


def coverage(world: World, who: str, field_id: str = FIELD, **params: str) -> httpx.Response:
    return httpx.get(
        f"{world.url}/api/v1/fields/{field_id}/coverage",
        params={**THE_DAY, **params},
        headers=world.headers[who],
        timeout=30,
    )


def engine_answer(field_id: str) -> dict[str, Any]:
    """The engine over every sample of the field's job at once (no stored states)."""
    engine = CoverageEngine(load_fields(DEFAULT_FIELDS_PATH))
    job = next(j for j in jobs() if j.field.id == field_id)
    return engine.result(engine.run(job.samples)[field_id]).metrics()


def test_the_answer_has_exactly_the_coverage_commands_keys(world: World) -> None:
    body = coverage(world, "farmer_hp00").json()
    assert list(body["coverage"]) == ["field_id", *METRIC_KEYS]


def test_merged_flights_equal_the_engine_over_all_samples(world: World) -> None:
    got = coverage(world, "farmer_hp00").json()["coverage"]
    want = engine_answer(FIELD)
    assert got["passes"] == want["passes"]
    for key in ("field_ha", "covered_ha", "missed_ha", "overlap_ha", "off_target_ha"):
        assert got[key] == pytest.approx(want[key], abs=2e-6), key
    assert got["coverage_pct"] == pytest.approx(want["coverage_pct"], abs=0.01)
    assert got["applied_l"] == pytest.approx(want["applied_l"], abs=0.002)


def test_the_breakdown_lists_each_flight_oldest_first_with_its_share(world: World) -> None:
    body = coverage(world, "farmer_hp00").json()
    flights = body["flights"]
    assert len(flights) == 3
    assert [f["drone"] for f in flights] == ["d-hp-a"] * 3
    assert [f["start"] for f in flights] == sorted(f["start"] for f in flights)
    assert sum(f["applied_l"] for f in flights) == pytest.approx(
        body["coverage"]["applied_l"], abs=0.005
    )
    assert all(0 < f["covered_ha"] <= body["coverage"]["field_ha"] for f in flights)


def test_times_are_local_rfc3339(world: World) -> None:
    body = coverage(world, "farmer_hp00").json()
    assert body["from"] == "2025-11-28T00:00:00.000+07:00"
    assert body["to"] == "2025-11-29T00:00:00.000+07:00"
    assert all(f["start"].endswith("+07:00") for f in body["flights"])


def test_a_window_without_flights_leaves_the_whole_field_missed(world: World) -> None:
    body = coverage(world, "farmer_hp00", **{"from": "2025-11-27", "to": "2025-11-28"}).json()
    c = body["coverage"]
    assert body["flights"] == []
    assert c["covered_ha"] == 0
    assert c["passes"] == 0
    assert c["missed_ha"] == pytest.approx(c["field_ha"], abs=1e-6)


def test_geojson_gives_the_polygons_by_kind_with_their_areas(world: World) -> None:
    response = coverage(world, "coop_hp", format="geojson")
    doc = response.json()
    metrics = coverage(world, "coop_hp").json()["coverage"]
    assert doc["type"] == "FeatureCollection"
    kinds = {f["properties"]["kind"]: f for f in doc["features"]}
    assert set(kinds) <= set(GEOMETRY_KINDS)
    assert "covered" in kinds
    assert kinds["covered"]["properties"]["area_ha"] == pytest.approx(
        metrics["covered_ha"], abs=1e-6
    )
    assert all(f["geometry"]["type"] in ("Polygon", "MultiPolygon") for f in doc["features"])


def test_another_farmers_field_answers_like_one_that_does_not_exist(world: World) -> None:
    hidden = coverage(world, "farmer_hp01")
    missing = coverage(world, "farmer_hp01", field_id="dt-nowhere")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"] == f"no field {FIELD!r}"


def test_a_hired_drone_counts_on_the_members_field(world: World) -> None:
    body = coverage(world, "farmer_hp01", field_id="dt-hp-002").json()
    assert [(f["coop"], f["drone"]) for f in body["flights"]] == [("htx-yen-tho", "d-yt-a")]
    assert body["coverage"]["covered_ha"] == pytest.approx(
        engine_answer("dt-hp-002")["covered_ha"], abs=2e-6
    )


def test_a_no_spray_zone_has_no_coverage_of_its_own(world: World) -> None:
    response = coverage(world, "operator", field_id="dt-ns-01")
    assert response.status_code == 422
    assert "no-spray zone" in response.json()["detail"]


def test_an_unknown_format_is_422_naming_the_parameter(world: World) -> None:
    response = coverage(world, "operator", format="gpx")
    assert response.status_code == 422
    assert "format" in response.json()["detail"]
