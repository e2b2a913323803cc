"""GIS files over real HTTP, on both stores: fields imported from KML, zipped Shapefile and
ISOXML through the same validation as GeoJSON (and refused whole, nothing stored, when
malformed, not WGS84 or too large); fields and coverage layers exported as KML, Shapefile and
ISOXML that independent readers (GDAL, ElementTree) read back to the API's own geometry."""

from __future__ import annotations

import io
import itertools
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
import shapely
from shapely.geometry import shape

from fields import gis
from tests.gis_readers import (
    gdal_read,
    gdal_write,
    kml_placemarks,
    pln_polygon,
    same_shape,
    taskdata,
    zipped,
)
from tests.integration.api_world import HP, THE_DAY, YT, World

pytestmark = pytest.mark.integration

KML: Final = "application/vnd.google-earth.kml+xml"
#: Each new field gets its own 40 m square, 60 m apart, far from the world's fields.
_SQUARES = itertools.count()


def square(field_id: str, name: str = "Thửa nhập từ GIS", coop: str = HP) -> dict[str, Any]:
    n = next(_SQUARES)
    lon, lat = 106.63 + 0.0006 * (n % 40), 21.15 + 0.0006 * (n // 40)
    ring = [[lon, lat], [lon + 0.0004, lat], [lon + 0.0004, lat + 0.0004], [lon, lat + 0.0004]]
    return {
        "type": "Feature",
        "properties": {"id": field_id, "name": name, "owner": "nd-hp-00", "coop": coop},
        "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
    }


def post(world: World, body: bytes, content_type: str, who: str = "coop_hp") -> httpx.Response:
    headers = {**world.headers[who], "Content-Type": content_type}
    return httpx.post(f"{world.url}/api/v1/fields", content=body, headers=headers, timeout=60)


def get(world: World, path: str, who: str, **params: str) -> httpx.Response:
    return httpx.get(
        f"{world.url}/api/v1{path}", params=params, headers=world.headers[who], timeout=60
    )


def file_of(fmt: gis.ExportFormat, *features: dict[str, Any]) -> bytes:
    fc = {"type": "FeatureCollection", "features": list(features)}
    return gis.export(fc, fmt, name="import").content


# --- imports -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [
        ("kml", KML),
        ("shp", "application/zip"),
        ("isoxml", "application/zip"),
        ("isoxml", "application/octet-stream"),
    ],
)
def test_a_gis_file_registers_its_fields_as_geojson_would(
    world: World, fmt: gis.ExportFormat, content_type: str
) -> None:
    fid = f"gis-{fmt}-{content_type.rsplit('/', 1)[-1][:3]}"
    sent = square(fid, name="Ruộng bà Tư — Gò Đình")
    response = post(world, file_of(fmt, sent), content_type)
    assert response.status_code == 201, response.text
    assert response.json()["fields"][0]["id"] == fid
    stored = get(world, f"/fields/{fid}", "coop_hp").json()
    assert stored["properties"]["name"] == "Ruộng bà Tư — Gò Đình"
    assert stored["properties"]["coop"] == HP
    assert same_shape(shape(stored["geometry"]), shape(sent["geometry"]))


def test_a_shapefile_written_by_gdal_in_utm_is_422_naming_it_and_nothing_is_stored(
    world: World, tmp_path: Path
) -> None:
    utm = shapely.box(640_000, 2_330_000, 640_040, 2_330_040)
    gdal_write(
        tmp_path, "utm", "ESRI Shapefile", [({"id": "gis-utm", "coop": HP}, utm)], "EPSG:32648"
    )
    response = post(world, zipped(tmp_path, "utm"), "application/zip")
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "'WGS 84 / UTM zone 48N' (EPSG:32648), not WGS84" in detail
    assert "(nothing was stored)" in detail
    assert world.metadata.stored_field("gis-utm") is None


