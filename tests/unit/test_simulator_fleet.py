"""The mission planner: boustrophedon passes, tank, battery, noise, determinism, intent."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.affinity import rotate
from shapely.geometry import MultiPolygon, Point, Polygon, box

from flights.jobs import job_details
from ingest.jumps import JumpFilter, distance_m
from simulators.faults import Faults
from simulators.fleet import (
    DroneState,
    FlightConfig,
    Job,
    applied_litres,
    assign_drones,
    drone_jobs,
    gauss_markov,
    intended_answers,
    pass_offsets,
    plan_job,
    run_footprints,
)
from simulators.geo import LocalFrame, SimField, load_fields

T0 = 1_764_300_000_000
FRAME = LocalFrame(21.08, 106.52)
DT_S = 0.1


def field_of(local: Polygon | MultiPolygon, field_id: str = "f-test") -> SimField:
    """A plot given in metres around 21.08 N, 106.52 E."""
    wgs = FRAME.polygon_to_wgs84(local)
    return SimField(field_id, "Ruộng thử", "htx-test", "nd-01", "rice", wgs)


RECT = field_of(box(-50, -20, 50, 20))  # 100 m x 40 m, long side east-west: 0.4 ha


def fly(sim_field: SimField = RECT, seed: int = 1, **overrides: object) -> Job:
    config = FlightConfig(**overrides)  # type: ignore[arg-type]
    return plan_job(
        sim_field, DroneState("htx-test", "dt-01", T0), config, np.random.default_rng(seed)
    )


def runs(job: Job) -> list[tuple[int, int]]:
    """(first, past-last) indices of each spray-on run."""
    edges = np.diff(job.truth.spraying.astype(np.int8), prepend=0, append=0)
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def local_track(job: Job) -> tuple[np.ndarray, np.ndarray]:
    """Published (noisy) positions back in the field's local metres."""
    from simulators.geo import frame_for

    frame = frame_for(job.field.geometry)
    lon = np.array([s.lon for s in job.samples])
    lat = np.array([s.lat for s in job.samples])
    return frame.to_local(lon, lat)


def test_passes_are_spaced_at_the_swath() -> None:
    job = fly(swath_m=5.0)
    ys = sorted(float(np.mean(job.truth.y[a:b])) for a, b in runs(job))
    assert len(ys) == 8
    assert np.diff(ys) == pytest.approx([5.0] * 7, abs=1e-6)


def test_spacing_error_widens_the_passes() -> None:
    job = fly(swath_m=5.0, spacing_error=0.1)
    ys = sorted(float(np.mean(job.truth.y[a:b])) for a, b in runs(job))
    assert np.diff(ys) == pytest.approx([5.5] * (len(ys) - 1), abs=1e-6)


def test_passes_run_along_the_long_side_at_working_speed() -> None:
    job = fly(speed_mps=6.0)
    for a, b in runs(job):
        assert np.ptp(job.truth.y[a:b]) < 1e-6
        assert np.ptp(job.truth.x[a:b]) == pytest.approx(100.0, abs=1e-6)
        speeds = [s.speed_mps for s in job.samples[a + 1 : b]]
        assert all(5.0 <= v <= 7.0 for v in speeds if v is not None)


def test_boustrophedon_alternates_direction() -> None:
    job = fly()
    directions = [np.sign(job.truth.x[b - 1] - job.truth.x[a]) for a, b in runs(job)]
    assert all(d1 == -d2 for d1, d2 in itertools.pairwise(directions))


def test_sprayer_is_off_outside_the_field() -> None:
    job = fly()
    local = box(-50, -20, 50, 20).buffer(1e-6)
    points = shapely.points(job.truth.x, job.truth.y)
    inside = shapely.contains(local, points)
    assert not np.any(job.truth.spraying & ~inside)
    assert np.any(~inside)  # turns and the return do leave the field


def test_sprayer_is_off_over_a_pond_inside_the_field() -> None:
    pond = box(-5, -10, 5, 10)
    job = fly(field_of(box(-50, -20, 50, 20).difference(pond)))
    on = shapely.points(job.truth.x[job.truth.spraying], job.truth.y[job.truth.spraying])
    assert not np.any(shapely.contains(pond.buffer(-0.1), on))
    assert intended_answers([job])[0].coverage_pct > 99.0


