"""KML (Google Earth): GeoJSON polygons to a KML document with fastkml, and a KML document's
placemarks back to GeoJSON features (docs/gis.md, "KML").

Written: one ``Placemark`` per feature, named by its ``name`` (else id, else kind), every
property in ``ExtendedData``, styled by ``kind``. Read: every ``Placemark`` anywhere in the
document (folders included); properties from ``ExtendedData`` (``Data`` and ``SimpleData``),
``name`` from ``<name>`` when ``ExtendedData`` has none, ``id`` from the placemark's ``id``
attribute when ``ExtendedData`` has none. KML is WGS84 longitude, latitude by definition
(OGC KML 2.2); altitudes are dropped.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

import orjson
import pygeoif
from fastkml import (
    KML,
    Data,
    Document,
    ExtendedData,
    LineStyle,
    Placemark,
    PolyStyle,
    Style,
    StyleUrl,
)

from fields.gis.features import check_count, collection, feature, label, number
from fields.gis.safe import GisFormatError, Limits, local_name

MEDIA_TYPE: Final = "application/vnd.google-earth.kml+xml"
#: Outline and fill colours (KML's aabbggrr) by ``kind``; anything else is drawn as a field.
_COLOURS: Final = {
    "field": ("ff00ffff", "2600ffff"),
    "no_spray": ("ff0000ff", "660000ff"),
    "covered": ("ff00aa00", "8000aa00"),
    "missed": ("ff0000ff", "990000ff"),
    "overlap": ("ff0088ff", "990088ff"),
    "off_target": ("ffaa00aa", "99aa00aa"),
}
#: Decimals of written coordinates: 1e-7 degree, about 1 cm (as the API's GeoJSON).
DECIMALS: Final = 7
_GEOMETRIES: Final = frozenset(
    {"Polygon", "MultiGeometry", "Point", "LineString", "LinearRing", "Model", "Track"}
)


def to_kml(fc: Mapping[str, Any], *, name: str) -> bytes:
    """A KML document (UTF-8) of a FeatureCollection of Polygon/MultiPolygon features."""
    placemarks = []
    for index, f in enumerate(fc["features"]):
        props = f.get("properties") or {}
        kind = props.get("kind")
        data = [Data(name=str(k), value=_text(v)) for k, v in props.items() if v is not None]
        placemarks.append(
            Placemark(
                name=label(props, index),
                style_url=StyleUrl(url=f"#{kind if kind in _COLOURS else 'field'}"),
                extended_data=ExtendedData(elements=data) if data else None,
                geometry=pygeoif.shape(f["geometry"]),
            )
        )
    styles = [
        Style(id=kind, styles=[LineStyle(color=line, width=2.0), PolyStyle(color=fill)])
        for kind, (line, fill) in _COLOURS.items()
    ]
    document = KML(features=[Document(name=name, styles=styles, features=placemarks)])
    text = document.to_string(prettyprint=True, precision=DECIMALS)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + text.encode("utf-8")


def _text(value: Any) -> str:
    """A property as KML ``Data`` text: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def read_kml(root: Any, limits: Limits, what: str = "the KML") -> dict[str, Any]:
    """The placemarks of a parsed KML document (``safe.parse_xml``) as a FeatureCollection."""
    if local_name(root) != "kml":
        raise GisFormatError(f"{what}'s top element is <{local_name(root)}>, not <kml>")
    features = []
    for index, placemark in enumerate(_all(root, "Placemark")):
        check_count(index + 1, limits, what)
        props = _extended_data(placemark)
        if "name" not in props:
            props["name"] = _child_text(placemark, "name")
        if "id" not in props:
            props["id"] = placemark.get("id")
        features.append(feature(props, _geometry(placemark)))
    if not features:
        raise GisFormatError(f"{what} holds no Placemark: draw the fields as polygons")
    return collection(features)


def _all(element: Any, name: str) -> Iterator[Any]:
    """Every descendant with this local name, in document order."""
    return (e for e in element.iter() if local_name(e) == name)


def _children(element: Any, name: str) -> list[Any]:
    return [c for c in element if local_name(c) == name]


def _child_text(element: Any, name: str) -> str | None:
    found = _children(element, name)
    return None if not found or found[0].text is None else str(found[0].text).strip()


def _extended_data(placemark: Any) -> dict[str, Any]:
    """``Data``/``value`` and ``SchemaData``/``SimpleData`` pairs of a placemark."""
    props: dict[str, Any] = {}
    for extended in _children(placemark, "ExtendedData"):
        for data in _all(extended, "Data"):
            key = data.get("name")
            if key:
                props[key] = _child_text(data, "value")
        for simple in _all(extended, "SimpleData"):
            key = simple.get("name")
            if key:
                props[key] = None if simple.text is None else str(simple.text).strip()
    return props


def _geometry(placemark: Any) -> dict[str, Any] | None:
    """The placemark's geometry as GeoJSON: Polygon, MultiPolygon (a MultiGeometry of
    polygons), or what else it holds (Point, LineString), for the registry to refuse."""
    found = [c for c in placemark if local_name(c) in _GEOMETRIES]
    if not found:
        return None
    geometry = found[0]
    kind = local_name(geometry)
    if kind == "Polygon":
        return {"type": "Polygon", "coordinates": _polygon(geometry)}
    if kind == "MultiGeometry":
        parts = list(_parts(geometry))
        others = sorted({local_name(p) for p in parts} - {"Polygon"})
        if others:
            return {"type": f"MultiGeometry with {', '.join(others)}", "coordinates": []}
        return {"type": "MultiPolygon", "coordinates": [_polygon(p) for p in parts]}
    if kind in ("Point", "LineString", "LinearRing"):
        coords = _coordinates(geometry)
        return {"type": kind, "coordinates": coords[0] if kind == "Point" and coords else coords}
    return {"type": kind, "coordinates": []}


def _parts(multi: Any) -> Iterator[Any]:
    """The geometries of a MultiGeometry, nested ones flattened."""
    for child in multi:
        if local_name(child) == "MultiGeometry":
            yield from _parts(child)
        elif local_name(child) in _GEOMETRIES:
            yield child


def _polygon(polygon: Any) -> list[list[list[float | str]]]:
    rings = [
        _coordinates(ring)
        for boundary in ("outerBoundaryIs", "innerBoundaryIs")
        for side in _children(polygon, boundary)
        for ring in _children(side, "LinearRing")
    ]
    if not _children(polygon, "outerBoundaryIs"):
        rings.insert(0, [])  # the registry names the missing outer ring
    return rings


def _coordinates(element: Any) -> list[list[float | str]]:
    """A ``coordinates`` text, ``lon,lat[,alt]`` tuples separated by whitespace, as
    [lon, lat] positions (altitude dropped; a value that is no number kept as text)."""
    text = _child_text(element, "coordinates") or ""
    return [[number(v) for v in t.split(",")[:2]] for t in text.split()]
