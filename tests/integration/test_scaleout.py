"""More than one process: two ingest workers in one MQTT 5 shared subscription, each started
with ``--summarize-flights``, and two API processes, all real subprocesses over one
metadata store (a SQLite file, then a real PostgreSQL), one real InfluxDB and one real
Mosquitto.

Simulated flights are published at QoS 1 while the worker holding the summarizer lease is
killed with SIGKILL mid-stream; the other takes the lease over, and the killed one is
restarted under its client id (as a supervisor would: Mosquitto keeps queueing a dead
member's share of the stream in its session until it comes back). Then every sample is in
InfluxDB exactly once, every flight has exactly one summary row with all its samples, the
restarted worker waits for the lease instead of summarizing too, and both API processes
answer the same for fields created through either.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from api.times import rfc3339
from fields.registry import load_fields
from fields.stored import to_stored
from fields.synthetic import T0_MS
from flights.segment import Flight, segment_flights
from flights.service import SUMMARIZER_LEASE
from ingest.wire import encode_event, encode_samples
from simulators.fleet import DroneState, FlightConfig, plan_job
from simulators.geo import DEFAULT_FIELDS_PATH
from simulators.geo import load_fields as load_sim_fields
from storage.influx import InfluxStore
from storage.keys import generate_key
from storage.metadata import MetadataDB
from storage.records import Event, Sample
from tests.integration.mqtt_helpers import publish_all, unique_id, wait_until
from tests.servers import Influxd, Mosquitto, free_port

pytestmark = pytest.mark.integration

#: Fields the simulated drones spray, one drone each (2 or 3 flights per job).
JOB_FIELDS = ("dt-hp-004", "dt-yt-004", "dt-hp-010")
INTERVAL_S = 1.0
LEASE_S = 3.0


@dataclasses.dataclass(frozen=True)
class Job:
    """One drone's simulated job, moved to have ended an hour ago (so every batch is late
    data: the watchers' late-range path is exercised too)."""

    coop: str
    drone: str
    samples: list[Sample]
    events: list[Event]
    flights: list[Flight]

    def messages(self) -> list[tuple[str, bytes]]:
        """Samples 10 to a message, then the events, as a drone's upload would send them."""
        topic = f"agri/v1/{self.coop}/{self.drone}"
        out = [
            (f"{topic}/telemetry", encode_samples(self.samples[i : i + 10]))
            for i in range(0, len(self.samples), 10)
        ]
        return out + [(f"{topic}/event", encode_event(e)) for e in self.events]


def make_job(field_id: str, seed: int) -> Job:
    sim_field = load_sim_fields().by_id(field_id)
    drone = unique_id("d-scale")
    state = DroneState(sim_field.coop, drone, T0_MS)
    job = plan_job(sim_field, state, FlightConfig(tank_capacity_l=3.0), np.random.default_rng(seed))
    shift = int(time.time() * 1000) - 3_600_000 - job.end_ms
    samples = [dataclasses.replace(s, ts_ms=s.ts_ms + shift) for s in job.samples]
    events = [dataclasses.replace(e, ts_ms=e.ts_ms + shift) for e in job.events]
    return Job(sim_field.coop, drone, samples, events, segment_flights(samples, events))


def interleaved(jobs: list[Job]) -> list[tuple[str, bytes]]:
    """Every job's messages, taking one of each in turn (drones publishing side by side)."""
    queues = [j.messages() for j in jobs]
    out: list[tuple[str, bytes]] = []
    for i in range(max(len(q) for q in queues)):
        out += [q[i] for q in queues if i < len(q)]
    return out


# --- processes ---------------------------------------------------------------------------


