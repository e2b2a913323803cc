"""``fields.gis``: fields and coverage layers to KML, zipped Shapefile and ISOXML, read back by
independent readers (GDAL, ElementTree) to the same geometry and names; files written by
GDAL or by hand read into features the registry validates; files that are malformed, not
WGS84 or too large refused naming what to fix."""

from __future__ import annotations

import io
import re
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
import shapely
from shapely.geometry import box, mapping, shape

from fields import gis
from fields.coverage import rfc7946_polygons
from fields.gis.taskdata import MAX_DESIGNATOR
from fields.registry import FieldValidationError, parse_fields
from fields.synthetic import DONG_TRIEU, collection, feature
from tests.gis_readers import (
    gdal_read,
    gdal_write,
    kml_placemarks,
    pln_polygon,
    same_shape,
    taskdata,
    zipped,
)

NAME = "Ruộng ông Hùng — Xứ Đồng Cửa"
HOLED = box(0, 0, 100, 60).difference(box(30, 20, 60, 40))
PARTS = shapely.MultiPolygon([box(200, 0, 260, 40), box(280, 0, 320, 40)])


def _field(fid: str, geometry_m: Any, **props: Any) -> dict[str, Any]:
    """A feature as the API hands it out (outline on the 1e-7° grid, RFC 7946)."""
    f = feature(fid, geometry_m, **props)
    f["geometry"] = mapping(rfc7946_polygons(shape(f["geometry"])))
    return f


FIELDS = collection(
    _field("dt-001", box(0, 100, 80, 150), name=NAME, owner="nd-hung", coop="htx-a", crop="lúa"),
    _field("dt-002", HOLED, name="Thửa có ao giữa", owner="nd-lan", coop="htx-a"),
    _field("dt-003", PARTS, name="Hai mảnh bờ kênh", owner="nd-lan", coop="htx-a"),
    _field("ao-ca", box(100, 100, 130, 130), kind="no_spray", coop="htx-a", name="Ao cá"),
)
BY_ID = {f["properties"]["id"]: f for f in FIELDS["features"]}


def geometry_of(fid: str) -> Any:
    return shape(BY_ID[fid]["geometry"])


def exported(fmt: gis.ExportFormat, fc: dict[str, Any] = FIELDS) -> bytes:
    return gis.export(fc, fmt, name="Đông Triều").content


def registered(data: bytes) -> dict[str, Any]:
    """The fields of a file, through the reader and then the registry (as the API does)."""
    registry = parse_fields(gis.read(data, gis.API_LIMITS).collection)
    return {f.id: f for f in (*registry.fields, *registry.no_spray)}


# --- KML -----------------------------------------------------------------------------------


def test_kml_reads_back_with_elementtree_to_the_same_geometry_and_vietnamese_names() -> None:
    placemarks = kml_placemarks(exported("kml"))
    assert [p[0] for p in placemarks] == [NAME, "Thửa có ao giữa", "Hai mảnh bờ kênh", "Ao cá"]
    for name, data, geometry in placemarks:
        assert data["name"] == name
        assert same_shape(geometry, geometry_of(data["id"]))
    assert len(placemarks[1][2].interiors) == 1
    assert len(placemarks[2][2].geoms) == 2
    assert placemarks[3][1]["kind"] == "no_spray"


def test_kml_reads_back_with_gdal_to_the_same_geometry() -> None:
    _, rows, geometries = gdal_read(exported("kml"))
    assert rows[0]["Name"] == NAME
    assert [r["owner"] for r in rows][:3] == ["nd-hung", "nd-lan", "nd-lan"]
    for fid, geometry in zip(BY_ID, geometries, strict=True):
        assert same_shape(geometry, geometry_of(fid))


def test_kml_round_trip_through_the_registry_keeps_every_field() -> None:
    fields = registered(exported("kml"))
    assert set(fields) == set(BY_ID)
    assert fields["dt-001"].name == NAME
    assert (fields["dt-001"].owner, fields["dt-001"].coop, fields["dt-001"].crop) == (
        "nd-hung",
        "htx-a",
        "lúa",
    )
    assert fields["ao-ca"].kind == "no_spray"
    for fid, f in fields.items():
        assert same_shape(f.geometry, geometry_of(fid))


