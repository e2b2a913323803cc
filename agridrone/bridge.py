"""``agridrone mavlink-bridge``: a MAVLink link (UDP, serial, or a .tlog replay) to wire v1
at QoS 1, through a disk spool (adapters/mavlink_bridge.py, docs/integrations.md)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

log = logging.getLogger("agridrone.bridge")

#: On SIGTERM/SIGINT, how long the broker may take the last batches (the rest stays spooled).
STOP_GRACE_S = 2.0

DESCRIPTION = """\
Reads MAVLink from --master (udpin:0.0.0.0:14550, tcp:HOST:PORT, a serial device such as
/dev/ttyUSB0 with --baud, or a .tlog file to replay), translates it exactly as the MAVProxy
path does, and publishes wire-v1 batches at QoS 1 as the drone. Every batch is written to
the spool folder (fsync'd) before it is published and kept until the broker acknowledges
it: a broker outage or a bridge restart loses nothing. Credentials: --username (else
AGRIDRONE_MQTT_USERNAME, else COOP.DRONE) and the password from --password-file or
AGRIDRONE_MQTT_PASSWORD (never a flag: it would show in the process list)."""


def register(subparsers: Any) -> None:
    """Add the ``mavlink-bridge`` sub-command."""
    from agridrone.settings import add_settings_arguments

    p: argparse.ArgumentParser = subparsers.add_parser(
        "mavlink-bridge",
        help="MAVLink (UDP, serial, .tlog) to wire v1 at QoS 1, spooled to disk",
        description=DESCRIPTION,
    )
    p.add_argument("--coop", required=True, help="cooperative id")
    p.add_argument("--drone", required=True, help="drone id (as registered)")
    p.add_argument(
        "--master",
        required=True,
        help="MAVLink connection: udpin:0.0.0.0:14550, tcp:HOST:PORT, /dev/ttyUSB0, or FILE.tlog",
    )
    p.add_argument("--baud", type=int, default=57_600, help="serial speed (default 57600)")
    p.add_argument(
        "--spray",
        default="",
        metavar="RULES",
        help="spray rule set: servoN>PWM, rcN>PWM, auto, comma-separated (default: never)",
    )
    p.add_argument("--flow-battery", type=int, help="BATTERY_STATUS id of a flow sensor")
    p.add_argument("--tank-l", type=float, help="tank capacity in litres (with --flow-battery)")
    p.add_argument("--sysid", type=int, help="the vehicle's MAVLink system id (default: found)")
    p.add_argument("--compid", type=int, help="the autopilot's component id (default: found)")
    p.add_argument(
        "--spool",
        type=Path,
        help="spool folder (default DATA_DIR/bridge-spool/COOP.DRONE)",
    )
    p.add_argument("--spool-max-mb", type=int, default=1024, help="spool size limit (1024)")
    p.add_argument(
        "--rate",
        type=float,
        default=1.0,
        help=".tlog replay speed: 1 real time, 10 ten times faster, 0 as fast as possible",
    )
    p.add_argument("--batch-ms", type=int, default=1_000, help="longest a batch waits (1000)")
    p.add_argument("--batch-max", type=int, default=50, help="most samples per batch (50)")
    p.add_argument("--username", help="MQTT user (default AGRIDRONE_MQTT_USERNAME, COOP.DRONE)")
    p.add_argument("--password-file", type=Path, help="file holding the MQTT password")
    p.add_argument("--client-id", help="MQTT client id (default: the user name)")
    p.add_argument("--mqtt-protocol", choices=("5", "3.1.1"), default="5", help="MQTT version")
    p.add_argument(
        "--drain-timeout",
        type=float,
        default=0.0,
        help="after a .tlog ends, seconds to wait for the broker to take the spool (0: no limit)",
    )
    p.add_argument("--stats-every", type=float, default=30.0, help="seconds between stats lines")
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    add_settings_arguments(p, "mqtt_url")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the bridge until the replay is drained or SIGTERM/SIGINT."""
    from adapters._common import ConfigError as AdapterConfigError
    from adapters.mavlink import MavlinkDrone, parse_spray_rules
    from adapters.mavlink_bridge import (
        Bridge,
        MavlinkSource,
        SpoolPublisher,
        VehicleFilter,
        run_source,
    )
    from adapters.spool import Spool, SpoolError
    from agridrone.logs import configure_logging
    from agridrone.settings import ConfigError, settings_from_args
    from ingest.mqtt import BrokerAddress

    configure_logging(args.log_level)
    settings = settings_from_args(args)
    try:
        drone = MavlinkDrone(
            args.coop,
            args.drone,
            spray=parse_spray_rules(args.spray),
            flow_battery_instance=args.flow_battery,
            tank_capacity_l=args.tank_l,
        )
        vehicle = VehicleFilter(args.sysid, args.compid)
        url = BrokerAddress.from_url(settings.mqtt_url)
    except (AdapterConfigError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    address = _credentials(args, settings, url)
    client_id = args.client_id or address.username or f"agridrone-bridge-{args.coop}-{args.drone}"
    folder = args.spool or settings.data_dir / "bridge-spool" / f"{args.coop}.{args.drone}"
    try:
        spool = Spool(folder, max_bytes=args.spool_max_mb * 1024 * 1024)
    except SpoolError as exc:
        raise ConfigError(str(exc)) from None
    try:
        bridge = Bridge(
            drone, spool, vehicle=vehicle, batch_ms=args.batch_ms, batch_max=args.batch_max
        )
        source = MavlinkSource(args.master, baud=args.baud, rate=args.rate)
    except AdapterConfigError as exc:
        spool.close()
        raise ConfigError(str(exc)) from None
    log.info(
        "event=bridge_start coop=%s drone=%s master=%r replay=%s spool=%s spooled=%d "
        "torn_bytes=%d broker=%s:%d user=%s spray=%r",
        args.coop,
        args.drone,
        args.master,
        source.replay,
        folder,
        spool.report.pending,
        spool.report.torn_bytes,
        address.host,
        address.port,
        address.username or "-",
        args.spray or "never",
    )
    publisher = SpoolPublisher(
        spool, address, client_id, args.coop, args.drone, protocol=args.mqtt_protocol
    )
    stop = _stop_on_signals()
    stats_line = _stats_logger(bridge, publisher, spool, args.stats_every)

    publisher.start()
    try:
        run_source(bridge, source, stop, on_idle=stats_line)
        if source.replay and not stop.is_set():
            log.info("event=bridge_replay_read messages_spooled=%d", bridge.stats.messages_spooled)
            _wait_drained(publisher, stop, args.drain_timeout, stats_line)
        elif publisher.connected.is_set():  # stopping: a moment for the last batches
            _wait_drained(publisher, threading.Event(), STOP_GRACE_S, stats_line)
    finally:
        publisher.stop()
        source.close()
        stats_line(final=True)
        spool.close()
    return 0


def _credentials(args: argparse.Namespace, settings: Any, url: Any) -> Any:
    """The broker address with the drone's user and password: flags, then
    ``AGRIDRONE_MQTT_USERNAME``/``AGRIDRONE_MQTT_PASSWORD``, then the URL."""
    from agridrone.settings import ConfigError
    from ingest.mqtt import BrokerAddress

    username = args.username or settings.mqtt_username or url.username
    password = url.password
    if settings.mqtt_password is not None:
        password = settings.mqtt_password.get_secret_value()
    if args.password_file is not None:
        try:
            password = args.password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"--password-file {args.password_file}: {exc}") from None
    if password and not username:
        username = f"{args.coop}.{args.drone}"
    return BrokerAddress(url.host, url.port, username, password)


def _stats_logger(bridge: Any, publisher: Any, spool: Any, every_s: float) -> Any:
    """A function logging one stats line at most every ``every_s`` (always when final)."""
    last = [time.monotonic()]

    def stats_line(final: bool = False) -> None:
        if not final and time.monotonic() - last[0] < every_s:
            return
        last[0] = time.monotonic()
        s, p, c = bridge.stats, publisher.stats, bridge.translator.counts
        log.info(
            "event=%s packets=%d samples=%d events=%d rejected=%s timed_by_receive=%d "
            "seq_lost=%d spooled_messages=%d published=%d acked=%d resent=%d refused=%d "
            "spool_unacked=%d spool_bytes=%d spool_dropped=%d",
            "bridge_done" if final else "bridge_stats",
            s.packets,
            s.samples,
            s.events,
            ",".join(f"{k}:{v}" for k, v in sorted(s.rejected.items())) or "-",
            c.timed_by_receive,
            c.seq_lost,
            s.messages_spooled,
            p.published,
            p.acked,
            p.resent,
            p.refused,
            spool.unacked,
            spool.size_bytes,
            s.spool_full,
        )

    return stats_line


def _wait_drained(publisher: Any, stop: threading.Event, timeout_s: float, tick: Any) -> None:
    """Wait until the broker has every spooled record (``timeout_s`` 0: no limit)."""
    deadline = time.monotonic() + timeout_s if timeout_s else None
    while not stop.is_set() and not publisher.drained():
        if deadline is not None and time.monotonic() > deadline:
            log.warning(
                "event=bridge_drain_timeout spool_unacked=%d (kept for the next run)",
                publisher.spool.unacked,
            )
            return
        tick()
        stop.wait(0.05)


def _stop_on_signals() -> threading.Event:
    """An event SIGTERM and SIGINT set (the bridge then stops reading and spools what it has)."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("event=bridge_signal signal=%s", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop
