"""At-least-once under faults: a killed worker, a SIGTERM, a store outage lose nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ingest.mqtt import BrokerAddress, ConsumerConfig, subscriptions
from ingest.service import InboxLimits, IngestConfig, IngestService
from ingest.wire import encode_sample
from storage.contract import StoreUnavailableError
from storage.influx import InfluxStore
from storage.metadata import MetadataDB
from storage.records import Sample
from storage.sqlite import SqliteStore
from tests.integration.mqtt_helpers import publish_all, sample_series, unique_id, wait_until
from tests.servers import Influxd, Mosquitto, free_port

pytestmark = pytest.mark.integration

END_OF_TIME = 2**62


class WorkerProcess:
    """``agridrone ingest`` as a separate process, with a stable client id, metrics on a port."""

    def __init__(
        self, mosquitto: Mosquitto, folder: Path, coop: str, store_args: list[str] | None = None
    ) -> None:
        self.metrics_port = free_port()
        self.sqlite_path = folder / "telemetry.db"
        self.log = folder / "worker.log"
        self.argv = [
            sys.executable,
            "-m",
            "agridrone.cli",
            "ingest",
            "--mqtt-url",
            mosquitto.url,
            *(store_args or ["--store", "sqlite", "--sqlite-path", str(self.sqlite_path)]),
            "--metadata-path",
            str(folder / "agridrone.db"),
            "--client-id",
            unique_id("ingest"),
            "--coop",
            coop,
            "--metrics-port",
            str(self.metrics_port),
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT)
        wait_until(lambda: self.metric("agridrone_ingest_mqtt_connected") == 1, what="connected")

    def metric(self, name: str) -> float | None:
        try:
            text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=1).text
        except httpx.HTTPError:
            return None
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def signal(self, sig: signal.Signals) -> int:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)
        return self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def worker_process(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[tuple[WorkerProcess, str]]:
    coop = unique_id("coop")
    worker = WorkerProcess(mosquitto, tmp_path, coop)
    yield worker, coop
    worker.stop()


def count_stored(path: Path, coop: str, drone: str) -> int:
    store = SqliteStore(path)
    try:
        return len(store.drone_samples(coop, drone, 0, END_OF_TIME))
    finally:
        store.close()


def publish_in_background(mosquitto: Mosquitto, samples: list[Sample]) -> threading.Thread:
    """Publish one message per sample from a thread, so a test can act mid-stream."""
    topic = f"agri/v1/{samples[0].coop}/{samples[0].drone}/telemetry"
    messages = [(topic, encode_sample(s)) for s in samples]
    publisher = threading.Thread(target=publish_all, args=(mosquitto.port, messages))
    publisher.start()
    return publisher


def test_kill_9_mid_stream_and_restart_loses_nothing(
    mosquitto: Mosquitto, worker_process: tuple[WorkerProcess, str]
) -> None:
    worker, coop = worker_process
    drone = "dt-kill"
    samples = sample_series(coop, drone, 6000)
    worker.start()
    publisher = publish_in_background(mosquitto, samples)
    wait_until(lambda: count_stored(worker.sqlite_path, coop, drone) >= 500, what="500 stored")
    assert worker.signal(signal.SIGKILL) == -signal.SIGKILL
    killed_at = count_stored(worker.sqlite_path, coop, drone)
    publisher.join(60)
    worker.start()
    wait_until(lambda: count_stored(worker.sqlite_path, coop, drone) == 6000, what="6000 stored")
    assert killed_at < 6000, "the kill must land mid-stream for this test to mean anything"


def test_sigterm_flushes_acks_and_exits_cleanly(
    mosquitto: Mosquitto, worker_process: tuple[WorkerProcess, str]
) -> None:
    worker, coop = worker_process
    drone = "dt-term"
    samples = sample_series(coop, drone, 3000)
    worker.start()
    publisher = publish_in_background(mosquitto, samples)
    wait_until(lambda: count_stored(worker.sqlite_path, coop, drone) >= 300, what="300 stored")
    assert worker.signal(signal.SIGTERM) == 0
    assert "ingest_stopped inbox_left=0" in worker.log.read_text()
    publisher.join(60)
    worker.start()
    wait_until(lambda: count_stored(worker.sqlite_path, coop, drone) == 3000, what="3000 stored")


def test_influxdb_outage_holds_messages_unacked_and_loses_nothing(
    mosquitto: Mosquitto, fresh_influxd: Influxd, tmp_path: Path
) -> None:
    coop, drone = unique_id("coop"), "dt-outage"
    samples = sample_series(coop, drone, 4000)
    topic = f"agri/v1/{coop}/{drone}/telemetry"
    store = InfluxStore(fresh_influxd.url, "outage")
    store.ensure_database()
    metadata = MetadataDB(tmp_path / "agridrone.db")
    limits = InboxLimits(max_messages=200)
    config = IngestConfig(
        consumer=ConsumerConfig(
            BrokerAddress("127.0.0.1", mosquitto.port), unique_id("ingest"), subscriptions([coop])
        ),
        inbox=limits,
    )
    worker = IngestService(config, store, metadata)
    worker.start(connect_timeout_s=10)
    try:
        publish_all(mosquitto.port, [(topic, encode_sample(s)) for s in samples[:500]])
        wait_until(lambda: len(store.drone_samples(coop, drone, 0, END_OF_TIME)) == 500)
        acked_before = worker.metrics.value("agridrone_ingest_messages_acked_total")

        fresh_influxd.stop()
        publish_all(mosquitto.port, [(topic, encode_sample(s)) for s in samples[500:]])
        wait_until(lambda: worker.metrics.value("agridrone_ingest_store_up") == 0)
        wait_until(lambda: len(worker.inbox) == limits.max_messages, what="inbox full")
        assert worker.metrics.value("agridrone_ingest_messages_acked_total") == acked_before

        fresh_influxd.start()
        wait_until(
            lambda: len(store.drone_samples(coop, drone, 0, END_OF_TIME)) == 4000, timeout=60
        )
        assert store.drone_samples(coop, drone, 0, END_OF_TIME) == samples
    finally:
        worker.stop()
        store.close()
        metadata.close()


def test_worker_started_while_influxdb_is_down_stores_everything_once_it_is_up(
    mosquitto: Mosquitto, fresh_influxd: Influxd, tmp_path: Path
) -> None:
    coop, drone = unique_id("coop"), "dt-late"
    samples = sample_series(coop, drone, 300)
    fresh_influxd.stop()
    worker = WorkerProcess(
        mosquitto,
        tmp_path,
        coop,
        ["--store", "influx", "--influx-url", fresh_influxd.url, "--influx-db", "created_late"],
    )
    try:
        worker.start()
        topic = f"agri/v1/{coop}/{drone}/telemetry"
        publish_all(mosquitto.port, [(topic, encode_sample(s)) for s in samples])
        wait_until(lambda: (worker.metric("agridrone_ingest_store_retries_total") or 0) > 0)
        fresh_influxd.start()
        store = InfluxStore(fresh_influxd.url, "created_late")

        def all_stored() -> bool:
            try:
                return len(store.drone_samples(coop, drone, 0, END_OF_TIME)) == 300
            except StoreUnavailableError:  # the worker has not created the database yet
                return False

        try:
            wait_until(all_stored, timeout=60, what="300 samples in a database created late")
            assert store.drone_samples(coop, drone, 0, END_OF_TIME) == samples
        finally:
            store.close()
    finally:
        worker.stop()
