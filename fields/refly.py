"""The re-fly list (pure): the missed pieces of a job's fields big enough to fly again, each
with a suggested flight line, in an order a pilot can fly them.

A *piece* is one polygon of a field's missed area (the coverage engine's ``missed``: the
field's target not under any footprint, slivers under 1 m² already dropped) of at least
``min_m2``. Its flight line is the long axis of its minimum rotated rectangle (leaving out
tails narrower than ``TAIL_M``): from the middle of one short side to the middle of the
other, so a pass along it covers a strip the drone skipped. Pieces are listed field by
field (in the order given, the job's), and within a field by nearest neighbour: from where
the pilot is (the end of the previous piece's line, or ``start``) to the nearer end of the
nearest remaining line, flown from that end. Without a ``start`` the tour begins with the
first field's largest piece, flown towards the field's other pieces.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import shapely
from shapely.geometry import mapping

from fields.coverage import GEOJSON_DECIMALS, polygonal_or_empty, rfc7946_polygons
from fields.projection import LocalPlane
from fields.registry import SAO_M2

#: The default smallest piece listed (m²): smaller gaps are not worth a flight.
DEFAULT_MIN_M2: Final = 25.0
#: The largest ``min_m2`` accepted (m², 100 ha: larger than any plot).
MAX_MIN_M2: Final = 1_000_000.0
#: The most pieces one list holds; more means ``min_m2`` is too small to be useful.
MAX_PIECES: Final = 2_000
#: Tails of a piece narrower than this (m) are left out of its flight line's rectangle:
#: with RTK, hairline gaps along pass edges and slivers at the field's edge hang on a
#: missed strip and would widen and shift its rectangle (a 5 m strip read 15 m wide).
TAIL_M: Final = 1.0

Point = tuple[float, float]


class TooManyPiecesError(ValueError):
    """More pieces than ``MAX_PIECES`` reach ``min_m2``."""


@dataclass(frozen=True, slots=True, eq=False)
class FieldMissed:
    """One field's missed area, in its metric plane."""

    field_id: str
    plane: LocalPlane
    missed: Any  # shapely (Multi)Polygon in plane metres, possibly empty
    name: str = ""


@dataclass(frozen=True, slots=True, eq=False)
class ReflyPiece:
    """One piece to fly again; points are WGS84 (lon, lat)."""

    order: int  # 1-based place in the tour
    field_id: str
    field_name: str
    area_m2: float  # the exact metric area
    centroid: Point
    start: Point
    end: Point
    length_m: float
    width_m: float
    heading_deg: float  # compass bearing from start to end, clockwise from north
    geometry: Any  # the piece in WGS84, RFC 7946

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: coordinates to 7 decimals, lengths to the centimetre."""
        return {
            "order": self.order,
            "field_id": self.field_id,
            "field_name": self.field_name,
            "area_m2": round(self.area_m2, 1),
            "area_sao": round(self.area_m2 / SAO_M2, 3),
            "centroid": _latlon(self.centroid),
            "line": {
                "start": _latlon(self.start),
                "end": _latlon(self.end),
                "length_m": round(self.length_m, 2),
                "heading_deg": _bearing(self.heading_deg),
            },
            "width_m": round(self.width_m, 2),
        }

    def features(self) -> list[dict[str, Any]]:
        """Two GeoJSON Features: the piece (``kind`` ``missed``) and its flight line
        (``kind`` ``line``), both with the piece's ``order``, field and figures."""
        props = {
            "order": self.order,
            "field_id": self.field_id,
            "field_name": self.field_name,
            "area_m2": round(self.area_m2, 1),
            "length_m": round(self.length_m, 2),
            "width_m": round(self.width_m, 2),
            "heading_deg": _bearing(self.heading_deg),
        }
        line = [[round(c, GEOJSON_DECIMALS) for c in p] for p in (self.start, self.end)]
        return [
            {
                "type": "Feature",
                "properties": {**props, "kind": "missed"},
                "geometry": None if self.geometry.is_empty else mapping(self.geometry),
            },
            {
                "type": "Feature",
                "properties": {**props, "kind": "line"},
                "geometry": {"type": "LineString", "coordinates": line},
            },
        ]


