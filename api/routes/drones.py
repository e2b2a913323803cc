"""Drones: where each one was last seen, whether it is online, and where it flew.

Drone ids are unique only within a cooperative, so one drone's path carries both:
``/drones/{coop}/{drone}``. A cooperative sees its own drones and an operator every drone;
any other caller gets 404, exactly as for a drone that does not exist (farmers will see
drones through the flights over their fields).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

import numpy as np
import numpy.typing as npt
from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel

from api.auth import Principal, PrincipalDep, can_see_drone
from api.deps import MetadataDep, StoreDep
from api.times import WindowDep, rfc3339, to_ms
from fields.coverage import CoverageParams
from fields.projection import metres_per_degree
from storage.contract import TelemetryStore
from storage.records import DroneLastSeen, Sample

router = APIRouter(tags=["drones"])

#: Consecutive samples further apart than this (time or distance) are not joined by a
#: line: the coverage engine's pass rule, so a drawn spray line is exactly a counted pass.
TRACK_GAP_S: Final = CoverageParams().max_gap_s
TRACK_JUMP_M: Final = CoverageParams().max_jump_m

#: At most this many positions in one track answer; longer tracks are thinned.
MAX_TRACK_POINTS: Final = 20_000

DOWNSAMPLE_RULE: Final = (
    "every line keeps its first and last position and every stride-th position between;"
    " stride is the smallest that brings the answer to at most max_points positions"
)

_ALL_TIME_END: Final = 2**62
# Status changes are rare: look back a little first, then further, then over all time.
_STATUS_LOOKBACK_MS: Final = (2 * 86_400_000, 90 * 86_400_000, None)

DroneId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="drone id")]
CoopId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="cooperative id")]


class DronePosition(BaseModel):
    """A drone's latest stored sample."""

    coop: str
    drone: str
    last_seen: str
    lat: float
    lon: float
    battery_pct: float | None


class DroneDetail(BaseModel):
    """One drone: registration, latest sample and the state its status topic last reported."""

    coop: str
    drone: str
    registered: bool
    swath_m: float | None
    last_seen: str | None
    lat: float | None
    lon: float | None
    battery_pct: float | None
    status: Literal["online", "offline", "unknown"]
    status_since: str | None


@router.get("/drones")
def list_drones(principal: PrincipalDep, store: StoreDep) -> list[DronePosition]:
    """The caller's drones with stored telemetry, with their last time and position.

    A cooperative sees its own drones, an operator every drone; farmers see drones through
    the flights over their fields (``GET /api/v1/flights``).
    """
    return [
        DronePosition(
            coop=d.coop,
            drone=d.drone,
            last_seen=rfc3339(d.ts_ms),
            lat=d.lat,
            lon=d.lon,
            battery_pct=d.battery_pct,
        )
        for d in store.drones()
        if can_see_drone(principal, d.coop)
    ]


def _no_drone(coop: str, drone: str) -> HTTPException:
    return HTTPException(
        404,
        detail=f"no drone {drone!r} in cooperative {coop!r} that your key may see;"
        " GET /api/v1/drones lists yours",
    )


def _visible(principal: Principal, coop: str, drone: str) -> None:
    if not can_see_drone(principal, coop):
        raise _no_drone(coop, drone)


def _last_seen(store: TelemetryStore, coop: str, drone: str) -> DroneLastSeen | None:
    return next((d for d in store.drones() if (d.coop, d.drone) == (coop, drone)), None)


def latest_status(
    store: TelemetryStore, coop: str, drone: str, now_ms: int
) -> tuple[str, int] | None:
    """The state and time of the drone's latest ``status`` event, if it ever sent one."""
    for lookback in _STATUS_LOOKBACK_MS:
        start = -_ALL_TIME_END if lookback is None else now_ms - lookback
        statuses = [
            e for e in store.drone_events(coop, drone, start, _ALL_TIME_END) if e.type == "status"
        ]
        if statuses:
            last = max(statuses, key=lambda e: e.ts_ms)
            return str(last.attrs.get("state", "unknown")), last.ts_ms
    return None