def test_a_kml_written_by_gdal_imports_with_its_attributes(tmp_path: Path) -> None:
    outline = shapely.Polygon(DONG_TRIEU.to_wgs84(HOLED))
    path = gdal_write(
        tmp_path, "htx", "KML", [({"id": "g-1", "coop": "htx-a"}, outline)], "EPSG:4326"
    )
    path.write_text(path.read_text().replace("<Placemark", "<Placemark><name>Ruộng Gò</name>", 1))
    fields = registered(path.read_bytes())
    assert fields["g-1"].coop == "htx-a"
    assert same_shape(fields["g-1"].geometry, outline)


GOOGLE_EARTH = """<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2" xmlns:gx="http://www.google.com/kml/ext/2.2">
<Document><name>Ruộng.kml</name><Folder><name>Thôn Đông</name>
 <Placemark id="ge-1"><name>Ruộng bà Tư</name><styleUrl>#m_ylw-pushpin</styleUrl>
  <Polygon><tessellate>1</tessellate><outerBoundaryIs><LinearRing><coordinates>
   106.52,21.08,0 106.5205,21.08,0 106.5205,21.0804,0 106.52,21.0804,0 106.52,21.08,0
  </coordinates></LinearRing></outerBoundaryIs></Polygon>
 </Placemark>
 <Folder><Placemark><name>Giếng</name><Point><coordinates>106.52,21.08,0</coordinates></Point>
 </Placemark></Folder>
</Folder></Document></kml>
"""


def test_a_google_earth_file_gives_names_ids_and_outlines_from_nested_folders() -> None:
    features = gis.read(GOOGLE_EARTH.encode(), gis.API_LIMITS).collection["features"]
    assert [f["properties"] for f in features] == [
        {"name": "Ruộng bà Tư", "id": "ge-1"},
        {"name": "Giếng"},
    ]
    expected = box(106.52, 21.08, 106.5205, 21.0804)
    assert same_shape(shape(features[0]["geometry"]), expected)


def test_a_point_placemark_is_refused_by_the_registry_naming_its_geometry_type() -> None:
    doc = gis.read(GOOGLE_EARTH.encode(), gis.API_LIMITS).collection
    with pytest.raises(FieldValidationError) as caught:
        parse_fields(doc)
    assert (
        "feature 1: geometry type 'Point'; expected Polygon or MultiPolygon"
        in caught.value.problems
    )


def test_coordinates_that_are_not_numbers_are_named_by_the_registry() -> None:
    text = GOOGLE_EARTH.replace("106.5205,21.0804,0", "106.5205,north,0", 1)
    doc = gis.read(text.encode(), gis.API_LIMITS).collection
    with pytest.raises(FieldValidationError) as caught:
        parse_fields({**doc, "features": doc["features"][:1]})
    assert "'north'" in caught.value.problems[0]
    assert caught.value.problems[0].startswith("feature 0 (ge-1)")


def test_a_kmz_reads_its_doc_kml() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as kmz:
        kmz.writestr("files/other.kml", "<kml/>")
        kmz.writestr("doc.kml", GOOGLE_EARTH)
    read = gis.read(out.getvalue(), gis.API_LIMITS)
    assert read.format == "KMZ"
    assert read.collection["features"][0]["properties"]["name"] == "Ruộng bà Tư"


# --- Shapefile -----------------------------------------------------------------------------


def test_shapefile_reads_back_with_gdal_in_wgs84_with_vietnamese_names() -> None:
    meta, rows, geometries = gdal_read(exported("shp"))
    assert meta["crs"] == "EPSG:4326"
    assert meta["encoding"] == "UTF-8"
    assert [r["name"] for r in rows] == [NAME, "Thửa có ao giữa", "Hai mảnh bờ kênh", "Ao cá"]
    assert [r["kind"] for r in rows] == [None, None, None, "no_spray"]
    for row, geometry in zip(rows, geometries, strict=True):
        assert same_shape(geometry, geometry_of(row["id"]))