@dataclasses.dataclass
class Process:
    """One ``agridrone`` subprocess, its output in ``log``; stopped by its own PID only."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agridrone.cli", *self.args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no flush, no acknowledgement, no lease release."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclasses.dataclass
class Layout:
    """The scaled layout under test."""

    metadata: MetadataDB
    influx: InfluxStore
    workers: dict[str, Process]  # by client id
    apis: list[str]  # base URLs
    headers: dict[str, str]
    folder: Path

    def get(self, url: str, path: str, **params: str) -> Any:
        response = httpx.get(f"{url}/api/v1{path}", params=params, headers=self.headers, timeout=60)
        assert response.status_code == 200, f"{url}{path}: {response.text}"
        return response.json()


@pytest.fixture
def metadata_env(metadata_url: str) -> dict[str, str]:
    """Where every process finds the one metadata store, once per store: a SQLite file (WAL,
    processes of one machine) or a PostgreSQL database."""
    if metadata_url.startswith("postgresql://"):
        return {"AGRIDRONE_METADATA_URL": metadata_url}
    return {"AGRIDRONE_METADATA_PATH": metadata_url}


def open_metadata(env: dict[str, str]) -> MetadataDB:
    return MetadataDB(env.get("AGRIDRONE_METADATA_URL") or env["AGRIDRONE_METADATA_PATH"])


@pytest.fixture
def layout(
    mosquitto: Mosquitto, influxd: Influxd, metadata_env: dict[str, str], tmp_path: Path
) -> Iterator[Layout]:
    database = f"scale_{uuid.uuid4().hex[:12]}"
    influx = InfluxStore.open(influxd.url, database)
    metadata = open_metadata(metadata_env)
    registry = load_fields(DEFAULT_FIELDS_PATH)
    metadata.save_fields(to_stored([*registry.fields, *registry.no_spray]))
    key = generate_key("operator", "ops", "scale-test", int(time.time() * 1000))
    metadata.add_api_key(key.record)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AGRIDRONE_")}
    env = {
        **clean,
        **metadata_env,
        "AGRIDRONE_STORE": "influx",
        "AGRIDRONE_INFLUX_URL": influxd.url,
        "AGRIDRONE_INFLUX_DB": database,
        "AGRIDRONE_MQTT_URL": mosquitto.url,
        "PYTHONUNBUFFERED": "1",  # every log line reaches the file before a SIGKILL
    }
    group = unique_id("share")
    coops = sorted({load_sim_fields().by_id(f).coop for f in JOB_FIELDS})
    workers: dict[str, Process] = {}
    for i in (1, 2):
        client_id = unique_id(f"ingest{i}")
        args = ["ingest", "--client-id", client_id, "--share-group", group]
        args += [a for c in coops for a in ("--coop", c)]
        args += ["--summarize-flights", "--summarize-interval", str(INTERVAL_S)]
        args += ["--summarize-lease", str(LEASE_S), "--log-level", "INFO"]
        workers[client_id] = Process(client_id, args, env, tmp_path / f"{client_id}.log")
    ports = [free_port(), free_port()]
    apis = [
        Process(f"api{i}", ["api", "--port", str(p)], env, tmp_path / f"api{i}.log")
        for i, p in enumerate(ports)
    ]
    processes = [*workers.values(), *apis]
    try:
        for p in processes:
            p.start()
        for w in workers.values():
            wait_until(
                lambda w=w: "mqtt_subscribed" in w.text(),  # type: ignore[misc]
                timeout=60,
                what=f"{w.name} subscribed",
                state=w.text,
            )
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        for url, api in zip(urls, apis, strict=True):
            wait_until(
                lambda url=url: _ready(url),  # type: ignore[misc]
                timeout=60,
                what=f"{api.name} ready",
                state=api.text,
            )
        yield Layout(
            metadata, influx, workers, urls, {"Authorization": f"Bearer {key.key}"}, tmp_path
        )
    finally:
        for p in processes:
            p.stop()
        metadata.close()
        influx.drop_database()
        influx.close()


def _ready(url: str) -> bool:
    with contextlib.suppress(httpx.TransportError):
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    return False


# --- the test ----------------------------------------------------------------------------


def summaries(metadata: MetadataDB, jobs: list[Job]) -> dict[str, int]:
    """Stored flight id -> samples its summary counted, over the jobs' drones."""
    drones = {j.drone for j in jobs}
    return {
        f.id: int(f.summary_dict()["samples_received"])
        for f in metadata.flights(0, 2**62)
        if f.drone in drones
    }


def field_ids(body: Any) -> list[str]:
    """The ids of a field listing (a list, or a page of one under ``fields``)."""
    items = body if isinstance(body, list) else body["fields"]
    return sorted(f["id"] for f in items)


def by_time(e: Event) -> tuple[int, str]:
    """Events in time order (two at one instant, such as a landing and a job's end, in any)."""
    return e.ts_ms, e.type


def square(field_id: str, lon: float, coop: str) -> dict[str, Any]:
    ring = [[lon, 21.13], [lon + 0.0004, 21.13], [lon + 0.0004, 21.1304], [lon, 21.1304]]
    return {
        "type": "Feature",
        "properties": {"id": field_id, "name": "Thửa", "owner": "nd-scale", "coop": coop},
        "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
    }


