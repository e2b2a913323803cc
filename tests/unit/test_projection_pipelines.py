"""The local planes' PROJ pipelines, given directly for speed, transform exactly as the
CRS-to-CRS transformers PROJ resolves from the same definitions."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Transformer

from fields.projection import LocalPlane


@pytest.mark.parametrize(("lat0", "lon0"), [(21.08, 106.52), (21.13, 106.61), (-33.87, 151.21)])
def test_forward_and_inverse_match_proj_crs_transformers(lat0: float, lon0: float) -> None:
    crs = f"+proj=tmerc +lat_0={lat0} +lon_0={lon0} +k=1 +x_0=0 +y_0=0 +ellps=WGS84 +units=m"
    forward = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    inverse = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    rng = np.random.default_rng(7)
    lon = lon0 + rng.uniform(-0.05, 0.05, 1000)
    lat = lat0 + rng.uniform(-0.05, 0.05, 1000)
    plane = LocalPlane(lat0, lon0)
    x, y = plane.forward(lon, lat)
    ex, ey = forward.transform(lon, lat)
    np.testing.assert_allclose(x, ex, rtol=0, atol=1e-9)
    np.testing.assert_allclose(y, ey, rtol=0, atol=1e-9)
    back_lon, back_lat = plane.inverse(x, y)
    elon, elat = inverse.transform(x, y)
    np.testing.assert_allclose(back_lon, elon, rtol=0, atol=1e-12)
    np.testing.assert_allclose(back_lat, elat, rtol=0, atol=1e-12)
