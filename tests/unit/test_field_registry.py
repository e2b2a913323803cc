"""The field registry accepts RFC 7946 fields and names every problem in a bad file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from pyproj import Geod, Transformer

from fields.projection import LocalPlane, utm_epsg
from fields.registry import FieldValidationError, load_fields, parse_fields
from fields.synthetic import collection, feature, rectangle

PADDY = [[106.5200, 21.0800], [106.5210, 21.0800], [106.5210, 21.0808], [106.5200, 21.0808]]


def polygon(ring: list[list[float]], *holes: list[list[float]], **props: Any) -> dict[str, Any]:
    rings = [[*r, r[0]] for r in (ring, *holes)]
    return {
        "type": "Feature",
        "properties": {"id": "f-1", **props},
        "geometry": {"type": "Polygon", "coordinates": rings},
    }


def problems(doc: Any, **kwargs: Any) -> list[str]:
    with pytest.raises(FieldValidationError) as info:
        parse_fields(doc, **kwargs)
    return list(info.value.problems)


def test_a_feature_becomes_a_field_with_its_properties() -> None:
    props = {"name": "Ruộng bà Thu", "owner": "nd-1", "coop": "htx-hp", "crop": "rice"}
    registry = parse_fields(polygon(PADDY, **props))
    (f,) = registry.fields
    assert (f.id, f.name, f.owner, f.coop, f.crop, f.kind) == ("f-1", *props.values(), "field")


def test_area_is_given_in_hectares_and_sao() -> None:
    f = parse_fields(collection(feature("f", rectangle(120, 60)))).fields[0]
    assert f.area_m2 == pytest.approx(7200, rel=1e-6)
    assert f.area_ha == pytest.approx(0.72, rel=1e-6)
    assert f.area_sao == pytest.approx(20.0, rel=1e-6)


def test_area_matches_the_geodesic_area_to_one_ppm() -> None:
    f = parse_fields(polygon(PADDY)).fields[0]
    geodesic = abs(Geod(ellps="WGS84").geometry_area_perimeter(f.geometry)[0])
    assert f.area_m2 == pytest.approx(geodesic, rel=1e-6)


def test_utm_of_dong_trieu_loses_area_that_the_local_plane_keeps() -> None:
    f = parse_fields(polygon(PADDY)).fields[0]
    assert f.utm_epsg == 32648
    utm = Transformer.from_crs("EPSG:4326", "EPSG:32648", always_xy=True)
    utm_area = shapely.transform(f.geometry, lambda c: np.column_stack(utm.transform(*c.T))).area
    # UTM 48N shrinks areas here by ~180 ppm (1.5 degrees east of its central meridian).
    assert 100e-6 < 1 - utm_area / f.area_m2 < 300e-6


def test_utm_zone_follows_longitude_and_hemisphere() -> None:
    assert utm_epsg(106.52, 21.08) == 32648
    assert utm_epsg(105.8, -10.0) == 32748
    assert utm_epsg(-0.1, 51.5) == 32630


def test_the_local_plane_round_trips_to_the_millimetre() -> None:
    plane = LocalPlane(21.08, 106.52)
    x, y = plane.forward([106.53, 106.51], [21.09, 21.07])
    lon, lat = plane.inverse(x, y)
    back_x, back_y = plane.forward(lon, lat)
    assert abs(back_x - x).max() < 1e-3
    assert abs(back_y - y).max() < 1e-3


def test_holes_are_kept_and_reduce_the_area() -> None:
    pond = rectangle(20, 10, 40, 20)
    f = parse_fields(collection(feature("f", rectangle(100, 60).difference(pond)))).fields[0]
    assert len(f.geometry.interiors) == 1
    assert f.area_m2 == pytest.approx(6000 - 200, rel=1e-6)


def test_multipolygon_fields_are_accepted() -> None:
    parts = shapely.MultiPolygon([rectangle(50, 20), rectangle(50, 20, 0, 30)])
    f = parse_fields(collection(feature("f", parts))).fields[0]
    assert f.geometry.geom_type == "MultiPolygon"
    assert f.area_m2 == pytest.approx(2000, rel=1e-6)


def test_no_spray_features_become_exclusion_zones() -> None:
    doc = collection(
        feature("f", rectangle(100, 60)),
        feature("canal", rectangle(100, 3, 0, 60), kind="no_spray"),
    )
    registry = parse_fields(doc)
    assert [f.id for f in registry.fields] == ["f"]
    assert [z.id for z in registry.no_spray] == ["canal"]


def test_swapped_lat_lon_in_dong_trieu_is_caught_with_a_hint() -> None:
    swapped = [[lat, lon] for lon, lat in PADDY]
    (message,) = problems(polygon(swapped))
    assert "f-1" in message
    assert "swapped" in message
    assert "[106.52, 21.08]" in message


def test_coordinates_outside_wgs84_are_rejected() -> None:
    (message,) = problems(polygon([[200.0, 21.0], [201.0, 21.0], [201.0, 22.0]]))
    assert "outside WGS84" in message


def test_an_unclosed_ring_is_reported_and_only_closed_when_asked() -> None:
    doc = polygon(PADDY)
    doc["geometry"]["coordinates"][0].pop()
    (message,) = problems(doc)
    assert "not closed" in message
    registry = parse_fields(doc, repair=True)
    assert registry.fields[0].area_m2 > 0
    assert any("closed it" in r for r in registry.repairs)


def test_a_self_intersecting_ring_is_reported_and_only_repaired_when_asked() -> None:
    a, b, c, d = PADDY
    bowtie = polygon([a, c, b, d])
    (message,) = problems(bowtie)
    assert "Self-intersection" in message
    registry = parse_fields(bowtie, repair=True)
    assert registry.fields[0].geometry.is_valid
    assert any("make_valid" in r for r in registry.repairs)


def test_tiny_and_huge_areas_are_rejected() -> None:
    tiny = collection(feature("tiny", rectangle(3, 3)))
    huge = collection(feature("huge", rectangle(3000, 2000)))
    assert "under the 10 m²" in problems(tiny)[0]
    assert "over the 500 ha" in problems(huge)[0]


def test_duplicate_ids_are_rejected_naming_both_features() -> None:
    doc = collection(feature("f", rectangle(50, 50)), feature("f", rectangle(50, 50, 100)))
    (message,) = problems(doc)
    assert "duplicate id" in message
    assert "feature 0" in message
    assert "feature 1" in message


def test_every_problem_in_a_file_is_reported_at_once() -> None:
    doc = collection(
        {"type": "Feature", "properties": {"name": "no id"}, "geometry": None},
        feature("p", shapely.Point(0, 0).buffer(10)),
        {"type": "Feature", "properties": {"id": "line"}, "geometry": {"type": "LineString"}},
    )
    doc["features"][1]["geometry"]["type"] = "Circle"
    found = problems(doc)
    assert found == [
        "feature 0: no 'id' property",
        "feature 0: no geometry",
        "feature 1 (p): geometry type 'Circle'; expected Polygon or MultiPolygon",
        "feature 2 (line): geometry type 'LineString'; expected Polygon or MultiPolygon",
    ]


def test_a_file_that_is_not_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "fields.geojson"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(FieldValidationError, match=r"fields\.geojson"):
        load_fields(path)


def test_a_field_round_trips_through_its_geojson_feature(tmp_path: Path) -> None:
    f = parse_fields(polygon(PADDY, name="a", crop="rice")).fields[0]
    path = tmp_path / "f.geojson"
    path.write_text(json.dumps(f.to_feature()), encoding="utf-8")
    again = load_fields(path).fields[0]
    assert (again.id, again.name, again.crop) == ("f-1", "a", "rice")
    assert again.area_m2 == pytest.approx(f.area_m2, rel=1e-9)
