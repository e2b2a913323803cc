"""One running ingest worker: MQTT consumer, inbox, batch writer and metrics, wired together."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass, field

from ingest.foreign import ForeignConfig, ForeignTelemetry
from ingest.inbox import Inbox
from ingest.jobcheck import RegisteredProducts
from ingest.metrics import IngestMetrics
from ingest.mqtt import ConsumerConfig, MqttConsumer
from ingest.registry import RegisteredDrones
from ingest.worker import BatchWriter, WriterConfig
from storage.contract import TelemetryStore
from storage.metadata import MetadataDB

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InboxLimits:
    """How much the worker holds in memory before it stops reading from the broker."""

    max_messages: int = 20_000
    max_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class IngestConfig:
    """Everything an ingest worker needs besides its store and metadata database."""

    consumer: ConsumerConfig
    writer: WriterConfig = field(default_factory=WriterConfig)
    inbox: InboxLimits = field(default_factory=InboxLimits)
    #: Reject messages of drones not in the registry (reason ``unknown_drone``).
    require_registered: bool = False
    #: MAVProxy and DJI Cloud API topics taken besides wire v1 (None: wire v1 only). Their
    #: subscriptions are added to the consumer's.
    foreign: ForeignConfig | None = None


class IngestService:
    """Start, run and stop one worker; ``stop`` writes and acknowledges what it holds."""

    def __init__(
        self,
        config: IngestConfig,
        store: TelemetryStore,
        metadata: MetadataDB,
        metrics: IngestMetrics | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics or IngestMetrics()
        self.inbox = Inbox(config.inbox.max_messages, config.inbox.max_bytes)
        consumer = config.consumer
        self.foreign: ForeignTelemetry | None = None
        if config.foreign is not None:
            foreign = dataclasses.replace(
                config.foreign, require_registered=config.require_registered
            )
            self.foreign = ForeignTelemetry(foreign, metadata.drones, self.metrics)
            extra = [t for t in foreign.subscriptions() if t not in consumer.topics]
            consumer = dataclasses.replace(consumer, topics=[*consumer.topics, *extra])
        self.consumer = MqttConsumer(consumer, self.inbox)
        self.writer = BatchWriter(
            self.inbox,
            store,
            metadata,
            self.consumer,
            metrics=self.metrics,
            config=config.writer,
            admit=RegisteredDrones(metadata.drones) if config.require_registered else None,
            known_product=RegisteredProducts(metadata.product),
            foreign=self.foreign,
        )
        self.metrics.watch(
            queue_depth=lambda: len(self.inbox),
            lag_s=self._lag_s,
            connected=lambda: float(self.consumer.connected.is_set()),
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run_writer, name="ingest-writer", daemon=True)

    def _lag_s(self) -> float:
        oldest = self.inbox.oldest_received_ms()
        return 0.0 if oldest is None else max(0.0, time.time() - oldest / 1000)

    def _run_writer(self) -> None:
        try:
            self.writer.run(self._stop)
        except Exception:  # the writer must never die silently: log, and let stop() report it
            log.exception("ingest_writer_crashed")
            raise

    def start(self, connect_timeout_s: float | None = None) -> None:
        """Start the writer and connect; optionally wait until subscribed."""
        self._thread.start()
        self.consumer.start()
        if connect_timeout_s is not None:
            self.consumer.wait_connected(connect_timeout_s)

    @property
    def running(self) -> bool:
        """True while the writer thread is alive."""
        return self._thread.is_alive()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop taking messages, write and acknowledge what is held, disconnect."""
        self.consumer.pause()
        self._stop.set()
        self._thread.join(timeout_s)
        self.consumer.stop()
        log.info(
            "ingest_stopped inbox_left=%d dropped_unacked_at_stop=%d",
            len(self.inbox),
            self.consumer.dropped_at_stop,
        )
