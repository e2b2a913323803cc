"""GIS formats for fields, coverage layers and re-fly lists: GeoJSON FeatureCollections of
polygons to and from KML, zipped Shapefile and ISO 11783-10 TaskData (docs/gis.md).

Pure: a FeatureCollection in, bytes out (``export``); bytes in, a FeatureCollection out
(``read``), which then goes through the field registry's validation like any GeoJSON.
Untrusted files are read within ``Limits`` (``fields.gis.safe``); a file that cannot be read
raises ``GisFormatError`` (``GisTooLargeError`` for size) naming what to fix.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Final, Literal

import orjson

from fields.gis.kml import MEDIA_TYPE as KML_MEDIA_TYPE
from fields.gis.kml import read_kml, to_kml
from fields.gis.safe import (
    GisFormatError,
    GisTooLargeError,
    Limits,
    is_zip,
    local_name,
    parse_xml,
    unzip,
)
from fields.gis.shp import read_shapefile, to_shapefile_zip
from fields.gis.taskdata import ROOT as TASKDATA_ROOT
from fields.gis.taskdata import read_root, read_taskdata, to_taskdata_zip

__all__ = [
    "API_LIMITS",
    "EXPORT_FORMATS",
    "FILE_LIMITS",
    "KML_MEDIA_TYPE",
    "READ_MEDIA_TYPES",
    "ExportFormat",
    "Exported",
    "GisFormatError",
    "GisTooLargeError",
    "Imported",
    "Limits",
    "export",
    "file_stem",
    "read",
    "read_shapefile",
]

ExportFormat = Literal["geojson", "kml", "shp", "isoxml"]
EXPORT_FORMATS: Final[tuple[ExportFormat, ...]] = ("geojson", "kml", "shp", "isoxml")

#: What one API request may unpack to (its body is at most 8 MiB): far more than a
#: document at the registry's limits (200,000 positions) takes in any of the formats.
API_LIMITS: Final = Limits(max_bytes=32 << 20, max_features=5_000)
#: What a file given to ``agridrone fields import`` may unpack to: a town's plot register.
FILE_LIMITS: Final = Limits(max_bytes=1 << 30, max_features=None)

#: Media types ``POST /api/v1/fields`` reads besides GeoJSON; the content decides the format.
READ_MEDIA_TYPES: Final = frozenset(
    {
        KML_MEDIA_TYPE,
        "application/vnd.google-earth.kmz",
        "application/zip",
        "application/x-zip-compressed",
        "application/octet-stream",
        "application/xml",
        "text/xml",
    }
)
_SAFE_NAME: Final = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class Exported:
    """A file to hand out: its bytes, media type and a file name."""

    content: bytes
    media_type: str
    filename: str


@dataclass(frozen=True, slots=True)
class Imported:
    """A file read: which format it was (for messages) and its features."""

    format: str
    collection: dict[str, Any]


def export(fc: Mapping[str, Any], fmt: ExportFormat, *, name: str) -> Exported:
    """A FeatureCollection of Polygon/MultiPolygon features as a file of format ``fmt``;
    ``name`` names the file (and the KML document, the Shapefile layer)."""
    stem = file_stem(name)
    if fmt == "kml":
        return Exported(to_kml(fc, name=name), KML_MEDIA_TYPE, f"{stem}.kml")
    if fmt == "shp":
        return Exported(to_shapefile_zip(fc, name=stem), "application/zip", f"{stem}.shp.zip")
    if fmt == "isoxml":
        return Exported(to_taskdata_zip(fc, name=stem), "application/zip", f"{stem}.isoxml.zip")
    return Exported(orjson.dumps(fc), "application/geo+json", f"{stem}.geojson")


def file_stem(name: str) -> str:
    """``name`` as a file name: ASCII letters (Vietnamese ones without their marks), digits,
    ``_`` and ``-``."""
    plain = unicodedata.normalize("NFKD", name.replace("Đ", "D").replace("đ", "d"))
    ascii_only = plain.encode("ascii", "ignore").decode()
    return _SAFE_NAME.sub("-", ascii_only).strip("-")[:100] or "agridrone"


def read(data: bytes, limits: Limits, *, what: str = "the file") -> Imported:
    """The features of a KML, KMZ, zipped Shapefile or ISOXML TaskData (zipped, or its
    ``TASKDATA.XML`` alone), told apart by content, never by name."""
    if len(data) > limits.max_bytes:
        raise GisTooLargeError(
            f"{what} is over the limit of {limits.max_bytes >> 20} MiB: split it into several"
        )
    if is_zip(data):
        return _read_zip(unzip(data, what, limits), limits, what)
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head != b"<":
        raise GisFormatError(
            f"{what} is neither GeoJSON, KML, ISOXML nor a zip (of a Shapefile, an ISOXML "
            "TaskData or a KMZ)"
        )
    return _read_xml(parse_xml(data, what), limits, what)


def _read_xml(root: Any, limits: Limits, what: str) -> Imported:
    name = local_name(root)
    if name == "kml":
        return Imported("KML", read_kml(root, limits, what))
    if name == TASKDATA_ROOT:
        return Imported("ISOXML", read_root(root, limits, what))
    raise GisFormatError(
        f"{what} is XML with a <{name}> top element: expected <kml> (KML) or <{TASKDATA_ROOT}> "
        "(ISOXML)"
    )


def _read_zip(files: dict[str, bytes], limits: Limits, what: str) -> Imported:
    names = [PurePosixPath(p).name.lower() for p in files]
    if any(n.endswith(".shp") for n in names):
        return Imported("Shapefile", read_shapefile(files, limits, what))
    if "taskdata.xml" in names:
        return Imported("ISOXML", read_taskdata(files, limits, what))
    kmls = sorted((p for p in files if p.lower().endswith(".kml")), key=_kmz_order)
    if kmls:
        root = parse_xml(files[kmls[0]], what)
        return Imported("KMZ", read_kml(root, limits, what))
    shown = ", ".join(sorted(files)[:5]) or "nothing"
    raise GisFormatError(
        f"{what} is a zip of {shown}: expected a Shapefile (.shp with .dbf and .prj), an ISOXML "
        "TASKDATA.XML or a KMZ (.kml)"
    )


def _kmz_order(path: str) -> tuple[bool, int, str]:
    """A KMZ's main document first: ``doc.kml``, else the least nested ``.kml``."""
    return (PurePosixPath(path).name.lower() != "doc.kml", path.count("/"), path)
