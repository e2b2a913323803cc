"""``TelemetryStore.drone_track``: a drone's track thinned inside the store, run unchanged
against SQLite and a real InfluxDB (fixture ``store``), checked against the plain-Python
answer to the same five questions (``storage.thinning``)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.contract import TelemetryStore
from storage.records import Sample
from storage.thinning import (
    TrackBucket,
    TrackPoint,
    TrackRead,
    TrackStats,
    _coarsen,
    drawn_positions,
    thin_track,
)

pytestmark = pytest.mark.integration

T0 = 1_700_000_000_000
ALL_TIME = (-(2**62), 2**62)
GAP_MS = 2000


def flight(
    start_ms: int, n: int, *, step_ms: int = 200, spray_until: int | None = None
) -> list[Sample]:
    """A straight flight of ``n`` samples, spraying for its first ``spray_until``."""
    on = n if spray_until is None else spray_until
    return [
        Sample("htx", "dt-01", start_ms + i * step_ms, 21.0 + i * 1e-6, 106.5 + i * 2e-6, i < on)
        for i in range(n)
    ]


def point(s: Sample) -> TrackPoint:
    return TrackPoint(s.ts_ms, s.lat, s.lon, s.spraying)


class ListReader:
    """The five questions answered by brute force over a sorted list: the specification."""

    def __init__(self, samples: Sequence[Sample]) -> None:
        self.samples = sorted(samples, key=lambda s: s.ts_ms)

    def _drone(self, coop: str, drone: str) -> list[TrackPoint]:
        return [point(s) for s in self.samples if (s.coop, s.drone) == (coop, drone)]

    def _window(self, coop: str, drone: str, start_ms: int, end_ms: int) -> list[TrackPoint]:
        return [p for p in self._drone(coop, drone) if start_ms <= p.ts_ms < end_ms]

    def track_stats(
        self, coop: str, drone: str, start_ms: int, end_ms: int, *, count_to: int | None
    ) -> TrackStats:
        w = self._window(coop, drone, start_ms, end_ms)
        count = len(w) if count_to is None else min(len(w), count_to)
        return TrackStats(count, w[0] if w else None, w[-1] if w else None)

    def track_points(
        self, coop: str, drone: str, start_ms: int, end_ms: int
    ) -> Iterator[TrackPoint]:
        return iter(self._window(coop, drone, start_ms, end_ms))

    def track_gaps(
        self, coop: str, drone: str, start_ms: int, end_ms: int, *, gap_ms: int, limit: int
    ) -> list[tuple[int, int]]:
        w = self._window(coop, drone, start_ms, end_ms)
        gaps = [(b.ts_ms, a.ts_ms) for a, b in itertools.pairwise(w) if b.ts_ms - a.ts_ms > gap_ms]
        return gaps[:limit]

    def track_gap_ends(
        self, coop: str, drone: str, gaps: Sequence[tuple[int, int]]
    ) -> list[TrackPoint]:
        wanted = {t for gap in gaps for t in gap}
        return [p for p in self._drone(coop, drone) if p.ts_ms in wanted]

    def track_buckets(
        self,
        coop: str,
        drone: str,
        start_ms: int,
        end_ms: int,
        *,
        origin_ms: int,
        width_ms: int,
        spans: Sequence[tuple[int, int]] = (),  # noqa: ARG002 -- one scan reads all buckets
    ) -> tuple[list[TrackBucket], int | None]:
        by: dict[int, list[TrackPoint]] = {}
        for p in self._window(coop, drone, start_ms, end_ms):
            by.setdefault((p.ts_ms - origin_ms) // width_ms, []).append(p)
        out = []
        for k in sorted(by):
            t = origin_ms + k * width_ms
            first, last = by[k][0], by[k][-1]
            out.append(
                TrackBucket(
                    t,
                    len(by[k]),
                    TrackPoint(t, first.lat, first.lon, first.spraying),
                    TrackPoint(t, last.lat, last.lon, last.spraying),
                )
            )
        return out, sum(len(v) for v in by.values())


def read(store: TelemetryStore, max_points: int, window: tuple[int, int] = ALL_TIME) -> TrackRead:
    return store.drone_track("htx", "dt-01", *window, max_points=max_points, gap_ms=GAP_MS)


def spec(
    samples: Sequence[Sample], max_points: int, window: tuple[int, int] = ALL_TIME
) -> TrackRead:
    return thin_track(
        ListReader(samples), "htx", "dt-01", *window, max_points=max_points, gap_ms=GAP_MS
    )


def test_a_window_with_fewer_samples_than_max_points_is_passed_through_exactly(
    store: TelemetryStore,
) -> None:
    samples = flight(T0, 300, spray_until=120)
    store.write_samples(samples)
    got = read(store, 300)
    assert got.bucket_ms is None
    assert got.samples == 300
    assert got.pieces == [[point(s) for s in samples]]


def test_an_empty_window_reads_nothing(store: TelemetryStore) -> None:
    store.write_samples(flight(T0, 10))
    got = read(store, 100, (T0 + 60_000, T0 + 120_000))
    assert (got.samples, got.pieces) == (0, [])


def test_a_long_track_is_thinned_to_max_points_keeping_each_flights_ends(
    store: TelemetryStore,
) -> None:
    morning, afternoon = flight(T0, 3000), flight(T0 + 3_600_000, 2500, spray_until=1000)
    store.write_samples(morning + afternoon)
    got = read(store, 200)
    assert got.samples == 5500
    assert got.bucket_ms is not None
    assert got.points <= drawn_positions(got.pieces) <= 200
    assert got.points >= 150
    assert [(p[0], p[-1]) for p in got.pieces] == [
        (point(morning[0]), point(morning[-1])),
        (point(afternoon[0]), point(afternoon[-1])),
    ]
    assert got.next_from_ms is None


def test_both_stores_thin_exactly_as_the_specification(store: TelemetryStore) -> None:
    samples = flight(T0, 4000, spray_until=1700) + flight(T0 + 900_000, 900, step_ms=1000)
    store.write_samples(samples)
    for max_points in (4, 50, 333, 1000):
        assert read(store, max_points) == spec(samples, max_points)


def test_a_spray_change_shows_within_one_bucket_of_where_it_happened(
    store: TelemetryStore,
) -> None:
    samples = flight(T0, 5000, spray_until=2000)
    store.write_samples(samples)
    got = read(store, 100)
    [piece] = got.pieces
    changes = [b for a, b in itertools.pairwise(piece) if a.spraying and not b.spraying]
    assert len(changes) == 1
    assert got.bucket_ms is not None
    assert abs(changes[0].ts_ms - samples[2000].ts_ms) <= 2 * got.bucket_ms


def test_positions_are_in_time_order_within_each_piece(store: TelemetryStore) -> None:
    samples = flight(T0, 3000) + flight(T0 + 700_000, 3000)
    store.write_samples(samples)
    got = read(store, 300)
    for piece in got.pieces:
        times = [p.ts_ms for p in piece]
        assert times == sorted(times)
        assert piece[0].ts_ms < piece[1].ts_ms


def test_when_the_ends_of_every_piece_overflow_the_first_pieces_are_kept(
    store: TelemetryStore,
) -> None:
    lone = [Sample("htx", "dt-01", T0 + 10_000 * i, 21.0, 106.5, spraying=True) for i in range(10)]
    store.write_samples(lone)
    got = read(store, 4)
    assert [[p.ts_ms for p in piece] for piece in got.pieces] == [[T0], [T0 + 10_000]]
    assert got.next_from_ms == T0 + 20_000
    assert got == spec(lone, 4)


def test_only_the_window_is_read(store: TelemetryStore) -> None:
    samples = flight(T0, 2000)
    store.write_samples(samples)
    window = (samples[500].ts_ms, samples[1500].ts_ms)
    got = read(store, 50, window)
    assert got.samples == 1000
    assert (got.pieces[0][0], got.pieces[-1][-1]) == (point(samples[500]), point(samples[1499]))
    assert got == spec(samples, 50, window)


def test_a_window_of_another_drone_reads_nothing(store: TelemetryStore) -> None:
    store.write_samples(flight(T0, 50))
    got = store.drone_track("htx", "dt-02", *ALL_TIME, max_points=10, gap_ms=GAP_MS)
    assert got.samples == 0


@given(
    st.lists(st.integers(1, 5000), min_size=2, max_size=400),
    st.integers(4, 120),
)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_track_fits_max_points_and_keeps_every_piece_end(
    store: TelemetryStore, steps: list[int], max_points: int
) -> None:
    drone = f"h{abs(hash((tuple(steps), max_points))) % 10**9}"
    times = [T0 + sum(steps[: i + 1]) for i in range(len(steps))]
    samples = [
        Sample("htx", drone, t, 21.0, 106.5 + i * 1e-6, i % 7 < 3) for i, t in enumerate(times)
    ]
    store.write_samples(samples)
    got = store.drone_track("htx", drone, *ALL_TIME, max_points=max_points, gap_ms=GAP_MS)
    assert got.points <= max_points
    kept = {p.ts_ms for piece in got.pieces for p in (piece[0], piece[-1])}
    cut = got.next_from_ms if got.next_from_ms is not None else times[-1] + 1
    piece_ends = {
        t
        for i, t in enumerate(times)
        if t < cut
        and (
            i == 0
            or t - times[i - 1] > GAP_MS
            or i == len(times) - 1
            or times[i + 1] - t > GAP_MS
            or times[i + 1] >= cut
        )
    }
    if len(samples) <= max_points:
        assert got.pieces == [[point(s) for s in samples]]
    else:
        assert kept == piece_ends


@given(
    st.lists(st.integers(1, 3000), min_size=1, max_size=200),
    st.integers(1, 5000),
    st.integers(1, 8),
)
def test_merging_buckets_in_memory_answers_as_a_wider_query(
    steps: list[int], width: int, factor: int
) -> None:
    times = [T0 + sum(steps[: i + 1]) for i in range(len(steps))]
    reader = ListReader(
        [Sample("htx", "dt-01", t, 21.0 + i * 1e-6, 106.5, i % 3 == 0) for i, t in enumerate(times)]
    )
    window = (times[0], times[-1] + 1)

    def buckets(w: int) -> list[TrackBucket]:
        got, _ = reader.track_buckets(
            "htx", "dt-01", *window, origin_ms=times[0], width_ms=w, spans=()
        )
        return got

    assert _coarsen(buckets(width), times[0], width, factor) == buckets(width * factor)