@router.get("/drones/{coop}/{drone}")
def get_drone(
    coop: CoopId,
    drone: DroneId,
    *,
    principal: PrincipalDep,
    store: StoreDep,
    metadata: MetadataDep,
) -> DroneDetail:
    """Last position, battery and time seen, and online/offline from the status topic.

    ``status`` is what the drone's retained status topic last said (its last will says
    ``offline``); ``unknown`` if it never said anything.
    """
    _visible(principal, coop, drone)
    record = metadata.drone(coop, drone)
    seen = _last_seen(store, coop, drone)
    if record is None and seen is None:
        raise _no_drone(coop, drone)
    status = latest_status(store, coop, drone, to_ms(datetime.now(UTC)))
    state: Literal["online", "offline", "unknown"] = "unknown"
    if status is not None and status[0] in ("online", "offline"):
        state = "online" if status[0] == "online" else "offline"
    return DroneDetail(
        coop=coop,
        drone=drone,
        registered=record is not None,
        swath_m=None if record is None else record.swath_m,
        last_seen=None if seen is None else rfc3339(seen.ts_ms),
        lat=None if seen is None else seen.lat,
        lon=None if seen is None else seen.lon,
        battery_pct=None if seen is None else seen.battery_pct,
        status=state,
        status_since=None if status is None else rfc3339(status[1]),
    )


# --- Track: pure functions from samples to GeoJSON -------------------------------------


@dataclass(frozen=True, slots=True)
class TrackPiece:
    """Samples ``first..last`` (inclusive) drawn as one line, or one point if equal."""

    first: int
    last: int
    spraying: bool


def track_pieces(
    ts_ms: npt.ArrayLike,
    lat: npt.ArrayLike,
    lon: npt.ArrayLike,
    spraying: npt.ArrayLike,
    *,
    max_gap_s: float = TRACK_GAP_S,
    max_jump_m: float = TRACK_JUMP_M,
) -> list[TrackPiece]:
    """Cut a time-ordered track into spraying and non-spraying lines, in time order.

    Consecutive samples are joined when at most ``max_gap_s`` and ``max_jump_m`` apart; a
    join is *spraying* when the valve was open at both ends (the coverage engine's pass).
    Lines are maximal runs of joins of one kind, so a spray-off line shares its first
    position with the end of the spray line before it. A sample with no join either side
    is a single point.
    """
    t = np.asarray(ts_ms, dtype=np.int64)
    la = np.asarray(lat, dtype=np.float64)
    lo = np.asarray(lon, dtype=np.float64)
    on = np.asarray(spraying, dtype=bool)
    n = len(t)
    if n == 0:
        return []
    per_lon, per_lat = metres_per_degree(la)
    jump = np.hypot(np.diff(lo) * per_lon[1:], np.diff(la) * per_lat[1:])
    joined = (np.diff(t) <= max_gap_s * 1000.0) & (jump <= max_jump_m)
    kind = on[:-1] & on[1:]
    same_as_prev = np.zeros(n - 1, dtype=bool)
    same_as_prev[1:] = joined[:-1] & joined[1:] & (kind[1:] == kind[:-1])
    same_as_next = np.zeros(n - 1, dtype=bool)
    same_as_next[:-1] = same_as_prev[1:]
    starts = np.flatnonzero(joined & ~same_as_prev)
    ends = np.flatnonzero(joined & ~same_as_next)
    touched = np.zeros(n, dtype=bool)
    touched[:-1] |= joined
    touched[1:] |= joined
    pieces = [
        TrackPiece(int(a), int(b) + 1, bool(kind[a])) for a, b in zip(starts, ends, strict=True)
    ]
    pieces += [TrackPiece(int(i), int(i), bool(on[i])) for i in np.flatnonzero(~touched)]
    pieces.sort(key=lambda p: (p.first, p.last))
    return pieces


def _positions(piece: TrackPiece, stride: int) -> int:
    if piece.first == piece.last:
        return 1
    return math.ceil((piece.last - piece.first) / stride) + 1


