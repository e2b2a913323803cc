"""Late data through the whole service, against a real Mosquitto and both real stores: half
a flight is published and summarized, then the rest arrives with its original times; the
watcher summarizes the flight again and the API's coverage and usage report include it."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from api.app import create_app
from api.times import rfc3339
from fields.coverage import CoverageEngine
from fields.registry import load_fields
from fields.stored import to_stored
from fields.synthetic import T0_MS
from flights.segment import Flight, segment_flights
from flights.service import FlightWatcher, watch
from flights.summary import summarize_flight
from ingest.mqtt import BrokerAddress, ConsumerConfig, subscriptions
from ingest.service import IngestConfig, IngestService
from ingest.wire import encode_event, encode_samples
from simulators.fleet import DroneState, FlightConfig, plan_job
from simulators.geo import DEFAULT_FIELDS_PATH
from simulators.geo import load_fields as load_sim_fields
from storage.contract import TelemetryStore
from storage.keys import generate_key
from storage.metadata import MetadataDB, StoredFlight
from storage.records import Event, Sample
from tests.integration.api_server import serving
from tests.integration.conftest import scaled_metadata
from tests.integration.mqtt_helpers import publish_all, unique_id, wait_until
from tests.servers import Mosquitto

pytestmark = pytest.mark.integration

FIELD_ID = "dt-hp-004"
TARIFF = 300_000


@dataclasses.dataclass(frozen=True)
class Job:
    """A simulated three-flight job on FIELD_ID, moved to have ended an hour ago."""

    coop: str
    drone: str
    samples: list[Sample]
    events: list[Event]
    flights: list[Flight]


def recent_job() -> Job:
    sim_field = load_sim_fields().by_id(FIELD_ID)
    drone = unique_id("d-late")
    state = DroneState(sim_field.coop, drone, T0_MS)
    job = plan_job(sim_field, state, FlightConfig(tank_capacity_l=3.0), np.random.default_rng(3))
    shift = int(time.time() * 1000) - 3_600_000 - job.end_ms
    samples = [dataclasses.replace(s, ts_ms=s.ts_ms + shift) for s in job.samples]
    events = [dataclasses.replace(e, ts_ms=e.ts_ms + shift) for e in job.events]
    return Job(sim_field.coop, drone, samples, events, segment_flights(samples, events))


def publish(port: int, job: Job, samples: Sequence[Sample], events: Sequence[Event]) -> None:
    """Samples 50 to a message and every event, as a drone's backlog upload would."""
    topic = f"agri/v1/{job.coop}/{job.drone}"
    messages = [
        (f"{topic}/telemetry", encode_samples(samples[i : i + 50]))
        for i in range(0, len(samples), 50)
    ]
    messages += [(f"{topic}/event", encode_event(e)) for e in events]
    publish_all(port, messages)


@dataclasses.dataclass
class Service:
    """The ingest worker and the flight watcher running, and the API serving."""

    metadata: MetadataDB
    url: str
    headers: dict[str, str]

    def get(self, path: str, **params: str) -> dict[str, Any]:
        response = httpx.get(f"{self.url}{path}", params=params, headers=self.headers, timeout=30)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def service(
    mosquitto: Mosquitto, store: TelemetryStore, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[Service, Job]]:
    job = recent_job()
    metadata = MetadataDB(scaled_metadata(request, store, tmp_path))
    registry = load_fields(DEFAULT_FIELDS_PATH)
    metadata.save_fields(to_stored([*registry.fields, *registry.no_spray]))
    metadata.set_coop(job.coop, name="HTX", tariff_vnd_per_ha=TARIFF)
    key = generate_key("operator", "ops", "test", int(time.time() * 1000))
    metadata.add_api_key(key.record)
    config = IngestConfig(
        consumer=ConsumerConfig(
            address=BrokerAddress("127.0.0.1", mosquitto.port),
            client_id=unique_id("ingest"),
            topics=subscriptions([job.coop]),
        )
    )
    worker = IngestService(config, store, metadata)
    worker.start(connect_timeout_s=10)
    stop = threading.Event()
    watcher = threading.Thread(
        target=watch,
        args=(store, metadata, stop, FlightWatcher(interval_s=0.2, settle_s=10.0), 0.1),
        name="flights-under-test",
    )
    watcher.start()
    try:
        with serving(create_app(store, metadata)) as url:
            yield Service(metadata, url, {"Authorization": f"Bearer {key.key}"}), job
    finally:
        stop.set()
        watcher.join(30)
        worker.stop()
        metadata.close()