def test_shapefile_zip_holds_the_five_files_with_a_wgs84_prj_and_utf8_cpg() -> None:
    with zipfile.ZipFile(io.BytesIO(exported("shp"))) as archive:
        names = sorted(archive.namelist())
        assert names == [f"Dong-Trieu.{e}" for e in ("cpg", "dbf", "prj", "shp", "shx")]
        assert archive.read("Dong-Trieu.cpg") == b"UTF-8"
        assert archive.read("Dong-Trieu.prj").startswith(b'GEOGCS["GCS_WGS_1984"')


def test_shapefile_numbers_and_flags_stay_typed_for_gis_tools() -> None:
    layer = _field("c", box(0, 0, 50, 50), kind="missed", area_ha=0.25, uncertain=True)
    _, rows, _ = gdal_read(exported("shp", collection(layer)))
    assert (rows[0]["area_ha"], rows[0]["uncertain"]) == (0.25, True)


def test_a_name_longer_than_a_dbf_text_is_cut_on_a_character_boundary() -> None:
    long_name = "Ruộng " * 60  # 360 characters, 540 bytes of UTF-8
    _, rows, _ = gdal_read(
        exported("shp", collection(_field("x", box(0, 0, 50, 50), name=long_name)))
    )
    assert long_name.startswith(rows[0]["name"])
    assert 250 <= len(rows[0]["name"].encode()) <= 254


def test_shapefile_round_trip_through_the_registry_keeps_every_field() -> None:
    fields = registered(exported("shp"))
    assert set(fields) == set(BY_ID)
    assert fields["dt-001"].name == NAME
    assert fields["ao-ca"].kind == "no_spray"
    assert "area_ha" not in fields["dt-001"].properties
    for fid, f in fields.items():
        assert same_shape(f.geometry, geometry_of(fid))


def _gdal_shapefile(folder: Path, crs: str, geometry: Any) -> Path:
    props = {"id": "g-7", "name": "Ruộng Gò Đình", "coop": "htx-a"}
    return gdal_write(folder, "plots", "ESRI Shapefile", [(props, geometry)], crs)


def test_a_shapefile_written_by_gdal_imports_with_its_attributes(tmp_path: Path) -> None:
    outline = shapely.Polygon(DONG_TRIEU.to_wgs84(HOLED))
    _gdal_shapefile(tmp_path, "EPSG:4326", outline)
    fields = registered(zipped(tmp_path, "plots"))
    assert fields["g-7"].name == "Ruộng Gò Đình"
    assert same_shape(fields["g-7"].geometry, outline)


def test_a_shapefile_in_utm_is_refused_naming_its_system_and_what_to_do(tmp_path: Path) -> None:
    _gdal_shapefile(tmp_path, "EPSG:32648", box(640_000, 2_330_000, 640_100, 2_330_050))
    with pytest.raises(gis.GisFormatError) as caught:
        gis.read(zipped(tmp_path, "plots"), gis.API_LIMITS)
    message = str(caught.value)
    assert "'WGS 84 / UTM zone 48N' (EPSG:32648), not WGS84" in message
    assert "reproject it to WGS84 (EPSG:4326" in message


def test_a_shapefile_in_vn2000_is_refused(tmp_path: Path) -> None:
    _gdal_shapefile(tmp_path, "EPSG:4756", box(106.52, 21.08, 106.521, 21.081))
    with pytest.raises(gis.GisFormatError, match=r"'VN-2000' \(EPSG:4756\), not WGS84"):
        gis.read(zipped(tmp_path, "plots"), gis.API_LIMITS)


@pytest.mark.parametrize(
    ("left_out", "expected"),
    [("prj", "has no .prj beside plots.shp"), ("dbf", "has no .dbf beside plots.shp")],
)
def test_a_shapefile_without_its_prj_or_dbf_is_refused(
    tmp_path: Path, left_out: str, expected: str
) -> None:
    _gdal_shapefile(tmp_path, "EPSG:4326", box(106.52, 21.08, 106.521, 21.081))
    with pytest.raises(gis.GisFormatError, match=expected):
        gis.read(zipped(tmp_path, "plots", leave_out=(left_out,)), gis.API_LIMITS)


