"""One bad field never takes coverage or flight summaries away from the others.

A field stored before today's rules (or written around the API) may not parse any more, or
may break GEOS when a neighbour's coverage is prepared ("TopologyException: side location
conflict"). The history leaves such versions out, the coverage engine leaves out fields it
cannot prepare, rebuild goes on past a failing drone, and the flight watcher's thread
outlives any failing round. Real SQLite metadata and telemetry databases throughout.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import logging
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np
import orjson
import pytest
import shapely
import shapely.errors
import shapely.geometry

import fields.coverage
from api.catalog import FieldCatalog
from fields.coverage import CoverageEngine, UnpreparedFieldError
from fields.registry import Field, FieldRegistry, load_fields, parse_fields
from fields.stored import FieldHistory, UnusableFieldError, to_stored
from fields.synthetic import T0_MS
from flights.service import FlightWatcher, rebuild, watch
from simulators.fleet import DroneState, FlightConfig, Job, plan_job
from simulators.geo import DEFAULT_FIELDS_PATH
from simulators.geo import load_fields as load_sim_fields
from storage.metadata import MetadataDB, StoredField
from storage.records import DroneLastSeen, Sample
from storage.sqlite import SqliteStore

DAY_MS: Final = 86_400_000
FIELD_ID: Final = "dt-hp-004"
#: The reviewer's strip: stored directly, it would have crossed the antimeridian.
STRIP: Final = {
    "type": "Feature",
    "properties": {"id": "strip", "coop": "htx-yen-tho"},
    "geometry": {
        "type": "Polygon",
        "coordinates": [
            [
                [179.9999, 21.0714698],
                [-179.9999, 21.0714698],
                [-179.9999, 21.0726416],
                [179.9999, 21.0726416],
                [179.9999, 21.0714698],
            ]
        ],
    },
}


@functools.cache
def registry() -> FieldRegistry:
    return load_fields(DEFAULT_FIELDS_PATH)


@functools.cache
def job() -> Job:
    sim_field = load_sim_fields().by_id(FIELD_ID)
    state = DroneState(sim_field.coop, "d-flt", T0_MS)
    return plan_job(sim_field, state, FlightConfig(tank_capacity_l=3.0), np.random.default_rng(3))


def bowtie_over(field_id: str) -> Field:
    """A self-intersecting outline over a packaged field, built around the parser."""
    near = registry().get(field_id)
    x0, y0, x1, y1 = near.geometry.bounds
    bow = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])
    metric = near.plane.to_plane(bow)
    return Field("bowtie", "field", bow, near.plane, metric, coop="htx-yen-tho")


@pytest.fixture
def metadata(tmp_path: Path) -> Iterator[MetadataDB]:
    """The packaged fields, plus the strip and a bow-tie stored directly (no validation)."""
    db = MetadataDB(tmp_path / "agridrone.db")
    db.save_fields(to_stored([*registry().fields, *registry().no_spray]))
    bow = bowtie_over("dt-hp-001")
    bow_feature = {
        "type": "Feature",
        "properties": {"id": "bowtie", "coop": "htx-yen-tho"},
        "geometry": shapely.geometry.mapping(bow.geometry),
    }
    db.save_fields(
        [
            StoredField("strip", "field", "htx-yen-tho", "", orjson.dumps(STRIP).decode()),
            StoredField("bowtie", "field", "htx-yen-tho", "", orjson.dumps(bow_feature).decode()),
        ]
    )
    yield db
    db.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "telemetry.db") as sqlite:
        sqlite.write_samples(job().samples)
        sqlite.write_events(job().events)
        yield sqlite


def test_a_catalog_replaced_after_an_edit_is_freed_despite_an_unusable_version(
    metadata: MetadataDB,
) -> None:
    """The catalog freezes what it keeps out of the cyclic collector; the catalog an edit
    replaces must still be freed, or every edit of a town leaks a registry."""
    catalog = FieldCatalog(metadata)
    first = weakref.ref(catalog.current().history)
    with pytest.raises(UnusableFieldError):  # asked twice: the error is kept only as text
        catalog.current().history.field(catalog.current().history.of("strip")[0])
    with pytest.raises(UnusableFieldError):
        catalog.current().history.field(catalog.current().history.of("strip")[0])
    metadata.end_field("bowtie")
    catalog.current()
    gc.collect()
    assert first() is None


# --- the history ------------------------------------------------------------------------


def test_the_history_leaves_out_stored_versions_that_no_longer_validate(
    metadata: MetadataDB,
) -> None:
    history = FieldHistory(metadata.field_versions())
    _, current = history.registry_at(T0_MS)
    assert current is not None
    ids = {f.id for f in (*current.fields, *current.no_spray)}
    packaged = {f.id for f in (*registry().fields, *registry().no_spray)}
    assert ids == packaged


def test_an_unusable_version_says_why_and_what_to_do(metadata: MetadataDB) -> None:
    history = FieldHistory(metadata.field_versions())
    (strip,) = history.of("strip")
    with pytest.raises(UnusableFieldError) as info:
        history.field(strip)
    message = str(info.value)
    assert message.startswith("field 'strip' (version 1) is stored with an outline that cannot")
    assert "crosses the antimeridian" in message
    assert "redraws it (PUT) or deletes it (DELETE)" in message


def test_an_unusable_version_is_logged_once_with_its_id(
    metadata: MetadataDB, caplog: pytest.LogCaptureFixture
) -> None:
    history = FieldHistory(metadata.field_versions())
    with caplog.at_level(logging.WARNING, logger="fields.stored"):
        history.registry_at(T0_MS)
        history.registry_at(T0_MS + 1)
        history.usable(history.of("bowtie"))
    lines = [r.getMessage() for r in caplog.records]
    assert sorted(line.split(" reason=")[0] for line in lines) == [
        "field_version_unusable field=bowtie version=1",
        "field_version_unusable field=strip version=1",
    ]


# --- the coverage engine -----------------------------------------------------------------


def test_the_surroundings_of_a_neighbour_of_an_invalid_outline_break_without_screening() -> None:
    neighbour = registry().get("dt-hp-001")
    with pytest.raises(shapely.errors.GEOSException, match="side location conflict"):
        fields.coverage.field_targets([neighbour, bowtie_over("dt-hp-001")], (), neighbour.plane)


def test_the_engine_leaves_out_an_invalid_outline_and_prepares_every_other_field(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad = bowtie_over("dt-hp-001")
    with caplog.at_level(logging.WARNING, logger="fields.coverage"):
        engine = CoverageEngine(dataclasses.replace(registry(), fields=(*registry().fields, bad)))
    assert set(engine.fields) == {f.id for f in registry().fields}
    assert "outline is invalid in metres (Self-intersection" in engine.unprepared["bowtie"]
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("coverage_field_left_out field=bowtie kind=field coop=htx-yen-tho ")
    reference = CoverageEngine(registry())
    state = engine.run(job().samples)[FIELD_ID]
    assert engine.result(state) == reference.result(reference.run(job().samples)[FIELD_ID])


def test_a_field_left_out_answers_why_its_coverage_cannot_be_computed() -> None:
    bad = bowtie_over("dt-hp-001")
    engine = CoverageEngine(dataclasses.replace(registry(), fields=(*registry().fields, bad)))
    with pytest.raises(UnpreparedFieldError) as info:
        engine.empty("bowtie")
    assert str(info.value).startswith("the coverage of field 'bowtie' cannot be computed: ")
    with pytest.raises(KeyError):
        engine.empty("never-registered")


def _pond_on(field_id: str) -> Field:
    """A commune-wide zone over the middle of a registered field (so preparing the field
    computes its target)."""
    centre = registry().get(field_id).geometry.centroid
    doc = {
        "type": "Feature",
        "properties": {"id": f"pond-{field_id}", "kind": "no_spray"},
        "geometry": shapely.geometry.mapping(centre.buffer(0.00005)),
    }
    return parse_fields(doc).no_spray[0]


def test_a_geos_error_while_preparing_one_field_leaves_out_only_that_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with_ponds = dataclasses.replace(
        registry(), no_spray=(_pond_on("dt-yt-007"), _pond_on("dt-yt-008"))
    )
    victim = with_ponds.get("dt-yt-007").metric
    real = fields.coverage._targets

    def failing(metric: Any, no_spray: Any) -> Any:
        if any(m is victim for m in metric):
            raise shapely.errors.GEOSException("TopologyException: side location conflict")
        return real(metric, no_spray)

    monkeypatch.setattr(fields.coverage, "_targets", failing)
    engine = CoverageEngine(with_ponds)
    assert set(engine.fields) == {f.id for f in registry().fields} - {"dt-yt-007"}
    assert "side location conflict" in engine.unprepared["dt-yt-007"]
    assert engine.fields["dt-yt-008"].target.area < with_ponds.get("dt-yt-008").metric.area


# --- flight summaries ---------------------------------------------------------------------


def the_day() -> tuple[int, int, int]:
    return T0_MS - DAY_MS // 2, T0_MS + DAY_MS // 2, T0_MS + 2 * DAY_MS


def test_rebuild_over_a_bad_stored_field_summarizes_every_flight(
    store: SqliteStore, metadata: MetadataDB
) -> None:
    start, end, now = the_day()
    (outcome,) = rebuild(store, metadata, start, end, now_ms=now)
    assert outcome.failed == ()
    assert len(outcome.saved) == 3
    covered = [
        s.covered_ha
        for f in outcome.saved
        for s in metadata.flight_fields(f)
        if s.field_id == FIELD_ID
    ]
    assert len(covered) == 3
    assert all(c > 0 for c in covered)


class BrokenDrone(SqliteStore):
    """A real store whose reads of one drone fail the way a bug would (not a StoreError)."""

    broken = "d-broken"

    def drone_samples(self, coop: str, drone: str, start_ms: int, end_ms: int) -> list[Sample]:
        if drone == self.broken:
            raise RuntimeError("cannot decode a sample row")
        return super().drone_samples(coop, drone, start_ms, end_ms)


def test_rebuild_reports_a_failing_drone_and_goes_on_with_the_rest(
    tmp_path: Path, metadata: MetadataDB
) -> None:
    with BrokenDrone(tmp_path / "broken.db") as broken:
        broken.write_samples(job().samples)
        broken.write_events(job().events)
        broken.write_samples([Sample("htx-aaa", "d-broken", T0_MS, 21.08, 106.52, spraying=False)])
        start, end, now = the_day()
        first, second = rebuild(broken, metadata, start, end, now_ms=now)
    assert (first.coop, first.drone, first.saved) == ("htx-aaa", "d-broken", ())
    assert first.failed == (
        "htx-aaa/d-broken: could not be rebuilt (RuntimeError: cannot decode a sample row)",
    )
    assert (second.drone, len(second.saved), second.failed) == ("d-flt", 3, ())


def test_a_watcher_round_goes_on_past_a_failing_drone_and_retries_it_later(
    tmp_path: Path, metadata: MetadataDB, caplog: pytest.LogCaptureFixture
) -> None:
    watcher = FlightWatcher(settle_s=0.0, lookback_s=10 * 365 * 86_400.0)
    now = the_day()[2]
    with BrokenDrone(tmp_path / "broken.db") as broken:
        broken.write_samples(job().samples)
        broken.write_events(job().events)
        broken.write_samples([Sample("htx-aaa", "d-broken", T0_MS, 21.08, 106.52, spraying=False)])
        with caplog.at_level(logging.ERROR, logger="flights.service"):
            outcomes = watcher.poll(broken, metadata, now)
    assert [(o.drone, len(o.saved)) for o in outcomes] == [("d-flt", 3)]
    assert watcher.since["htx-aaa", "d-broken"] < T0_MS  # not moved past: tried again
    assert watcher.since[job().coop, "d-flt"] == now
    (record,) = caplog.records
    assert record.getMessage() == "flight_window_failed coop=htx-aaa drone=d-broken"
    assert record.exc_info is not None


class FlakyStore(SqliteStore):
    """A real store whose drone list fails (not with a StoreError) for the first rounds."""

    failures = 3

    def drones(self) -> list[DroneLastSeen]:
        if self.failures > 0:
            self.failures -= 1
            raise ValueError("unexpected row in the drones table")
        return super().drones()


def test_the_watcher_outlives_failing_rounds_and_logs_each_traceback_once(
    tmp_path: Path, metadata: MetadataDB, caplog: pytest.LogCaptureFixture
) -> None:
    stop = threading.Event()
    with FlakyStore(tmp_path / "flaky.db") as flaky:
        flaky.write_samples(job().samples)
        flaky.write_events(job().events)
        watcher = FlightWatcher(interval_s=0.0, settle_s=0.0, lookback_s=10 * 365 * 86_400.0)
        thread = threading.Thread(target=watch, args=(flaky, metadata, stop, watcher, 0.01))
        with caplog.at_level(logging.INFO, logger="flights.service"):
            thread.start()
            deadline = time.monotonic() + 60
            while not metadata.flights(*the_day()[:2]) and time.monotonic() < deadline:
                time.sleep(0.05)
            alive = thread.is_alive()
            stop.set()
            thread.join(30)
    assert alive
    assert len(metadata.flights(*the_day()[:2])) == 3
    crashed = [r for r in caplog.records if r.getMessage().startswith("flight_watch_crashed")]
    assert [r.getMessage().split(" error=")[0] for r in crashed] == [
        "flight_watch_crashed again=false",
        "flight_watch_crashed again=true",
        "flight_watch_crashed again=true",
    ]
    assert crashed[0].exc_info is not None
    assert all(r.exc_info is None for r in crashed[1:])
