"""Flight segmentation: known-answer timelines and invariants (docs/flights.md)."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flights.segment import Flight, FlightInputError, cut_flights, segment_flights
from storage.records import Event, Sample

T0 = 1_764_300_000_000


def ms(t_s: float) -> int:
    return T0 + round(t_s * 1000)


def samples(*spans: tuple[float, float], step_s: float = 1.0, drone: str = "d1") -> list[Sample]:
    """Samples every ``step_s`` seconds over each inclusive (from, to) span, seq counting up."""
    out: list[Sample] = []
    for a, b in spans:
        t = a
        while t <= b + 1e-9:
            out.append(Sample("c", drone, ms(t), 21.08, 106.52, spraying=False, seq=len(out)))
            t += step_s
    return out


def ev(t_s: float, kind: str, drone: str = "d1") -> Event:
    return Event("c", drone, ms(t_s), kind)


def spans(flights: list[Flight]) -> list[tuple[float, float, str, str, int]]:
    """(start s, end s, start reason, end reason, sample count) of each flight."""
    return [
        (
            (f.start_ms - T0) / 1000,
            (f.end_ms - T0) / 1000,
            f.start_reason,
            f.end_reason,
            len(f.samples),
        )
        for f in flights
    ]


def test_takeoff_and_landing_pairs_make_flights_and_ground_samples_belong_to_none() -> None:
    got = segment_flights(
        samples((0, 400)),
        [ev(10, "takeoff"), ev(100, "landing"), ev(150, "takeoff"), ev(300, "landing")],
    )
    assert spans(got) == [
        (10, 100, "takeoff", "landing", 91),
        (150, 300, "takeoff", "landing", 151),
    ]


def test_more_than_idle_gap_of_silence_ends_a_flight_and_the_next_sample_starts_one() -> None:
    got = segment_flights(samples((0, 100), (200, 300)))
    assert spans(got) == [(0, 100, "gap", "gap", 101), (200, 300, "gap", "gap", 101)]


def test_silence_of_exactly_the_idle_gap_does_not_cut() -> None:
    got = segment_flights(samples((0, 100), (160, 200)))
    assert spans(got) == [(0, 200, "gap", "gap", 142)]


def test_the_idle_gap_is_configurable() -> None:
    got = segment_flights(samples((0, 100), (145, 200)), idle_gap_s=30)
    assert spans(got) == [(0, 100, "gap", "gap", 101), (145, 200, "gap", "gap", 56)]


def test_a_missing_landing_is_ended_by_silence_at_the_last_sample() -> None:
    got = segment_flights(samples((0, 100), (300, 400)), [ev(0, "takeoff")])
    assert spans(got) == [(0, 100, "takeoff", "gap", 101), (300, 400, "gap", "gap", 101)]


def test_a_missing_landing_is_ended_by_the_next_takeoff_at_the_sample_before_it() -> None:
    got = segment_flights(
        samples((0, 300)), [ev(0, "takeoff"), ev(200, "takeoff"), ev(300, "landing")]
    )
    assert spans(got) == [
        (0, 199, "takeoff", "takeoff", 200),
        (200, 300, "takeoff", "landing", 101),
    ]


def test_samples_before_takeoff_are_the_drone_on_the_ground_and_in_no_flight() -> None:
    got = segment_flights(samples((0, 100)), [ev(30, "takeoff"), ev(90, "landing")])
    assert spans(got) == [(30, 90, "takeoff", "landing", 61)]


def test_a_takeoff_during_silence_starts_the_flight_before_its_first_sample() -> None:
    got = segment_flights(samples((0, 10), (200, 260)), [ev(195, "takeoff"), ev(260, "landing")])
    assert spans(got) == [(0, 10, "gap", "gap", 11), (195, 260, "takeoff", "landing", 61)]


def test_a_takeoff_with_no_samples_for_longer_than_the_idle_gap_ends_by_gap() -> None:
    got = segment_flights(samples((200, 260)), [ev(0, "takeoff")])
    assert spans(got) == [(0, 0, "takeoff", "gap", 0), (200, 260, "gap", "gap", 61)]


def test_a_landing_without_a_flight_is_ignored() -> None:
    got = segment_flights(samples((0, 50)), [ev(10, "landing"), ev(20, "landing")])
    assert spans(got) == [(0, 10, "gap", "landing", 11)]


def test_events_and_samples_out_of_order_and_duplicated_give_the_same_flights() -> None:
    ss = samples((0, 400))
    es = [ev(10, "takeoff"), ev(100, "landing"), ev(150, "takeoff"), ev(300, "landing")]
    want = segment_flights(ss, es)
    rng = random.Random(7)
    shuffled = ss + ss[20:25] + ss[200:203]
    rng.shuffle(shuffled)
    events = es + es[:2]
    rng.shuffle(events)
    got = segment_flights(shuffled, events)
    assert spans(got) == spans(want)
    assert [f.samples for f in got] == [f.samples for f in want]
    assert [f.duplicates for f in got] == [5, 3]
    assert [len(f.events) for f in got] == [2, 2]


def test_a_flight_without_landing_whose_last_sample_is_recent_is_open() -> None:
    got = segment_flights(samples((0, 100)), [ev(0, "takeoff")], now_ms=ms(130))
    assert spans(got) == [(0, 100, "takeoff", "open", 101)]
    assert got[0].is_open


def test_an_open_flight_closes_by_gap_once_the_idle_gap_has_passed() -> None:
    got = segment_flights(samples((0, 100)), [ev(0, "takeoff")], now_ms=ms(160.001))
    assert spans(got) == [(0, 100, "takeoff", "gap", 101)]


def test_a_landed_flight_is_closed_however_recent() -> None:
    got = segment_flights(samples((0, 100)), [ev(0, "takeoff"), ev(100, "landing")], now_ms=ms(100))
    assert spans(got) == [(0, 100, "takeoff", "landing", 101)]


def test_without_now_the_data_is_complete_and_nothing_is_open() -> None:
    got = segment_flights(samples((0, 100)), [ev(0, "takeoff")])
    assert spans(got) == [(0, 100, "takeoff", "gap", 101)]


def test_the_id_is_coop_drone_start_and_stays_while_the_flight_grows() -> None:
    ss, es = samples((0, 100)), [ev(5, "takeoff")]
    open_ = segment_flights(ss[:50], es, now_ms=ms(50))
    done = segment_flights(ss, [*es, ev(100, "landing")])
    assert open_[0].id == done[0].id == f"c.d1.{ms(5)}"


def test_ground_events_between_flights_go_with_the_next_flight() -> None:
    got = segment_flights(
        samples((0, 100), (200, 300)),
        [
            ev(0, "takeoff"),
            ev(100, "landing"),
            ev(130, "refill"),
            ev(160, "battery_swap"),
            ev(200, "takeoff"),
            ev(250, "spray_on"),
            ev(300, "landing"),
        ],
    )
    assert [[e.type for e in f.ground_events] for f in got] == [[], ["refill", "battery_swap"]]
    assert [[e.type for e in f.events] for f in got] == [
        ["takeoff", "landing"],
        ["takeoff", "spray_on", "landing"],
    ]


def test_one_drone_at_a_time() -> None:
    with pytest.raises(FlightInputError, match="c/d1, c/d2"):
        segment_flights(samples((0, 10)) + samples((0, 10), drone="d2"))


def test_cut_flights_works_on_bare_times() -> None:
    ts = [ms(t) for t in range(101)]
    got = cut_flights(ts, [ms(10)], [ms(50)], now_ms=None)
    assert got == [(ms(10), ms(50), "takeoff", "landing")]


@settings(max_examples=60, deadline=None)
@given(
    times=st.lists(st.integers(0, 2_000), min_size=1, max_size=120),
    events=st.lists(
        st.tuples(st.integers(0, 2_000), st.sampled_from(["takeoff", "landing"])), max_size=8
    ),
    seed=st.integers(0, 1_000),
)
def test_flights_are_ordered_disjoint_and_hold_only_their_own_samples(
    times: list[int], events: list[tuple[int, str]], seed: int
) -> None:
    ss = [Sample("c", "d1", ms(t), 21.0, 106.0, spraying=False) for t in times]
    es = [ev(t, kind) for t, kind in events]
    got = segment_flights(ss, es)
    seen: set[int] = set()
    for a, b in itertools.pairwise(got):
        assert a.end_ms <= b.start_ms
    for f in got:
        assert f.start_ms <= f.end_ms
        ts = [s.ts_ms for s in f.samples]
        assert ts == sorted(set(ts))
        assert all(f.start_ms <= t <= f.end_ms for t in ts)
        assert not seen & set(ts)
        seen |= set(ts)
    if not es:  # with no events every distinct sample time is in exactly one flight
        assert seen == {s.ts_ms for s in ss}
    shuffled = ss[:]
    random.Random(seed).shuffle(shuffled)
    assert spans(segment_flights(shuffled, es[::-1])) == spans(got)
