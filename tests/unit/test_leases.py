"""The summarizer lease: one holder at a time, renewals, take-over after expiry, release;
``watch`` runs rounds only while it holds the lease; and two watchers that do run at once
(a slow holder during a hand-over) still store each flight once."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from agridrone.cli import build_parser
from agridrone.settings import ConfigError
from fields.registry import load_fields
from fields.stored import to_stored
from fields.synthetic import T0_MS
from flights.segment import segment_flights
from flights.service import DroneOutcome, FlightWatcher, WatchLease, watch
from ingest.cli import summarizer_lease_s
from simulators.fleet import DroneState, FlightConfig, plan_job
from simulators.geo import DEFAULT_FIELDS_PATH
from simulators.geo import load_fields as load_sim_fields
from storage.contract import TelemetryStore
from storage.metadata import LateRange, MetadataDB
from storage.sqlite import SqliteStore

NAME = "flight-summarizer"
TTL = 3_000


def test_a_free_lease_goes_to_the_first_who_asks(metadata: MetadataDB) -> None:
    got = metadata.acquire_lease(NAME, "w1", TTL, now_ms=1_000)
    assert got.held_by("w1")
    assert got.expires_ms == 4_000
    assert got.previous is None


def test_a_held_lease_is_refused_to_another_until_it_expires(metadata: MetadataDB) -> None:
    metadata.acquire_lease(NAME, "w1", TTL, now_ms=1_000)
    refused = metadata.acquire_lease(NAME, "w2", TTL, now_ms=3_999)
    assert not refused.held_by("w2")
    assert refused.holder == "w1"
    assert refused.expires_ms == 4_000


def test_the_holder_renews_its_lease(metadata: MetadataDB) -> None:
    metadata.acquire_lease(NAME, "w1", TTL, now_ms=1_000)
    renewed = metadata.acquire_lease(NAME, "w1", TTL, now_ms=3_500)
    assert renewed.held_by("w1")
    assert renewed.expires_ms == 6_500
    assert not renewed.taken_over()
    assert not metadata.acquire_lease(NAME, "w2", TTL, now_ms=5_000).held_by("w2")


def test_an_expired_lease_is_taken_over_and_names_the_previous_holder(
    metadata: MetadataDB,
) -> None:
    metadata.acquire_lease(NAME, "w1", TTL, now_ms=1_000)
    taken = metadata.acquire_lease(NAME, "w2", TTL, now_ms=4_000)
    assert taken.held_by("w2")
    assert taken.taken_over()
    assert (taken.previous, taken.previous_expires_ms) == ("w1", 4_000)
    assert not metadata.acquire_lease(NAME, "w1", TTL, now_ms=4_001).held_by("w1")


def test_a_released_lease_is_free_at_once_and_only_its_holder_releases_it(
    metadata: MetadataDB,
) -> None:
    metadata.acquire_lease(NAME, "w1", TTL, now_ms=1_000)
    assert metadata.release_lease(NAME, "w2") is False
    assert metadata.lease(NAME) is not None
    assert metadata.release_lease(NAME, "w1") is True
    assert metadata.lease(NAME) is None
    assert metadata.acquire_lease(NAME, "w2", TTL, now_ms=1_001).held_by("w2")


def test_leases_of_different_names_are_independent(metadata: MetadataDB) -> None:
    assert metadata.acquire_lease("a", "w1", TTL, now_ms=0).held_by("w1")
    assert metadata.acquire_lease("b", "w2", TTL, now_ms=0).held_by("w2")


def test_a_lease_needs_a_positive_time_to_live(metadata: MetadataDB) -> None:
    with pytest.raises(ValueError, match="time to live"):
        metadata.acquire_lease(NAME, "w1", 0, now_ms=0)


def test_of_many_racing_for_a_free_lease_exactly_one_wins(metadata_url: str) -> None:
    def attempt(i: int) -> bool:
        db = MetadataDB(metadata_url)  # connections of its own, as another process has
        try:
            return db.acquire_lease(NAME, f"w{i}", TTL, now_ms=1_000).held_by(f"w{i}")
        finally:
            db.close()

    MetadataDB(metadata_url).close()  # created and migrated before the race
    with ThreadPoolExecutor(8) as pool:
        wins = list(pool.map(attempt, range(16)))
    assert wins.count(True) == 1


# --- watch() gated by the lease ------------------------------------------------------------


class CountingWatcher(FlightWatcher):
    """A watcher whose rounds only count themselves."""

    def __init__(self) -> None:
        super().__init__(interval_s=0.05)
        self.rounds = 0

    def poll(
        self, _store: TelemetryStore, _metadata: MetadataDB, now_ms: int
    ) -> list[DroneOutcome]:
        self.rounds += 1
        self.since[("c", "d")] = now_ms
        return []


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "telemetry.db")
    yield s
    s.close()


def start_watch(
    store: SqliteStore,
    metadata: MetadataDB,
    holder: str,
    ttl_s: float = 0.3,
    watcher: CountingWatcher | None = None,
) -> tuple[CountingWatcher, threading.Event, threading.Thread]:
    watcher, stop = watcher or CountingWatcher(), threading.Event()
    lease = WatchLease(holder=holder, ttl_s=ttl_s)
    thread = threading.Thread(
        target=watch, args=(store, metadata, stop, watcher, 0.01), kwargs={"lease": lease}
    )
    thread.start()
    return watcher, stop, thread


def wait_for(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def test_of_two_watchers_only_the_lease_holder_runs_rounds(
    store: SqliteStore, metadata: MetadataDB
) -> None:
    first, stop1, t1 = start_watch(store, metadata, "w1")
    wait_for(lambda: first.rounds >= 1)
    second, stop2, t2 = start_watch(store, metadata, "w2")
    try:
        wait_for(lambda: first.rounds >= 10)
        assert second.rounds == 0
    finally:
        for stop, t in ((stop1, t1), (stop2, t2)):
            stop.set()
            t.join(5)


def test_when_the_holder_stops_renewing_another_takes_over_after_expiry(
    store: SqliteStore, metadata: MetadataDB, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="flights.service")
    metadata.acquire_lease(NAME, "dead-worker", 300, now_ms=int(time.time() * 1000))
    started = time.monotonic()
    watcher, stop, thread = start_watch(store, metadata, "w2")
    try:
        wait_for(lambda: watcher.rounds >= 1)
    finally:
        stop.set()
        thread.join(5)
    assert time.monotonic() - started >= 0.2  # not before the dead holder's lease ran out
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("lease_waiting ") and "held_by=dead-worker" in m for m in messages)
    assert any(m.startswith("lease_taken_over ") and "from=dead-worker" in m for m in messages)


def test_a_watcher_that_takes_the_lease_starts_from_the_stored_flights(
    store: SqliteStore, metadata: MetadataDB
) -> None:
    remembered = CountingWatcher()
    remembered.since[("old", "memory")] = 1  # what a previous hold left behind
    watcher, stop, thread = start_watch(store, metadata, "w1", watcher=remembered)
    try:
        wait_for(lambda: watcher.rounds >= 1)
    finally:
        stop.set()
        thread.join(5)
    assert ("old", "memory") not in watcher.since


def test_a_stopping_holder_releases_the_lease_and_logs_each_renewal(
    store: SqliteStore, metadata: MetadataDB, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="flights.service")
    watcher, stop, thread = start_watch(store, metadata, "w1")
    wait_for(lambda: watcher.rounds >= 3)
    stop.set()
    thread.join(5)
    assert metadata.lease(NAME) is None
    messages = [r.getMessage() for r in caplog.records]
    renewals = [m for m in messages if m.startswith("lease_renewed ")]
    assert len(renewals) == watcher.rounds - 1
    assert messages.count("lease_released lease=flight-summarizer holder=w1") == 1


# --- `agridrone ingest` flags ----------------------------------------------------------------


def ingest_args(*flags: str) -> argparse.Namespace:
    return build_parser().parse_args(["ingest", "--summarize-flights", *flags])


def test_the_lease_lasts_three_rounds_unless_told() -> None:
    assert summarizer_lease_s(ingest_args()) == 90.0
    assert summarizer_lease_s(ingest_args("--summarize-interval", "2")) == 6.0
    assert summarizer_lease_s(ingest_args("--summarize-lease", "45")) == 45.0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--summarize-interval", "0"), "--summarize-interval must be > 0"),
        (("--summarize-interval", "10", "--summarize-lease", "10"), "must be longer than"),
    ],
)
def test_a_lease_no_longer_than_a_round_is_refused(flags: tuple[str, ...], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        summarizer_lease_s(ingest_args(*flags))


# --- two summarizers at once (a hand-over from a slow holder) -----------------------------


def test_two_watchers_summarizing_the_same_flights_at_once_store_each_flight_once(
    metadata: MetadataDB, store: SqliteStore
) -> None:
    sim_field = load_sim_fields().by_id("dt-hp-004")
    job = plan_job(
        sim_field,
        DroneState(sim_field.coop, "d-twice", T0_MS),
        FlightConfig(tank_capacity_l=3.0),
        np.random.default_rng(5),
    )
    shift = int(time.time() * 1000) - 3_600_000 - job.end_ms
    samples = [dataclasses.replace(s, ts_ms=s.ts_ms + shift) for s in job.samples]
    events = [dataclasses.replace(e, ts_ms=e.ts_ms + shift) for e in job.events]
    flights = segment_flights(samples, events)
    store.write_samples(samples)
    store.write_events(events)
    registry = load_fields(DEFAULT_FIELDS_PATH)
    metadata.save_fields(to_stored([*registry.fields, *registry.no_spray]))
    now_ms = int(time.time() * 1000)
    # As the workers record a backlog: late data, for whichever watcher polls first.
    metadata.record_late_ranges(
        [LateRange(sim_field.coop, "d-twice", samples[0].ts_ms, samples[-1].ts_ms, now_ms)]
    )
    start = threading.Barrier(2)

    def one_round() -> None:
        start.wait()
        FlightWatcher(settle_s=0.0).poll(store, metadata, now_ms)

    threads = [threading.Thread(target=one_round) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)

    stored = metadata.flights(0, 2**62)
    assert [f.id for f in stored] == [f.id for f in flights]
    assert [f.summary_dict()["samples_received"] for f in stored] == [
        len(f.samples) for f in flights
    ]
    assert metadata.late_ranges() == []
