"""Test helpers that publish to and wait on a real broker."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Iterable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from ingest.mqtt import BrokerAddress, ConsumerConfig, subscriptions
from ingest.service import IngestConfig, IngestService
from ingest.worker import WriterConfig
from storage.contract import TelemetryStore
from storage.metadata import MetadataDB
from storage.records import Sample
from tests.servers import Mosquitto

_counter = itertools.count()


def unique_id(prefix: str) -> str:
    """An id valid on the wire and unique to this test run."""
    return f"{prefix}-{next(_counter)}-{uuid.uuid4().hex[:8]}"


def publish_all(url_port: int, messages: Iterable[tuple[str, bytes]], qos: int = 1) -> int:
    """Publish every (topic, payload) at ``qos`` to 127.0.0.1:port and wait until all are sent."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=unique_id("pub"))
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", url_port)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=qos) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(30)
        return len(infos)
    finally:
        client.disconnect()
        client.loop_stop()


def wait_until(
    predicate: Callable[[], bool],
    timeout: float = 30.0,
    what: str = "",
    state: Callable[[], object] | None = None,
) -> None:
    """Poll ``predicate`` until it is true; fail naming ``what`` (and ``state()``) on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    seen = f"; state: {state()}" if state is not None else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}{seen}")


def sample_series(coop: str, drone: str, n: int, t0_ms: int = 1_764_300_000_000) -> list[Sample]:
    """``n`` samples 100 ms apart with every optional key set to a distinct value."""
    return [
        Sample(
            coop=coop,
            drone=drone,
            ts_ms=t0_ms + 100 * i,
            lat=21.08 + i * 1e-6,
            lon=106.52 + i * 1.5e-6,
            spraying=i % 3 != 0,
            seq=i,
            alt_m=3.0 + (i % 7) * 0.1,
            speed_mps=5.5,
            heading_deg=float(i % 360),
            battery_pct=100.0 - (i % 5000) * 0.01,
            flow_lpm=6.25,
            tank_l=35.0 - (i % 3000) * 0.01,
            swath_m=5.0,
            fix="rtk_fixed",
        )
        for i in range(n)
    ]


def start_worker(
    mosquitto: Mosquitto,
    coop: str,
    store: TelemetryStore,
    metadata: MetadataDB,
    writer: WriterConfig | None = None,
) -> IngestService:
    """A real ingest worker for ``coop``'s topics on ``mosquitto``, connected and running."""
    config = IngestConfig(
        consumer=ConsumerConfig(
            address=BrokerAddress("127.0.0.1", mosquitto.port),
            client_id=unique_id("ingest"),
            topics=subscriptions([coop]),
        ),
        writer=writer or WriterConfig(),
    )
    service = IngestService(config, store, metadata)
    service.start(connect_timeout_s=10)
    return service