def test_a_field_in_two_parts_is_flown_part_by_part_and_covered() -> None:
    two_parts = box(-50, -20, 50, 20).difference(box(-5, -21, 5, 21))
    assert isinstance(two_parts, MultiPolygon)
    job = fly(field_of(two_parts))
    on = shapely.points(job.truth.x[job.truth.spraying], job.truth.y[job.truth.spraying])
    assert not np.any(shapely.contains(box(-4.9, -20, 4.9, 20), on))
    answer = intended_answers([job])[0]
    assert answer.coverage_pct == pytest.approx(100.0, abs=1e-6)
    assert answer.passes == 16


def test_rectangle_is_covered_once_everywhere() -> None:
    answer = intended_answers([fly()])[0]
    assert answer.field_ha == pytest.approx(0.4, rel=1e-6)
    assert answer.coverage_pct == pytest.approx(100.0, abs=1e-6)
    assert answer.overlap_ha == pytest.approx(0.0, abs=1e-8)
    assert answer.off_target_ha == pytest.approx(0.0, abs=1e-8)
    assert answer.passes == 8


def test_take_off_and_landing_at_the_field_edge() -> None:
    job = fly()
    edge = box(-50, -20, 50, 20).exterior
    first, last = Point(job.truth.x[0], job.truth.y[0]), Point(job.truth.x[-1], job.truth.y[-1])
    assert edge.distance(first) < 1e-6
    assert edge.distance(last) < 1e-6
    assert job.samples[0].alt_m == 0.0
    assert job.samples[-1].alt_m == 0.0


def test_spraying_altitude_is_between_2_5_and_3_5_m() -> None:
    for seed in range(5):
        job = fly(seed=seed, gnss="rtk")
        alts = [s.alt_m for s in job.samples if s.spraying]
        assert all(a is not None and 2.3 <= a <= 3.7 for a in alts)


def test_litres_drawn_from_the_tank_equal_flow_times_time() -> None:
    job = fly(tank_capacity_l=4.0, flow_lpm=7.0)
    checked = 0
    for a, b in zip(job.samples, job.samples[1:], strict=False):
        assert a.tank_l is not None
        assert b.tank_l is not None
        assert a.flow_lpm is not None
        if b.tank_l > a.tank_l:  # refilled on the ground
            continue
        drawn = a.flow_lpm * (b.ts_ms - a.ts_ms) / 60_000 if a.spraying else 0.0
        assert a.tank_l - b.tank_l == pytest.approx(drawn, abs=2e-3)
        checked += 1
    assert checked > len(job.samples) * 0.9


def test_flow_is_as_configured_while_spraying_and_zero_otherwise() -> None:
    job = fly(flow_lpm=5.0)
    assert {s.flow_lpm for s in job.samples if s.spraying} == {5.0}
    assert {s.flow_lpm for s in job.samples if not s.spraying} == {0.0}


def test_empty_tank_returns_to_refill_and_resumes_where_it_stopped() -> None:
    job = fly(tank_capacity_l=3.0, flow_lpm=6.0)
    kinds = [e.type for e in job.events]
    assert kinds.count("refill") >= 2  # once before take-off, then at least once mid-job
    litres_per_sample = 6.0 * DT_S / 60
    spans = runs(job)
    stops = [
        (b - 1, a2)
        for (_, b), (a2, _) in itertools.pairwise(spans)
        if job.samples[a2].ts_ms - job.samples[b - 1].ts_ms > 60_000
    ]
    assert stops, "no refill break between two runs"
    for last_on, resumed in stops:
        before = job.samples[last_on]
        assert before.tank_l is not None
        assert before.tank_l < 2 * litres_per_sample
        gap = math.hypot(
            job.truth.x[resumed] - job.truth.x[last_on], job.truth.y[resumed] - job.truth.y[last_on]
        )
        assert gap < 1e-6
    assert intended_answers([job])[0].coverage_pct == pytest.approx(100.0, abs=1e-6)


def test_refills_happen_on_the_ground_between_landing_and_takeoff() -> None:
    job = fly(tank_capacity_l=3.0)
    order = [e.type for e in job.events if e.type in {"landing", "refill", "takeoff"}]
    for i, kind in enumerate(order):
        if kind == "refill" and i > 0:
            assert order[i - 1] == "landing"
            assert order[i + 1] == "takeoff"


def test_low_battery_means_a_return_and_a_battery_swap() -> None:
    job = fly(battery_base_pct_s=1.0, battery_reserve_pct=30.0)
    assert any(e.type == "battery_swap" for e in job.events)
    spraying_batteries = [s.battery_pct for s in job.samples if s.spraying]
    assert min(b for b in spraying_batteries if b is not None) >= 29.0
    assert intended_answers([job])[0].coverage_pct == pytest.approx(100.0, abs=1e-6)


