"""What the format modules share: features as the GeoJSON registry reads them, labels, and
the properties an import keeps."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Final

from fields.gis.safe import GisFormatError, Limits

#: Properties an export adds for people (computed from the outline) that an import drops:
#: the registry computes them again, and stored copies would go stale at the next redraw.
COMPUTED: Final = frozenset({"area_ha", "area_sao"})


def collection(features: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of ``features``."""
    return {"type": "FeatureCollection", "features": list(features)}


def feature(properties: Mapping[str, Any], geometry: dict[str, Any] | None) -> dict[str, Any]:
    """A GeoJSON Feature with the properties an import keeps (``imported``)."""
    return {"type": "Feature", "properties": imported(properties), "geometry": geometry}


def imported(properties: Mapping[str, Any]) -> dict[str, Any]:
    """Properties as read from a file: empty values (a DBF column or a KML Data left blank)
    are left out, as are the computed areas (``COMPUTED``)."""
    return {k: v for k, v in properties.items() if v not in (None, "") and k not in COMPUTED}


def label(properties: Mapping[str, Any], index: int) -> str:
    """What a feature is called on a map: its name, else its id, else its kind."""
    for key in ("name", "id", "kind"):
        value = properties.get(key)
        if value not in (None, ""):
            return str(value)
    return f"feature {index}"


def number(text: str) -> float | str:
    """A coordinate read from text: the number, or the text itself when it is not a finite
    number, so the registry names the vertex (every problem is reported the same way)."""
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


def polygons(geometry: Mapping[str, Any]) -> list[list[list[list[float]]]]:
    """The polygons (each a list of rings) of a GeoJSON Polygon or MultiPolygon; exports
    take polygons only."""
    kind = geometry.get("type")
    if kind == "Polygon":
        return [geometry["coordinates"]]
    if kind == "MultiPolygon":
        return list(geometry["coordinates"])
    raise ValueError(f"only Polygon and MultiPolygon features can be exported, not {kind!r}")


def check_count(count: int, limits: Limits, what: str) -> None:
    """Stop reading once a file holds more features than ``limits`` allow."""
    if limits.max_features is not None and count > limits.max_features:
        raise GisFormatError(
            f"{what} holds more than {limits.max_features} features; at most "
            f"{limits.max_features} per document: split it into several imports"
        )
