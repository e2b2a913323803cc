"""Late data: the worker records what reached the store late, the watcher summarizes the
flights it touches again (pure scheduling, then the watcher over an SQLite store)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fields.registry import parse_fields
from fields.stored import to_stored
from fields.synthetic import DONG_TRIEU, T0_MS, collection, feature, rectangle
from flights.segment import segment_flights
from flights.service import (
    Engines,
    FlightWatcher,
    Window,
    late_windows,
    merge_late,
    rebuild,
    redo_if_fields_changed,
    resummarize_since,
    summarize_drone,
)
from ingest.late import late_ranges
from storage.metadata import LateRange, MetadataDB, StoredField
from storage.metadata.flights import FlightTable
from storage.metadata.rejected import RejectedLog
from storage.records import Event, Sample
from storage.sqlite import SqliteStore

GAP = 60_001  # the default idle gap, + 1 ms, as the watcher uses it
MIN = 60_000
HOUR = 3_600_000
KEY = ("c1", "d1")


def late(lo: int, hi: int, drone: str = "d1") -> LateRange:
    return LateRange("c1", drone, lo, hi, written_ms=hi + HOUR)


# --- what the worker records -------------------------------------------------------------


def sample(ts_ms: int, drone: str = "d1") -> Sample:
    return Sample("c1", drone, ts_ms, 21.08, 106.52, spraying=False)


def test_only_data_written_longer_than_the_threshold_after_its_time_is_late() -> None:
    items = [sample(100_000), sample(189_999), sample(190_000), sample(199_000)]
    assert late_ranges(items, written_ms=200_000, late_after_ms=10_000) == [
        LateRange("c1", "d1", 100_000, 189_999, 200_000)
    ]


def test_late_data_is_one_range_per_drone_and_events_count() -> None:
    items: list[Sample | Event] = [
        sample(5_000, "d2"),
        Event("c1", "d1", 7_000, "landing"),
        sample(3_000, "d1"),
    ]
    assert late_ranges(items, written_ms=HOUR, late_after_ms=10_000) == [
        LateRange("c1", "d1", 3_000, 7_000, HOUR),
        LateRange("c1", "d2", 5_000, 5_000, HOUR),
    ]


def test_a_batch_on_time_records_nothing() -> None:
    assert late_ranges([sample(HOUR - 500)], written_ms=HOUR, late_after_ms=10_000) == []


def test_late_ranges_are_kept_until_deleted(tmp_path: Path) -> None:
    db = MetadataDB(tmp_path / "agridrone.db")
    db.record_late_ranges([late(1, 2), late(5, 9, "d2")])
    first, second = db.late_ranges()
    assert (first.drone, first.start_ms, first.end_ms) == ("d1", 1, 2)
    assert db.delete_late_ranges([first]) == 1
    assert db.late_ranges() == [second]
    db.close()


def test_a_database_made_before_late_ranges_opens_and_gains_the_table(tmp_path: Path) -> None:
    class Before(FlightTable, RejectedLog):
        """Part of the schema as it was before late ranges (tables are independent)."""

    old = Before(tmp_path / "agridrone.db")
    old.save_flights([])
    old.close()
    db = MetadataDB(tmp_path / "agridrone.db")
    db.record_late_ranges([late(1, 2)])
    assert [(r.start_ms, r.end_ms) for r in db.late_ranges()] == [(1, 2)]
    db.close()


def test_a_backlog_in_many_batches_is_one_row_per_drone_and_hour(tmp_path: Path) -> None:
    db = MetadataDB(tmp_path / "agridrone.db")
    db.record_late_ranges([late(k * 10_000, k * 10_000 + 9_999) for k in range(50)])
    db.record_late_ranges([late(5 * HOUR, 5 * HOUR + 1)])
    assert [(r.start_ms, r.end_ms) for r in db.late_ranges()] == [
        (0, 499_999),
        (5 * HOUR, 5 * HOUR + 1),
    ]
    db.close()


def test_a_row_extended_after_it_was_read_is_not_deleted(tmp_path: Path) -> None:
    db = MetadataDB(tmp_path / "agridrone.db")
    db.record_late_ranges([late(0, 10)])
    read = db.late_ranges()
    db.record_late_ranges([late(0, 10)])  # the same span again, written later
    assert db.delete_late_ranges(read) == 0
    assert [(r.start_ms, r.end_ms) for r in db.late_ranges()] == [(0, 10)]
    db.close()


# --- the watcher's scheduling (pure) ------------------------------------------------------


def test_late_ranges_of_a_drone_within_an_idle_gap_are_one_span() -> None:
    spans = merge_late([late(0, 10), late(GAP + 10, GAP + 20), late(3 * GAP, 3 * GAP)], GAP)
    assert spans == {KEY: [(0, GAP + 20), (3 * GAP, 3 * GAP)]}


def test_late_data_after_a_stored_flight_summarizes_it_again_from_its_start() -> None:
    stored = {KEY: [(0, 10 * MIN)]}
    (w,) = late_windows({KEY: [(10 * MIN + 1_000, 12 * MIN)]}, stored, {KEY: HOUR}, GAP)
    assert w == Window("c1", "d1", 0, 12 * MIN + 1)


def test_late_data_filling_the_gap_between_two_flights_takes_both() -> None:
    stored = {KEY: [(0, 10 * MIN), (11 * MIN, 20 * MIN), (40 * MIN, 50 * MIN)]}
    (w,) = late_windows({KEY: [(10 * MIN + 5_000, 10 * MIN + 50_000)]}, stored, {KEY: HOUR}, GAP)
    assert (w.start_ms, w.end_ms) == (0, 11 * MIN + 1)


def test_late_data_far_from_stored_flights_is_summarized_on_its_own() -> None:
    stored = {KEY: [(0, 10 * MIN)]}
    (w,) = late_windows({KEY: [(30 * MIN, 35 * MIN)]}, stored, {KEY: HOUR}, GAP)
    assert (w.start_ms, w.end_ms) == (30 * MIN, 35 * MIN + 1)


def test_late_data_ahead_of_the_watcher_is_left_to_the_regular_windows() -> None:
    assert late_windows({KEY: [(2 * HOUR, 3 * HOUR)]}, {}, {KEY: HOUR}, GAP) == []


def test_a_late_window_stops_where_the_regular_windows_start() -> None:
    (w,) = late_windows({KEY: [(HOUR - MIN, HOUR + MIN)]}, {}, {KEY: HOUR}, GAP)
    assert (w.start_ms, w.end_ms) == (HOUR - MIN, HOUR)


def test_a_drone_the_watcher_does_not_follow_is_summarized_over_the_span() -> None:
    (w,) = late_windows({KEY: [(MIN, 2 * MIN)]}, {}, {}, GAP)
    assert (w.start_ms, w.end_ms) == (MIN, 2 * MIN + 1)


def test_overlapping_late_windows_of_a_drone_are_merged() -> None:
    stored = {KEY: [(0, 30 * MIN)]}
    spans = {KEY: [(5 * MIN, 6 * MIN), (20 * MIN, 21 * MIN)]}
    (w,) = late_windows(spans, stored, {KEY: HOUR}, GAP)
    assert (w.start_ms, w.end_ms) == (0, 21 * MIN + 1)


# --- the watcher over an SQLite store ----------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "telemetry.db")
    yield s
    s.close()


def track(start_ms: int, seconds: int) -> list[Sample]:
    """A drone spraying east at 5 m/s on the Đông Triều plane, 1 Hz, from x = 0."""
    x = np.arange(seconds) * 5.0
    lon, lat = DONG_TRIEU.inverse(x, np.zeros(seconds))
    return [
        Sample(
            "c1",
            "d1",
            start_ms + 1000 * i,
            float(lat[i]),
            float(lon[i]),
            spraying=True,
            alt_m=3.0,
            flow_lpm=6.0,
            swath_m=5.0,
        )
        for i in range(seconds)
    ]


def write_late(
    store: SqliteStore, metadata: MetadataDB, samples: list[Sample], events: list[Event]
) -> None:
    """What the ingest worker does with data written long after its time."""
    store.write_samples(samples)
    store.write_events(events)
    metadata.record_late_ranges(late_ranges([*samples, *events], written_ms=T0_MS + 10 * HOUR))


def stored_spans(metadata: MetadataDB) -> list[tuple[str, int, int, int]]:
    return [
        (f.id, f.start_ms, f.end_ms, f.summary_dict()["samples_received"])
        for f in metadata.flights(0, 2**62)
    ]


def test_a_flights_late_second_half_makes_it_grow_under_its_id(
    store: SqliteStore, metadata: MetadataDB
) -> None:
    samples = track(T0_MS, 600)
    store.write_samples(samples[:300])
    watcher = FlightWatcher(settle_s=30)
    watcher.poll(store, metadata, T0_MS + HOUR)
    assert stored_spans(metadata) == [(f"c1.d1.{T0_MS}", T0_MS, samples[299].ts_ms, 300)]
    write_late(store, metadata, samples[300:], [])
    watcher.poll(store, metadata, T0_MS + 2 * HOUR)
    assert stored_spans(metadata) == [(f"c1.d1.{T0_MS}", T0_MS, samples[-1].ts_ms, 600)]
    assert metadata.late_ranges() == []


def test_a_late_landing_ends_the_stored_flight_at_the_landing(
    store: SqliteStore, metadata: MetadataDB
) -> None:
    samples = track(T0_MS, 300)  # the drone kept sending after it landed
    store.write_samples(samples)
    watcher = FlightWatcher(settle_s=30)
    watcher.poll(store, metadata, T0_MS + HOUR)
    landing = samples[249].ts_ms
    write_late(store, metadata, [], [Event("c1", "d1", landing, "landing")])
    watcher.poll(store, metadata, T0_MS + 2 * HOUR)
    (row,) = metadata.flights(0, 2**62)
    assert (row.id, row.end_ms) == (f"c1.d1.{T0_MS}", landing)
    assert row.summary_dict()["end_reason"] == "landing"
    assert row.summary_dict()["samples_received"] == 250


def test_late_data_joining_two_flights_leaves_one_and_removes_the_stale_id(
    store: SqliteStore, metadata: MetadataDB
) -> None:
    samples = track(T0_MS, 900)
    store.write_samples(samples[:300] + samples[600:])
    watcher = FlightWatcher(settle_s=30)
    watcher.poll(store, metadata, T0_MS + HOUR)
    assert [s[0] for s in stored_spans(metadata)] == [
        f"c1.d1.{T0_MS}",
        f"c1.d1.{samples[600].ts_ms}",
    ]
    write_late(store, metadata, samples[300:600], [])
    watcher.poll(store, metadata, T0_MS + 2 * HOUR)
    assert stored_spans(metadata) == [(f"c1.d1.{T0_MS}", T0_MS, samples[-1].ts_ms, 900)]


def test_a_backlog_older_than_the_lookback_is_summarized(
    store: SqliteStore, metadata: MetadataDB
) -> None:
    store.write_samples(track(T0_MS + 3 * 24 * HOUR, 60))
    watcher = FlightWatcher(settle_s=30, lookback_s=3600)
    now = T0_MS + 3 * 24 * HOUR + HOUR
    watcher.poll(store, metadata, now)
    backlog = track(T0_MS, 120)
    write_late(store, metadata, backlog, [])
    watcher.poll(store, metadata, now + 60_000)
    assert [s[0] for s in stored_spans(metadata)] == [
        f"c1.d1.{T0_MS}",
        f"c1.d1.{T0_MS + 3 * 24 * HOUR}",
    ]


def test_a_round_without_late_data_reads_no_flights(
    store: SqliteStore, metadata: MetadataDB
) -> None:
    store.write_samples(track(T0_MS, 60))
    watcher = FlightWatcher(settle_s=30)
    watcher.poll(store, metadata, T0_MS + HOUR)
    assert watcher.poll_late(store, metadata, T0_MS + HOUR) == []


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    late_idx=st.sets(st.integers(0, 59), min_size=1),
    landing=st.booleans(),
)
def test_after_any_late_part_the_watcher_stores_what_a_rebuild_would(
    tmp_path_factory: pytest.TempPathFactory, late_idx: set[int], landing: bool
) -> None:
    folder = tmp_path_factory.mktemp("late")
    # Three runs of 20 samples 10 s apart, 90 s of silence between: three flights, some of
    # which the late part may extend, join or create.
    samples = [s for k in range(3) for s in track(T0_MS + k * 290_000, 200)[::10]]
    events = [Event("c1", "d1", samples[19].ts_ms + 1_000, "landing")] if landing else []
    early = [s for i, s in enumerate(samples) if i not in late_idx]
    with SqliteStore(folder / "t.db") as store:
        metadata = MetadataDB(folder / "m.db")
        store.write_samples(early)
        watcher = FlightWatcher(settle_s=30)
        watcher.poll(store, metadata, T0_MS + HOUR)
        write_late(store, metadata, [samples[i] for i in sorted(late_idx)], events)
        watcher.poll(store, metadata, T0_MS + 2 * HOUR)
        got = stored_spans(metadata)
        expected = [
            (f.id, f.start_ms, f.end_ms, len(f.samples)) for f in segment_flights(samples, events)
        ]
        assert got == expected
        rebuild(store, metadata, 0, 2**62, now_ms=T0_MS + 2 * HOUR)
        assert stored_spans(metadata) == got
        metadata.close()


# --- a past-dated field change: the flights of its time are summarized again ----------


def field_row(x0: float) -> StoredField:
    """Field f1, 100 m by 20 m from ``x0`` along the tracks' line."""
    doc = collection(feature("f1", rectangle(100, 20, x0, -10), owner="nd-1", coop="c1"))
    (stored,) = to_stored(parse_fields(doc).fields)
    return stored


