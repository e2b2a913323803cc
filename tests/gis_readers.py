"""Independent readers and writers of GIS files for the tests of ``fields.gis``: GDAL (through
pyogrio) for Shapefile and KML, the standard library's ElementTree for KML and ISOXML. None
of them shares code with what is tested."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np
import pyogrio.raw
import shapely

KML_NS = "{http://www.opengis.net/kml/2.2}"


def gdal_read(data: bytes) -> tuple[dict[str, Any], list[dict[str, Any]], list[Any]]:
    """GDAL's reading of a file (a zipped Shapefile, a KML): the layer's metadata, each
    feature's attributes and its geometry (shapely)."""
    meta, _, wkb, columns = pyogrio.raw.read(io.BytesIO(data))
    names = list(meta["fields"])
    rows = [
        {name: _plain(column[i]) for name, column in zip(names, columns, strict=True)}
        for i in range(len(wkb))
    ]
    return meta, rows, [shapely.from_wkb(g) for g in wkb]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def gdal_write(
    folder: Path, name: str, driver: str, features: list[tuple[dict[str, str], Any]], crs: str
) -> Path:
    """A file written by GDAL (text attributes, polygons given as shapely geometries in
    ``crs``); the path of the main file."""
    suffix = {"ESRI Shapefile": "shp", "KML": "kml", "LIBKML": "kml"}[driver]
    path = folder / f"{name}.{suffix}"
    keys = list(features[0][0])
    columns = [np.array([props[k] for props, _ in features], dtype=object) for k in keys]
    wkb = np.array([shapely.to_wkb(shapely.force_2d(g)) for _, g in features], dtype=object)
    options = {"ENCODING": "UTF-8"} if driver == "ESRI Shapefile" else None
    pyogrio.raw.write(
        str(path),
        wkb,
        columns,
        keys,
        driver=driver,
        geometry_type="MultiPolygon" if driver != "ESRI Shapefile" else "Polygon",
        crs=crs,
        layer_options=options,
    )
    return path


def zipped(folder: Path, stem: str, *, leave_out: tuple[str, ...] = ()) -> bytes:
    """The files ``{stem}.*`` of a folder in a zip (except the extensions ``leave_out``)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.glob(f"{stem}.*")):
            if path.suffix.lstrip(".") not in leave_out:
                archive.write(path, path.name)
    return out.getvalue()


def kml_placemarks(data: bytes) -> list[tuple[str, dict[str, str], Any]]:
    """Each placemark of a KML as (name, ExtendedData, shapely geometry), by ElementTree."""
    root = ET.fromstring(data)  # noqa: S314 -- our own export, read back
    out = []
    for pm in root.iter(f"{KML_NS}Placemark"):
        name = pm.findtext(f"{KML_NS}name") or ""
        data_ = {
            d.get("name", ""): d.findtext(f"{KML_NS}value") or "" for d in pm.iter(f"{KML_NS}Data")
        }
        polygons = []
        for polygon in pm.iter(f"{KML_NS}Polygon"):
            outer = polygon.find(f"{KML_NS}outerBoundaryIs/{KML_NS}LinearRing")
            assert outer is not None
            holes = polygon.findall(f"{KML_NS}innerBoundaryIs/{KML_NS}LinearRing")
            polygons.append(shapely.Polygon(_kml_ring(outer), [_kml_ring(h) for h in holes]))
        geometry = polygons[0] if len(polygons) == 1 else shapely.MultiPolygon(polygons)
        out.append((name, data_, geometry))
    return out


def _kml_ring(ring: ET.Element) -> list[tuple[float, float]]:
    text = ring.findtext(f"{KML_NS}coordinates") or ""
    return [(float(t.split(",")[0]), float(t.split(",")[1])) for t in text.split()]


def taskdata(data: bytes) -> ET.Element:
    """The root of the ``TASKDATA.XML`` in an ISOXML zip, by ElementTree."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        (name,) = [n for n in archive.namelist() if n.upper().endswith("TASKDATA.XML")]
        return ET.fromstring(archive.read(name))  # noqa: S314 -- our own export


def pln_polygon(pln: ET.Element) -> Any:
    """A ``PLN``'s polygon: its exterior ``LSG`` (type 1) and interior ones (type 2)."""
    rings: dict[str, list[list[tuple[float, float]]]] = {"1": [], "2": []}
    for lsg in pln.findall("LSG"):
        points = [(float(p.get("D", "")), float(p.get("C", ""))) for p in lsg.findall("PNT")]
        rings[lsg.get("A", "")].append(points)
    (shell,) = rings["1"]
    return shapely.Polygon(shell, rings["2"])


def same_shape(a: Any, b: Any) -> bool:
    """Equal geometry to 1e-7 degree (about 1 cm), whatever the ring order or start."""
    return bool(shapely.equals_exact(shapely.normalize(a), shapely.normalize(b), 1e-7))
