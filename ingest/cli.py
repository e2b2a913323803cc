"""``agridrone ingest``: consume drone telemetry from MQTT into the telemetry store."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import socket
import threading
from types import FrameType
from typing import Any

from adapters._common import ConfigError as AdapterConfigError
from agridrone.logs import configure_logging
from agridrone.settings import (
    STORE_SETTINGS,
    ConfigError,
    Settings,
    add_settings_arguments,
    settings_from_args,
)
from agridrone.stores import open_metadata, open_telemetry_store
from ingest.foreign import ForeignConfig
from ingest.metrics import IngestMetrics
from ingest.mqtt import BrokerAddress, ConsumerConfig, subscriptions
from ingest.service import InboxLimits, IngestConfig, IngestService
from ingest.worker import WriterConfig
from storage.contract import TelemetryStore
from storage.metadata import MetadataDB

log = logging.getLogger(__name__)

#: Default seconds between flight summarizer rounds.
SUMMARIZE_INTERVAL_S = 30.0
#: The summarizer lease lasts this many rounds: one missed renewal does not lose it.
LEASE_ROUNDS = 3


def register(subparsers: Any) -> None:
    """Add the ``ingest`` sub-command."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "ingest", help="consume MQTT telemetry into the store (at-least-once)"
    )
    add_settings_arguments(
        p,
        "mqtt_url",
        *STORE_SETTINGS,
        "rejected_retention_days",
        "rejected_max_rows",
        "mavproxy_prefix",
        "dji_topic",
        "max_speed_mps",
    )
    p.add_argument(
        "--client-id",
        default=f"agridrone-ingest-{socket.gethostname()}",
        help="stable MQTT client id: the broker keeps this worker's session under it",
    )
    p.add_argument("--share-group", help="MQTT 5 shared-subscription group for N workers")
    p.add_argument("--coop", action="append", default=[], help="only these cooperatives")
    p.add_argument("--mqtt-protocol", choices=("5", "3.1.1"), default="5")
    p.add_argument(
        "--require-registered-drones",
        action="store_true",
        help="reject messages of drones not added with `agridrone drones add` (unknown_drone)",
    )
    p.add_argument(
        "--summarize-flights",
        action="store_true",
        help="also summarize flights as they end; with several workers only the holder of"
        " the summarizer lease in the metadata store does, and another takes over if it dies",
    )
    p.add_argument(
        "--summarize-interval",
        type=float,
        default=SUMMARIZE_INTERVAL_S,
        metavar="SECONDS",
        help="seconds between summarizer rounds (and lease renewals)",
    )
    p.add_argument(
        "--summarize-lease",
        type=float,
        metavar="SECONDS",
        help="how long the summarizer lease lasts unrenewed, i.e. how soon another worker"
        f" takes over from a dead one (default {LEASE_ROUNDS} x the interval)",
    )
    p.add_argument("--batch-messages", type=int, default=WriterConfig().batch_messages)
    p.add_argument("--inbox-messages", type=int, default=InboxLimits().max_messages)
    p.add_argument("--inbox-mib", type=int, default=InboxLimits().max_bytes // 2**20)
    p.add_argument("--metrics-port", type=int, default=0, help="Prometheus port (0 = off)")
    p.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="address the metrics listen on; loopback unless a scraper elsewhere needs them",
    )
    p.add_argument("--log-level", default="INFO")
    p.set_defaults(handler=run)


def build_config(args: argparse.Namespace, settings: Settings) -> IngestConfig:
    """The worker's configuration from parsed flags and settings."""
    try:
        address = BrokerAddress.from_url(settings.mqtt_url)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    if settings.mqtt_username is not None:
        password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
        address = dataclasses.replace(address, username=settings.mqtt_username, password=password)
    return IngestConfig(
        consumer=ConsumerConfig(
            address=address,
            client_id=args.client_id,
            topics=subscriptions(args.coop, args.share_group),
            protocol=args.mqtt_protocol,
        ),
        writer=WriterConfig(
            batch_messages=args.batch_messages,
            rejected_days=settings.rejected_retention_days,
            rejected_max_rows=settings.rejected_max_rows,
            max_speed_mps=settings.max_speed_mps,
        ),
        inbox=InboxLimits(args.inbox_messages, args.inbox_mib * 2**20),
        require_registered=args.require_registered_drones,
        foreign=foreign_config(settings, args.coop),
    )


