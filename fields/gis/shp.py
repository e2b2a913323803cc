"""ESRI Shapefile, zipped: GeoJSON polygons to ``.shp``/``.shx``/``.dbf``/``.prj``/``.cpg``
with pyshp, and a Shapefile's polygons and attributes back to GeoJSON features
(docs/gis.md, "Shapefile").

Written: one Polygon layer, WGS84 (the ``.prj`` is EPSG:4326 as ESRI WKT), attributes UTF-8
(``.cpg``) so Vietnamese names survive, one DBF column per property (names cut to DBF's 10
characters). Read: the one ``.shp`` of the archive with its ``.dbf``, ``.prj`` (required:
it must say WGS84) and ``.cpg`` (UTF-8 without one); every DBF column becomes a property.
"""

from __future__ import annotations

import io
import itertools
import re
import struct
import unicodedata
import zipfile
from collections.abc import Mapping
from datetime import date
from pathlib import PurePosixPath
from typing import Any, Final

import orjson
import shapefile
from pyproj import CRS
from pyproj.exceptions import CRSError

from fields.gis.features import check_count, collection, feature, polygons
from fields.gis.safe import GisFormatError, Limits, zip_entry

#: WGS84 (EPSG:4326) as ESRI WKT, what ArcGIS and QGIS write in a ``.prj``.
WGS84_PRJ: Final = (
    'GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,298.257223563]],'
    'PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]]'
)
#: DBF limits: field names of 10 ASCII characters, text of 254 bytes.
DBF_NAME_CHARS: Final = 10
DBF_TEXT_BYTES: Final = 254
_NOT_NAME: Final = re.compile(r"[^A-Za-z0-9_]")
_MISSING: Final[Any] = object()


def to_shapefile_zip(fc: Mapping[str, Any], *, name: str) -> bytes:
    """A zip of ``{name}.shp/.shx/.dbf/.prj/.cpg`` holding a FeatureCollection of
    Polygon/MultiPolygon features, one record each."""
    features = fc["features"]
    columns = _columns([f.get("properties") or {} for f in features])
    shp, shx, dbf = io.BytesIO(), io.BytesIO(), io.BytesIO()
    with shapefile.Writer(shp=shp, shx=shx, dbf=dbf, shapeType=shapefile.POLYGON) as writer:
        for column in columns:
            writer.field(column.dbf_name, column.kind, column.size, column.decimals)
        for f in features:
            props = f.get("properties") or {}
            # pyshp writes exteriors clockwise and holes counter-clockwise, as the format wants.
            writer.shape({"type": "MultiPolygon", "coordinates": polygons(f["geometry"])})
            writer.record(*(column.value(props.get(column.key)) for column in columns))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for ext, content in (
            ("shp", shp.getvalue()),
            ("shx", shx.getvalue()),
            ("dbf", dbf.getvalue()),
            ("prj", WGS84_PRJ.encode()),
            ("cpg", b"UTF-8"),
        ):
            archive.writestr(zip_entry(f"{name}.{ext}"), content)
    return out.getvalue()


class _Column:
    """One DBF column: the property it holds, its DBF name and type."""

    def __init__(self, key: str, dbf_name: str, values: list[Any]) -> None:
        self.key = key
        self.dbf_name = dbf_name
        self.decimals = 0
        if values and all(isinstance(v, bool) for v in values):
            self.kind, self.size = "L", 1
        elif values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            self.kind, self.size = "N", 20
        elif values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            self.kind, self.size, self.decimals = "N", 24, 10
        else:
            self.kind = "C"
            self.size = max([1, *(len(_bytes(self.text(v))) for v in values)])

    def text(self, value: Any) -> str:
        return value if isinstance(value, str) else orjson.dumps(value).decode()

    def value(self, value: Any) -> Any:
        """A property as this column's DBF value (text cut to 254 bytes; none: blank)."""
        if self.kind != "C":
            return value
        return "" if value is None else _bytes(self.text(value)).decode("utf-8")


def _bytes(text: str) -> bytes:
    """UTF-8 of ``text`` cut to DBF's 254 bytes on a character boundary."""
    return text.encode("utf-8")[:DBF_TEXT_BYTES].decode("utf-8", "ignore").encode("utf-8")


def _columns(rows: list[Mapping[str, Any]]) -> list[_Column]:
    """The DBF columns of every property met (first seen first), with unique DBF names."""
    keys: dict[str, list[Any]] = {}
    for props in rows:
        for k, v in props.items():
            keys.setdefault(k, [])
            if v is not None:
                keys[k].append(v)
    if not keys:
        keys["id"] = []  # a DBF needs a column, even for a layer without features
    taken: set[str] = set()
    out = []
    for key, values in keys.items():
        base = (_NOT_NAME.sub("_", key) or "field")[:DBF_NAME_CHARS]
        dbf_name, n = base, 1
        while dbf_name.lower() in taken:
            n += 1
            dbf_name = f"{base[: DBF_NAME_CHARS - len(str(n))]}{n}"
        taken.add(dbf_name.lower())
        out.append(_Column(key, dbf_name, values))
    return out


