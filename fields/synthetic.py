"""Deterministic synthetic fields and flights with known answers, for tests and benchmarks.

Geometry is drawn in metres on a local plane at Đông Triều and converted to WGS84, so a
test states its expected areas in plain metres. This is not the simulator (``simulators/``):
it has no physics, only straight legs sampled at a fixed rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import shapely
from shapely.geometry import mapping

from fields.coverage import SampleArrays, sample_arrays
from fields.projection import LocalPlane
from storage.records import FIX_QUALITIES

#: A reference plane at Đông Triều (21.08°N, 106.52°E).
DONG_TRIEU: Final = LocalPlane(21.08, 106.52)
T0_MS: Final = 1_764_300_000_000


def feature(
    fid: str, geometry_m: Any, plane: LocalPlane = DONG_TRIEU, **props: Any
) -> dict[str, Any]:
    """A GeoJSON Feature of a geometry drawn in ``plane`` metres."""
    return {
        "type": "Feature",
        "properties": {"id": fid, **props},
        "geometry": mapping(plane.to_wgs84(geometry_m)),
    }


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    """A FeatureCollection of the given features."""
    return {"type": "FeatureCollection", "features": list(features)}


@dataclass
class Flight:
    """A track built leg by leg: every leg starts at the current position, sampled at ``hz``."""

    hz: float = 10.0
    flow_lpm: float = 6.0
    swath_m: float = 6.0
    drone: int = 0
    t_ms: int = T0_MS
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)
    ts: list[int] = field(default_factory=list)
    on: list[bool] = field(default_factory=list)

    def line(
        self, a: tuple[float, float], b: tuple[float, float], *, speed: float, spraying: bool
    ) -> Flight:
        """Samples from a to b inclusive at ``speed`` m/s (the last step may be shorter)."""
        length = float(np.hypot(b[0] - a[0], b[1] - a[1]))
        step = speed / self.hz
        n = max(1, int(np.ceil(length / step - 1e-9)))
        frac = np.minimum(np.arange(n + 1) * step / max(length, 1e-12), 1.0)
        if length == 0:
            frac = np.zeros(1)
        dt = 1000.0 / self.hz
        for f in frac:
            self.x.append(a[0] + (b[0] - a[0]) * float(f))
            self.y.append(a[1] + (b[1] - a[1]) * float(f))
            self.ts.append(self.t_ms)
            self.on.append(spraying)
            self.t_ms += round(dt)
        return self

    def boustrophedon(
        self,
        x0: float,
        x1: float,
        lines_y: list[float] | np.ndarray[Any, Any],
        *,
        speed: float = 5.0,
        turn_speed: float = 2.0,
    ) -> Flight:
        """Spray along y = each of ``lines_y`` from x0 to x1 and back, sprayer off in turns."""
        for k, y in enumerate(lines_y):
            a, b = ((x0, y), (x1, y)) if k % 2 == 0 else ((x1, y), (x0, y))
            if k:
                self.line((self.x[-1], self.y[-1]), a, speed=turn_speed, spraying=False)
            self.line(a, b, speed=speed, spraying=True)
        return self

    def spray_seconds(self) -> float:
        """Spray-on time by the engine's definition (intervals to the next sample, ≤ 2 s)."""
        ts = np.asarray(self.ts, dtype=np.float64)
        dt = np.minimum(np.diff(ts, append=ts[-1] + (ts[-1] - ts[-2])) / 1000.0, 2.0)
        return float(dt[np.asarray(self.on)].sum())

    def samples(
        self,
        plane: LocalPlane = DONG_TRIEU,
        *,
        noise_m: float = 0.0,
        seed: int = 0,
        fix: str | None = None,
    ) -> SampleArrays:
        """The flight as engine input; optional Gaussian position noise (metres, per axis)."""
        x, y = np.asarray(self.x), np.asarray(self.y)
        if noise_m:
            rng = np.random.default_rng(seed)
            x = x + rng.normal(0, noise_m, len(x))
            y = y + rng.normal(0, noise_m, len(y))
        lon, lat = plane.inverse(x, y)
        n = len(x)
        return sample_arrays(
            self.ts,
            lat,
            lon,
            self.on,
            flow_lpm=np.full(n, self.flow_lpm),
            swath_m=np.full(n, self.swath_m),
            drone=np.full(n, self.drone),
            fix=np.full(n, -1 if fix is None else FIX_QUALITIES.index(fix)),
        )


def concat(*parts: SampleArrays) -> SampleArrays:
    """Several sample sets as one."""
    return sample_arrays(
        np.concatenate([p.ts_ms for p in parts]),
        np.concatenate([p.lat for p in parts]),
        np.concatenate([p.lon for p in parts]),
        np.concatenate([p.spraying for p in parts]),
        flow_lpm=np.concatenate([p.flow_lpm for p in parts]),
        swath_m=np.concatenate([p.swath_m for p in parts]),
        drone=np.concatenate([p.drone for p in parts]),
        fix=np.concatenate([p.fix for p in parts]),
    )


def take(s: SampleArrays, index: Any) -> SampleArrays:
    """A subset (or reordering) of samples."""
    return SampleArrays(
        ts_ms=s.ts_ms[index],
        lat=s.lat[index],
        lon=s.lon[index],
        spraying=s.spraying[index],
        flow_lpm=s.flow_lpm[index],
        swath_m=s.swath_m[index],
        drone=s.drone[index],
        fix=s.fix[index],
    )


def rectangle(width: float, height: float, x0: float = 0.0, y0: float = 0.0) -> Any:
    """An axis-aligned rectangle in metres."""
    return shapely.box(x0, y0, x0 + width, y0 + height)