def choose_stride(pieces: Sequence[TrackPiece], max_points: int) -> tuple[int, int]:
    """The smallest stride whose thinned track fits ``max_points``, and how many pieces fit.

    When even the ends of every line exceed ``max_points`` the stride is the largest
    useful one and only the first pieces (in time order) that fit are kept.
    """
    sizes = np.array([p.last - p.first for p in pieces], dtype=np.int64)
    lines = sizes > 0

    def total(stride: int) -> int:
        return int(np.sum(np.ceil(sizes[lines] / stride)) + np.sum(lines) + np.sum(~lines))

    if total(1) <= max_points:
        return 1, len(pieces)
    widest = max(int(sizes.max()), 1)
    if total(widest) > max_points:
        used = np.cumsum(np.where(lines, 2, 1))
        return widest, int(np.searchsorted(used, max_points, side="right"))
    lo, hi = 1, widest
    while lo < hi:
        mid = (lo + hi) // 2
        if total(mid) <= max_points:
            hi = mid
        else:
            lo = mid + 1
    return lo, len(pieces)


def _thin(piece: TrackPiece, stride: int) -> list[int]:
    return [*range(piece.first, piece.last, stride), piece.last]


def track_geojson(samples: Sequence[Sample], max_points: int = MAX_TRACK_POINTS) -> dict[str, Any]:
    """A FeatureCollection of the track's lines (and lone points), thinned to ``max_points``.

    Each feature has ``spraying``, ``start``, ``end`` (RFC 3339, local time), ``samples``
    (stored samples it spans) and ``length_m`` (along the stored samples). Foreign members
    say how many samples and positions there are and whether and how it was thinned.
    """
    ts = np.fromiter((s.ts_ms for s in samples), dtype=np.int64, count=len(samples))
    lat = np.fromiter((s.lat for s in samples), dtype=np.float64, count=len(samples))
    lon = np.fromiter((s.lon for s in samples), dtype=np.float64, count=len(samples))
    on = np.fromiter((s.spraying for s in samples), dtype=bool, count=len(samples))
    pieces = track_pieces(ts, lat, lon, on)
    stride, fit = choose_stride(pieces, max_points) if pieces else (1, 0)
    step = np.zeros(len(samples), dtype=np.float64)
    if len(samples) > 1:
        per_lon, per_lat = metres_per_degree(lat)
        step[1:] = np.hypot(np.diff(lon) * per_lon[1:], np.diff(lat) * per_lat[1:])
    along = np.cumsum(step)
    features: list[dict[str, Any]] = []
    points = 0
    for piece in pieces[:fit]:
        idx = _thin(piece, stride)
        coords = [[round(float(lon[i]), 7), round(float(lat[i]), 7)] for i in idx]
        points += len(coords)
        geometry = (
            {"type": "Point", "coordinates": coords[0]}
            if piece.first == piece.last
            else {"type": "LineString", "coordinates": coords}
        )
        features.append(
            {
                "type": "Feature",
                "geometry": geometry,
                "properties": {
                    "spraying": piece.spraying,
                    "start": rfc3339(int(ts[piece.first])),
                    "end": rfc3339(int(ts[piece.last])),
                    "samples": piece.last - piece.first + 1,
                    "length_m": round(float(along[piece.last] - along[piece.first]), 2),
                },
            }
        )
    truncated = fit < len(pieces)
    return {
        "type": "FeatureCollection",
        "features": features,
        "samples": len(samples),
        "points": points,
        "max_points": max_points,
        "downsampled": None if stride == 1 else {"stride": stride, "rule": DOWNSAMPLE_RULE},
        "truncated": truncated,
        "next_from": rfc3339(int(ts[pieces[fit].first])) if truncated else None,
    }


@router.get("/drones/{coop}/{drone}/track")
def get_track(
    coop: CoopId,
    drone: DroneId,
    *,
    principal: PrincipalDep,
    store: StoreDep,
    metadata: MetadataDep,
    window: WindowDep,
) -> dict[str, Any]:
    """The drone's track as GeoJSON LineStrings, spraying and not spraying told apart.

    Lines break where samples are more than 2 s or 20 m apart (the coverage engine's pass
    rule); at most 20,000 positions are returned, thinned by the stated ``downsampled``
    rule; if even that cannot fit, ``truncated`` is true and ``next_from`` says where to
    continue.
    """
    _visible(principal, coop, drone)
    samples = store.drone_samples(coop, drone, window.start_ms, window.end_ms)
    if not samples and metadata.drone(coop, drone) is None and not _last_seen(store, coop, drone):
        raise _no_drone(coop, drone)
    body = track_geojson(samples)
    return {"coop": coop, "drone": drone, "from": window.start, "to": window.end, **body}