@pytest.mark.parametrize(
    "warnings_as",
    [
        pytest.param("error", id="warnings as errors"),
        pytest.param(
            "ignored",
            id="warnings shown",
            marks=pytest.mark.filterwarnings("ignore::shapefile.PossiblyCorruptFileHeader"),
        ),
    ],
)
def test_a_damaged_shp_is_refused_not_a_crash(tmp_path: Path, warnings_as: str) -> None:
    _gdal_shapefile(tmp_path, "EPSG:4326", box(106.52, 21.08, 106.521, 21.081))
    shp = tmp_path / "plots.shp"
    shp.write_bytes(shp.read_bytes()[:120])
    (tmp_path / "plots.shx").unlink()
    with pytest.raises(gis.GisFormatError, match=re.escape("plots.shp cannot be read")):
        gis.read(zipped(tmp_path, "plots"), gis.API_LIMITS)


def test_a_dbf_with_fewer_records_than_shapes_is_refused(tmp_path: Path) -> None:
    two = collection(_field("s1", box(0, 0, 50, 50)), _field("s2", box(60, 0, 110, 50)))
    one = collection(_field("s1", box(0, 0, 50, 50)))
    with (
        zipfile.ZipFile(io.BytesIO(exported("shp", two))) as a,
        zipfile.ZipFile(io.BytesIO(exported("shp", one))) as b,
    ):
        files = {n: a.read(n) for n in a.namelist()}
        files["Dong-Trieu.dbf"] = b.read("Dong-Trieu.dbf")
    with pytest.raises(gis.GisFormatError, match="different numbers of records"):
        gis.read_shapefile(files, gis.API_LIMITS, "the zip")


def test_two_shapefiles_in_one_zip_are_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("a.shp", b"")
        archive.writestr("b.shp", b"")
    with pytest.raises(gis.GisFormatError, match="holds 2 Shapefiles"):
        gis.read(out.getvalue(), gis.API_LIMITS)


def test_a_dbf_in_the_windows_vietnamese_code_page_is_read_by_its_cpg(tmp_path: Path) -> None:
    outline = box(106.52, 21.08, 106.521, 21.081)
    props = {"id": "cp-1", "name": "Ruộng Đồng"}
    gdal_write(tmp_path, "cp", "ESRI Shapefile", [(props, outline)], "EPSG:4326")
    # Rewrite the UTF-8 text as CP1258 (same record length: the DBF pads with spaces), where
    # ô is one byte and the tone marks (dot below, grave) are combining characters.
    dbf = tmp_path / "cp.dbf"
    utf8, cp = "Ruộng Đồng".encode(), b"Ru\xf4\xf2ng \xd0\xf4\xccng"
    dbf.write_bytes(dbf.read_bytes().replace(utf8, cp + b" " * (len(utf8) - len(cp))))
    (tmp_path / "cp.cpg").write_text("CP1258")
    assert registered(zipped(tmp_path, "cp"))["cp-1"].name == "Ruộng Đồng"
    (tmp_path / "cp.cpg").unlink()
    with pytest.raises(
        gis.GisFormatError, match=re.escape("the .dbf text is not utf-8; add a .cpg")
    ):
        gis.read(zipped(tmp_path, "cp"), gis.API_LIMITS)


# --- ISOXML --------------------------------------------------------------------------------


def test_isoxml_reads_back_with_elementtree_as_partfields_of_the_same_geometry() -> None:
    root = taskdata(exported("isoxml"))
    assert root.tag == "ISO11783_TaskData"
    assert root.get("VersionMajor") == "4"
    owners = {c.get("A"): c.get("B") for c in root.findall("CTR")}
    coops = {f.get("A"): f.get("B") for f in root.findall("FRM")}
    crops = {c.get("A"): c.get("B") for c in root.findall("CTP")}
    partfields = root.findall("PFD")
    assert [p.get("B") for p in partfields] == list(BY_ID)
    assert partfields[0].get("C") == NAME
    assert owners[partfields[0].get("E")] == "nd-hung"
    assert coops[partfields[0].get("F")] == "htx-a"
    assert crops[partfields[0].get("G")] == "lúa"
    for pfd in partfields:
        plns = pfd.findall("PLN")
        kinds = {p.get("A") for p in plns}
        assert kinds == ({"11"} if pfd.get("B") == "ao-ca" else {"1"})
        polygons = [pln_polygon(p) for p in plns]
        outline = polygons[0] if len(polygons) == 1 else shapely.MultiPolygon(polygons)
        assert same_shape(outline, geometry_of(pfd.get("B", "")))


