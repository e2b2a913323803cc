"""Spraying during return-to-home: measured in the flight summary, flagged in the diary."""

from __future__ import annotations

import pytest

from fields.synthetic import T0_MS
from flights.diary import DiaryContext, FlightOnField, GroupCoverage, entry_body
from flights.summary import rth_spraying, summarize_flight
from storage.records import Event
from tests.unit.test_flight_summary import line, one_flight


def test_spraying_after_an_rth_error_is_counted_and_placed() -> None:
    samples = line()  # 10 Hz along 100 m; the sprayer is open for the first 50 m
    rth = Event("c", "d1", T0_MS + 2000, "error", {"code": "RTH", "message": "signal lost"})
    flight = one_flight(samples, [rth])
    assert rth in flight.events
    seconds, track = rth_spraying(flight)
    # From sample 20 (10 m) to sample 100 (50 m): 80 steps of 0.1 s with the valve open.
    assert seconds == pytest.approx(8.0)
    assert len(track) == 81
    assert track[0] == (round(samples[20].lon, 7), round(samples[20].lat, 7))
    summary = summarize_flight(flight).summary.to_dict()
    assert summary["rth_spray_s"] == pytest.approx(8.0)
    assert len(summary["rth_spray_track"]) == 81


def test_other_errors_and_rth_after_the_spraying_count_nothing() -> None:
    samples = line()
    pump = Event("c", "d1", T0_MS + 2000, "error", {"code": "E42"})
    late = Event("c", "d1", T0_MS + 15_000, "error", {"code": "rth"})  # at 75 m, valve shut
    assert rth_spraying(one_flight(samples, [pump])) == (0.0, ())
    assert rth_spraying(one_flight(samples, [late])) == (0.0, ())


def test_the_diary_flags_rth_spraying_where_it_happened() -> None:
    on_field = FlightOnField(
        "c.d1.0", "c", "d1", 0, 60_000, 0.1, 2.0, (), 8.0, ((106.5, 21.08), (106.5001, 21.08))
    )
    ctx = DiaryContext("f1", "", "c", "o", {}, {}, {}, {})
    body = entry_body("c.d1.~2025-11-28", [on_field], GroupCoverage(0.2, 0.1, 2.0), ctx)
    [rth] = [f for f in body["flags"] if f["code"] == "rth_spray"]
    assert rth["seconds"] == 8.0
    assert rth["where"] == {
        "type": "MultiPoint",
        "coordinates": [[106.5, 21.08], [106.5001, 21.08]],
    }
    assert "RTH" in rth["message_vi"]
    quiet = FlightOnField("c.d1.0", "c", "d1", 0, 60_000, 0.1, 2.0)
    body = entry_body("k", [quiet], GroupCoverage(0.2, 0.1, 2.0), ctx)
    assert "rth_spray" not in [f["code"] for f in body["flags"]]
