"""The rejected-message log through a real Mosquitto: one row per bad message, a flood of
bad batches never grows it past its row cap, and a job_start's unregistered product or
implausible dose is logged and not stored while its job is kept."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from fields.registry import load_fields
from fields.stored import to_stored
from fields.synthetic import T0_MS
from flights.service import rebuild
from ingest.wire import MAX_BATCH_SAMPLES, encode_event, encode_samples
from ingest.worker import WriterConfig
from simulators.geo import DEFAULT_FIELDS_PATH
from storage.metadata import MetadataDB
from storage.records import Event, Sample
from storage.sqlite import SqliteStore
from tests.integration.api_world import DAY_MS, HP, PRODUCTS, jobs
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


# --- a job_start's product and dose (ingest.jobcheck) ---------------------------------------


def job_messages(announced: dict[str, object]) -> list[tuple[str, bytes]]:
    """Hồng Phong's simulated job (samples and events) with a job_start 1 ms after the
    simulator's own announcing ``announced``."""
    job = jobs()[0]
    [start] = [e for e in job.events if e.type == "job_start"]
    extra = replace(start, ts_ms=start.ts_ms + 1, attrs={**start.attrs, **announced})
    telemetry, event = f"agri/v1/{HP}/d-hp-a/telemetry", f"agri/v1/{HP}/d-hp-a/event"
    messages = [
        (telemetry, encode_samples(job.samples[i : i + MAX_BATCH_SAMPLES]))
        for i in range(0, len(job.samples), MAX_BATCH_SAMPLES)
    ]
    return messages + [(event, encode_event(e)) for e in [*job.events, extra]]


def ingest(
    mosquitto: Mosquitto,
    store: SqliteStore,
    metadata: MetadataDB,
    messages: list[tuple[str, bytes]],
) -> None:
    worker = start_worker(mosquitto, HP, store, metadata)
    try:
        publish_all(mosquitto.port, messages)
        wait_until(lambda: worker.metrics.value(ACKED) >= len(messages), what="every ack")
    finally:
        worker.stop()


def announced_start(store: SqliteStore) -> Event:
    [event] = [
        e for e in store.drone_events(HP, "d-hp-a", 0, END_OF_TIME) if e.attrs.get("job") == "j-0"
    ]
    return event


def test_an_unregistered_product_is_rejected_and_the_job_is_kept_without_it(
    mosquitto: Mosquitto, store: SqliteStore, metadata: MetadataDB
) -> None:
    registry = load_fields(DEFAULT_FIELDS_PATH)
    metadata.save_fields(to_stored([*registry.fields, *registry.no_spray]))
    metadata.add_product(PRODUCTS[0])  # Hồng Phong's validan; anvil is Yên Thọ's
    messages = job_messages({"job": "j-0", "product": "anvil", "dose_l_per_ha": 18})
    ingest(mosquitto, store, metadata, messages)
    (row,) = metadata.rejected_messages(0, END_OF_TIME)
    assert (row.topic, row.reason, row.count) == (
        f"agri/v1/{HP}/d-hp-a/event",
        "unknown_product",
        1,
    )
    assert f"product 'anvil' is not registered by cooperative {HP}" in row.detail
    assert f"PUT /api/v1/jobs/{HP}.d-hp-a.j-0" in row.detail
    stored = announced_start(store).attrs
    assert "product" not in stored
    assert (stored["field"], stored["dose_l_per_ha"], stored["crop"]) == ("dt-hp-004", 18, "rice")
    assert len(store.drone_samples(HP, "d-hp-a", 0, END_OF_TIME)) == len(jobs()[0].samples)
    rebuild(store, metadata, T0_MS - DAY_MS, T0_MS + DAY_MS, now_ms=T0_MS + 3 * DAY_MS)
    job = metadata.job(f"{HP}.d-hp-a.j-0")
    assert job is not None
    assert (job.fields, job.details()) == (("dt-hp-004",), {"dose_l_per_ha": 18.0})
    flags = {f["code"] for f in metadata.diary_rows("dt-hp-004")[-1].doc()["flags"]}
    assert "no_product" in flags
    assert "unknown_product" not in flags


def test_a_registered_product_passes_and_a_dose_of_600_is_rejected_and_not_stored(
    mosquitto: Mosquitto, store: SqliteStore, metadata: MetadataDB
) -> None:
    metadata.add_product(PRODUCTS[0])
    attrs = {"job": "j-0", "field": "dt-hp-004", "product": "validan", "dose_l_per_ha": 600}
    start = Event(HP, "d-hp-a", T0_MS, "job_start", attrs)
    messages = [(f"agri/v1/{HP}/d-hp-a/event", encode_event(start))]
    ingest(mosquitto, store, metadata, messages)
    (row,) = metadata.rejected_messages(0, END_OF_TIME)
    assert (row.reason, row.count) == ("bad_dose_l_per_ha", 1)
    assert "dose_l_per_ha 600 is not a number from more than 0 to 500 L/ha" in row.detail
    assert announced_start(store).attrs == {
        "job": "j-0",
        "field": "dt-hp-004",
        "product": "validan",
    }
