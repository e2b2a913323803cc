"""Drones: where each one was last seen, whether it is online, and where it flew.

Drone ids are unique only within a cooperative, so one drone's path carries both:
``/drones/{coop}/{drone}``. A cooperative sees its own drones and an operator every drone;
any other caller gets 404, exactly as for a drone that does not exist (farmers will see
drones through the flights over their fields).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

import numpy as np
import numpy.typing as npt
import orjson
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from api.auth import Principal, PrincipalDep, can_see_drone
from api.deps import MetadataDep, StoreDep
from api.pagination import CursorQuery, decode_cursor, page_of, set_next
from api.times import WindowDep, rfc3339, to_ms
from fields.coverage import CoverageParams
from fields.projection import metres_per_degree
from storage.contract import TelemetryStore
from storage.records import DroneLastSeen, Sample
from storage.thinning import MIN_TRACK_POINTS, THINNING_RULE, TrackPoint, TrackRead

router = APIRouter(tags=["drones"])

#: Consecutive samples further apart than this (time or distance) are not joined by a
#: line: the coverage engine's pass rule, so a drawn spray line is exactly a counted pass.
TRACK_GAP_S: Final = CoverageParams().max_gap_s
TRACK_JUMP_M: Final = CoverageParams().max_jump_m

#: At most this many positions in one track answer (``max_points``); longer tracks are thinned.
MAX_TRACK_POINTS: Final = 20_000
#: ``max_points`` when the caller gives none: plenty for a map of a day's flights.
DEFAULT_TRACK_POINTS: Final = 5_000
#: The ``max_points`` query of every track route (a drone's, a flight's).
MaxPointsQuery = Annotated[
    int,
    Query(
        ge=MIN_TRACK_POINTS,
        le=MAX_TRACK_POINTS,
        description=f"most positions to return ({MIN_TRACK_POINTS}..{MAX_TRACK_POINTS})",
    ),
]

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
    #: How its foreign telemetry is read (``agridrone drones add|set``): the MAVLink spray
    #: rule set, and the DJI aircraft serial with whether its samples count as spraying.
    mavlink_spray: str | None = None
    dji_sn: str | None = None
    dji_spraying: bool | None = None
    registration: str | None
    last_seen: str | None
    lat: float | None
    lon: float | None
    battery_pct: float | None
    status: Literal["online", "offline", "unknown"]
    status_since: str | None


#: ``GET /drones`` page size: default and most (a cooperative has tens of drones).
DRONES_PAGE: Final = 1_000
MAX_DRONES_PAGE: Final = 10_000


@router.get("/drones")
def list_drones(  # noqa: PLR0917 -- principal, store, request/response, limit, cursor
    principal: PrincipalDep,
    store: StoreDep,
    request: Request,
    response: Response,
    limit: Annotated[
        int, Query(ge=1, le=MAX_DRONES_PAGE, description="most drones per page")
    ] = DRONES_PAGE,
    cursor: CursorQuery = None,
) -> list[DronePosition]:
    """The caller's drones with stored telemetry, with their last time and position, by
    (cooperative, drone); a page of ``limit``, the next page's cursor in ``X-Next-Cursor``.

    A cooperative sees its own drones, an operator every drone; farmers see drones through
    the flights over their fields (``GET /api/v1/flights``).
    """
    after = decode_cursor("drones", cursor, (str, str))
    seen = sorted(store.drones(), key=_drone_key)
    page, next_cursor = page_of(
        "drones",
        seen,
        _drone_key,
        after=after,
        limit=limit,
        visible=lambda d: can_see_drone(principal, d.coop),
    )
    set_next(request, response, next_cursor)
    return [
        DronePosition(
            coop=d.coop,
            drone=d.drone,
            last_seen=rfc3339(d.ts_ms),
            lat=d.lat,
            lon=d.lon,
            battery_pct=d.battery_pct,
        )
        for d in page
    ]


def _drone_key(d: DroneLastSeen) -> tuple[str, str]:
    return (d.coop, d.drone)


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
        mavlink_spray=None if record is None else record.mavlink_spray,
        dji_sn=None if record is None else record.dji_sn,
        dji_spraying=None if record is None else record.dji_spraying,
        registration=None if record is None else record.registration,
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


@dataclass(frozen=True, slots=True)
class TrackLayout:
    """Positions (time order) and the pieces drawn over them, before the stride is chosen."""

    ts: npt.NDArray[np.int64]
    lat: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]
    on: npt.NDArray[np.bool_]
    pieces: list[TrackPiece]
    #: ``None``: every stored sample, the pass rule cut the lines; else how the store thinned.
    read: TrackRead | None = None


def _arrays(
    points: Sequence[TrackPoint] | Sequence[Sample],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64], Any]:
    n = len(points)
    return (
        np.fromiter((p.ts_ms for p in points), dtype=np.int64, count=n),
        np.fromiter((p.lat for p in points), dtype=np.float64, count=n),
        np.fromiter((p.lon for p in points), dtype=np.float64, count=n),
        np.fromiter((p.spraying for p in points), dtype=bool, count=n),
    )


def layout_samples(points: Sequence[TrackPoint] | Sequence[Sample]) -> TrackLayout:
    """Every stored sample: lines cut by the pass rule (gap, jump, spray state)."""
    ts, lat, lon, on = _arrays(points)
    return TrackLayout(ts, lat, lon, on, track_pieces(ts, lat, lon, on))


def layout_read(read: TrackRead) -> TrackLayout:
    """The store's answer: unthinned as ``layout_samples``; thinned, each stored piece is
    cut only where the spray state changes (thinned positions are far apart by design)."""
    if read.bucket_ms is None:
        return replace(layout_samples(read.pieces[0] if read.pieces else []), read=read)
    flat = [p for piece in read.pieces for p in piece]
    ts, lat, lon, on = _arrays(flat)
    pieces: list[TrackPiece] = []
    at = 0
    for piece in read.pieces:
        end = at + len(piece)
        runs = track_pieces(
            ts[at:end],
            lat[at:end],
            lon[at:end],
            on[at:end],
            max_gap_s=math.inf,
            max_jump_m=math.inf,
        )
        pieces += [TrackPiece(r.first + at, r.last + at, r.spraying) for r in runs]
        at = end
    return TrackLayout(ts, lat, lon, on, pieces, read)


@dataclass(frozen=True, slots=True)
class TrackAnswer:
    """The GeoJSON answer's parts: features (generated lazily) and the foreign members."""

    features: Iterator[dict[str, Any]]
    members: dict[str, Any]


