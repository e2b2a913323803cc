"""Local metric frames and the simulator's view of a fields file.

Planning happens in metres on a transverse Mercator tangent to the field (scale 1 on its
central meridian, so areas within a few kilometres are exact to well under 1 ppm), and
only the published samples are turned back into WGS84 degrees.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import orjson
import shapely
from numpy.typing import NDArray
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon, shape

#: The packaged sample fields: plots of two cooperatives near Đông Triều, Quảng Ninh.
DEFAULT_FIELDS_PATH: Final = Path(__file__).resolve().parent / "data" / "dong_trieu_fields.geojson"

FloatArray = NDArray[np.float64]


class LocalFrame:
    """East/north metres around an origin (lat0, lon0), to and from WGS84 degrees."""

    def __init__(self, lat0: float, lon0: float) -> None:
        self.lat0 = lat0
        self.lon0 = lon0
        proj = f"+proj=tmerc +lat_0={lat0!r} +lon_0={lon0!r} +k=1 +x_0=0 +y_0=0 +ellps=WGS84"
        self._fwd = Transformer.from_crs("EPSG:4326", proj, always_xy=True)
        self._inv = Transformer.from_crs(proj, "EPSG:4326", always_xy=True)

    def to_local(self, lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Degrees (arrays) to east/north metres."""
        x, y = self._fwd.transform(lon, lat)
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)

    def to_wgs84(self, x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        """East/north metres (arrays) to (lon, lat) degrees."""
        lon, lat = self._inv.transform(x, y)
        return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)

    def polygon_to_local(self, geom: Polygon | MultiPolygon) -> Polygon | MultiPolygon:
        """A WGS84 (lon, lat) geometry in this frame's metres."""
        result: Polygon | MultiPolygon = shapely.transform(
            geom, self._fwd.transform, interleaved=False
        )
        return result

    def polygon_to_wgs84(self, geom: Polygon | MultiPolygon) -> Polygon | MultiPolygon:
        """A metric geometry of this frame back in WGS84 (lon, lat)."""
        result: Polygon | MultiPolygon = shapely.transform(
            geom, self._inv.transform, interleaved=False
        )
        return result


@dataclass(frozen=True, slots=True)
class SimField:
    """A sprayable plot as the simulator needs it: identity and WGS84 geometry."""

    id: str
    name: str
    coop: str
    owner: str
    crop: str
    geometry: Polygon | MultiPolygon


@dataclass(frozen=True, slots=True)
class FieldSet:
    """The plots of a fields file and its no-spray zones (canals, fish ponds, houses)."""

    fields: tuple[SimField, ...]
    no_spray: tuple[Polygon | MultiPolygon, ...]

    def coops(self) -> list[str]:
        """The cooperatives that own at least one plot, sorted."""
        return sorted({f.coop for f in self.fields})

    def of_coop(self, coop: str) -> list[SimField]:
        """The plots of one cooperative, in file order."""
        return [f for f in self.fields if f.coop == coop]

    def by_id(self, field_id: str) -> SimField:
        """The plot with this id (KeyError naming the id and the choices otherwise)."""
        for f in self.fields:
            if f.id == field_id:
                return f
        raise KeyError(f"no field {field_id!r}; known: {', '.join(f.id for f in self.fields)}")


class FieldsFileError(ValueError):
    """A fields file the simulator cannot fly over."""


def load_fields(path: Path = DEFAULT_FIELDS_PATH) -> FieldSet:
    """Read a GeoJSON FeatureCollection of plots and ``"kind": "no_spray"`` zones."""
    try:
        doc = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise FieldsFileError(f"{path}: cannot read GeoJSON: {exc}") from exc
    return parse_fields(doc, str(path))


def parse_fields(doc: Any, source: str = "<geojson>") -> FieldSet:
    """The ``FieldSet`` of a parsed GeoJSON Feature or FeatureCollection."""
    if not isinstance(doc, Mapping):
        raise FieldsFileError(f"{source}: top level is not a JSON object")
    features: Sequence[Any]
    if doc.get("type") == "FeatureCollection":
        features = doc.get("features") or []
    elif doc.get("type") == "Feature":
        features = [doc]
    else:
        raise FieldsFileError(f"{source}: expected a Feature or FeatureCollection")
    plots: list[SimField] = []
    zones: list[Polygon | MultiPolygon] = []
    for index, feature in enumerate(features):
        props = feature.get("properties") or {}
        where = f"{source}: feature {index} ({props.get('id', 'no id')})"
        try:
            geom = shape(feature["geometry"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise FieldsFileError(f"{where}: bad geometry: {exc}") from exc
        if not isinstance(geom, Polygon | MultiPolygon) or not shapely.is_valid(geom):
            reason = shapely.is_valid_reason(geom)
            raise FieldsFileError(f"{where}: not a valid (Multi)Polygon: {reason}")
        if props.get("kind") == "no_spray":
            zones.append(geom)
            continue
        missing = [k for k in ("id", "coop") if not props.get(k)]
        if missing:
            raise FieldsFileError(f"{where}: missing properties {missing}")
        plots.append(
            SimField(
                id=str(props["id"]),
                name=str(props.get("name", props["id"])),
                coop=str(props["coop"]),
                owner=str(props.get("owner", "")),
                crop=str(props.get("crop", "")),
                geometry=geom,
            )
        )
    if not plots:
        raise FieldsFileError(f"{source}: no sprayable plots (only no_spray zones or empty)")
    return FieldSet(tuple(plots), tuple(zones))


def frame_for(geom: Polygon | MultiPolygon) -> LocalFrame:
    """The local frame centred on a WGS84 geometry's centroid."""
    c = geom.centroid
    return LocalFrame(c.y, c.x)