def stored_samples(metadata: MetadataDB, flight_id: str) -> int | None:
    row = metadata.flight(flight_id)
    return None if row is None else int(row.summary_dict()["samples_received"])


def window(job: Job) -> dict[str, str]:
    return {
        "from": rfc3339(job.samples[0].ts_ms - 3_600_000),
        "to": rfc3339(job.samples[-1].ts_ms + 3_600_000),
    }


def test_the_rest_of_a_summarized_flight_arriving_late_is_summarized_and_billed(
    service: tuple[Service, Job], mosquitto: Mosquitto
) -> None:
    svc, job = service
    first, second, third = job.flights
    midway = second.samples[len(second.samples) // 2].ts_ms
    early = [s for s in job.samples if s.ts_ms <= midway]
    publish(mosquitto.port, job, early, [e for e in job.events if e.ts_ms <= midway])
    half = len([s for s in second.samples if s.ts_ms <= midway])
    wait_until(
        lambda: stored_samples(svc.metadata, second.id) == half,
        timeout=60,
        what=f"the first half of {second.id} summarized",
        state=lambda: [f.id for f in svc.metadata.flights(0, 2**62)],
    )
    coverage_before = svc.get(f"/api/v1/fields/{FIELD_ID}/coverage", **window(job))
    usage_before = svc.get("/api/v1/reports/usage", coop=job.coop, **window(job))

    late = [s for s in job.samples if s.ts_ms > midway]
    publish(mosquitto.port, job, late, [e for e in job.events if e.ts_ms > midway])
    wait_until(
        lambda: (
            stored_samples(svc.metadata, second.id) == len(second.samples)
            and stored_samples(svc.metadata, third.id) == len(third.samples)
        ),
        timeout=60,
        what=f"{second.id} summarized again with its late half",
        state=lambda: [
            (f.id, f.summary_dict()["samples_received"]) for f in svc.metadata.flights(0, 2**62)
        ],
    )

    stored: StoredFlight | None = svc.metadata.flight(second.id)
    assert stored is not None
    engine = CoverageEngine(load_fields(DEFAULT_FIELDS_PATH))
    whole = summarize_flight(second, engine).summary
    doc = stored.summary_dict()
    assert (stored.start_ms, stored.end_ms) == (second.start_ms, second.end_ms)
    assert doc["duration_s"] == pytest.approx(second.duration_s)
    assert doc["applied_l"] == pytest.approx(whole.applied_l, rel=1e-9)
    (share,) = [s for s in svc.metadata.flight_fields(second.id) if s.field_id == FIELD_ID]
    (expected,) = [s for s in whole.fields if s.field_id == FIELD_ID]
    assert share.covered_ha == pytest.approx(expected.covered_ha, rel=1e-9)
    assert [f.id for f in svc.metadata.flights(0, 2**62)] == [f.id for f in job.flights]

    coverage = svc.get(f"/api/v1/fields/{FIELD_ID}/coverage", **window(job))
    at_once = engine.result(engine.run(job.samples)[FIELD_ID])
    assert coverage["coverage"]["covered_ha"] == pytest.approx(at_once.covered_ha, abs=1e-6)
    assert coverage["coverage"]["covered_ha"] > coverage_before["coverage"]["covered_ha"]
    assert [f["id"] for f in coverage["flights"]] == [first.id, second.id, third.id]

    usage = svc.get("/api/v1/reports/usage", coop=job.coop, **window(job))
    assert usage["totals"]["flights"] == 3
    assert usage_before["totals"]["flights"] == 2
    assert usage["totals"]["amount_vnd"] > usage_before["totals"]["amount_vnd"]
    assert svc.metadata.late_ranges() == []