def test_seq_and_ts_increase_across_jobs() -> None:
    spec = assign_drones(load_fields(), 1)[0]
    jobs = list(drone_jobs(spec, FlightConfig(), seed=3, index=0, start_ms=T0, flights=2))
    samples = [s for job in jobs for s in job.samples]
    seqs = [s.seq for s in samples]
    assert seqs == list(range(len(samples)))
    ts = np.array([s.ts_ms for s in samples])
    assert np.all(np.diff(ts) > 0)


def test_a_drone_reaches_its_next_plot_no_faster_than_it_can_be_carried() -> None:
    # The demo's short ferries once put plots 3 km apart 30 s apart: 100 m/s, refused by
    # ingest as implausible jumps. Every sample of a day's jobs passes ingest's own filter.
    spec = assign_drones(load_fields(), 1)[0]
    config = FlightConfig(ground_s=(3.0, 8.0), ferry_s=(20.0, 40.0))
    jobs = list(drone_jobs(spec, config, seed=3, index=0, start_ms=T0, flights=12))
    jumps = JumpFilter()
    refused = [
        (job.field.id, s.ts_ms)
        for job in jobs
        for s in job.samples
        if jumps.check(s.coop, s.drone, s.ts_ms, s.lat, s.lon) is not None
    ]
    assert refused == []
    far = [
        (a.samples[-1], b.samples[0])
        for a, b in itertools.pairwise(jobs)
        if distance_m(a.samples[-1].lat, a.samples[-1].lon, b.samples[0].lat, b.samples[0].lon)
        > 1000
    ]
    assert far  # the day does carry the drone between distant plots
    for last, first in far:
        metres = distance_m(last.lat, last.lon, first.lat, first.lon)
        assert metres / ((first.ts_ms - last.ts_ms) / 1000) <= config.ferry_speed_mps * 1.1


def test_samples_are_taken_at_the_configured_rate() -> None:
    job = fly(rate_hz=5.0)
    gaps = np.diff([s.ts_ms for s in job.samples])
    assert np.median(gaps) == 200


def test_same_seed_same_flight() -> None:
    assert fly(seed=9).samples == fly(seed=9).samples


def test_different_seed_different_noise() -> None:
    assert fly(seed=9).samples != fly(seed=10).samples


@pytest.mark.parametrize(
    ("gnss", "sigma", "fix"), [("rtk", 0.02, "rtk_fixed"), ("gnss", 1.5, "3d")]
)
def test_gnss_noise_has_the_configured_sigma_and_fix(gnss: str, sigma: float, fix: str) -> None:
    job = fly(gnss=gnss, gnss_tau_s=0.0)
    x, y = local_track(job)
    ex, ey = x - job.truth.x, y - job.truth.y
    assert float(np.std(ex)) == pytest.approx(sigma, rel=0.1)
    assert float(np.std(ey)) == pytest.approx(sigma, rel=0.1)
    assert {s.fix for s in job.samples} == {fix}


def test_gauss_markov_error_is_correlated_over_its_time_constant() -> None:
    e = gauss_markov(200_000, 1.5, 2.0, DT_S, np.random.default_rng(0))
    assert float(np.std(e)) == pytest.approx(1.5, rel=0.05)
    lag1 = float(np.corrcoef(e[:-1], e[1:])[0, 1])
    assert lag1 == pytest.approx(math.exp(-DT_S / 2.0), abs=0.01)


def test_events_mark_each_spray_run() -> None:
    job = fly()
    kinds = [e.type for e in job.events]
    assert kinds.count("spray_on") == kinds.count("spray_off") == len(runs(job))
    assert kinds[0] == "job_start"
    assert kinds[-1] == "job_end"
    assert "takeoff" in kinds
    assert "landing" in kinds


def test_missed_strip_leaves_length_times_swath_unsprayed() -> None:
    job = fly(faults=Faults(missed_strips=1), swath_m=5.0)
    answer = intended_answers([job])[0]
    assert len(answer.missed_strips) == 1
    assert answer.missed_ha * 1e4 == pytest.approx(100 * 5.0, rel=0.01)
    assert answer.passes == 7


