"""A sample the store itself refuses is logged as rejected; the rest of its batch is stored."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx
import pytest

from ingest.mqtt import BrokerAddress, ConsumerConfig, subscriptions
from ingest.service import IngestConfig, IngestService
from ingest.wire import encode_samples
from storage.influx import InfluxStore
from storage.metadata import MetadataDB
from tests.integration.mqtt_helpers import publish_all, sample_series, unique_id, wait_until
from tests.servers import Influxd, Mosquitto

pytestmark = pytest.mark.integration


def test_an_influx_field_type_conflict_rejects_only_the_conflicting_sample(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    coop, drone = unique_id("coop"), "dt-06"
    database = unique_id("db").replace("-", "_")
    samples = sample_series(coop, drone, 10)
    two_weeks_ms = 14 * 24 * 3600 * 1000
    clash = samples[4] = dataclasses.replace(samples[4], ts_ms=samples[4].ts_ms + two_weeks_ms)
    store = InfluxStore(influxd.url, database)
    store.ensure_database()
    # Someone else wrote `lat` as a string in the week of one of our samples: InfluxDB fixes
    # a field's type per measurement and shard (a week), so that one sample is refused.
    line = f'telemetry,coop={coop},drone={drone} lat="somewhere" {clash.ts_ms - 1}'
    response = httpx.post(
        f"{influxd.url}/write", params={"db": database, "precision": "ms"}, content=line
    )
    assert response.status_code == 204
    metadata = MetadataDB(tmp_path / "agridrone.db")
    config = IngestConfig(
        consumer=ConsumerConfig(
            BrokerAddress("127.0.0.1", mosquitto.port), unique_id("ingest"), subscriptions([coop])
        )
    )
    worker = IngestService(config, store, metadata)
    worker.start(connect_timeout_s=10)
    try:
        topic = f"agri/v1/{coop}/{drone}/telemetry"
        publish_all(mosquitto.port, [(topic, encode_samples(samples))])
        wait_until(lambda: worker.metrics.value("agridrone_ingest_messages_acked_total") >= 1)
    finally:
        worker.stop()
    try:
        rejected = metadata.rejected_messages(0, 2**62)
        assert [r.reason for r in rejected] == ["store_rejected"]
        assert f"ts={clash.ts_ms}" in rejected[0].detail
        assert (
            worker.metrics.value(
                "agridrone_ingest_messages_rejected_total", reason="store_rejected"
            )
            == 1
        )
        assert worker.metrics.value("agridrone_ingest_samples_written_total") == 9
    finally:
        store.close()
        metadata.close()
