"""Invariants of the coverage engine, checked on random fields and random parallel passes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fields.coverage import CoverageEngine, CoverageResult, SampleArrays
from fields.registry import parse_fields
from fields.synthetic import Flight, collection, concat, feature, rectangle, take

FAST = settings(max_examples=15, deadline=None)


@st.composite
def field_and_flight(draw: st.DrawFn) -> tuple[CoverageEngine, Flight]:
    width = draw(st.floats(20, 120))
    height = draw(st.floats(20, 80))
    swath = draw(st.floats(3, 9))
    ys = draw(st.lists(st.floats(-5, height + 5), min_size=1, max_size=8))
    x0 = draw(st.floats(-10, width / 2))
    x1 = draw(st.floats(width / 2 + 5, width + 10))
    flight = Flight(swath_m=swath, flow_lpm=draw(st.floats(1, 8)))
    flight.boustrophedon(x0, x1, ys)
    engine = CoverageEngine(parse_fields(collection(feature("f", rectangle(width, height)))))
    return engine, flight


def result(engine: CoverageEngine, samples: SampleArrays) -> CoverageResult:
    return engine.result(engine.run(samples)["f"])


def same(a: CoverageResult, b: CoverageResult) -> None:
    assert a.covered_ha == pytest.approx(b.covered_ha, rel=1e-6, abs=1e-7)
    assert a.overlap_ha == pytest.approx(b.overlap_ha, rel=1e-3, abs=1e-5)
    assert a.off_target_ha == pytest.approx(b.off_target_ha, rel=1e-6, abs=1e-7)
    assert a.applied_l == pytest.approx(b.applied_l, rel=1e-9)


@FAST
@given(field_and_flight())
def test_covered_plus_missed_is_the_field_and_coverage_never_exceeds_100(
    case: tuple[CoverageEngine, Flight],
) -> None:
    engine, flight = case
    r = result(engine, flight.samples())
    assert r.covered_ha + r.missed_ha == pytest.approx(r.field_ha, rel=1e-9)
    assert 0.0 <= r.coverage_pct <= 100.0
    assert 0.0 <= r.overlap_ha <= r.covered_ha + 1e-12


@FAST
@given(field_and_flight(), st.randoms(use_true_random=False))
def test_results_do_not_depend_on_the_order_samples_arrive_in(
    case: tuple[CoverageEngine, Flight], rnd: object
) -> None:
    engine, flight = case
    samples = flight.samples()
    shuffled = np.random.default_rng(len(samples)).permutation(len(samples))
    same(result(engine, samples), result(engine, take(samples, shuffled)))


@FAST
@given(field_and_flight())
def test_flying_every_pass_the_other_way_gives_the_same_areas(
    case: tuple[CoverageEngine, Flight],
) -> None:
    engine, flight = case
    forward = result(engine, flight.samples())
    # Mirror time: the same runs, each flown from its other end.
    s = flight.samples()
    backward = take(s, np.arange(len(s)))
    backward.ts_ms[:] = s.ts_ms.max() + s.ts_ms.min() - s.ts_ms
    other = result(engine, backward)
    assert other.covered_ha == pytest.approx(forward.covered_ha, rel=1e-6, abs=1e-7)
    assert other.overlap_ha == pytest.approx(forward.overlap_ha, rel=1e-3, abs=1e-5)
    assert other.off_target_ha == pytest.approx(forward.off_target_ha, rel=1e-6, abs=1e-7)
    assert other.passes == forward.passes


@FAST
@given(field_and_flight(), st.floats(0.05, 0.95))
def test_a_flight_added_in_two_parts_equals_the_whole_flight(
    case: tuple[CoverageEngine, Flight], cut: float
) -> None:
    engine, flight = case
    samples = flight.samples()
    # Cut where the sprayer is off (between passes), as flights end on landing.
    off = np.flatnonzero(~samples.spraying)
    at = int(off[int(cut * (len(off) - 1))]) if len(off) else len(samples)
    first, second = take(samples, slice(0, at)), take(samples, slice(at, None))
    state = engine.add(engine.add(engine.start(), first), second)["f"]
    whole = result(engine, samples)
    same(engine.result(state), whole)
    assert engine.result(state).passes == whole.passes


def test_flights_added_one_at_a_time_equal_the_season_at_once() -> None:
    engine = CoverageEngine(parse_fields(collection(feature("f", rectangle(100, 60)))))
    flights = [
        Flight(t_ms=1_000_000 * (k + 1), drone=k % 2)
        .boustrophedon(-3, 103, [3.0 + 5.0 * j + k for j in range(12)])
        .line((50, 70), (50, 70), speed=1, spraying=False)  # lands with the sprayer off
        for k in range(4)
    ]
    states = engine.start()
    for f in flights:
        states = engine.add(states, f.samples())
    incremental = engine.result(states["f"])
    at_once = result(engine, concat(*(f.samples() for f in flights)))
    same(incremental, at_once)
    assert incremental.passes == at_once.passes == 48
    assert incremental.rate_cv_pct == pytest.approx(at_once.rate_cv_pct, rel=1e-9)


def test_passes_of_different_drones_are_never_joined() -> None:
    engine = CoverageEngine(parse_fields(collection(feature("f", rectangle(100, 60)))))
    a = Flight(drone=0).line((0, 10), (100, 10), speed=5, spraying=True)
    b = Flight(drone=1, t_ms=a.t_ms - 50).line((0, 40), (100, 40), speed=5, spraying=True)
    r = result(engine, concat(a.samples(), b.samples()))
    assert r.passes == 2
    assert r.covered_ha * 1e4 == pytest.approx(2 * 100 * 6, rel=1e-3)
