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