@dataclass(frozen=True, slots=True, eq=False)
class _Piece:
    """A piece in its field's plane, before ordering."""

    polygon: Any
    a: Point  # the ends of its flight line (metres)
    b: Point
    length_m: float
    width_m: float


def flight_line(polygon: Any, tail_m: float = TAIL_M) -> tuple[Point, Point, float, float]:
    """(one end, the other end, length, width) of the long axis of the minimum rotated
    rectangle of a polygon (metres) without its tails narrower than ``tail_m``."""
    core = polygonal_or_empty(
        shapely.buffer(
            shapely.buffer(polygon, -tail_m / 2, join_style="round"),
            tail_m / 2,
            join_style="round",
        )
    )
    rect = shapely.oriented_envelope(polygon if core.is_empty else core)
    if rect.geom_type != "Polygon":  # a degenerate piece: a segment or a point
        coords = np.asarray(rect.coords, dtype=np.float64)
        a, b = coords[0], coords[-1]
        return (float(a[0]), float(a[1])), (float(b[0]), float(b[1])), _dist(a, b), 0.0
    c = np.asarray(rect.exterior.coords, dtype=np.float64)[:4]
    e1, e2 = float(np.hypot(*(c[1] - c[0]))), float(np.hypot(*(c[2] - c[1])))
    # Midpoints of the two short sides: (c0, c1) and (c2, c3) when e1 is the short one.
    if e1 <= e2:
        m1, m2, length, width = (c[0] + c[1]) / 2, (c[2] + c[3]) / 2, e2, e1
    else:
        m1, m2, length, width = (c[1] + c[2]) / 2, (c[3] + c[0]) / 2, e1, e2
    return (float(m1[0]), float(m1[1])), (float(m2[0]), float(m2[1])), length, width


def _dist(a: Any, b: Any) -> float:
    return float(math.hypot(float(a[0]) - float(b[0]), float(a[1]) - float(b[1])))


def heading(a: Point, b: Point) -> float:
    """Compass bearing (degrees clockwise from north, 0-360) from ``a`` to ``b`` in a plane
    whose y axis points north (a local transverse Mercator: grid north is true north to
    well under 0.01° near its centre)."""
    bearing = math.degrees(math.atan2(b[0] - a[0], b[1] - a[1])) % 360.0
    return 0.0 if bearing >= 360.0 else bearing  # -1e-15 % 360 is 360.0


def _pieces(missed: Any, min_m2: float) -> list[_Piece]:
    parts = [p for p in shapely.get_parts(missed) if p.geom_type == "Polygon"]
    out = []
    for p in parts:
        if float(p.area) < min_m2:
            continue
        a, b, length, width = flight_line(p)
        out.append(_Piece(p, a, b, length, width))
    return out


def _tour(pieces: list[_Piece], here: Point | None) -> list[tuple[_Piece, bool]]:
    """Nearest-neighbour order: each piece and whether it is flown from ``b`` to ``a``."""
    left = list(pieces)
    out: list[tuple[_Piece, bool]] = []
    if here is None:
        first = max(left, key=lambda p: (float(p.polygon.area), -p.a[0], -p.a[1]))
        left.remove(first)
        # Fly it towards the others: finish at the end nearer to their centre.
        if left:
            cx = float(np.mean([p.polygon.centroid.x for p in left]))
            cy = float(np.mean([p.polygon.centroid.y for p in left]))
            reverse = _dist(first.a, (cx, cy)) < _dist(first.b, (cx, cy))
        else:
            reverse = (first.b[0], first.b[1]) < (first.a[0], first.a[1])
        out.append((first, reverse))
        here = first.a if reverse else first.b
    while left:
        ends = np.array([[p.a[0], p.a[1], p.b[0], p.b[1]] for p in left])
        da = np.hypot(ends[:, 0] - here[0], ends[:, 1] - here[1])
        db = np.hypot(ends[:, 2] - here[0], ends[:, 3] - here[1])
        i = int(np.argmin(np.minimum(da, db)))
        piece = left.pop(i)
        reverse = bool(db[i] < da[i])
        out.append((piece, reverse))
        here = piece.a if reverse else piece.b
    return out