def test_a_past_dated_redraw_reaches_a_flight_that_missed_the_old_outline(
    store: SqliteStore, metadata: MetadataDB
) -> None:
    metadata.save_fields([field_row(1_000.0)], at_ms=T0_MS - HOUR)  # beyond the 60 s track
    store.write_samples(track(T0_MS, 60))  # x 0..295 m
    watcher = FlightWatcher(settle_s=30)
    watcher.poll(store, metadata, T0_MS + HOUR)
    (before,) = metadata.flights(0, 2**62)
    assert before.summary_dict()["fields"] == []
    version = metadata.redraw_field(
        field_row(0.0), at_ms=T0_MS + 2 * HOUR, valid_from_ms=T0_MS - 1_000
    )
    assert resummarize_since(metadata, T0_MS - 1_000, version.recorded_ms) == 1
    watcher.poll(store, metadata, T0_MS + 2 * HOUR)
    (after,) = metadata.flights(0, 2**62)
    assert after.id == before.id
    (share,) = after.summary_dict()["fields"]
    assert share["field_id"] == "f1"
    assert share["covered_ha"] == pytest.approx(0.05, abs=0.002)  # 100 m by the 5 m swath
    assert [p.flight_id for p in metadata.field_flights("f1", 0, 2**62)] == [after.id]
    assert metadata.late_ranges() == []