def track_answer(
    layout: TrackLayout, max_points: int, *, times_from_ms: int | None = None
) -> TrackAnswer:
    """Features of the laid-out track thinned by stride to ``max_points`` positions, and
    the members saying how many samples and positions and how it was thinned.

    With ``times_from_ms`` each feature also carries ``t_ms``: the time of each of its
    positions, in ms after ``times_from_ms`` (a replay moves along them)."""
    ts, lat, lon = layout.ts, layout.lat, layout.lon
    pieces, read = layout.pieces, layout.read
    stride, fit = choose_stride(pieces, max_points) if pieces else (1, 0)
    step = np.zeros(len(ts), dtype=np.float64)
    if len(ts) > 1:
        per_lon, per_lat = metres_per_degree(lat)
        step[1:] = np.hypot(np.diff(lon) * per_lon[1:], np.diff(lat) * per_lat[1:])
    along = np.cumsum(step)
    exact = read is None or read.bucket_ms is None

    def features() -> Iterator[dict[str, Any]]:
        for piece in pieces[:fit]:
            idx = _thin(piece, stride)
            coords = [[round(float(lon[i]), 7), round(float(lat[i]), 7)] for i in idx]
            geometry = (
                {"type": "Point", "coordinates": coords[0]}
                if piece.first == piece.last
                else {"type": "LineString", "coordinates": coords}
            )
            properties: dict[str, Any] = {
                "spraying": piece.spraying,
                "start": rfc3339(int(ts[piece.first])),
                "end": rfc3339(int(ts[piece.last])),
                "samples": piece.last - piece.first + 1 if exact else None,
                "length_m": round(float(along[piece.last] - along[piece.first]), 2),
            }
            if times_from_ms is not None:
                properties["t_ms"] = [int(ts[i]) - times_from_ms for i in idx]
            yield {"type": "Feature", "geometry": geometry, "properties": properties}

    next_from: int | None = int(ts[pieces[fit].first]) if fit < len(pieces) else None
    if next_from is None and read is not None:
        next_from = read.next_from_ms
    downsampled: dict[str, Any] | None = None
    if not exact and read is not None:
        downsampled = {
            "method": "store_buckets",
            "bucket_ms": read.bucket_ms,
            "gap_ms": read.gap_ms,
            "stride": stride,
            "rule": THINNING_RULE,
        }
    elif stride > 1:
        downsampled = {"method": "stride", "stride": stride, "rule": DOWNSAMPLE_RULE}
    members = {
        "samples": len(ts) if read is None else read.samples,
        "points": sum(_positions(p, stride) for p in pieces[:fit]),
        "max_points": max_points,
        "downsampled": downsampled,
        "truncated": next_from is not None,
        "next_from": None if next_from is None else rfc3339(next_from),
    }
    return TrackAnswer(features(), members)


