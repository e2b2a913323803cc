"""Thinning one drone's track inside the store, shared by the InfluxDB and SQLite stores.

A window may hold millions of samples; a map needs a few thousand positions. The stores
answer five small questions in their own query language (how many samples and which are
the first and last; where the time gaps are; the samples at given times; the first and last
sample of each time bucket) and ``thin_track`` puts the answer together here, so both
stores thin identically and neither ever holds more than ``max_points`` rows:

* at most ``max_points`` samples in the window: every sample, untouched (``bucket_ms`` None);
* otherwise the track is cut into *pieces* at every gap longer than ``gap_ms`` (a takeoff
  after a pause, a telemetry dropout); each piece keeps its exact first and last sample
  (takeoff and landing), and between them the first and last sample of each time bucket of
  ``bucket_ms``, the width chosen so that the whole answer fits ``max_points``. A spray
  valve change shows at the bucket where it happened; a change that flips back within one
  bucket does not show. The budget counts a spray change twice (the spraying line and the
  next one share its position), so the lines drawn fit ``max_points``. Inner positions
  carry their bucket's start as time (InfluxDB's ``GROUP BY time()`` reports no other);
  only buckets a piece runs across whole are used;
* when even the ends of every piece overflow ``max_points``, the first pieces that fit are
  kept and ``next_from_ms`` says where the rest starts.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

#: The smallest ``max_points`` a thinned read accepts: one line's two ends and room to thin.
MIN_TRACK_POINTS: Final = 4

#: Most neighbouring buckets merged to make spray changes fit, before keeping only ends.
_MOST_MERGED: Final = 16

THINNING_RULE: Final = (
    "pieces are cut at every gap longer than gap_ms; each piece keeps its first and last"
    " sample (exact time) and between them the first and last sample of each bucket_ms time"
    " bucket (time shown: the bucket's start); a spray change shows at its bucket"
)


@dataclass(frozen=True, slots=True)
class TrackPoint:
    """One position of a drawn track: time (ms), position and whether the valve was open."""

    ts_ms: int
    lat: float
    lon: float
    spraying: bool


@dataclass(frozen=True, slots=True)
class TrackBucket:
    """The first and last sample of one time bucket (``start_ms`` .. +width) and how many
    (``None``: not counted, but more than one)."""

    start_ms: int
    count: int | None
    first: TrackPoint
    last: TrackPoint


@dataclass(frozen=True, slots=True)
class TrackStats:
    """How many samples a window holds (counted up to a cap), and its first and last one."""

    count: int
    first: TrackPoint | None
    last: TrackPoint | None


@dataclass(slots=True)
class TrackRead:
    """A drone's track in a window as the store read it, never more than ``max_points`` rows.

    ``bucket_ms`` None: ``pieces`` is one list holding every sample of the window (the
    caller applies its own line rules). Otherwise the track was thinned (module docstring):
    each piece is one contiguous stretch, in time order, its ends exact.
    """

    #: Samples in the window (before ``next_from_ms`` when that is set).
    samples: int
    max_points: int
    gap_ms: int
    bucket_ms: int | None = None
    pieces: list[list[TrackPoint]] = field(default_factory=list)
    next_from_ms: int | None = None

    @property
    def points(self) -> int:
        """Positions read (at most ``max_points``; thinned, with the spray changes' shared
        positions counted too: ``drawn_positions``)."""
        return sum(len(p) for p in self.pieces)


class TrackReader(Protocol):
    """The five questions a store answers for ``thin_track`` (windows are [start, end))."""

    def track_stats(
        self, coop: str, drone: str, start_ms: int, end_ms: int, *, count_to: int | None
    ) -> TrackStats:
        """The first and last sample, and how many samples, counted up to ``count_to`` at
        most (reading no further), or all of them when ``None``."""
        ...

    def track_points(
        self, coop: str, drone: str, start_ms: int, end_ms: int
    ) -> Iterator[TrackPoint]:
        """Every sample, oldest first."""
        ...

    def track_gaps(
        self, coop: str, drone: str, start_ms: int, end_ms: int, *, gap_ms: int, limit: int
    ) -> list[tuple[int, int]]:
        """(ts, previous ts) of the first ``limit`` samples more than ``gap_ms`` after the
        sample before them, oldest first."""
        ...

    def track_gap_ends(
        self, coop: str, drone: str, gaps: Sequence[tuple[int, int]]
    ) -> list[TrackPoint]:
        """The samples on both sides of each gap (ts, previous ts), oldest first (a store
        may read [previous, ts] whole: no sample lies between)."""
        ...

    def track_buckets(
        self,
        coop: str,
        drone: str,
        start_ms: int,
        end_ms: int,
        *,
        origin_ms: int,
        width_ms: int,
        spans: Sequence[tuple[int, int]],
    ) -> tuple[list[TrackBucket], int | None]:
        """First and last sample of every non-empty bucket [origin + k*width, +width), and
        how many samples [start, end) holds if counted on the way (else ``None``). A store
        may leave out the buckets not strictly inside one of ``spans`` (first ts, last ts),
        which are all ``thin_track`` uses."""
        ...


def thin_track(
    reader: TrackReader,
    coop: str,
    drone: str,
    start_ms: int,
    end_ms: int,
    *,
    max_points: int,
    gap_ms: int,
) -> TrackRead:
    """The track in [start, end), every sample if at most ``max_points``, else thinned."""
    if max_points < MIN_TRACK_POINTS:
        raise ValueError(f"max_points={max_points}: at least {MIN_TRACK_POINTS}")
    stats = reader.track_stats(coop, drone, start_ms, end_ms, count_to=max_points + 1)
    read = TrackRead(samples=stats.count, max_points=max_points, gap_ms=gap_ms)
    if stats.first is None or stats.last is None:
        return read
    if stats.count <= max_points:
        read.pieces = [list(reader.track_points(coop, drone, start_ms, end_ms))]
        return read
    most_pieces = max_points // 2
    gaps = reader.track_gaps(coop, drone, start_ms, end_ms, gap_ms=gap_ms, limit=most_pieces)
    # influxd buckets the whole WHERE range: keep it to the stretch that holds samples.
    start_ms, end_ms, last_ms = stats.first.ts_ms, stats.last.ts_ms + 1, stats.last.ts_ms
    wanted = gaps
    if len(gaps) >= most_pieces:  # more pieces than their ends can fit: cut at a gap
        cut_ts, last_ms = gaps[most_pieces - 1]
        read.next_from_ms = end_ms = cut_ts
        gaps = gaps[: most_pieces - 1]
    spans: list[tuple[int, int]] = []
    begin = stats.first.ts_ms
    for ts, prev in gaps:
        spans.append((begin, prev))
        begin = ts
    spans.append((begin, last_ms))
    known = {p.ts_ms: p for p in reader.track_gap_ends(coop, drone, wanted)}
    known[stats.first.ts_ms], known[stats.last.ts_ms] = stats.first, stats.last
    pieces = [[known[s]] if s == e else [known[s], known[e]] for s, e in spans]
    budget = (max_points - drawn_positions(pieces)) // 2
    read.bucket_ms = max(1, last_ms - stats.first.ts_ms + 1)
    covered = sum(e - s + 1 for s, e in spans)
    counted: int | None = None
    if budget >= 1:
        width = max(1, math.ceil(covered / budget))
        buckets, counted = reader.track_buckets(
            coop,
            drone,
            start_ms,
            end_ms,
            origin_ms=stats.first.ts_ms,
            width_ms=width,
            spans=spans,
        )
        # Spray changes may draw more shared positions than there was room for: merge
        # neighbouring buckets in memory (aligned at the origin, so merging f of them is
        # exactly what a query with f times the width answers) until the lines fit.
        for factor in range(1, _MOST_MERGED + 1):
            merged = _coarsen(buckets, stats.first.ts_ms, width, factor)
            thinned = _with_inner(pieces, spans, merged, width * factor)
            if drawn_positions(thinned) <= max_points:
                read.bucket_ms, pieces = width * factor, thinned
                break
    if counted is None:
        counted = reader.track_stats(coop, drone, start_ms, end_ms, count_to=None).count
    read.samples = counted
    read.pieces = pieces
    return read


def drawn_positions(pieces: Sequence[Sequence[TrackPoint]]) -> int:
    """Positions a map draws: each point once, plus one at every spray change, where the
    spraying line and the next one share the position."""
    changes = sum(
        a.spraying != b.spraying for piece in pieces for a, b in itertools.pairwise(piece)
    )
    return sum(len(p) for p in pieces) + changes


def _with_inner(
    pieces: list[list[TrackPoint]],
    spans: list[tuple[int, int]],
    buckets: list[TrackBucket],
    width: int,
) -> list[list[TrackPoint]]:
    """Each piece's ends with the first and last sample of every bucket inside it.

    Only buckets a piece runs across whole (started before, ends after) are used: their
    first and last samples are then certainly neither end of the piece, so nothing repeats
    and a piece of ``d`` ms holds at most ``2 * d / width`` inner positions.
    """
    starts = [s for s, _ in spans]
    inner: list[list[TrackPoint]] = [[] for _ in spans]
    for b in buckets:
        p = bisect.bisect_left(starts, b.start_ms) - 1
        if p < 0 or spans[p][1] < b.start_ms + width:
            continue
        inner[p].append(_at(b.first, b.start_ms))
        if b.count is None or b.count >= 2:
            inner[p].append(_at(b.last, b.start_ms))
    return [
        [piece[0], *extra, *piece[1:]] if extra else piece
        for piece, extra in zip(pieces, inner, strict=True)
    ]


def _coarsen(
    buckets: Sequence[TrackBucket], origin_ms: int, width_ms: int, factor: int
) -> list[TrackBucket]:
    """The buckets ``factor`` times as wide (aligned at ``origin_ms``), from ``buckets``."""
    if factor == 1:
        return list(buckets)
    wide = width_ms * factor
    out: list[TrackBucket] = []
    for b in buckets:
        start = origin_ms + (b.start_ms - origin_ms) // wide * wide
        last = _at(b.last, start)
        if out and out[-1].start_ms == start:
            prev = out[-1]
            count = None if prev.count is None or b.count is None else prev.count + b.count
            out[-1] = TrackBucket(start, count, prev.first, last)
        else:
            out.append(TrackBucket(start, b.count, _at(b.first, start), last))
    return out


def _at(point: TrackPoint, ts_ms: int) -> TrackPoint:
    return TrackPoint(ts_ms, point.lat, point.lon, point.spraying)