def foreign_config(settings: Settings, coops: list[str]) -> ForeignConfig | None:
    """MAVProxy and DJI topics from the settings (None when both are switched off)."""
    prefix = settings.mavproxy_prefix.strip() or None
    dji = settings.dji_topic.strip() or None
    if prefix is None and dji is None:
        return None
    try:
        return ForeignConfig(prefix, dji, coops=frozenset(coops) if coops else None)
    except AdapterConfigError as exc:
        raise ConfigError(f"--mavproxy-prefix/--dji-topic: {exc}") from exc


def summarizer_lease_s(args: argparse.Namespace) -> float:
    """How long the summarizer lease lasts: the flag, else ``LEASE_ROUNDS`` rounds."""
    if args.summarize_interval <= 0:
        raise ConfigError(f"--summarize-interval must be > 0 s, got {args.summarize_interval}")
    lease_s = args.summarize_lease or LEASE_ROUNDS * args.summarize_interval
    if lease_s <= args.summarize_interval:
        raise ConfigError(
            f"--summarize-lease ({lease_s} s) must be longer than --summarize-interval"
            f" ({args.summarize_interval} s), or the holder loses it between renewals"
        )
    return float(lease_s)


def _start_summarizer(
    args: argparse.Namespace, store: TelemetryStore, metadata: MetadataDB, stop: threading.Event
) -> threading.Thread:
    """The flight summarizer thread, gated by the lease held under this worker's client id
    (unique per worker: the broker keys its session by it)."""
    from flights.service import FlightWatcher, WatchLease, watch

    lease = WatchLease(holder=args.client_id, ttl_s=summarizer_lease_s(args))
    watcher = FlightWatcher(interval_s=args.summarize_interval)
    thread = threading.Thread(
        target=watch,
        args=(store, metadata, stop, watcher, min(5.0, args.summarize_interval / 2)),
        kwargs={"lease": lease},
        name="flights",
        daemon=True,
    )
    thread.start()
    return thread


def run(args: argparse.Namespace) -> int:
    """Run until SIGTERM or SIGINT, then flush, acknowledge and exit 0."""
    configure_logging(args.log_level)
    settings = settings_from_args(args)
    config = build_config(args, settings)
    if args.summarize_flights:
        summarizer_lease_s(args)  # a bad interval or lease is refused before connecting
    store = open_telemetry_store(settings)
    metadata = open_metadata(settings)
    metrics = IngestMetrics()
    if args.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, args.metrics_host, registry=metrics.registry)
    if args.share_group and config.foreign is not None:
        log.warning(
            "foreign_topics_not_shared share_group=%s topics=%s note=MAVProxy and DJI"
            " translation keeps per-drone state, so these subscriptions are not shared: run"
            " them on one worker (--mavproxy-prefix '' --dji-topic '' on the others) or split"
            " them with --coop",
            args.share_group,
            ",".join(config.foreign.subscriptions()),
        )
    service = IngestService(config, store, metadata, metrics)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("ingest_signal signal=%s", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    service.start()
    watcher: threading.Thread | None = None
    if args.summarize_flights:
        watcher = _start_summarizer(args, store, metadata, stop)
    log.info(
        "ingest_started store=%s mqtt=%s:%d client_id=%s",
        settings.store,
        config.consumer.address.host,
        config.consumer.address.port,
        config.consumer.client_id,
    )
    while not stop.wait(1.0):
        if not service.running:
            log.error("ingest_writer_stopped")
            break
    service.stop()
    if watcher is not None:
        watcher.join(30)
    store.close()
    metadata.close()
    return 0