def test_isoxml_areas_are_the_fields_areas_in_square_metres() -> None:
    root = taskdata(exported("isoxml"))
    areas = {p.get("B"): int(p.get("D", "")) for p in root.findall("PFD")}
    assert areas["dt-001"] == pytest.approx(80 * 50, rel=1e-3)
    assert areas["dt-002"] == pytest.approx(100 * 60 - 30 * 20, rel=1e-3)
    assert areas["dt-003"] == pytest.approx(60 * 40 + 40 * 40, rel=1e-3)


def test_isoxml_designators_are_cut_to_the_standards_32_characters() -> None:
    long_name = "Ruộng nhà ông Nguyễn Văn Hùng ở xứ Đồng Cửa"
    root = taskdata(exported("isoxml", collection(_field("x", box(0, 0, 50, 50), name=long_name))))
    assert root.findall("PFD")[0].get("C") == long_name[:MAX_DESIGNATOR]


def test_coverage_layers_are_polygons_of_their_fields_partfield() -> None:
    layers = collection(
        BY_ID["dt-001"],
        _field("", box(0, 100, 40, 150), field_id="dt-001", kind="covered", area_ha=0.2),
        _field("", box(40, 100, 80, 150), field_id="dt-001", kind="missed", area_ha=0.2),
    )
    for layer in layers["features"][1:]:
        del layer["properties"]["id"]
    (pfd,) = taskdata(exported("isoxml", layers)).findall("PFD")
    assert [(p.get("A"), p.get("B")) for p in pfd.findall("PLN")] == [
        ("1", None),
        ("8", "covered"),
        ("2", "missed"),
    ]
    assert same_shape(
        pln_polygon(pfd.findall("PLN")[2]), DONG_TRIEU.to_wgs84(box(40, 100, 80, 150))
    )


def test_isoxml_round_trip_through_the_registry_keeps_every_field() -> None:
    fields = registered(exported("isoxml"))
    assert set(fields) == set(BY_ID)
    assert (fields["dt-001"].name, fields["dt-001"].owner, fields["dt-001"].crop) == (
        NAME,
        "nd-hung",
        "lúa",
    )
    assert fields["ao-ca"].kind == "no_spray"
    assert fields["ao-ca"].scope == "coop"
    for fid, f in fields.items():
        assert same_shape(f.geometry, geometry_of(fid))


VERSION_3 = """<?xml version="1.0" encoding="UTF-8"?>
<ISO11783_TaskData VersionMajor="3" VersionMinor="0" ManagementSoftwareManufacturer="FMIS"
 ManagementSoftwareVersion="1" DataTransferOrigin="1">
 <CTR A="CTR1" B="nd-tu"/><FRM A="FRM1" B="htx-a" I="CTR1"/>
 <PFD A="PFD1" B="v3-field" C="Ruộng bà Tư" D="2000" E="CTR1" F="FRM1">
  <PLN A="1"><LSG A="1">
   <PNT A="2" C="21.08" D="106.52"/><PNT A="2" C="21.08" D="106.5205"/>
   <PNT A="2" C="21.0804" D="106.5205"/><PNT A="2" C="21.0804" D="106.52"/>
  </LSG></PLN>
 </PFD>
</ISO11783_TaskData>
"""


def test_a_version_3_taskdata_with_implicitly_closed_rings_imports() -> None:
    fields = registered(VERSION_3.encode())
    f = fields["v3-field"]
    assert (f.name, f.owner, f.coop) == ("Ruộng bà Tư", "nd-tu", "htx-a")
    assert same_shape(f.geometry, box(106.52, 21.08, 106.5205, 21.0804))


def test_external_partfield_files_are_merged() -> None:
    main = VERSION_3.replace('VersionMajor="3"', 'VersionMajor="4"')
    start, end = main.index("<PFD"), main.index("</PFD>") + len("</PFD>")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(
            "TASKDATA/TASKDATA.XML", main[:start] + '<XFR A="PFD00001" B="1"/>' + main[end:]
        )
        archive.writestr("TASKDATA/PFD00001.XML", f"<XFC>{main[start:end]}</XFC>")
    assert set(registered(out.getvalue())) == {"v3-field"}


