"""Prometheus metrics of one ingest worker, in a registry of its own (tests run several)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class IngestMetrics:
    """Counters an operator watches: is data arriving, is anything rejected, is it lagging."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages_received = Counter(
            "agridrone_ingest_messages_received", "MQTT messages taken from the inbox", registry=r
        )
        self.messages_acked = Counter(
            "agridrone_ingest_messages_acked",
            "MQTT messages acknowledged to the broker",
            registry=r,
        )
        self.samples_written = Counter(
            "agridrone_ingest_samples_written", "Samples durably written to the store", registry=r
        )
        self.events_written = Counter(
            "agridrone_ingest_events_written", "Events durably written to the store", registry=r
        )
        self.messages_rejected = Counter(
            "agridrone_ingest_messages_rejected",
            "Messages with refused content (rows of the rejected log), by their first reason",
            ["reason"],
            registry=r,
        )
        self.samples_rejected = Counter(
            "agridrone_ingest_samples_rejected",
            "Samples and events refused (1 per message refused whole), by reason",
            ["reason"],
            registry=r,
        )
        self.batch_seconds = Histogram(
            "agridrone_ingest_batch_seconds",
            "Time to decode, write and acknowledge one batch",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.batch_messages = Histogram(
            "agridrone_ingest_batch_messages",
            "Messages per written batch",
            buckets=(1, 10, 50, 100, 500, 1000, 2000, 5000, 10000),
            registry=r,
        )
        self.store_retries = Counter(
            "agridrone_ingest_store_retries",
            "Batch writes retried after a store failure",
            registry=r,
        )
        self.store_up = Gauge(
            "agridrone_ingest_store_up", "1 when the last store write succeeded", registry=r
        )
        self.last_sample_ts = Gauge(
            "agridrone_ingest_last_sample_timestamp_seconds",
            "Drone time of the newest sample written (compare with time() for lag)",
            registry=r,
        )
        self.foreign_messages = Counter(
            "agridrone_ingest_foreign_messages",
            "MAVProxy and DJI Cloud API messages translated to wire v1, by source",
            ["source"],
            registry=r,
        )
        self.mavlink_position_gaps = Counter(
            "agridrone_ingest_mavlink_position_gaps",
            "GLOBAL_POSITION_INT intervals over twice the drone's usual period"
            " (MAVProxy publishes at QoS 0 and carries no MAVLink sequence: lost messages)",
            registry=r,
        )
        self.mavlink_positions_missing = Counter(
            "agridrone_ingest_mavlink_positions_missing",
            "GLOBAL_POSITION_INT messages estimated lost in those gaps",
            registry=r,
        )
        self.mavlink_timed_by_receive = Counter(
            "agridrone_ingest_mavlink_timed_by_receive",
            "MAVLink samples and events timed by their receive time (no SYSTEM_TIME yet)",
            registry=r,
        )
        self.store_up.set(1)

    def watch(
        self,
        *,
        queue_depth: Callable[[], float],
        lag_s: Callable[[], float],
        connected: Callable[[], float],
    ) -> None:
        """Expose live readings: inbox depth, age of its oldest message, broker connection."""
        r = self.registry
        Gauge(
            "agridrone_ingest_queue_depth", "Messages received but not yet written", registry=r
        ).set_function(queue_depth)
        Gauge(
            "agridrone_ingest_lag_seconds",
            "Age of the oldest message received but not yet written",
            registry=r,
        ).set_function(lag_s)
        Gauge(
            "agridrone_ingest_mqtt_connected", "1 while connected to the broker", registry=r
        ).set_function(connected)

    def value(self, name: str, **labels: str) -> float:
        """Current value of one sample, e.g. ``value("agridrone_ingest_messages_acked_total")``."""
        return self.registry.get_sample_value(name, labels) or 0.0
