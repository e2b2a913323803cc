"""Stored flights: the metadata tables, the service's read window and swath choice (over an
SQLite store in a temporary folder), and the watcher's scheduling."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fields.registry import parse_fields
from fields.stored import to_stored
from fields.synthetic import DONG_TRIEU, T0_MS, collection, feature, rectangle
from flights.cli import register
from flights.service import FlightWatcher, Window, read_flights, rebuild, summarize_drone
from storage.drones import DroneRecord
from storage.metadata import (
    FlightFieldState,
    MetadataDB,
    StoredFlight,
    pack_state,
    unpack_state,
)
from storage.records import DroneLastSeen, Event, Sample
from storage.sqlite import SqliteStore

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
NOW = T0_MS + 48 * HOUR_MS


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "telemetry.db")
    yield s
    s.close()


def flight_row(
    start_ms: int, *, coop: str = "c1", drone: str = "d1", summary: str = "{}"
) -> StoredFlight:
    return StoredFlight(
        id=f"{coop}.{drone}.{start_ms}",
        coop=coop,
        drone=drone,
        start_ms=start_ms,
        end_ms=start_ms + 600_000,
        open=False,
        summary=summary,
        computed_ms=NOW,
    )


def share(field_id: str, litres: float = 1.0) -> FlightFieldState:
    return FlightFieldState(field_id, 0.1, litres, pack_state({"field_id": field_id}))


def line_samples(
    start_ms: int, seconds: int, *, hz: float = 1.0, swath_m: float | None = 5.0
) -> list[Sample]:
    """A drone spraying east along y = 0 from x = 0 at 5 m/s, on the Đông Triều plane."""
    n = int(seconds * hz)
    x = np.arange(n) * 5.0 / hz
    lon, lat = DONG_TRIEU.inverse(x, np.zeros(n))
    return [
        Sample(
            "c1",
            "d1",
            start_ms + int(i * 1000 / hz),
            float(lat[i]),
            float(lon[i]),
            spraying=True,
            seq=i,
            alt_m=3.0,
            flow_lpm=6.0,
            swath_m=swath_m,
            fix="rtk_fixed",
        )
        for i in range(n)
    ]


# --- metadata tables ---------------------------------------------------------------------


def test_a_saved_flight_reads_back_by_id_with_its_field_states(metadata: MetadataDB) -> None:
    row = flight_row(T0_MS, summary='{"applied_l": 2.5}')
    metadata.save_flight(row, [share("f2", 2.0), share("f1", 0.5)])
    assert metadata.flight(row.id) == row
    assert row.summary_dict() == {"applied_l": 2.5}
    assert [(s.field_id, s.applied_l) for s in metadata.flight_fields(row.id)] == [
        ("f1", 0.5),
        ("f2", 2.0),
    ]
    assert metadata.flight("c1.d1.0") is None


def test_saving_a_flight_again_replaces_it_and_all_its_field_states(metadata: MetadataDB) -> None:
    row = flight_row(T0_MS)
    metadata.save_flight(row, [share("f1"), share("f2")])
    metadata.save_flight(row, [share("f3", 4.0)])
    assert [s.field_id for s in metadata.flight_fields(row.id)] == ["f3"]
    assert [f.id for f in metadata.flights(0, 2**62)] == [row.id]
    assert metadata.field_flights("f1", 0, 2**62) == []


def test_flights_are_listed_by_start_time_in_a_half_open_window(metadata: MetadataDB) -> None:
    for start in (T0_MS, T0_MS + HOUR_MS, T0_MS + 2 * HOUR_MS):
        metadata.save_flight(flight_row(start), [])
    got = metadata.flights(T0_MS, T0_MS + 2 * HOUR_MS)
    assert [f.start_ms for f in got] == [T0_MS, T0_MS + HOUR_MS]
    # A flight belongs to the window it started in, even though it runs past the window's end.
    assert [f.start_ms for f in metadata.flights(T0_MS + 1, T0_MS + HOUR_MS + 1)] == [
        T0_MS + HOUR_MS
    ]


def test_flights_filter_by_cooperative_drone_and_field(metadata: MetadataDB) -> None:
    metadata.save_flight(flight_row(T0_MS, coop="c1", drone="d1"), [share("f1")])
    metadata.save_flight(flight_row(T0_MS + 1, coop="c1", drone="d2"), [share("f2")])
    metadata.save_flight(flight_row(T0_MS + 2, coop="c2", drone="d1"), [share("f1"), share("f2")])

    def ids(
        coop: str | None = None, drone: str | None = None, field: str | None = None
    ) -> list[str]:
        return [f.id for f in metadata.flights(0, 2**62, coop=coop, drone=drone, field=field)]

    assert ids(coop="c1") == [f"c1.d1.{T0_MS}", f"c1.d2.{T0_MS + 1}"]
    assert ids(drone="d1") == [f"c1.d1.{T0_MS}", f"c2.d1.{T0_MS + 2}"]
    assert ids(coop="c2", drone="d1") == [f"c2.d1.{T0_MS + 2}"]
    assert ids(field="f2") == [f"c1.d2.{T0_MS + 1}", f"c2.d1.{T0_MS + 2}"]
    assert ids(coop="c1", field="f1") == [f"c1.d1.{T0_MS}"]
    assert metadata.flights(0, 2**62, limit=1)[0].id == f"c1.d1.{T0_MS}"


def test_a_fields_flights_carry_their_states_unless_asked_not_to(metadata: MetadataDB) -> None:
    metadata.save_flight(flight_row(T0_MS), [share("f1", 3.0)])
    metadata.save_flight(flight_row(T0_MS + DAY_MS), [share("f1")])
    (row,) = metadata.field_flights("f1", T0_MS, T0_MS + DAY_MS)
    assert (row.flight_id, row.coop, row.drone, row.applied_l) == (f"c1.d1.{T0_MS}", "c1", "d1", 3)
    assert row.end_ms == T0_MS + 600_000
    assert row.state_doc() == {"field_id": "f1"}
    (light,) = metadata.field_flights("f1", T0_MS, T0_MS + DAY_MS, with_states=False)
    assert light.state == b""


def test_a_fields_flights_are_one_indexed_query_on_sqlite(tmp_path: Path) -> None:
    # SQLite's plan is fixed by the schema; PostgreSQL's planner may scan a tiny table.
    metadata = MetadataDB(tmp_path / "agridrone.db")
    plan = metadata._conn().execute(
        "EXPLAIN QUERY PLAN SELECT ff.flight_id FROM flight_fields ff"
        " JOIN flights f ON f.id = ff.flight_id"
        " WHERE ff.field_id = ? AND ff.start_ms >= ? AND ff.start_ms < ?",
        ("f1", 0, 1),
    )
    details = " | ".join(str(r[-1]) for r in plan)
    metadata.close()
    assert "flight_fields_by_field" in details
    assert "SCAN" not in details


def test_a_rebuild_window_removes_only_that_drones_stale_flights_inside_it(
    metadata: MetadataDB,
) -> None:
    stale, kept = flight_row(T0_MS), flight_row(T0_MS + HOUR_MS)
    outside = flight_row(T0_MS + DAY_MS)
    other = flight_row(T0_MS, drone="d2")
    for row in (stale, kept, outside, other):
        metadata.save_flight(row, [share("f1")])
    removed = metadata.save_flights(
        [(kept, [])], replace_window=("c1", "d1", T0_MS, T0_MS + DAY_MS)
    )
    assert removed == 1
    left = [f.id for f in metadata.flights(0, 2**62)]
    assert left == [other.id, kept.id, outside.id]
    assert [r.flight_id for r in metadata.field_flights("f1", 0, 2**62)] == [other.id, outside.id]


JSON_VALUES = (
    st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.binary(max_size=20).map(lambda b: b.hex())
)


@given(st.dictionaries(st.text(max_size=8), JSON_VALUES | st.lists(JSON_VALUES), max_size=8))
def test_packed_states_read_back_unchanged(doc: dict[str, object]) -> None:
    assert unpack_state(pack_state(doc)) == doc


def test_an_unreadable_state_says_to_rebuild() -> None:
    with pytest.raises(ValueError, match="flights rebuild"):
        unpack_state(b"not zlib")


# --- the service over an SQLite store ----------------------------------------------------


def test_a_long_flight_that_outlasts_the_window_is_read_whole(store: SqliteStore) -> None:
    samples = line_samples(T0_MS, 3 * 3600)  # 3 h without a break, at 1 Hz
    store.write_samples(samples)
    (flight,), n_read = read_flights(store, "c1", "d1", T0_MS, T0_MS + 1, now_ms=NOW)
    assert (flight.start_ms, flight.end_ms) == (T0_MS, samples[-1].ts_ms)
    assert len(flight.samples) == n_read == len(samples)


def test_a_flight_that_started_before_the_window_is_not_the_windows(store: SqliteStore) -> None:
    store.write_samples(line_samples(T0_MS, 600))
    flights, _ = read_flights(store, "c1", "d1", T0_MS + 1, T0_MS + DAY_MS, now_ms=NOW)
    assert flights == []


def test_a_flight_still_sending_is_open_and_not_stored(
    store: SqliteStore, metadata: MetadataDB
) -> None:
    samples = line_samples(T0_MS, 120)
    store.write_samples(samples)
    now = samples[-1].ts_ms + 30_000
    outcome = summarize_drone(store, metadata, "c1", "d1", T0_MS, now, now_ms=now)
    assert (outcome.saved, outcome.open, outcome.open_since_ms) == ((), (f"c1.d1.{T0_MS}",), T0_MS)
    assert metadata.flights(0, 2**62) == []


def test_a_landing_ends_a_flight_even_while_the_drone_still_sends(
    store: SqliteStore, metadata: MetadataDB
) -> None:
    samples = line_samples(T0_MS, 120)
    store.write_samples(samples)
    store.write_events([Event("c1", "d1", samples[59].ts_ms, "landing")])
    outcome = summarize_drone(store, metadata, "c1", "d1", T0_MS, NOW, now_ms=samples[-1].ts_ms + 1)
    assert outcome.saved == (f"c1.d1.{T0_MS}",)
    (row,) = metadata.flights(0, 2**62)
    assert row.end_ms == samples[59].ts_ms


def test_without_registered_fields_flights_are_stored_with_no_field_states(
    store: SqliteStore, metadata: MetadataDB
) -> None:
    store.write_samples(line_samples(T0_MS, 60))
    (outcome,) = rebuild(store, metadata, T0_MS, NOW, now_ms=NOW)
    (row,) = metadata.flights(0, 2**62)
    assert outcome.saved == (row.id,)
    assert row.summary_dict()["sprayed_outside_fields_ha"] == pytest.approx(
        row.summary_dict()["sprayed_ha"]
    )
    assert metadata.flight_fields(row.id) == []


def test_a_field_under_the_track_gets_the_flights_state(
    store: SqliteStore, metadata: MetadataDB
) -> None:
    registry = parse_fields(collection(feature("f1", rectangle(100, 20, 0, -10))))
    metadata.save_fields(to_stored(registry.fields))
    store.write_samples(line_samples(T0_MS, 60))
    rebuild(store, metadata, T0_MS, NOW, now_ms=NOW)
    (row,) = metadata.field_flights("f1", 0, 2**62)
    # 5 m swath along the first 100 m of the line: 500 m² of the field covered.
    assert row.covered_ha * 10_000 == pytest.approx(500.0, rel=1e-3)
    assert row.state_doc()["field_id"] == "f1"


def test_each_flight_is_summarized_against_the_field_version_valid_when_it_started(
    store: SqliteStore, metadata: MetadataDB
) -> None:
    long = parse_fields(collection(feature("f1", rectangle(100, 20, 0, -10)))).fields
    short = parse_fields(collection(feature("f1", rectangle(50, 20, 0, -10)))).fields
    metadata.save_fields(to_stored(long))
    metadata.redraw_field(to_stored(short)[0], at_ms=NOW, valid_from_ms=T0_MS + HOUR_MS)
    store.write_samples(line_samples(T0_MS, 60) + line_samples(T0_MS + 2 * HOUR_MS, 60))
    rebuild(store, metadata, T0_MS, NOW, now_ms=NOW)
    before, after = metadata.field_flights("f1", 0, 2**62)
    # 5 m swath along the first 100 m, then the first 50 m, of the line.
    assert before.covered_ha * 10_000 == pytest.approx(500.0, rel=1e-3)
    assert after.covered_ha * 10_000 == pytest.approx(250.0, rel=1e-3)


def test_a_field_deleted_before_a_flight_is_not_in_its_summary(
    store: SqliteStore, metadata: MetadataDB
) -> None:
    metadata.save_fields(
        to_stored(parse_fields(collection(feature("f1", rectangle(100, 20, 0, -10)))).fields)
    )
    metadata.end_field("f1", at_ms=T0_MS + HOUR_MS)
    store.write_samples(line_samples(T0_MS, 60) + line_samples(T0_MS + 2 * HOUR_MS, 60))
    rebuild(store, metadata, T0_MS, NOW, now_ms=NOW)
    assert [f.start_ms for f in metadata.field_flights("f1", 0, 2**62)] == [T0_MS]


def test_samples_without_swath_use_the_drones_registered_width_or_fail_by_name(
    store: SqliteStore, metadata: MetadataDB
) -> None:
    store.write_samples(line_samples(T0_MS, 60, swath_m=None))
    (unregistered,) = rebuild(store, metadata, T0_MS, NOW, now_ms=NOW)
    assert unregistered.saved == ()
    assert len(unregistered.failed) == 1
    assert f"flight c1.d1.{T0_MS}" in unregistered.failed[0]
    metadata.add_drone(DroneRecord("c1", "d1", 4.0, T0_MS, "$7$hash"))
    (registered,) = rebuild(store, metadata, T0_MS, NOW, now_ms=NOW)
    assert registered.saved == (f"c1.d1.{T0_MS}",)
    (row,) = metadata.flights(0, 2**62)
    # 60 samples, 59 segments of 5 m sprayed 4 m wide.
    assert row.summary_dict()["sprayed_ha"] * 10_000 == pytest.approx(59 * 5 * 4, rel=1e-3)


def test_rebuild_only_touches_the_drones_asked_for(
    store: SqliteStore, metadata: MetadataDB
) -> None:
    store.write_samples(line_samples(T0_MS, 60))
    other = [
        Sample("c2", "d9", s.ts_ms, s.lat, s.lon, spraying=False) for s in line_samples(T0_MS, 60)
    ]
    store.write_samples(other)
    outcomes = rebuild(store, metadata, T0_MS, NOW, now_ms=NOW, coop="c2")
    assert [(o.coop, o.drone) for o in outcomes] == [("c2", "d9")]
    assert [f.drone for f in metadata.flights(0, 2**62)] == ["d9"]


# --- the watcher's scheduling (pure) -------------------------------------------------------


def seen(ts_ms: int, drone: str = "d1") -> DroneLastSeen:
    return DroneLastSeen("c1", drone, ts_ms, 21.08, 106.52)


def test_a_new_drone_is_looked_at_from_the_lookback_up_to_the_settled_present() -> None:
    w = FlightWatcher(settle_s=30, lookback_s=3600)
    now = T0_MS + DAY_MS
    assert w.plan(now, [seen(now - 5_000)]) == [Window("c1", "d1", now - HOUR_MS, now - 30_000)]


def test_a_new_drone_with_stored_flights_starts_after_the_latest_one() -> None:
    w = FlightWatcher(lookback_s=3600)
    now = T0_MS + DAY_MS
    (window,) = w.plan(now, [seen(now)], stored_until={("c1", "d1"): now - 600_000})
    assert window.start_ms == now - 600_000


def test_a_summarized_window_moves_on_to_its_end_or_stays_at_the_open_flight() -> None:
    w = FlightWatcher(settle_s=0)
    now = T0_MS + DAY_MS
    (first,) = w.plan(now, [seen(now)])
    w.done(first, open_since_ms=None)
    (second,) = w.plan(now + 30_000, [seen(now + 30_000)])
    assert second.start_ms == first.end_ms == now
    w.done(second, open_since_ms=now + 10_000)
    (third,) = w.plan(now + 60_000, [seen(now + 60_000)])
    assert (third.start_ms, third.end_ms) == (now + 10_000, now + 60_000)


def test_a_drone_not_heard_from_since_its_last_window_is_left_alone() -> None:
    w = FlightWatcher(settle_s=0)
    now = T0_MS + DAY_MS
    for window in w.plan(now, [seen(now - 1_000), seen(now - 1_000, "d2")]):
        w.done(window, open_since_ms=None)
    later = w.plan(now + 30_000, [seen(now - 1_000), seen(now + 20_000, "d2")])
    assert [x.drone for x in later] == ["d2"]


def test_rounds_fall_due_every_interval() -> None:
    w = FlightWatcher(interval_s=30)
    assert w.due(T0_MS)
    w.plan(T0_MS, [])
    assert not w.due(T0_MS + 29_999)
    assert w.due(T0_MS + 30_000)


def test_rebuild_removes_the_drones_flights_the_samples_no_longer_show(
    store: SqliteStore, metadata: MetadataDB
) -> None:
    ghost = flight_row(T0_MS + HOUR_MS)
    metadata.save_flight(ghost, [share("f1")])
    store.write_samples(line_samples(T0_MS, 60))
    (outcome,) = rebuild(store, metadata, T0_MS, NOW, now_ms=NOW)
    assert outcome.removed == 1
    assert [f.id for f in metadata.flights(0, 2**62)] == [f"c1.d1.{T0_MS}"]
    assert metadata.field_flights("f1", 0, 2**62) == []


# --- the command line ---------------------------------------------------------------------


def flights_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="agridrone")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["flights", *argv])
    code: int = args.handler(args)
    return code


def test_the_rebuild_command_stores_flights_that_the_list_command_shows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with SqliteStore(tmp_path / "t.db") as s:
        s.write_samples(line_samples(T0_MS, 60))
    paths = ["--sqlite-path", str(tmp_path / "t.db"), "--metadata-path", str(tmp_path / "m.db")]
    window = ["--from", "2025-11-28", "--to", "2025-11-29T00:00:00+07:00"]
    assert flights_cli("rebuild", *window, "--store", "sqlite", *paths) == 0
    out, err = capsys.readouterr()
    assert out == "c1/d1: 1 stored, 0 still open, 0 failed, 0 stale removed (60 samples read)\n"
    assert "rebuilt 1 flights of 1 drones" in err
    assert flights_cli("list", *window, "--json", *paths[2:]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    doc = json.loads(line)
    assert (doc["id"], doc["samples_received"]) == (f"c1.d1.{T0_MS}", 60)


def test_a_time_without_offset_is_refused_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = flights_cli(
        "list",
        "--from",
        "2025-11-28T00:00:00",
        "--to",
        "2025-11-29",
        "--metadata-path",
        str(tmp_path / "m.db"),
    )
    assert code == 2
    assert "has no UTC offset" in capsys.readouterr().err