def test_a_change_records_one_range_per_drone_that_flew_since(
    store: SqliteStore, metadata: MetadataDB
) -> None:
    metadata.save_fields([field_row(0.0)], at_ms=T0_MS - HOUR)
    for start in (T0_MS, T0_MS + HOUR, T0_MS + 2 * HOUR):
        store.write_samples(track(start, 60))
    FlightWatcher(settle_s=30).poll(store, metadata, T0_MS + 3 * HOUR)
    assert resummarize_since(metadata, T0_MS + 1, T0_MS + 4 * HOUR) == 1
    (row,) = metadata.late_ranges()
    assert (row.drone, row.start_ms, row.end_ms) == ("d1", T0_MS + HOUR, T0_MS + 2 * HOUR)
    assert resummarize_since(metadata, T0_MS + 5 * HOUR, T0_MS + 6 * HOUR) == 0


def test_a_round_whose_fields_changed_meanwhile_is_summarized_again(
    store: SqliteStore, metadata: MetadataDB
) -> None:
    metadata.save_fields([field_row(1_000.0)], at_ms=T0_MS - HOUR)
    store.write_samples(track(T0_MS, 60))
    engines = Engines(metadata)
    outcomes = [
        summarize_drone(
            store, metadata, "c1", "d1", T0_MS, T0_MS + HOUR, now_ms=T0_MS + HOUR, engines=engines
        )
    ]
    redo_if_fields_changed(metadata, engines, outcomes, T0_MS + HOUR)
    assert metadata.late_ranges() == []
    metadata.redraw_field(field_row(0.0), at_ms=T0_MS + HOUR, valid_from_ms=T0_MS - 1_000)
    redo_if_fields_changed(metadata, engines, outcomes, T0_MS + HOUR)
    (row,) = metadata.late_ranges()
    assert (row.drone, row.start_ms) == ("d1", T0_MS)
