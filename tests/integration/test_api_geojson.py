"""GeoJSON the API emits is valid RFC 7946 (exterior rings counter-clockwise, holes
clockwise, valid polygons, 7 decimals): a field's coverage polygons and a field itself,
over real HTTP from flights summarized out of both real stores."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
import shapely
from shapely.geometry import shape

from tests.integration.api_world import THE_DAY, World

pytestmark = pytest.mark.integration

SPRAYED = ("dt-hp-004", "dt-hp-002", "dt-yt-004")
MORE_THAN_7_DECIMALS = re.compile(r"\d\.\d{8,}")


def get(world: World, path: str, **params: str) -> dict[str, Any]:
    response = httpx.get(
        f"{world.url}{path}", params=params, headers=world.headers["operator"], timeout=30
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_rfc7946(geometry: dict[str, Any]) -> None:
    g = shape(geometry)
    assert geometry["type"] in ("Polygon", "MultiPolygon")
    assert g.is_valid, shapely.is_valid_reason(g)
    for p in shapely.get_parts(g):
        assert p.area > 0
        assert p.exterior.is_ccw
        assert all(not ring.is_ccw for ring in p.interiors)
    assert not MORE_THAN_7_DECIMALS.search(json.dumps(geometry))


@pytest.mark.parametrize("field_id", SPRAYED)
def test_coverage_polygons_are_valid_rfc_7946(world: World, field_id: str) -> None:
    body = get(world, f"/api/v1/fields/{field_id}/coverage", format="geojson", **THE_DAY)
    kinds = [f["properties"]["kind"] for f in body["features"]]
    assert "covered" in kinds
    for feature in body["features"]:
        assert_rfc7946(feature["geometry"])


@pytest.mark.parametrize("field_id", SPRAYED)
def test_a_field_is_emitted_as_valid_rfc_7946(world: World, field_id: str) -> None:
    assert_rfc7946(get(world, f"/api/v1/fields/{field_id}")["geometry"])


def _listed(world: World, role: str, **params: str) -> httpx.Response:
    return httpx.get(
        f"{world.url}/api/v1/fields", params=params, headers=world.headers[role], timeout=30
    )


@pytest.mark.parametrize("role", ["farmer_hp00", "coop_hp", "operator"])
def test_the_field_list_as_geojson_holds_each_listed_field_as_get_answers_it(
    world: World, role: str
) -> None:
    listed = _listed(world, role).json()
    collection = _listed(world, role, format="geojson").json()
    assert collection["type"] == "FeatureCollection"
    features = collection["features"]
    assert [f["properties"]["id"] for f in features] == [f["id"] for f in listed]
    for feature in features[:5]:
        one = httpx.get(
            f"{world.url}/api/v1/fields/{feature['properties']['id']}",
            headers=world.headers[role],
            timeout=30,
        ).json()
        assert feature == one
        assert_rfc7946(feature["geometry"])


def test_the_field_list_as_geojson_pages_like_the_list(world: World) -> None:
    first = _listed(world, "coop_hp", format="geojson", limit="2")
    assert len(first.json()["features"]) == 2
    rest = _listed(
        world, "coop_hp", format="geojson", limit="1000", cursor=first.headers["x-next-cursor"]
    ).json()["features"]
    ids = [f["properties"]["id"] for f in first.json()["features"] + rest]
    assert ids == [f["id"] for f in _listed(world, "coop_hp").json()]


def test_overlaps_have_no_geojson_form(world: World) -> None:
    answer = _listed(world, "coop_hp", format="geojson", overlaps="true")
    assert answer.status_code == 422
    assert "overlaps" in answer.json()["detail"]