def test_two_workers_and_two_apis_store_and_summarize_everything_exactly_once(
    layout: Layout, mosquitto: Mosquitto
) -> None:
    jobs = [make_job(f, seed) for seed, f in enumerate(JOB_FIELDS)]
    messages = interleaved(jobs)
    third = len(messages) // 3

    publish_all(mosquitto.port, messages[:third])
    wait_until(
        lambda: bool(summaries(layout.metadata, jobs)),
        what="the lease holder summarizing the first flights",
    )
    lease = layout.metadata.lease(SUMMARIZER_LEASE)
    assert lease is not None
    holder = layout.workers[lease.holder]
    (survivor,) = [w for w in layout.workers.values() if w is not holder]
    holder.kill()  # mid-stream: its unacknowledged share stays in its broker session
    publish_all(mosquitto.port, messages[third:])

    wait_until(
        lambda: (
            f"lease_taken_over lease={SUMMARIZER_LEASE} holder={survivor.name}"
            f" from={holder.name}" in survivor.text()
        ),
        timeout=LEASE_S * 7,
        what="the survivor taking the lease over",
        state=survivor.text,
    )
    killed_log = holder.log.read_text(errors="replace")
    holder.log = layout.folder / f"{holder.name}-restarted.log"
    holder.start()  # the supervisor's restart, under the same client id

    expected = {f.id: len(f.samples) for j in jobs for f in j.flights}
    total = sum(len(j.samples) for j in jobs)
    wait_until(
        lambda: (
            summaries(layout.metadata, jobs) == expected and layout.metadata.late_ranges() == []
        ),
        timeout=90,
        what="every flight summarized with all its samples",
        state=lambda: (summaries(layout.metadata, jobs), expected),
    )

    # Every sample and event stored exactly once, with its values (rewrites are idempotent:
    # a redelivered message overwrites the same points).
    for j in jobs:
        assert layout.influx.drone_samples(j.coop, j.drone, 0, 2**62) == j.samples
        events = layout.influx.drone_events(j.coop, j.drone, 0, 2**62)
        assert sorted(events, key=by_time) == sorted(j.events, key=by_time)
    assert sum(len(layout.influx.drone_samples(j.coop, j.drone, 0, 2**62)) for j in jobs) == total
    assert layout.metadata.rejected_messages(0, 2**62) == []

    # One summary row per flight, none for anything else.
    stored = [f.id for f in layout.metadata.flights(0, 2**62)]
    assert sorted(stored) == sorted(expected)

    # One summarizer at a time: the killed worker held the lease, the survivor took it over, the
    # restarted worker found the lease held and waited.
    assert f"lease_acquired lease={SUMMARIZER_LEASE} holder={holder.name}" in killed_log
    assert "flights_summarized" in survivor.text()
    restarted = holder.text()
    assert f"lease_waiting lease={SUMMARIZER_LEASE} holder={holder.name}" in restarted
    assert "flights_summarized" not in restarted
    assert "lease_taken_over" not in restarted

    # Both API processes answer the same, for fields created through either of them.
    coop = jobs[0].coop
    created = [unique_id("f-scale"), unique_id("f-scale")]
    for i, (url, field_id) in enumerate(zip(layout.apis, created, strict=True)):
        response = httpx.post(
            f"{url}/api/v1/fields",
            json=square(field_id, 106.65 + 0.001 * i, coop),
            headers=layout.headers,
            timeout=60,
        )
        assert response.status_code == 201, response.text
    window = {
        "from": rfc3339(min(j.samples[0].ts_ms for j in jobs) - 60_000),
        "to": rfc3339(max(j.samples[-1].ts_ms for j in jobs) + 60_000),
    }
    answers = [
        {
            "fields": field_ids(layout.get(url, "/fields")),
            "new": [layout.get(url, f"/fields/{fid}") for fid in created],
            "coverage": layout.get(url, f"/fields/{JOB_FIELDS[0]}/coverage", **window),
            # Through the coverage engine each process caches: rebuilt from the store's version.
            "new_coverage": [
                layout.get(url, f"/fields/{fid}/coverage", **window)["coverage"] for fid in created
            ],
            "flights": layout.get(url, "/flights", **window),
        }
        for url in layout.apis
    ]
    assert set(created) <= set(answers[0]["fields"])
    assert answers[0] == answers[1]
    assert sorted(f["id"] for f in answers[0]["flights"]["flights"]) == sorted(expected)
    assert answers[0]["coverage"]["flights"]
