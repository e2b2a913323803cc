"""The ingest worker against a real Mosquitto and both real stores: nothing valid is lost."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import orjson
import pytest

from ingest.mqtt import BrokerAddress, ConsumerConfig, subscriptions
from ingest.service import IngestConfig, IngestService
from ingest.wire import encode_sample, encode_samples
from storage.contract import TelemetryStore
from storage.drones import DroneRecord
from storage.metadata import MetadataDB
from storage.records import Sample
from storage.sqlite import SqliteStore
from tests.integration.mqtt_helpers import (
    publish_all,
    sample_series,
    start_worker,
    unique_id,
    wait_until,
)
from tests.servers import Mosquitto

pytestmark = pytest.mark.integration

END_OF_TIME = 2**62
ACKED = "agridrone_ingest_messages_acked_total"


def stored(store: TelemetryStore, coop: str, drone: str) -> list[Sample]:
    return store.drone_samples(coop, drone, 0, END_OF_TIME)


def test_published_samples_are_stored_with_exact_values(
    mosquitto: Mosquitto, store: TelemetryStore, metadata: MetadataDB
) -> None:
    coop, drone = unique_id("coop"), "dt-01"
    samples = sample_series(coop, drone, 50)
    worker = start_worker(mosquitto, coop, store, metadata)
    try:
        topic = f"agri/v1/{coop}/{drone}/telemetry"
        publish_all(mosquitto.port, [(topic, encode_sample(s)) for s in samples[:10]])
        publish_all(mosquitto.port, [(topic, encode_samples(samples[10:]))])
        wait_until(lambda: len(stored(store, coop, drone)) == 50, what="50 samples stored")
    finally:
        worker.stop()
    assert stored(store, coop, drone) == samples


def test_the_same_drone_and_ts_published_twice_is_stored_once(
    mosquitto: Mosquitto, store: TelemetryStore, metadata: MetadataDB
) -> None:
    coop, drone = unique_id("coop"), "dt-02"
    samples = sample_series(coop, drone, 20)
    worker = start_worker(mosquitto, coop, store, metadata)
    try:
        topic = f"agri/v1/{coop}/{drone}/telemetry"
        payloads = [(topic, encode_sample(s)) for s in samples]
        publish_all(mosquitto.port, payloads + payloads)
        wait_until(
            lambda: worker.metrics.value(ACKED) >= 40,
            what="40 acks",
            state=lambda: (
                worker.metrics.value(ACKED),
                worker.metrics.value("agridrone_ingest_messages_received_total"),
                len(worker.inbox),
                worker.consumer.connected.is_set(),
                worker.running,
            ),
        )
    finally:
        worker.stop()
    assert stored(store, coop, drone) == samples


def test_malformed_payloads_are_logged_with_reasons_and_valid_ones_stored(
    mosquitto: Mosquitto, store: TelemetryStore, metadata: MetadataDB
) -> None:
    coop, drone = unique_id("coop"), "dt-03"
    good = sample_series(coop, drone, 4)
    bad_lat = orjson.loads(encode_sample(dataclasses.replace(good[0], ts_ms=good[0].ts_ms + 1)))
    bad_lat["lat"] = 91.5
    topic = f"agri/v1/{coop}/{drone}/telemetry"
    messages = [
        (topic, encode_sample(good[0])),
        (topic, b"{not json"),
        (topic, encode_sample(good[1])),
        (topic, orjson.dumps(bad_lat)),
        (topic, encode_sample(good[2])),
        (topic, b'{"ts": 1764300000000, "lon": 106.5, "spraying": true}'),
        (f"agri/v1/{coop}/{drone}/telemetry", encode_samples([good[3]])),
    ]
    worker = start_worker(mosquitto, coop, store, metadata)
    try:
        publish_all(mosquitto.port, messages)
        wait_until(lambda: worker.metrics.value(ACKED) >= 7, what="7 acks")
    finally:
        worker.stop()
    assert stored(store, coop, drone) == good
    reasons = sorted(r.reason for r in metadata.rejected_messages(0, END_OF_TIME))
    assert reasons == ["bad_json", "missing_key", "out_of_range"]
    assert all(r.topic == topic for r in metadata.rejected_messages(0, END_OF_TIME))


def test_workers_in_one_share_group_split_the_stream_and_store_it_all(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    coop, drone = unique_id("coop"), "dt-04"
    samples = sample_series(coop, drone, 400)
    group = unique_id("group")
    stores = [SqliteStore(tmp_path / "telemetry.db") for _ in range(2)]
    dbs = [MetadataDB(tmp_path / f"agridrone-{i}.db") for i in range(2)]
    workers = []
    for store_i, db_i in zip(stores, dbs, strict=True):
        config = IngestConfig(
            consumer=ConsumerConfig(
                address=BrokerAddress("127.0.0.1", mosquitto.port),
                client_id=unique_id("ingest"),
                topics=subscriptions([coop], share_group=group),
            )
        )
        workers.append(IngestService(config, store_i, db_i))
    for w in workers:
        w.start(connect_timeout_s=10)
    try:
        topic = f"agri/v1/{coop}/{drone}/telemetry"
        publish_all(mosquitto.port, [(topic, encode_sample(s)) for s in samples])
        wait_until(lambda: sum(w.metrics.value(ACKED) for w in workers) >= 400, what="400 acks")
    finally:
        for w in workers:
            w.stop()
    shares = [w.metrics.value("agridrone_ingest_samples_written_total") for w in workers]
    assert sum(shares) == 400
    assert all(share > 0 for share in shares)
    assert stored(stores[0], coop, drone) == samples
    for store_i in stores:
        store_i.close()
    for db_i in dbs:
        db_i.close()


def test_a_message_larger_than_one_socket_read_is_stored_whole(
    mosquitto: Mosquitto, store: TelemetryStore, metadata: MetadataDB
) -> None:
    coop, drone = unique_id("coop"), "dt-05"
    samples = sample_series(coop, drone, 500)
    payload = encode_samples(samples)
    assert len(payload) > 64 * 1024
    worker = start_worker(mosquitto, coop, store, metadata)
    try:
        publish_all(mosquitto.port, [(f"agri/v1/{coop}/{drone}/telemetry", payload)] * 3)
        wait_until(lambda: worker.metrics.value(ACKED) >= 3, what="3 acks")
    finally:
        worker.stop()
    assert stored(store, coop, drone) == samples


def test_with_the_registry_enforced_an_unknown_drone_is_rejected_and_logged(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    coop = unique_id("coop")
    store = SqliteStore(tmp_path / "telemetry.db")
    metadata = MetadataDB(tmp_path / "agridrone.db")
    metadata.add_drone(DroneRecord(coop, "dt-known", None, 0, "$7$101$x$y"))
    config = IngestConfig(
        consumer=ConsumerConfig(
            BrokerAddress("127.0.0.1", mosquitto.port), unique_id("ingest"), subscriptions([coop])
        ),
        require_registered=True,
    )
    worker = IngestService(config, store, metadata)
    worker.start(connect_timeout_s=10)
    known = sample_series(coop, "dt-known", 3)
    stranger = sample_series(coop, "dt-stranger", 3)
    try:
        publish_all(
            mosquitto.port,
            [(f"agri/v1/{coop}/{s.drone}/telemetry", encode_sample(s)) for s in known + stranger],
        )
        wait_until(lambda: worker.metrics.value(ACKED) >= 6, what="6 acks")
    finally:
        worker.stop()
    try:
        assert stored(store, coop, "dt-known") == known
        assert stored(store, coop, "dt-stranger") == []
        reasons = [r.reason for r in metadata.rejected_messages(0, END_OF_TIME)]
        assert reasons == ["unknown_drone"] * 3
    finally:
        store.close()
        metadata.close()
