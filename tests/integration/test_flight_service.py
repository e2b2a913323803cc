"""Flights rebuilt from both real stores into the metadata database: the stored figures are
the summaries', rebuilding is idempotent, open flights wait, and stored per-field states add
up to the coverage of all the samples at once."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from fields.coverage import CoverageEngine
from fields.registry import FieldRegistry, load_fields
from fields.stored import to_stored
from fields.synthetic import T0_MS
from flights.segment import Flight, segment_flights
from flights.service import FlightWatcher, rebuild, summarize_drone
from flights.summary import decode_state, merge_states, summarize_flight
from simulators.fleet import DroneState, FlightConfig, Job, plan_job
from simulators.geo import DEFAULT_FIELDS_PATH
from simulators.geo import load_fields as load_sim_fields
from storage.contract import TelemetryStore
from storage.metadata import MetadataDB, StoredFlight

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000
FIELD_ID = "dt-hp-004"  # a 0.3 ha plot of the packaged Đông Triều fields


@dataclass(frozen=True)
class Scenario:
    """A simulator-planned job of three flights (a small tank forces refills)."""

    job: Job
    flights: list[Flight]
    registry: FieldRegistry

    @property
    def coop(self) -> str:
        return self.job.coop

    @property
    def drone(self) -> str:
        return self.job.drone


@functools.cache
def scenario() -> Scenario:
    sim_field = load_sim_fields().by_id(FIELD_ID)
    state = DroneState(sim_field.coop, "d-flt", T0_MS)
    job = plan_job(sim_field, state, FlightConfig(tank_capacity_l=3.0), np.random.default_rng(3))
    flights = segment_flights(job.samples, job.events)
    return Scenario(job, flights, load_fields(DEFAULT_FIELDS_PATH))


@pytest.fixture
def metadata(metadata_url: str) -> Iterator[MetadataDB]:
    """A metadata database with the packaged fields registered (on each metadata store)."""
    db = MetadataDB(metadata_url)
    registry = scenario().registry
    db.save_fields(to_stored([*registry.fields, *registry.no_spray]))
    yield db
    db.close()


def write_job(store: TelemetryStore, until_ms: int | None = None) -> None:
    job = scenario().job
    store.write_samples([s for s in job.samples if until_ms is None or s.ts_ms <= until_ms])
    store.write_events([e for e in job.events if until_ms is None or e.ts_ms <= until_ms])


def the_day() -> tuple[int, int, int]:
    """(start, end, now) of a window holding the whole job, long after it."""
    return T0_MS - DAY_MS // 2, T0_MS + DAY_MS // 2, T0_MS + 2 * DAY_MS


def without_computed_time(rows: list[StoredFlight]) -> list[tuple[object, ...]]:
    return [(r.id, r.coop, r.drone, r.start_ms, r.end_ms, r.open, r.summary) for r in rows]


def test_rebuild_stores_every_flight_with_the_summarys_litres_and_field_areas(
    store: TelemetryStore, metadata: MetadataDB
) -> None:
    sc = scenario()
    write_job(store)
    start, end, now = the_day()
    (outcome,) = rebuild(store, metadata, start, end, now_ms=now)
    assert outcome.saved == tuple(f.id for f in sc.flights)
    assert len(sc.flights) == 3
    engine = CoverageEngine(sc.registry)
    stored = metadata.flights(start, end, coop=sc.coop, drone=sc.drone)
    assert [f.id for f in stored] == [f.id for f in sc.flights]
    for flight, row in zip(sc.flights, stored, strict=True):
        expected = summarize_flight(flight, engine).summary
        doc = row.summary_dict()
        assert (row.start_ms, row.end_ms, row.open) == (flight.start_ms, flight.end_ms, False)
        assert doc["applied_l"] == pytest.approx(expected.applied_l, rel=1e-9)
        assert doc["samples_received"] == len(flight.samples)
        shares = {s.field_id: s for s in expected.fields}
        assert FIELD_ID in shares
        per_field = metadata.flight_fields(row.id)
        assert [s.field_id for s in per_field] == sorted(shares)
        for s in per_field:
            assert s.covered_ha == pytest.approx(shares[s.field_id].covered_ha, rel=1e-9)
            assert s.applied_l == pytest.approx(shares[s.field_id].applied_l, rel=1e-9)


def test_every_flight_of_a_job_knows_the_field_the_job_named(
    store: TelemetryStore, metadata: MetadataDB
) -> None:
    sc = scenario()
    write_job(store)
    _, end, now = the_day()
    later = sc.flights[1].start_ms  # the job_start was before the first flight, out of window
    rebuild(store, metadata, later, end, now_ms=now)
    stored = metadata.flights(later, end, coop=sc.coop, drone=sc.drone)
    assert len(stored) == 2
    assert [r.summary_dict()["job_fields"] for r in stored] == [[FIELD_ID], [FIELD_ID]]


def test_rebuilding_twice_leaves_the_same_rows(store: TelemetryStore, metadata: MetadataDB) -> None:
    write_job(store)
    start, end, now = the_day()
    rebuild(store, metadata, start, end, now_ms=now)
    first = metadata.flights(start, end)
    states = [metadata.flight_fields(f.id) for f in first]
    (again,) = rebuild(store, metadata, start, end, now_ms=now)
    assert again.removed == 0
    assert without_computed_time(metadata.flights(start, end)) == without_computed_time(first)
    assert [metadata.flight_fields(f.id) for f in first] == states


def test_an_open_flight_is_stored_only_once_it_has_ended(
    store: TelemetryStore, metadata: MetadataDB
) -> None:
    sc = scenario()
    second = sc.flights[1]
    midway = second.samples[len(second.samples) // 2].ts_ms
    write_job(store, until_ms=midway)
    start, end, _ = the_day()
    early = summarize_drone(store, metadata, sc.coop, sc.drone, start, end, now_ms=midway + 1_000)
    assert early.saved == (sc.flights[0].id,)
    assert early.open == (second.id,)
    assert early.open_since_ms == second.start_ms
    assert metadata.flight(second.id) is None

    write_job(store)
    later = summarize_drone(
        store, metadata, sc.coop, sc.drone, second.start_ms, end, now_ms=sc.job.end_ms + 1_000
    )
    assert later.saved == (second.id, sc.flights[2].id)
    stored = metadata.flight(second.id)
    assert stored is not None
    assert stored.end_ms == second.end_ms
    assert stored.summary_dict()["samples_received"] == len(second.samples)


def test_a_flight_crossing_the_window_end_is_stored_whole_and_only_in_its_start_window(
    store: TelemetryStore, metadata: MetadataDB
) -> None:
    sc = scenario()
    second = sc.flights[1]
    assert second.duration_s > 61  # longer than the idle gap the read is widened by
    cut = second.start_ms + 1
    _, _, now = the_day()
    write_job(store)
    (outcome,) = rebuild(store, metadata, T0_MS - DAY_MS, cut, now_ms=now)
    assert outcome.saved == (sc.flights[0].id, second.id)
    stored = metadata.flight(second.id)
    assert stored is not None
    assert stored.end_ms == second.end_ms
    assert stored.summary_dict()["samples_received"] == len(second.samples)
    (after,) = rebuild(store, metadata, cut, T0_MS + DAY_MS, now_ms=now)
    assert after.saved == (sc.flights[2].id,)
    assert after.removed == 0


def test_stored_field_states_merge_to_the_coverage_of_all_samples_at_once(
    store: TelemetryStore, metadata: MetadataDB
) -> None:
    sc = scenario()
    write_job(store)
    start, end, now = the_day()
    rebuild(store, metadata, start, end, now_ms=now)
    engine = CoverageEngine(sc.registry)
    rows = metadata.field_flights(FIELD_ID, start, end)
    assert [r.flight_id for r in rows] == [f.id for f in sc.flights]
    merged = engine.empty(FIELD_ID)
    for r in rows:
        merged = merge_states(engine, merged, decode_state(engine, r.state_doc()))
    at_once = engine.run(sc.job.samples)[FIELD_ID]
    got, want = engine.result(merged), engine.result(at_once)
    assert want.covered_ha > 0
    for key in ("covered_ha", "overlap_ha", "off_target_ha", "applied_l", "passes"):
        assert getattr(got, key) == pytest.approx(getattr(want, key), rel=1e-9), key
    np.testing.assert_allclose(merged.dose, at_once.dose, rtol=1e-9, atol=1e-15)


def test_the_watcher_stores_the_jobs_flights_as_they_end(
    store: TelemetryStore, metadata: MetadataDB
) -> None:
    sc = scenario()
    watcher = FlightWatcher(settle_s=0.0)
    second = sc.flights[1]
    midway = second.samples[len(second.samples) // 2].ts_ms
    write_job(store, until_ms=midway)
    watcher.poll(store, metadata, midway + 1_000)
    assert [f.id for f in metadata.flights(0, 2**62)] == [sc.flights[0].id]
    write_job(store)
    watcher.poll(store, metadata, sc.job.end_ms + 61_000)
    assert [f.id for f in metadata.flights(0, 2**62)] == [f.id for f in sc.flights]
