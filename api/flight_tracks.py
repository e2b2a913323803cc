"""A flight's track as a caller seeing it only through their fields may see it (pure).

A farmer (or a cooperative whose member's field a hired drone sprayed) sees a flight's
figures only on their own fields (``api.routes.flights.flight_view``); the track follows
the same rule: only the positions over those fields, or over unregistered ground (roads,
bunds, ditches) within ``TRACK_MARGIN_M`` of them, where the drone turns between passes
and where drift off the field shows. Positions over any other registered field, even
inside the margin, are left out, so a track never shows where a drone sprayed somebody
else's field. Lines are cut where the drone leaves the region; nothing is interpolated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import shapely

from api.routes.drones import TrackLayout, TrackPiece
from fields.projection import LocalPlane
from fields.registry import Field

#: How far around the caller's fields a partial track reaches: the turns at a field's ends
#: (a spraying drone turns within a swath or two of the edge) and the half swath of spray
#: a pass along the edge puts beyond it.
TRACK_MARGIN_M: Final = 20.0


@dataclass(frozen=True, slots=True)
class Region:
    """Where a partial track may show, in metres of ``plane``."""

    plane: LocalPlane
    area: Any  # shapely (Multi)Polygon in plane metres

    def contains(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """Which positions (WGS84) lie in the region, its edge included."""
        x, y = self.plane.forward(lon, lat)
        return np.asarray(shapely.intersects_xy(self.area, x, y), dtype=bool)

    def outline(self) -> Any:
        """The region in WGS84 (to look up the fields near it)."""
        return self.plane.to_wgs84(self.area)


def around(own: Sequence[Field], margin_m: float = TRACK_MARGIN_M) -> Region:
    """The caller's fields grown by ``margin_m``, before other fields are taken out."""
    if not own:
        raise ValueError("a region needs at least one field")
    plane = own[0].plane
    mine = shapely.union_all([plane.to_plane(f.geometry) for f in own])
    return Region(plane, shapely.buffer(mine, margin_m))


def visible_region(
    own: Sequence[Field], others: Sequence[Field], margin_m: float = TRACK_MARGIN_M
) -> Region:
    """The caller's fields, plus the ground within ``margin_m`` of them that is no other
    registered field (``others``: the fields near them, the caller's own left out)."""
    grown = around(own, margin_m)
    plane = grown.plane
    mine = shapely.union_all([plane.to_plane(f.geometry) for f in own])
    area = grown.area
    if others:
        taken = shapely.union_all([plane.to_plane(f.geometry) for f in others])
        area = shapely.difference(area, taken)
    return Region(plane, shapely.union(mine, area))


def span_inside(
    ts: npt.NDArray[np.int64],
    inside: npt.NDArray[np.bool_],
    bucket_ms: int,
    start_ms: int,
    end_ms: int,
) -> tuple[int, int] | None:
    """The time span [start, end) of a thinned track that holds every stored sample in the
    region the thinned positions show: from the position before the first one inside to
    the end of the bucket of the position after the last one (a thinned position's time is
    its bucket's start); ``None`` when no position is inside."""
    hits = np.flatnonzero(inside)
    if not len(hits):
        return None
    first, last = int(hits[0]), int(hits[-1])
    lo = int(ts[first - 1]) if first > 0 else start_ms
    hi = int(ts[last + 1]) + bucket_ms if last + 1 < len(ts) else end_ms
    return max(start_ms, lo), min(end_ms, max(hi, lo + 1))


def clip_layout(layout: TrackLayout, inside: npt.NDArray[np.bool_]) -> TrackLayout:
    """The layout's lines cut to the runs of positions inside; a run of one position is a
    point, unless another kept line already draws that position (a spray change's shared
    position)."""
    lines: list[TrackPiece] = []
    singles: list[TrackPiece] = []
    for piece in layout.pieces:
        idx = np.arange(piece.first, piece.last + 1)
        kept = idx[inside[piece.first : piece.last + 1]]
        if not len(kept):
            continue
        breaks = np.flatnonzero(np.diff(kept) > 1)
        starts = np.concatenate(([0], breaks + 1))
        ends = np.concatenate((breaks, [len(kept) - 1]))
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            run = TrackPiece(int(kept[a]), int(kept[b]), piece.spraying)
            (singles if run.first == run.last else lines).append(run)
    drawn = {i for p in lines for i in range(p.first, p.last + 1)}
    points: list[TrackPiece] = []
    for p in singles:
        if p.first not in drawn:
            drawn.add(p.first)
            points.append(p)
    pieces = sorted(lines + points, key=lambda p: (p.first, p.last))
    return replace(layout, pieces=pieces)


def positions_kept(layout: TrackLayout) -> int:
    """Distinct positions the layout's pieces draw."""
    return len({i for p in layout.pieces for i in range(p.first, p.last + 1)})