def track_geojson(samples: Sequence[Sample], max_points: int = MAX_TRACK_POINTS) -> dict[str, Any]:
    """A FeatureCollection of the track's lines (and lone points), thinned to ``max_points``.

    Each feature has ``spraying``, ``start``, ``end`` (RFC 3339, local time), ``samples``
    (stored samples it spans) and ``length_m`` (along the stored samples). Foreign members
    say how many samples and positions there are and whether and how it was thinned.
    """
    answer = track_answer(layout_samples(samples), max_points)
    return {"type": "FeatureCollection", "features": list(answer.features), **answer.members}


def stream_geojson(head: dict[str, Any], answer: TrackAnswer) -> Iterator[bytes]:
    """The FeatureCollection as bytes, one feature at a time (memory: one feature)."""
    opening = orjson.dumps({"type": "FeatureCollection", **head})
    yield opening[:-1] + b',"features":['
    for i, feature in enumerate(answer.features):
        yield (b"," if i else b"") + orjson.dumps(feature)
    yield b"]," + orjson.dumps(answer.members)[1:]


@router.get(
    "/drones/{coop}/{drone}/track",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/geo+json": {}}, "description": "GeoJSON"}},
)
def get_track(  # noqa: PLR0917 -- path, principal, stores, window and max_points
    coop: CoopId,
    drone: DroneId,
    principal: PrincipalDep,
    store: StoreDep,
    metadata: MetadataDep,
    window: WindowDep,
    max_points: MaxPointsQuery = DEFAULT_TRACK_POINTS,
) -> StreamingResponse:
    """The drone's track as GeoJSON LineStrings, spraying and not spraying told apart.

    Lines break where samples are more than 2 s or 20 m apart (the coverage engine's pass
    rule). At most ``max_points`` positions (default 5,000, at most 20,000): a window holding
    more samples is thinned inside the store (``downsampled`` says how; every flight's first
    and last sample kept); if even the ends of every line cannot fit, ``truncated`` is true
    and ``next_from`` says where to continue. The answer is streamed.
    """
    _visible(principal, coop, drone)
    read = store.drone_track(
        coop,
        drone,
        window.start_ms,
        window.end_ms,
        max_points=max_points,
        gap_ms=int(TRACK_GAP_S * 1000),
    )
    if (
        not read.samples
        and metadata.drone(coop, drone) is None
        and not _last_seen(store, coop, drone)
    ):
        raise _no_drone(coop, drone)
    head = {"coop": coop, "drone": drone, "from": window.start, "to": window.end}
    answer = track_answer(layout_read(read), max_points)
    return StreamingResponse(stream_geojson(head, answer), media_type="application/geo+json")
