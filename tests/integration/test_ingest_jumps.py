"""Noisy real tracks through a real Mosquitto, the real ingest worker and both real stores:
implausible jumps refused and counted (across a worker restart too), and a real DJI flight's
duplicate timestamp stored once."""

from __future__ import annotations

import csv

import pytest

from ingest.jumps import IMPLAUSIBLE_JUMP
from ingest.wire import MAX_BATCH_SAMPLES, encode_samples, telemetry_topic
from storage.contract import TelemetryStore
from storage.metadata import MetadataDB
from storage.records import Sample
from tests.integration.mqtt_helpers import publish_all, start_worker, unique_id, wait_until
from tests.realdata import needs_realdata, realdata
from tests.servers import Mosquitto

pytestmark = pytest.mark.integration

END_OF_TIME = 2**62
ACKED = "agridrone_ingest_messages_acked_total"
T0 = 1_764_300_000_000
LAT0, LON0 = 21.08, 106.52


def stored(store: TelemetryStore, coop: str, drone: str) -> list[Sample]:
    return store.drone_samples(coop, drone, 0, END_OF_TIME)


def line(coop: str, drone: str, n: int, start: int = 0) -> list[Sample]:
    """A drone flying north at 5 m/s, 10 Hz."""
    return [
        Sample(coop, drone, T0 + 100 * i, LAT0 + 0.5 * i / 111_320.0, LON0, spraying=True)
        for i in range(start, start + n)
    ]


def publish(mosquitto: Mosquitto, samples: list[Sample], per_message: int = 10) -> int:
    topic = telemetry_topic(samples[0].coop, samples[0].drone)
    chunks = [samples[i : i + per_message] for i in range(0, len(samples), per_message)]
    return publish_all(mosquitto.port, [(topic, encode_samples(c)) for c in chunks])


def test_a_glitch_is_refused_as_implausible_jump_and_the_samples_around_it_stored(
    mosquitto: Mosquitto, store: TelemetryStore, metadata: MetadataDB
) -> None:
    coop, drone = unique_id("coop"), "dt-01"
    flight = line(coop, drone, 60)
    glitch = Sample(coop, drone, flight[30].ts_ms + 50, LAT0 + 0.02, LON0, spraying=True)
    sent = [*flight[:30], glitch, *flight[30:]]
    worker = start_worker(mosquitto, coop, store, metadata)
    try:
        messages = publish(mosquitto, sent)
        wait_until(lambda: worker.metrics.value(ACKED) >= messages, what=f"{messages} acks")
        rejected = worker.metrics.value(
            "agridrone_ingest_samples_rejected_total", reason=IMPLAUSIBLE_JUMP
        )
    finally:
        worker.stop()
    assert stored(store, coop, drone) == flight
    assert rejected == 1
    (record,) = metadata.rejected_messages(0, END_OF_TIME)
    assert (record.reason, record.count, record.topic) == (
        IMPLAUSIBLE_JUMP,
        1,
        telemetry_topic(coop, drone),
    )
    assert f"sample ts={glitch.ts_ms}" in record.detail
    assert metadata.rejected_counts() == {IMPLAUSIBLE_JUMP: 1}


def test_after_a_restart_the_first_sample_is_checked_against_the_stored_last_position(
    mosquitto: Mosquitto, store: TelemetryStore, metadata: MetadataDB
) -> None:
    coop, drone = unique_id("coop"), "dt-02"
    before = line(coop, drone, 20)
    worker = start_worker(mosquitto, coop, store, metadata)
    try:
        publish(mosquitto, before)
        wait_until(lambda: len(stored(store, coop, drone)) == 20, what="20 samples stored")
    finally:
        worker.stop()
    # A new worker (no memory of the drone): its first sample is 2 km away 0.1 s later.
    after = line(coop, drone, 20, start=20)
    glitch = Sample(coop, drone, after[0].ts_ms - 50, LAT0 - 0.02, LON0, spraying=True)
    worker = start_worker(mosquitto, coop, store, metadata)
    try:
        messages = publish(mosquitto, [glitch, *after], per_message=1)
        wait_until(lambda: worker.metrics.value(ACKED) >= messages, what=f"{messages} acks")
    finally:
        worker.stop()
    assert stored(store, coop, drone) == [*before, *after]
    assert metadata.rejected_counts() == {IMPLAUSIBLE_JUMP: 1}


@needs_realdata
def test_the_mini_2_flights_duplicate_timestamp_is_stored_once(
    mosquitto: Mosquitto, store: TelemetryStore, metadata: MetadataDB
) -> None:
    """Every row of the real DJI Mini 2 export published as is (the adapter would already
    drop the repeat; here the store's key, drone + ts in ms, must do it)."""
    coop, drone = unique_id("coop"), "mini2"
    with realdata("tracks", "dji_mini2_2021-09-06_airdata.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    sent = [
        Sample(
            coop,
            drone,
            round(float(r["ts"]) * 1000),
            float(r["lat"]),
            float(r["lon"]),
            spraying=False,
            alt_m=float(r["alt_m"]),
        )
        for r in rows
    ]
    distinct = {s.ts_ms for s in sent}
    assert (len(sent), len(distinct)) == (11609, 11608)
    worker = start_worker(mosquitto, coop, store, metadata)
    try:
        messages = publish(mosquitto, sent, per_message=MAX_BATCH_SAMPLES)
        wait_until(lambda: worker.metrics.value(ACKED) >= messages, what=f"{messages} acks")
    finally:
        worker.stop()
    got = stored(store, coop, drone)
    assert len(got) == len(distinct)
    assert [s.ts_ms for s in got] == sorted(distinct)
    # The repeat overwrote its twin (last write wins in both stores): the landing row.
    assert got[-1] == sent[-1]
    assert got[-1].alt_m == 0.0
    # Real 10 Hz flying (up to 15 m/s between samples) trips no jump check.
    assert metadata.rejected_counts() == {}