def read_shapefile(files: Mapping[str, bytes], limits: Limits, what: str) -> dict[str, Any]:
    """The records of the one Shapefile among ``files`` (paths inside a zip, or beside the
    ``.shp`` on disk) as a FeatureCollection; its ``.prj`` must say WGS84."""
    shps = [p for p in files if p.lower().endswith(".shp")]
    if len(shps) != 1:
        names = ", ".join(sorted(shps)[:5])
        raise GisFormatError(f"{what} holds {len(shps)} Shapefiles ({names}); send one per file")
    stem = shps[0][:-4]
    part = {
        ext: next((files[p] for p in files if p[:-4] == stem and p[-4:].lower() == f".{ext}"), None)
        for ext in ("dbf", "shx", "prj", "cpg")
    }
    shown = PurePosixPath(shps[0]).name
    if part["dbf"] is None:
        raise GisFormatError(
            f"{what} has no .dbf beside {shown}: the attributes (id, name, owner, coop) live there"
        )
    _check_wgs84(part["prj"], shown, what)
    encoding = _encoding(part["cpg"], what)
    try:
        reader = shapefile.Reader(
            shp=io.BytesIO(files[shps[0]]),
            shx=None if part["shx"] is None else io.BytesIO(part["shx"]),
            dbf=io.BytesIO(part["dbf"]),
            encoding=encoding,
        )
        with reader:
            return collection(_features(reader, limits, what))
    except (UnicodeDecodeError, shapefile.dbfFileException) as exc:
        if not isinstance(exc, UnicodeDecodeError) and "decode" not in str(exc):
            raise GisFormatError(f"{what}: the .dbf beside {shown} cannot be read") from exc
        raise GisFormatError(
            f"{what}: the .dbf text is not {encoding}; add a .cpg naming its encoding "
            "(e.g. UTF-8 or CP1258)"
        ) from exc
    except GisFormatError:
        raise
    # (pyshp warns of a damaged header, an error where warnings are errors, as in the tests)
    except (
        shapefile.ShapefileException,
        struct.error,
        ValueError,
        IndexError,
        EOFError,
        Warning,
    ) as exc:
        why = " ".join(str(exc).split())
        raise GisFormatError(f"{what}: {shown} cannot be read ({why[:160]})") from exc


def _features(reader: shapefile.Reader, limits: Limits, what: str) -> list[dict[str, Any]]:
    names = [f.name for f in reader.fields if f.name != "DeletionFlag"]
    out: list[dict[str, Any]] = []
    records = reader.iterRecords(deleted_as_None=True)
    pairs = itertools.zip_longest(reader.iterShapes(), records, fillvalue=_MISSING)
    for index, (shape, record) in enumerate(pairs):
        if shape is _MISSING or record is _MISSING:
            raise GisFormatError(
                f"{what}: the .shp and the .dbf hold different numbers of records (the "
                f"{'.shp' if shape is _MISSING else '.dbf'} ends at record {index}); export "
                "the layer again"
            )
        if record is None:
            continue  # a deleted record
        check_count(len(out) + 1, limits, what)
        props = {k: _property(v) for k, v in zip(names, list(record), strict=True)}
        if shape.shapeType == shapefile.NULL:
            geometry = None
        else:
            try:
                geometry = dict(shape.__geo_interface__)
            except Exception as exc:  # pyshp raises bare Exceptions for broken shapes
                raise GisFormatError(f"{what}: record {index} has no usable shape ({exc})") from exc
        out.append(feature(props, geometry))
    if not out:
        raise GisFormatError(f"{what} holds no records")
    return out


def _property(value: Any) -> Any:
    """A DBF value as a property: text stripped of DBF's padding and composed (NFC: the
    Windows Vietnamese code page stores tone marks as combining characters), dates as ISO
    text."""
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value.strip())
    if isinstance(value, date):
        return value.isoformat()
    return value


def _check_wgs84(prj: bytes | None, shown: str, what: str) -> None:
    """Refuse a layer whose ``.prj`` is missing, unreadable or not WGS84 (EPSG:4326)."""
    if prj is None:
        raise GisFormatError(
            f"{what} has no .prj beside {shown}, so its coordinate system is unknown; export "
            "it again in WGS84 (EPSG:4326) with its .prj"
        )
    try:
        crs = CRS.from_wkt(prj.decode("utf-8", "replace").strip())
    except CRSError as exc:
        raise GisFormatError(
            f"{what}: the .prj is not a coordinate system that can be read; export the layer "
            "again in WGS84 (EPSG:4326)"
        ) from exc
    if not crs.equals(CRS.from_epsg(4326), ignore_axis_order=True):
        code = crs.to_epsg()
        named = f"{crs.name!r}" + (f" (EPSG:{code})" if code else "")
        raise GisFormatError(
            f"{what} is in {named}, not WGS84: reproject it to WGS84 (EPSG:4326, longitude and "
            "latitude in degrees) and export it again"
        )


def _encoding(cpg: bytes | None, what: str) -> str:
    """The DBF's text encoding from its ``.cpg`` (UTF-8 without one)."""
    if cpg is None:
        return "utf-8"
    name = cpg.decode("ascii", "replace").strip()
    aliases = {"65001": "utf-8", "1258": "cp1258", "1252": "cp1252"}
    name = aliases.get(name, name)
    try:
        "".encode(name)
    except LookupError as exc:
        raise GisFormatError(
            f"{what}: the .cpg names an unknown encoding {name[:40]!r}; use UTF-8"
        ) from exc
    return name
