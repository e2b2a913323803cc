"""The rejected-message log through a real Mosquitto: one row per bad message, and a flood of
bad batches never grows it past its row cap."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from ingest.wire import encode_samples
from ingest.worker import WriterConfig
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


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "telemetry.db") as s:
        yield s


def with_bad_lat(samples: list[Sample], bad: range) -> bytes:
    doc = orjson.loads(encode_samples(samples))
    for i in bad:
        doc["samples"][i]["lat"] = 91.5
    return orjson.dumps(doc)


def test_a_batch_of_500_bad_samples_is_one_row_counting_500(
    mosquitto: Mosquitto, store: SqliteStore, metadata: MetadataDB
) -> None:
    coop, drone = unique_id("coop"), "dt-01"
    topic = f"agri/v1/{coop}/{drone}/telemetry"
    worker = start_worker(mosquitto, coop, store, metadata)
    try:
        publish_all(
            mosquitto.port, [(topic, with_bad_lat(sample_series(coop, drone, 500), range(500)))]
        )
        wait_until(lambda: worker.metrics.value(ACKED) >= 1, what="1 ack")
    finally:
        worker.stop()
    (row,) = metadata.rejected_messages(0, END_OF_TIME)
    assert (row.topic, row.reason, row.count) == (topic, "out_of_range", 500)
    assert (
        worker.metrics.value("agridrone_ingest_messages_rejected_total", reason="out_of_range") == 1
    )
    assert (
        worker.metrics.value("agridrone_ingest_samples_rejected_total", reason="out_of_range")
        == 500
    )


def test_valid_samples_beside_bad_ones_in_a_batch_are_stored(
    mosquitto: Mosquitto, store: SqliteStore, metadata: MetadataDB
) -> None:
    coop, drone = unique_id("coop"), "dt-02"
    samples = sample_series(coop, drone, 10)
    worker = start_worker(mosquitto, coop, store, metadata)
    try:
        payload = with_bad_lat(samples, range(3, 7))
        publish_all(mosquitto.port, [(f"agri/v1/{coop}/{drone}/telemetry", payload)])
        wait_until(lambda: worker.metrics.value(ACKED) >= 1, what="1 ack")
    finally:
        worker.stop()
    assert store.drone_samples(coop, drone, 0, END_OF_TIME) == samples[:3] + samples[7:]
    (row,) = metadata.rejected_messages(0, END_OF_TIME)
    assert (row.count, row.detail) == (4, "sample 3: lat 91.5 outside [-90, 90] (and 3 more)")


def test_a_flood_of_bad_batches_never_grows_the_log_past_its_row_cap(
    mosquitto: Mosquitto, store: SqliteStore, metadata: MetadataDB
) -> None:
    coop, drone = unique_id("coop"), "dt-03"
    topic = f"agri/v1/{coop}/{drone}/telemetry"
    cap, batches = 40, 400
    floods = [
        (
            topic,
            with_bad_lat(
                sample_series(coop, drone, 50, t0_ms=1_764_300_000_000 + i * 10_000), range(50)
            ),
        )
        for i in range(batches)
    ]
    seen: list[int] = []
    done = threading.Event()

    def watch() -> None:  # what a reader of the log sees while the flood is written
        while not done.is_set():
            seen.append(metadata.rejected_rows())
            done.wait(0.005)

    worker = start_worker(mosquitto, coop, store, metadata, WriterConfig(rejected_max_rows=cap))
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        publish_all(mosquitto.port, floods)
        wait_until(lambda: worker.metrics.value(ACKED) >= batches, what=f"{batches} acks")
    finally:
        done.set()
        watcher.join()
        worker.stop()
    assert max(seen) <= cap
    kept = metadata.rejected_messages(0, END_OF_TIME, limit=1000)
    assert len(kept) == cap
    assert [r.payload_excerpt for r in kept] == [p[:1024] for _, p in floods[-cap:]]
    assert (
        worker.metrics.value("agridrone_ingest_messages_rejected_total", reason="out_of_range")
        == batches
    )
    assert (
        worker.metrics.value("agridrone_ingest_samples_rejected_total", reason="out_of_range")
        == 50 * batches
    )
