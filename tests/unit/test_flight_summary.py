"""Flight summaries: exact arithmetic on hand-made tracks, and a simulated job against its truth."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pytest

from fields.coverage import CoverageEngine, CoverageParams
from fields.registry import parse_fields
from fields.synthetic import DONG_TRIEU, T0_MS, collection, feature, rectangle
from flights.segment import Flight, segment_flights
from flights.summary import (
    FlightSummaryError,
    StateMismatchError,
    battery_used,
    decode_state,
    encode_state,
    merge_states,
    seq_stats,
    summarize_flight,
)
from simulators.fleet import DroneState, FlightConfig, applied_litres, plan_job
from simulators.geo import SimField
from storage.records import Event, Sample

HZ = 10


def track(
    x: list[float] | np.ndarray,
    y: list[float] | np.ndarray,
    *,
    spraying: list[bool] | np.ndarray,
    flow_lpm: float = 6.0,
    swath_m: float = 6.0,
    alt_m: float | None = 3.0,
    fix: str | None = "rtk_fixed",
    seq: list[int] | None = None,
    battery: list[float] | None = None,
    t0_ms: int = T0_MS,
) -> list[Sample]:
    """Samples at 10 Hz along points drawn in metres on the Đông Triều plane."""
    lon, lat = DONG_TRIEU.inverse(np.asarray(x, float), np.asarray(y, float))
    return [
        Sample(
            "c",
            "d1",
            t0_ms + i * 1000 // HZ,
            float(lat[i]),
            float(lon[i]),
            spraying=bool(spraying[i]),
            seq=i if seq is None else seq[i],
            alt_m=alt_m,
            flow_lpm=flow_lpm if spraying[i] else 0.0,
            swath_m=swath_m,
            fix=fix,
            battery_pct=None if battery is None else battery[i],
        )
        for i in range(len(lon))
    ]


def one_flight(ss: list[Sample], events: Sequence[Event] = ()) -> Flight:
    (flight,) = segment_flights(ss, events)
    return flight


# A straight 100 m line at 5 m/s, 10 Hz: 201 samples 0.5 m apart, 20 s. The sprayer is on
# for the first 101 samples (0 m to 50 m); at 6 L/min each on-sample sprays 0.1 s = 0.01 L.
LINE_X = np.linspace(0.0, 100.0, 201)
LINE_ON = LINE_X <= 50.0


def line(**kw: object) -> list[Sample]:
    return track(LINE_X, np.zeros(201), spraying=LINE_ON, **kw)  # type: ignore[arg-type]


def test_a_straight_line_half_sprayed_has_exact_distances_litres_and_footprint() -> None:
    s = summarize_flight(one_flight(line())).summary
    assert s.duration_s == pytest.approx(20.0)
    assert s.distance_flown_m == pytest.approx(100.0, abs=1e-6)
    assert s.distance_sprayed_m == pytest.approx(50.0, abs=1e-6)
    assert s.applied_l == pytest.approx(101 * 6.0 / 60.0 * 0.1)
    assert s.sprayed_ha * 10_000 == pytest.approx(50.0 * 6.0, rel=1e-6)
    assert s.spray_passes == 1
    assert s.speed_mean_mps == pytest.approx(5.0, abs=1e-6)
    assert s.speed_max_mps == pytest.approx(5.0, abs=1e-6)


def test_without_a_registry_the_whole_footprint_counts_as_outside_fields() -> None:
    s = summarize_flight(one_flight(line())).summary
    assert s.sprayed_in_fields_ha == 0.0
    assert s.sprayed_outside_fields_ha == s.sprayed_ha
    assert s.fields == ()


def test_the_footprint_splits_into_inside_and_outside_a_field_with_per_field_area() -> None:
    # The field covers x 0..25 m around the line: half of the 50 m sprayed strip.
    engine = CoverageEngine(parse_fields(collection(feature("f1", rectangle(25, 20, 0, -10)))))
    s = summarize_flight(one_flight(line()), engine).summary
    assert s.sprayed_in_fields_ha * 10_000 == pytest.approx(25 * 6, rel=1e-5)
    assert s.sprayed_outside_fields_ha * 10_000 == pytest.approx(25 * 6, rel=1e-5)
    (share,) = s.fields
    assert share.field_id == "f1"
    assert share.covered_ha * 10_000 == pytest.approx(25 * 6, rel=1e-5)
    assert share.coverage_pct == pytest.approx(100 * 150 / 500, rel=1e-5)
    assert share.passes == 1


def test_spray_in_a_no_spray_zone_is_reported_apart_from_fields() -> None:
    doc = collection(
        feature("f1", rectangle(100, 20, 0, -10)),
        feature("z1", rectangle(10, 20, 0, -10), kind="no_spray"),
    )
    s = summarize_flight(one_flight(line()), CoverageEngine(parse_fields(doc))).summary
    assert s.sprayed_no_spray_ha * 10_000 == pytest.approx(10 * 6, rel=1e-5)
    assert s.sprayed_in_fields_ha * 10_000 == pytest.approx(40 * 6, rel=1e-5)
    assert s.sprayed_outside_fields_ha * 10_000 == pytest.approx(0.0, abs=1e-6)


def test_height_stats_cover_airborne_samples_only() -> None:
    ss = line(alt_m=None)
    heights = [0.0] * 10 + [2.0] * 91 + [4.0] * 90 + [0.3] * 10
    ss = [replace(s, alt_m=h) for s, h in zip(ss, heights, strict=True)]
    s = summarize_flight(one_flight(ss)).summary
    assert (s.alt_min_m, s.alt_max_m) == (2.0, 4.0)
    assert s.alt_mean_m == pytest.approx((2.0 * 91 + 4.0 * 90) / 181)


def test_missing_seq_numbers_are_counted_and_flag_gaps() -> None:
    seq = list(range(201))
    seq = [v + (5 if i >= 100 else 0) for i, v in enumerate(seq)]  # 5 lost mid-flight
    s = summarize_flight(one_flight(line(seq=seq))).summary
    assert s.samples_received == 201
    assert s.samples_missing == 5
    assert s.quality == "gaps"
    assert "5 of 206 samples missing" in s.quality_reasons[0]


def test_seq_stats_count_missing_duplicates_and_resets() -> None:
    assert seq_stats([1, 2, 3, 5, 6, 9]) == (3, 0, 0)
    assert seq_stats([1, 2, 2, 3, 1]) == (0, 2, 0)
    assert seq_stats([100, 101, 0, 1, 3]) == (1, 0, 1)
    assert seq_stats([]) == (0, 0, 0)


def test_samples_without_seq_report_missing_as_unknown() -> None:
    ss = [replace(s, seq=None) for s in line()]
    assert summarize_flight(one_flight(ss)).summary.samples_missing is None


def test_a_clean_rtk_flight_is_good() -> None:
    s = summarize_flight(one_flight(line())).summary
    assert (s.quality, s.quality_reasons) == ("good", ())
    assert s.fix_mix == {"rtk_fixed": 201}
    assert s.max_gap_s == pytest.approx(0.1)


def test_a_silence_longer_than_a_pass_break_flags_gaps() -> None:
    ss = [s for s in line() if not 1_000 <= s.ts_ms - T0_MS < 4_000]
    s = summarize_flight(one_flight(ss)).summary
    assert s.max_gap_s == pytest.approx(3.1)
    assert s.quality == "gaps"


def test_many_2d_fixes_flag_poor_fix() -> None:
    s = summarize_flight(one_flight(line(fix="2d"))).summary
    assert s.quality == "poor_fix"
    assert s.fix_mix == {"2d": 201}


def test_battery_used_is_first_minus_last_per_battery() -> None:
    assert battery_used([90.0, 80.0, 70.0]) == pytest.approx(20.0)
    assert battery_used([60.0, 40.0, 100.0, 90.0]) == pytest.approx(30.0)


def test_battery_swaps_and_refills_count_ground_events_before_the_flight() -> None:
    batt = list(np.linspace(100.0, 90.0, 201))
    ss = line(battery=batt)
    events = [
        Event("c", "d1", T0_MS - 50_000, "refill"),
        Event("c", "d1", T0_MS - 40_000, "battery_swap"),
        Event("c", "d1", T0_MS, "takeoff"),
        Event("c", "d1", T0_MS + 20_000, "landing"),
    ]
    s = summarize_flight(one_flight(ss, events)).summary
    assert (s.battery_start_pct, s.battery_end_pct) == (100.0, 90.0)
    assert s.battery_used_pct == pytest.approx(10.0)
    assert (s.battery_swaps, s.refills) == (1, 1)


def test_to_dict_is_json_ready_with_rfc3339_times() -> None:
    engine = CoverageEngine(parse_fields(collection(feature("f1", rectangle(25, 20, 0, -10)))))
    d = summarize_flight(one_flight(line()), engine).summary.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["start"] == "2025-11-28T03:20:00.000+00:00"
    assert d["fields"][0]["field_id"] == "f1"
    assert d["sprayed_sao"] == pytest.approx(300 / 360, abs=1e-3)


def test_a_flight_without_samples_has_no_data() -> None:
    flight = Flight("c.d1.0", "c", "d1", 0, 0, "takeoff", "gap", samples=())
    s = summarize_flight(flight).summary
    assert s.quality == "no_data"
    assert (s.distance_flown_m, s.applied_l, s.samples_received) == (0.0, 0.0, 0)


# --- The running coverage state kept per flight -----------------------------------------

FIELD = collection(feature("f1", rectangle(100, 60)))


def passes(ys: list[float], t0_ms: int) -> list[Sample]:
    """Boustrophedon passes along each y (0..100 m at 5 m/s), sprayer off in the turns."""
    xs: list[float] = []
    yy: list[float] = []
    on: list[bool] = []
    for k, y in enumerate(ys):
        run = np.linspace(0, 100, 201) if k % 2 == 0 else np.linspace(100, 0, 201)
        xs += run.tolist()
        yy += [y] * 201
        on += [True] * 200 + [False]
    return track(xs, yy, spraying=on, t0_ms=t0_ms)


def test_a_flights_stored_state_merged_later_equals_adding_its_samples() -> None:
    engine = CoverageEngine(parse_fields(FIELD))
    a = passes([3.0, 9.0, 15.0], T0_MS)
    b = passes([13.0, 19.0, 25.0], T0_MS + 3_600_000)
    state_a = summarize_flight(one_flight(a), engine).field_states["f1"]
    state_b = summarize_flight(one_flight(b), engine).field_states["f1"]
    merged = merge_states(engine, state_a, state_b)
    direct = engine.add({"f1": state_a}, b)["f1"]
    got, want = engine.result(merged), engine.result(direct)
    assert want.overlap_ha > 0
    for key, value in want.metrics().items():
        assert got.metrics()[key] == (
            value if isinstance(value, str) else pytest.approx(value, rel=1e-9)
        ), key


def test_an_encoded_state_decodes_to_the_same_result() -> None:
    engine = CoverageEngine(parse_fields(FIELD))
    state = summarize_flight(one_flight(passes([3.0, 9.0], T0_MS)), engine).field_states["f1"]
    doc = json.loads(json.dumps(encode_state(engine, state)))
    back = decode_state(engine, doc)
    assert engine.result(back) == engine.result(state)
    assert np.array_equal(back.dose, state.dose)


def test_a_state_of_a_redrawn_field_is_refused() -> None:
    engine = CoverageEngine(parse_fields(FIELD))
    state = summarize_flight(one_flight(passes([3.0], T0_MS)), engine).field_states["f1"]
    doc = encode_state(engine, state)
    redrawn = CoverageEngine(parse_fields(collection(feature("f1", rectangle(120, 60)))))
    with pytest.raises(StateMismatchError, match=r"f1.*redrawn"):
        decode_state(redrawn, doc)


# --- A simulator-planned job against the planner's own truth ------------------------------


def test_a_simulated_job_matches_the_planners_truth_flight_by_flight() -> None:
    field_m = rectangle(120, 80)
    sim = SimField("sim-1", "Ruộng thử", "c", "h1", "rice", DONG_TRIEU.to_wgs84(field_m))
    config = FlightConfig(tank_capacity_l=12.0)  # forces a return to refill mid-job
    job = plan_job(sim, DroneState("c", "d1", T0_MS), config, np.random.default_rng(3))
    flights = segment_flights(job.samples, job.events)
    assert len(flights) >= 2
    assert all((f.start_reason, f.end_reason) == ("takeoff", "landing") for f in flights)
    assert sum(len(f.samples) for f in flights) == len(job.samples)
    engine = CoverageEngine(parse_fields(collection(feature("sim-1", field_m))))
    truth = job.truth
    for f in flights:
        s = summarize_flight(f, engine).summary
        inside = (truth.ts_ms >= f.start_ms) & (truth.ts_ms <= f.end_ms)
        path = float(np.hypot(np.diff(truth.x[inside]), np.diff(truth.y[inside])).sum())
        assert s.distance_flown_m == pytest.approx(path, rel=0.002)
        part = truth.until(f.end_ms + 1)
        before = truth.until(f.start_ms)
        assert s.applied_l == pytest.approx(applied_litres(part) - applied_litres(before))
        assert s.quality == "good"
    total = sum(summarize_flight(f, engine).summary.applied_l for f in flights)
    assert total == pytest.approx(applied_litres(truth), rel=1e-9)


def test_spraying_without_a_swath_names_the_flight() -> None:
    flight = one_flight([replace(s, swath_m=None) for s in line()])
    with pytest.raises(FlightSummaryError, match=rf"flight {flight.id}: sample 0 .* swath"):
        summarize_flight(flight)
    with_default = summarize_flight(flight, params=CoverageParams(default_swath_m=6.0))
    assert with_default.summary.sprayed_ha * 10_000 == pytest.approx(300.0, rel=1e-6)