def test_a_kml_feature_the_registry_refuses_is_422_saying_where_properties_come_from(
    world: World,
) -> None:
    nameless = square("gis-noid")
    del nameless["properties"]["id"]
    response = post(world, file_of("kml", square("gis-ok"), nameless), KML)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail["message"].startswith("the KML has problems (its features' properties are")
    assert detail["problems"] == ["feature 1: no 'id' property"]
    assert world.metadata.stored_field("gis-ok") is None


def test_a_kml_of_another_cooperatives_field_is_refused_as_geojson_is(world: World) -> None:
    response = post(world, file_of("kml", square("gis-foreign", coop=YT)), KML)
    assert response.status_code == 422
    assert response.json()["detail"]["problems"] == [
        f"feature gis-foreign (coop {YT!r}) belongs to another cooperative"
    ]
    assert world.metadata.stored_field("gis-foreign") is None


@pytest.mark.parametrize(
    ("body", "content_type", "status", "expected"),
    [
        (b"<kml><Placemark></kml>", KML, 422, "the request body is not well-formed XML"),
        (b"PK\x03\x04 torn", "application/zip", 422, "is not a readable zip archive"),
        (b"id,name\n1,a\n", "text/csv", 415, "Content-Type 'text/csv' is not read here"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_naming_why_and_nothing_is_stored(
    world: World, body: bytes, content_type: str, status: int, expected: str
) -> None:
    before = len(world.metadata.stored_fields())
    response = post(world, body, content_type)
    assert response.status_code == status
    assert expected in response.json()["detail"]
    assert len(world.metadata.stored_fields()) == before


def test_a_zip_bomb_is_413_and_nothing_is_stored(world: World) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("doc.kml", b"<kml>" + b" " * (gis.API_LIMITS.max_bytes + 1) + b"</kml>")
    before = len(world.metadata.stored_fields())
    response = post(world, out.getvalue(), "application/zip")
    assert response.status_code == 413
    assert "unpacks to more than 32 MiB" in response.json()["detail"]
    assert len(world.metadata.stored_fields()) == before


def test_a_farmer_may_not_import_a_gis_file_either(world: World) -> None:
    response = post(world, file_of("kml", square("gis-farmer")), KML, who="farmer_hp00")
    assert response.status_code == 403
    assert world.metadata.stored_field("gis-farmer") is None


# --- exports of fields ---------------------------------------------------------------------


def _kml_ids(data: bytes) -> list[str]:
    return [extended["id"] for _, extended, _ in kml_placemarks(data)]


def _shp_ids(data: bytes) -> list[str]:
    return [row["id"] for row in gdal_read(data)[1]]


def _isoxml_ids(data: bytes) -> list[str]:
    return [pfd.get("B", "") for pfd in taskdata(data).findall("PFD")]


READERS: Final[dict[str, Callable[[bytes], list[str]]]] = {
    "kml": _kml_ids,
    "shp": _shp_ids,
    "isoxml": _isoxml_ids,
}


@pytest.mark.parametrize("fmt", ["kml", "shp", "isoxml"])
@pytest.mark.parametrize("who", ["farmer_hp00", "coop_yt", "operator"])
def test_a_fields_file_holds_exactly_the_fields_the_listing_shows(
    world: World, fmt: str, who: str
) -> None:
    listed = [f["id"] for f in get(world, "/fields", who).json()]
    response = get(world, "/fields", who, format=fmt)
    assert response.status_code == 200
    assert READERS[fmt](response.content) == listed
    name = {"kml": "fields.kml", "shp": "fields.shp.zip", "isoxml": "fields.isoxml.zip"}[fmt]
    assert response.headers["content-disposition"] == f'attachment; filename="agridrone-{name}"'


def test_a_fields_file_is_paged_like_the_listing(world: World) -> None:
    first = get(world, "/fields", "coop_hp", format="shp", limit="2")
    assert len(_shp_ids(first.content)) == 2
    following = get(
        world, "/fields", "coop_hp", format="shp", limit="2", cursor=first.headers["x-next-cursor"]
    )
    listed = [f["id"] for f in get(world, "/fields", "coop_hp", limit="4").json()]
    assert _shp_ids(first.content) + _shp_ids(following.content) == listed


def test_one_field_as_kml_shapefile_and_isoxml_reads_back_to_its_geojson(world: World) -> None:
    feature = get(world, "/fields/dt-hp-004", "farmer_hp00").json()
    outline = shape(feature["geometry"])
    kml = get(world, "/fields/dt-hp-004", "farmer_hp00", format="kml")
    assert kml.headers["content-type"] == KML
    ((name, _, geometry),) = kml_placemarks(kml.content)
    assert name == feature["properties"]["name"]
    assert same_shape(geometry, outline)
    (shp_geometry,) = gdal_read(
        get(world, "/fields/dt-hp-004", "farmer_hp00", format="shp").content
    )[2]
    assert same_shape(shp_geometry, outline)
    (pfd,) = taskdata(
        get(world, "/fields/dt-hp-004", "farmer_hp00", format="isoxml").content
    ).findall("PFD")
    (pln,) = pfd.findall("PLN")
    assert same_shape(pln_polygon(pln), outline)


def test_overlaps_come_as_json_only(world: World) -> None:
    response = get(world, "/fields", "operator", overlaps="true", format="kml")
    assert response.status_code == 422
    assert "overlaps=true answers JSON only" in response.json()["detail"]


# --- exports of coverage layers ------------------------------------------------------------


def _layers(world: World) -> dict[str, Any]:
    doc = get(
        world, "/fields/dt-hp-004/coverage", "farmer_hp00", format="geojson", **THE_DAY
    ).json()
    return {f["properties"]["kind"]: shape(f["geometry"]) for f in doc["features"]}


def test_coverage_layers_as_kml_and_shapefile_read_back_to_the_geojson_polygons(
    world: World,
) -> None:
    layers = _layers(world)
    assert {"covered", "overlap", "off_target"} <= set(layers)
    kml = get(world, "/fields/dt-hp-004/coverage", "farmer_hp00", format="kml", **THE_DAY)
    from_kml = {data["kind"]: geometry for _, data, geometry in kml_placemarks(kml.content)}
    shp = get(world, "/fields/dt-hp-004/coverage", "farmer_hp00", format="shp", **THE_DAY)
    _, rows, geometries = gdal_read(shp.content)
    from_shp = {row["kind"]: g for row, g in zip(rows, geometries, strict=True)}
    assert set(from_kml) == set(from_shp) == set(layers)
    for kind, geometry in layers.items():
        assert same_shape(from_kml[kind], geometry), kind
        assert same_shape(from_shp[kind], geometry), kind


def test_coverage_as_isoxml_is_the_fields_partfield_with_its_layers(world: World) -> None:
    layers = _layers(world)
    field = shape(get(world, "/fields/dt-hp-004", "farmer_hp00").json()["geometry"])
    response = get(world, "/fields/dt-hp-004/coverage", "farmer_hp00", format="isoxml", **THE_DAY)
    assert response.headers["content-type"] == "application/zip"
    (pfd,) = taskdata(response.content).findall("PFD")
    assert pfd.get("B") == "dt-hp-004"
    boundary = [p for p in pfd.findall("PLN") if p.get("A") == "1"]
    assert same_shape(pln_polygon(boundary[0]), field)
    by_kind: dict[str, list[Any]] = {}
    for pln in pfd.findall("PLN"):
        if pln.get("A") != "1":
            by_kind.setdefault(pln.get("B", ""), []).append(pln_polygon(pln))
    assert set(by_kind) == set(layers)
    for kind, polygons in by_kind.items():
        joined = polygons[0] if len(polygons) == 1 else shapely.MultiPolygon(polygons)
        assert same_shape(joined, layers[kind]), kind
