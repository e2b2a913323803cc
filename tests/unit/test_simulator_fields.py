"""The packaged Đông Triều fields file: plausible, valid RFC 7946 plots of two cooperatives."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import shapely
from shapely.geometry import shape

from simulators import make_fields
from simulators.geo import DEFAULT_FIELDS_PATH, frame_for, load_fields


@pytest.fixture(scope="module")
def features() -> list[dict[str, Any]]:
    doc = orjson.loads(DEFAULT_FIELDS_PATH.read_bytes())
    assert doc["type"] == "FeatureCollection"
    feats: list[dict[str, Any]] = doc["features"]
    return feats


def plots(features: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in features if f["properties"].get("kind") != "no_spray"]


def test_file_is_what_the_generator_writes() -> None:
    assert make_fields.dumps(make_fields.generate()) == DEFAULT_FIELDS_PATH.read_bytes()


def test_between_40_and_60_plots(features: list[dict[str, Any]]) -> None:
    assert 40 <= len(plots(features)) <= 60


def test_every_coordinate_is_near_dong_trieu(features: list[dict[str, Any]]) -> None:
    for f in features:
        for ring in f["geometry"]["coordinates"]:
            for lon, lat in ring:
                assert 106.45 <= lon <= 106.60, f["properties"]["id"]
                assert 21.05 <= lat <= 21.12, f["properties"]["id"]


def test_rings_are_closed_and_rfc7946_oriented(features: list[dict[str, Any]]) -> None:
    for f in features:
        exterior, *holes = f["geometry"]["coordinates"]
        for ring in [exterior, *holes]:
            assert ring[0] == ring[-1], f["properties"]["id"]
        assert shapely.is_ccw(shapely.linearrings(exterior)), f["properties"]["id"]
        for hole in holes:
            assert not shapely.is_ccw(shapely.linearrings(hole)), f["properties"]["id"]


def test_every_geometry_is_valid(features: list[dict[str, Any]]) -> None:
    invalid = [f["properties"]["id"] for f in features if not shape(f["geometry"]).is_valid]
    assert invalid == []


def test_no_two_features_overlap(features: list[dict[str, Any]]) -> None:
    geoms = [shape(f["geometry"]) for f in features]
    pairs = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    touching = [(int(i), int(j)) for i, j in pairs.T if i < j]
    assert touching == []


def test_plot_areas_are_between_5_ares_and_2_hectares() -> None:
    for f in load_fields().fields:
        area_ha = frame_for(f.geometry).polygon_to_local(f.geometry).area / 1e4
        assert 0.05 <= area_ha <= 2.0, (f.id, area_ha)


def test_most_paddies_are_small() -> None:
    rice = [f for f in load_fields().fields if f.crop == "rice"]
    small = [f for f in rice if frame_for(f.geometry).polygon_to_local(f.geometry).area < 3000]
    assert len(small) > len(rice) / 2


def test_some_plots_have_holes(features: list[dict[str, Any]]) -> None:
    with_holes = [f for f in plots(features) if len(f["geometry"]["coordinates"]) > 1]
    assert len(with_holes) >= 3


def test_no_spray_canals_and_ponds_are_present(features: list[dict[str, Any]]) -> None:
    zones = [f["properties"] for f in features if f["properties"].get("kind") == "no_spray"]
    assert {z["zone"] for z in zones} == {"canal", "fish_pond"}


def test_two_cooperatives_own_the_plots(features: list[dict[str, Any]]) -> None:
    coops = {f["properties"]["coop"] for f in plots(features)}
    assert coops == {"htx-hong-phong", "htx-yen-tho"}


def test_properties_are_complete_and_ids_unique(features: list[dict[str, Any]]) -> None:
    ids = [f["properties"]["id"] for f in features]
    assert len(ids) == len(set(ids))
    for f in plots(features):
        p = f["properties"]
        assert p["name"]
        assert p["owner"]
        assert p["crop"] in {"rice", "lychee", "longan", "vegetables"}


def test_orchards_and_rice_both_present() -> None:
    crops = {f.crop for f in load_fields().fields}
    assert {"rice", "lychee", "longan"} <= crops
