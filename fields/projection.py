"""Metric planes for field geometry: a local transverse Mercator around each field.

UTM 48N (EPSG:32648) scales Đông Triều by ~0.9999 (1.5° east of the central meridian), which
loses ~180 ppm of area. A transverse Mercator with scale 1 centred near the field is exact
to well under 1 ppm within a few kilometres of its centre, costs the same through pyproj,
and is what every area here is computed in. The UTM zone is still reported (``utm_epsg``)
for exchange.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import Transformer

FloatArray = npt.NDArray[np.float64]

#: Plane centres are rounded to 0.01° (about 1 km), so the fields of one village share a plane
#: and its pyproj transformers (about 11 ms each to build, per thread). A field is then at
#: most ~0.8 km from its plane's centre, where a k=1 transverse Mercator's scale error is
#: (d/R)²/2 < 1e-8: far below anything an area or a distance here shows.
_CENTRE_DECIMALS = 2


def utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the WGS84 UTM zone holding (lon, lat): 326xx north, 327xx south."""
    if not (-180.0 <= lon <= 180.0 and -80.0 <= lat <= 84.0):
        raise ValueError(f"({lon}, {lat}) is outside the UTM range (lat -80..84)")
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return (32600 if lat >= 0 else 32700) + zone


@lru_cache(maxsize=4096)
def _transformers(lat0: float, lon0: float) -> tuple[Any, Any]:
    # The PROJ pipelines ``Transformer.from_crs("EPSG:4326", <this tmerc>, always_xy=True)``
    # resolves to (and its inverse), given directly: bit-identical results, built in ~0.3 ms
    # instead of ~35 ms each (no PROJ database look-up), which a town of 100,000 plots over
    # a few hundred planes notices (tests/unit/test_projection_pipelines.py).
    tmerc = f"+proj=tmerc +lat_0={lat0} +lon_0={lon0} +k=1 +x_0=0 +y_0=0 +ellps=WGS84"
    forward = Transformer.from_pipeline(
        f"+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad +step {tmerc}"
    )
    inverse = Transformer.from_pipeline(
        f"+proj=pipeline +step +inv {tmerc} +step +proj=unitconvert +xy_in=rad +xy_out=deg"
    )
    return forward, inverse


@dataclass(frozen=True, slots=True)
class LocalPlane:
    """Transverse Mercator (k=1, WGS84 ellipsoid) centred on (lat0, lon0); metres east/north."""

    lat0: float
    lon0: float

    @classmethod
    def around(cls, lon: float, lat: float) -> LocalPlane:
        """The plane centred on a point, rounded so nearby callers share a cached transformer."""
        return cls(round(lat, _CENTRE_DECIMALS), round(lon, _CENTRE_DECIMALS))

    def forward(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """WGS84 degrees to plane metres."""
        x, y = _transformers(self.lat0, self.lon0)[0].transform(
            np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
        )
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)

    def inverse(self, x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Plane metres to WGS84 degrees (lon, lat)."""
        lon, lat = _transformers(self.lat0, self.lon0)[1].transform(
            np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        )
        return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)

    def to_plane(self, geometry: Any) -> Any:
        """A WGS84 shapely geometry in plane metres."""
        return shapely.transform(geometry, self._forward_xy)

    def to_wgs84(self, geometry: Any) -> Any:
        """A plane-metre shapely geometry in WGS84 degrees."""
        return shapely.transform(geometry, self._inverse_xy)

    def _forward_xy(self, coords: FloatArray) -> FloatArray:
        x, y = self.forward(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    def _inverse_xy(self, coords: FloatArray) -> FloatArray:
        lon, lat = self.inverse(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])


def metres_per_degree(lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Approximate metres per degree of longitude and latitude at ``lat`` (for gap checks)."""
    phi = np.radians(np.asarray(lat, dtype=np.float64))
    per_lat = 111_132.92 - 559.82 * np.cos(2 * phi) + 1.175 * np.cos(4 * phi)
    per_lon = 111_412.84 * np.cos(phi) - 93.5 * np.cos(3 * phi)
    return per_lon, per_lat