def test_clogged_nozzle_halves_the_flow_of_the_pass() -> None:
    clean = fly(flow_lpm=6.0)
    clogged = fly(flow_lpm=6.0, faults=Faults(clogged_nozzle=1.0))
    assert {s.flow_lpm for s in clogged.samples if s.spraying} == {3.0}
    assert applied_litres(clogged.truth) == pytest.approx(applied_litres(clean.truth) / 2, rel=1e-6)


def test_wind_drift_pushes_the_drone_off_its_line() -> None:
    job = fly(faults=Faults(wind_drift_m=1.0))
    (a, b), *_ = runs(job)
    deviation = np.abs(job.truth.y[a:b] - np.mean(job.truth.y[a:b]))
    assert 0.2 < float(deviation.max()) <= 2.0
    answer = intended_answers([job])[0]
    assert answer.coverage_pct < 100.0 - 1e-6 or answer.overlap_ha > 0


def test_intended_litres_follow_the_engine_rule() -> None:
    job = fly(flow_lpm=6.0)
    on_samples = int(job.truth.spraying.sum())
    assert intended_answers([job])[0].applied_l == pytest.approx(on_samples * 6.0 * DT_S / 60)


def test_single_sample_runs_have_no_footprint() -> None:
    job = fly()
    on = np.zeros_like(job.truth.spraying)
    on[10] = True
    assert run_footprints(replace(job.truth, spraying=on)) == []


def test_pass_offsets_cover_the_width_symmetrically() -> None:
    offsets = pass_offsets(23.0, 5.0, 5.0)
    assert len(offsets) == 5
    assert offsets[0] - 2.5 == pytest.approx(23.0 - (offsets[-1] + 2.5))


def test_config_out_of_range_is_refused_with_its_name() -> None:
    with pytest.raises(ValueError, match="flow_lpm"):
        FlightConfig(flow_lpm=-1)


def test_drones_alternate_between_cooperatives_with_wire_safe_ids() -> None:
    specs = assign_drones(load_fields(), 4)
    assert [s.drone for s in specs] == ["dt-01", "dt-02", "dt-03", "dt-04"]
    assert [s.coop for s in specs] == ["htx-hong-phong", "htx-yen-tho"] * 2
    assert all(f.coop == s.coop for s in specs for f in s.fields)


def test_drone_jobs_stop_at_the_duration() -> None:
    spec = assign_drones(load_fields(), 1)[0]
    until = T0 + 60_000
    jobs = list(drone_jobs(spec, FlightConfig(), seed=1, index=0, start_ms=T0, until_ms=until))
    assert jobs
    assert all(s.ts_ms < until for j in jobs for s in j.samples)


@settings(max_examples=12, deadline=None)
@given(
    length=st.floats(30, 120),
    width=st.floats(8, 45),
    angle=st.floats(0, 180),
)
def test_any_rectangle_is_fully_covered_without_overlap(
    length: float, width: float, angle: float
) -> None:
    local = rotate(box(-length / 2, -width / 2, length / 2, width / 2), angle, origin=(0, 0))
    answer = intended_answers([fly(field_of(local))])[0]
    assert answer.coverage_pct >= 99.99
    assert answer.overlap_ha * 1e4 < 0.01


# --- what job_start announces for the spray diary -------------------------------------------


def _job_events(job: Job) -> tuple[dict[str, object], dict[str, object]]:
    [start] = [e.attrs for e in job.events if e.type == "job_start"]
    [end] = [e.attrs for e in job.events if e.type == "job_end"]
    return start, end


def test_a_job_announces_no_product_by_default() -> None:
    start, end = _job_events(fly())
    assert set(start) == {"field", "name", "owner", "crop"}
    assert "job" not in end


def test_a_job_announces_its_product_and_dose_under_an_id_when_configured() -> None:
    job = fly(product="kazole", dose_l_per_ha=15.0)
    start, end = _job_events(job)
    assert (start["product"], start["dose_l_per_ha"]) == ("kazole", 15.0)
    assert start["job"] == f"j-{T0}"  # the drone's clock when the job began
    assert end["job"] == start["job"]  # job_end closes that job
    # The summarizer keeps both details as announced (flights.jobs).
    assert job_details(start) == ({"product": "kazole", "dose_l_per_ha": 15.0}, ())


@pytest.mark.parametrize("dose", [0.0, 501.0])
def test_an_implausible_planned_dose_is_refused(dose: float) -> None:
    with pytest.raises(ValueError, match="dose_l_per_ha"):
        FlightConfig(dose_l_per_ha=dose)