def refly_pieces(
    fields: Sequence[FieldMissed],
    min_m2: float = DEFAULT_MIN_M2,
    *,
    start: Point | None = None,
) -> list[ReflyPiece]:
    """The missed pieces of at least ``min_m2`` of each field, in flying order (module
    docstring); ``start`` (lon, lat) is where the pilot begins, if known. Raises
    ``TooManyPiecesError`` past ``MAX_PIECES``."""
    if not min_m2 > 0:
        raise ValueError(f"min_m2 must be more than 0, got {min_m2!r}")
    found = [(f, _pieces(f.missed, min_m2)) for f in fields]
    total = sum(len(p) for _, p in found)
    if total > MAX_PIECES:
        raise TooManyPiecesError(
            f"{total} missed pieces reach min_m2 {min_m2:g} m², more than the {MAX_PIECES}"
            " one list holds; ask for a larger min_m2"
        )
    out: list[ReflyPiece] = []
    here = start  # lon, lat
    for f, pieces in found:
        if not pieces:
            continue
        local = None
        if here is not None:
            x, y = f.plane.forward(here[0], here[1])
            local = (float(x), float(y))
        for piece, reverse in _tour(pieces, local):
            a, b = (piece.b, piece.a) if reverse else (piece.a, piece.b)
            lon, lat = f.plane.inverse(
                [a[0], b[0], piece.polygon.centroid.x], [a[1], b[1], piece.polygon.centroid.y]
            )
            ll = [(float(lon[i]), float(lat[i])) for i in range(3)]
            out.append(
                ReflyPiece(
                    order=len(out) + 1,
                    field_id=f.field_id,
                    field_name=f.name,
                    area_m2=float(piece.polygon.area),
                    centroid=ll[2],
                    start=ll[0],
                    end=ll[1],
                    length_m=piece.length_m,
                    width_m=piece.width_m,
                    heading_deg=heading(a, b),
                    geometry=rfc7946_polygons(f.plane.to_wgs84(piece.polygon)),
                )
            )
            here = ll[1]
    return out


def polygon_collection(collection: Mapping[str, Any]) -> dict[str, Any]:
    """A re-fly FeatureCollection for the GIS formats, which take polygons only: each
    missed piece with its flight line's ends (``start_lat`` … ``end_lon``) as properties."""
    lines = {
        f["properties"]["order"]: f["geometry"]["coordinates"]
        for f in collection["features"]
        if f["properties"]["kind"] == "line"
    }
    features = []
    for f in collection["features"]:
        props = f["properties"]
        if props["kind"] != "missed" or f["geometry"] is None:
            continue
        (start_lon, start_lat), (end_lon, end_lat) = lines[props["order"]]
        ends = {
            "start_lat": start_lat,
            "start_lon": start_lon,
            "end_lat": end_lat,
            "end_lon": end_lon,
        }
        features.append({**f, "properties": {**props, **ends}})
    return {"type": "FeatureCollection", "features": features}


def feature_collection(pieces: Sequence[ReflyPiece], **members: Any) -> dict[str, Any]:
    """The pieces and their flight lines as one RFC 7946 FeatureCollection; ``members``
    ride along at its top level (``job``, ``min_m2``)."""
    features = [feature for p in pieces for feature in p.features()]
    return {"type": "FeatureCollection", **members, "features": features}


def _bearing(degrees: float) -> float:
    """A bearing to 0.1°, 359.96° read as 0.0°."""
    return round(degrees, 1) % 360.0


def _latlon(p: Point) -> dict[str, float]:
    return {"lat": round(p[1], GEOJSON_DECIMALS), "lon": round(p[0], GEOJSON_DECIMALS)}