@pytest.mark.filterwarnings("ignore::xsdata.exceptions.ConverterWarning")
def test_an_unknown_polygon_type_is_refused_where_warnings_are_only_shown() -> None:
    text = VERSION_3.replace('<PLN A="1">', '<PLN A="99">')
    with pytest.raises(gis.GisFormatError, match="partfield PFD1: polygon type '99' is unknown"):
        gis.read(text.encode(), gis.API_LIMITS)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('<PLN A="1">', '<PLN A="99">'), "not valid ISOXML: Failed to convert value"),
        (('VersionMajor="3"', 'VersionMajor="5"'), "VersionMajor is '5'"),
        (("<PFD ", '<XFR A="PFD00001" B="1"/><PFD '), "refers to external files"),
    ],
)
def test_isoxml_it_cannot_read_is_refused_naming_why(
    change: tuple[str, str], expected: str
) -> None:
    with pytest.raises(gis.GisFormatError, match=expected):
        gis.read(VERSION_3.replace(*change).encode(), gis.API_LIMITS)


# --- unsafe, malformed and oversized files -------------------------------------------------

ENTITIES = """<?xml version="1.0"?>
<!DOCTYPE kml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<kml xmlns="http://www.opengis.net/kml/2.2"><Placemark><name>&b;&secret;</name></Placemark></kml>
"""


def test_a_doctype_with_entities_is_refused_before_anything_is_expanded() -> None:
    with pytest.raises(gis.GisFormatError, match="declares a DOCTYPE"):
        gis.read(ENTITIES.encode(), gis.API_LIMITS)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"<kml><Placemark></kml>", "is not well-formed XML"),
        (b"<gpx/>", "<gpx> top element: expected <kml> (KML) or <ISO11783_TaskData>"),
        (b'<kml xmlns="http://www.opengis.net/kml/2.2"><Document/></kml>', "holds no Placemark"),
        (b"id,name\n1,a\n", "is neither GeoJSON, KML, ISOXML nor a zip"),
        (b"PK\x03\x04 not really a zip", "is not a readable zip archive"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_naming_why(data: bytes, expected: str) -> None:
    with pytest.raises(gis.GisFormatError, match=re.escape(expected)):
        gis.read(data, gis.API_LIMITS)


def test_a_zip_of_other_files_says_what_it_expected() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(gis.GisFormatError, match=r"a zip of notes.txt: expected a Shapefile"):
        gis.read(out.getvalue(), gis.API_LIMITS)


def test_a_zip_bomb_is_refused_once_it_unpacks_past_the_limit() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("doc.kml", b"<kml>" + b" " * (gis.API_LIMITS.max_bytes + 1) + b"</kml>")
    assert len(out.getvalue()) < 100_000
    with pytest.raises(gis.GisTooLargeError, match="unpacks to more than 32 MiB"):
        gis.read(out.getvalue(), gis.API_LIMITS)


def test_a_file_with_more_features_than_allowed_stops_being_read() -> None:
    placemark = "<Placemark><name>p</name></Placemark>"
    text = f'<kml xmlns="http://www.opengis.net/kml/2.2">{placemark * 4}</kml>'
    with pytest.raises(gis.GisFormatError, match="more than 3 features; at most 3 per document"):
        gis.read(text.encode(), gis.Limits(max_bytes=1 << 20, max_features=3))


def test_export_file_names_are_plain_ascii() -> None:
    assert gis.file_stem("Đông Triều / ruộng lúa") == "Dong-Trieu-ruong-lua"
    assert gis.export(FIELDS, "isoxml", name="dt-001").filename == "dt-001.isoxml.zip"


def test_the_same_features_export_to_the_same_bytes() -> None:
    # Zip members carry a fixed date: an export seconds later is the same file.
    formats: tuple[gis.ExportFormat, ...] = ("kml", "shp", "isoxml")
    first = {fmt: exported(fmt) for fmt in formats}
    time.sleep(2.1)  # zip timestamps have a two-second resolution
    assert {fmt: exported(fmt) for fmt in formats} == first
