"""The MAVLink bridge: a MAVLink connection in, wire-v1 batches at QoS 1 out, a disk spool
between them (``agridrone mavlink-bridge``, docs/integrations.md).

Three parts, each thin:

* ``VehicleFilter`` and ``WireBatcher`` (pure): which packets are the drone's, and how its
  translated samples and events become wire-v1 messages (topic, payload).
* ``MavlinkSource``: pymavlink reading a UDP port, a serial port or a ``.tlog`` (replayed at
  a chosen speed); each message becomes a dict with pymavlink's field names, exactly what
  MAVProxy's ``mqtt`` module publishes, and goes through the same
  ``adapters.mavlink.MavlinkTranslator`` as the MAVProxy path.
* ``SpoolPublisher``: takes spooled messages oldest first and publishes them at QoS 1 with
  the drone's credentials; a PUBACK acknowledges the record; a lost connection sends every
  unacknowledged record again on the next one.

``Bridge`` wires them: every message is written to the spool (fsync'd) before it is
published, so nothing that was translated is lost across a broker outage or a bridge crash.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from adapters._common import ConfigError, Translation, WireObject
from adapters.mavlink import (
    MAV_AUTOPILOT_INVALID,
    MAV_TYPE_GCS,
    MavlinkDrone,
    MavlinkTranslator,
)
from adapters.spool import Spool, SpoolError
from ingest.mqtt import BrokerAddress
from ingest.wire import MAX_BATCH_SAMPLES, WIRE_VERSION

log = logging.getLogger(__name__)

#: Publishes in flight (sent, not acknowledged) on one connection.
WINDOW: Final = 100
#: How often acknowledgements are made durable (the spool's ``acked`` mark).
COMMIT_EVERY_S: Final = 0.2
#: Receive buffer asked for a UDP link (bytes).
UDP_RCVBUF: Final = 4 * 1024 * 1024
#: Packets held while the vehicle is not known yet (before its first HEARTBEAT).
HOLD_BEFORE_VEHICLE: Final = 2_000


# --- which packets are the drone's (pure)


@dataclass(frozen=True, slots=True)
class Packet:
    """One decoded MAVLink message as the bridge sees it."""

    msgtype: str
    fields: Mapping[str, Any]
    received_ms: int
    sysid: int
    compid: int
    seq: int | None = None


class VehicleFilter:
    """Keeps the packets of one vehicle: ``sysid``/``compid`` given, or the first system
    whose HEARTBEAT comes from an autopilot (not a ground station, not a radio).

    Ground stations (sysid 255 typically), telemetry radios and other vehicles share the
    link; a .tlog also holds the ground station's own messages. Packets arriving before the
    vehicle is known are held (at most ``hold_max``, oldest dropped and counted).
    The packet sequence is passed on only for the vehicle's autopilot component (sequence
    numbers are counted per system and component).
    """

    def __init__(
        self, sysid: int | None = None, compid: int | None = None, hold_max: int = 2_000
    ) -> None:
        if sysid is not None and not 1 <= sysid <= 255:
            raise ConfigError(f"sysid {sysid} outside 1..255")
        if compid is not None and not 0 <= compid <= 255:
            raise ConfigError(f"compid {compid} outside 0..255")
        self.sysid = sysid
        self.compid = compid
        self.hold_max = hold_max
        self._held: deque[Packet] = deque()
        self.dropped_before_vehicle = 0
        self.other_systems = 0

    @property
    def known(self) -> bool:
        """Whether the vehicle's system (and autopilot component) is known."""
        return self.sysid is not None and self.compid is not None

    def feed(self, p: Packet) -> list[Packet]:
        """The packets to translate now (the held ones once the vehicle is found)."""
        if not self.known and self._is_vehicle_heartbeat(p):
            self.sysid, self.compid = p.sysid, p.compid
            held, self._held = list(self._held), deque()
            self.other_systems += sum(1 for h in held if h.sysid != p.sysid)
            return [self._seq(h) for h in held if h.sysid == p.sysid] + [self._seq(p)]
        if not self.known:
            self._held.append(p)
            if len(self._held) > self.hold_max:
                self._held.popleft()
                self.dropped_before_vehicle += 1
            return []
        if p.sysid != self.sysid:
            self.other_systems += 1
            return []
        return [self._seq(p)]

    def _is_vehicle_heartbeat(self, p: Packet) -> bool:
        if p.msgtype != "HEARTBEAT":
            return False
        if self.sysid is not None and p.sysid != self.sysid:
            return False
        if self.compid is not None and p.compid != self.compid:
            return False
        return (
            p.fields.get("autopilot") != MAV_AUTOPILOT_INVALID
            and p.fields.get("type") != MAV_TYPE_GCS
        )

    def _seq(self, p: Packet) -> Packet:
        if p.compid == self.compid:
            return p
        return Packet(p.msgtype, p.fields, p.received_ms, p.sysid, p.compid, None)


# --- translated objects to wire-v1 messages (pure)


def telemetry_topic(coop: str, drone: str) -> str:
    """Where a drone's sample batches go (docs/telemetry.md)."""
    return f"agri/v1/{coop}/{drone}/telemetry"


def event_topic(coop: str, drone: str) -> str:
    """Where a drone's events go."""
    return f"agri/v1/{coop}/{drone}/event"


def status_topic(coop: str, drone: str) -> str:
    """The drone's retained online/offline status."""
    return f"agri/v1/{coop}/{drone}/status"


Outgoing = tuple[str, bytes]


class WireBatcher:
    """Samples in batches (``{"v":1,"samples":[...]}``) closed by receive time or count;
    events one per message, after the samples translated before them."""

    def __init__(self, coop: str, drone: str, batch_ms: int = 1_000, batch_max: int = 50) -> None:
        if not 1 <= batch_max <= MAX_BATCH_SAMPLES:
            raise ConfigError(f"batch_max {batch_max} outside 1..{MAX_BATCH_SAMPLES}")
        if batch_ms < 0:
            raise ConfigError(f"batch_ms {batch_ms} is negative")
        self.telemetry = telemetry_topic(coop, drone)
        self.events = event_topic(coop, drone)
        self.batch_ms = batch_ms
        self.batch_max = batch_max
        self._samples: list[WireObject] = []
        self._opened_ms = 0

    def add(self, out: Translation, received_ms: int) -> list[Outgoing]:
        """What ``out`` (translated at ``received_ms``) completes."""
        msgs = self.tick(received_ms)
        for sample in out.samples:
            if not self._samples:
                self._opened_ms = received_ms
            self._samples.append(sample)
            if len(self._samples) >= self.batch_max:
                msgs += self.flush()
        if out.events:
            msgs += self.flush()
            msgs += [(self.events, orjson.dumps(e)) for e in out.events]
        return msgs

    def tick(self, now_ms: int) -> list[Outgoing]:
        """The open batch, if it is ``batch_ms`` old at ``now_ms``."""
        if self._samples and now_ms - self._opened_ms >= self.batch_ms:
            return self.flush()
        return []

    def flush(self) -> list[Outgoing]:
        """The open batch now, whatever its age."""
        if not self._samples:
            return []
        batch, self._samples = self._samples, []
        return [(self.telemetry, orjson.dumps({"v": WIRE_VERSION, "samples": batch}))]


# --- reading MAVLink with pymavlink


def is_log_file(master: str) -> bool:
    """Whether ``master`` names a telemetry log to replay rather than a live link."""
    return master.lower().endswith((".tlog", ".mavlink")) and Path(master).is_file()


class MavlinkSource:
    """pymavlink's connection to ``master``: ``udpin:HOST:PORT``, ``tcp:HOST:PORT``, a
    serial device (with ``baud``), or a ``.tlog`` replayed at ``rate`` times its own speed
    (0: as fast as it can be read). Messages carry pymavlink's receive time (for a .tlog,
    the time the ground station recorded them)."""

    def __init__(self, master: str, *, baud: int = 57_600, rate: float = 1.0) -> None:
        from pymavlink import mavutil

        if rate < 0:
            raise ConfigError(f"replay rate {rate} is negative")
        if master.lower().endswith((".bin", ".log", ".ulg", ".csv")):
            raise ConfigError(
                f"{master!r} is not a MAVLink stream (.tlog) but a flight log: import it with "
                "`agridrone logs import` instead"
            )
        self.master = master
        self.replay = is_log_file(master)
        self.rate = rate
        try:
            self._conn: Any = mavutil.mavlink_connection(
                master, baud=baud, autoreconnect=True, robust_parsing=True
            )
        except Exception as exc:
            raise ConfigError(f"cannot open MAVLink connection {master!r}: {exc}") from exc
        self.bad_data = 0
        self._t0: tuple[float, float] | None = None  # (log time s, wall time s)
        sock = getattr(self._conn, "port", None)
        if isinstance(sock, socket.socket) and sock.type == socket.SOCK_DGRAM:
            # room for bursts while the reader fsyncs a batch (the kernel caps it at rmem_max)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RCVBUF)

    def read(self, timeout_s: float = 0.2) -> Packet | None:
        """The next message, or None (live: nothing within ``timeout_s``)."""
        while True:
            if self.replay:
                msg = self._conn.recv_match()
            else:
                msg = self._conn.recv_match(blocking=True, timeout=timeout_s)
            if msg is None:
                return None
            msgtype = msg.get_type()
            if msgtype == "BAD_DATA":
                self.bad_data += 1
                continue
            stamp = float(msg._timestamp)
            if self.replay and self.rate > 0:
                self._pace(stamp)
            fields = msg.to_dict()
            fields.pop("mavpackettype", None)
            return Packet(
                msgtype,
                fields,
                round(stamp * 1000),
                int(msg.get_srcSystem()),
                int(msg.get_srcComponent()),
                int(msg.get_seq()),
            )

    def _pace(self, stamp: float) -> None:
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = (stamp, now)
            return
        due = self._t0[1] + (stamp - self._t0[0]) / self.rate
        if due > now:
            time.sleep(min(due - now, 5.0))

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()


# --- publishing the spool


@dataclass(slots=True)
class PublisherStats:
    """What the publisher has done (read from other threads; values are plain ints)."""

    connects: int = 0
    disconnects: int = 0
    published: int = 0
    acked: int = 0
    resent: int = 0
    refused: int = 0  # PUBACKs with a failure reason code (e.g. not authorised by the ACL)


class SpoolPublisher:
    """One thread publishing the spool to the broker at QoS 1, oldest first.

    Each connection is a fresh paho client (its message ids never meet the next one's);
    when it is lost, the records it had in flight are rewound and sent on the next
    connection. The drone's status topic says ``online`` (retained) on connect and its last
    will ``offline``.
    """

    def __init__(
        self,
        spool: Spool,
        address: BrokerAddress,
        client_id: str,
        coop: str,
        drone: str,
        *,
        window: int = WINDOW,
        keepalive_s: int = 15,
        retry_max_s: float = 5.0,
        protocol: str = "5",
    ) -> None:
        if protocol not in ("5", "3.1.1"):
            raise ConfigError(f"MQTT protocol {protocol!r} is not 5 or 3.1.1")
        self.protocol = paho.MQTTv5 if protocol == "5" else paho.MQTTv311
        self.spool = spool
        self.address = address
        self.client_id = client_id
        self.status = status_topic(coop, drone)
        self.window = window
        self.keepalive_s = keepalive_s
        self.retry_max_s = retry_max_s
        self.where = f"{address.host}:{address.port}"
        self.stats = PublisherStats()
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._inflight: dict[int, int] = {}  # paho mid -> spool record id
        self._early: dict[int, bool] = {}  # PUBACKs that beat their mid's bookkeeping
        self._ignore: set[int] = set()  # mids of status messages (not spool records)
        self._lost = threading.Event()
        self._up = False
        self._refusal: str | None = None
        self._thread = threading.Thread(target=self._run, name="bridge-publisher", daemon=True)

    def start(self) -> None:
        """Start publishing in the background."""
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop, disconnect, and make the acknowledgements durable."""
        self._stop.set()
        self._thread.join(timeout_s)
        self.spool.commit()

    def drained(self) -> bool:
        """Every spooled record is acknowledged."""
        return self.spool.unacked == 0

    # --- the thread

    def _run(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            client = self._connect()
            if client is None:
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.retry_max_s)
                continue
            backoff = 0.2
            try:
                self._pump(client)
            finally:
                self._teardown(client)

    def _connect(self) -> paho.Client | None:
        self._lost.clear()
        self._refusal = None
        client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=self.protocol
        )
        if self.address.username:
            client.username_pw_set(self.address.username, self.address.password)
        client.will_set(self.status, b"offline", 1, retain=True)
        client.max_inflight_messages_set(self.window)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        try:
            client.connect(self.address.host, self.address.port, keepalive=self.keepalive_s)
        except (OSError, ValueError) as exc:
            log.warning("event=bridge_broker_unreachable broker=%s error=%r", self.where, str(exc))
            return None
        client.loop_start()
        deadline = time.monotonic() + 10
        while not self.connected.is_set() and time.monotonic() < deadline:
            if self._refusal is not None or self._lost.is_set() or self._stop.is_set():
                break
            time.sleep(0.02)
        if not self.connected.is_set():
            why = self._refusal or "no CONNACK within 10 s"
            log.error("event=bridge_broker_refused broker=%s reason=%r", self.where, why)
            self._teardown(client)
            return None
        self.stats.connects += 1
        self._up = True
        resend = self.spool.unacked
        log.info(
            "event=bridge_connected broker=%s client_id=%s spooled=%d",
            self.where,
            self.client_id,
            resend,
        )
        self._status(client, b"online")
        return client

    def _status(self, client: paho.Client, state: bytes) -> paho.MQTTMessageInfo:
        """Publish the retained status; its PUBACK must never count for a spool record."""
        info = client.publish(self.status, state, qos=1, retain=True)
        with self._lock:
            if self._early.pop(info.mid, None) is None:
                self._ignore.add(info.mid)
        return info

    def _pump(self, client: paho.Client) -> None:
        last_commit = time.monotonic()
        while not self._stop.is_set() and not self._lost.is_set():
            with self._lock:
                room = self.window - len(self._inflight)
            records = self.spool.take(room) if room > 0 else []
            for rec in records:
                info = client.publish(rec.topic, rec.payload, qos=1)
                if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                    log.error("event=bridge_publish_failed topic=%s rc=%s", rec.topic, info.rc.name)
                    self._lost.set()
                    break
                self.stats.published += 1
                with self._lock:
                    ok = self._early.pop(info.mid, None)
                    if ok is None:
                        self._inflight[info.mid] = rec.id
                if ok is not None:
                    self._acked(rec.id, ok)
            now = time.monotonic()
            if now - last_commit >= COMMIT_EVERY_S:
                self._commit()
                last_commit = now
            if not records:
                self._stop.wait(0.02)
        if self._stop.is_set() and not self._lost.is_set():  # a clean stop says so
            self._status(client, b"offline").wait_for_publish(2)
        self._commit()

    def _commit(self) -> None:
        problem = None
        try:
            self.spool.commit()
        except SpoolError as exc:
            problem = str(exc)
        if problem is not None:  # acked records will be sent again: harmless, say so
            log.error("event=bridge_spool_commit_failed error=%r", problem)

    def _teardown(self, client: paho.Client) -> None:
        was, self._up = self._up, False  # this connection had been made (CONNACK)
        lost = self._lost.is_set()
        self.connected.clear()
        if not lost:
            client.disconnect()
        client.loop_stop()
        with self._lock:
            self._inflight.clear()
            self._early.clear()
            self._ignore.clear()
        back = self.spool.rewind()
        self.stats.resent += back
        if was and self._stop.is_set() and not lost:
            log.info("event=bridge_stopped broker=%s spooled=%d", self.where, self.spool.unacked)
        elif was:
            self.stats.disconnects += 1
            log.warning(
                "event=bridge_disconnected broker=%s unacked_to_resend=%d spooled=%d",
                self.where,
                back,
                self.spool.unacked,
            )

    # --- paho callbacks (its network thread)

    def _on_connect(
        self, _c: paho.Client, _u: object, _f: object, reason: ReasonCode, _p: object = None
    ) -> None:
        if reason.is_failure:
            self._refusal = str(reason)
            return
        self.connected.set()

    def _on_disconnect(
        self, _c: paho.Client, _u: object, _f: object, _reason: object, _p: object = None
    ) -> None:
        self._lost.set()
        self.connected.clear()

    def _on_publish(
        self, _c: paho.Client, _u: object, mid: int, reason: ReasonCode, _p: object = None
    ) -> None:
        ok = not reason.is_failure
        with self._lock:
            if mid in self._ignore:  # a status message's
                self._ignore.discard(mid)
                return
            rid = self._inflight.pop(mid, None)
            if rid is None:
                self._early[mid] = ok
                return
        self._acked(rid, ok)

    def _acked(self, rid: int, ok: bool) -> None:
        if not ok:
            self.stats.refused += 1
            log.error(
                "event=bridge_publish_refused record=%d detail='the broker refused the "
                "message (check the ACL grants this drone its agri/v1 topics)'",
                rid,
            )
        self.spool.ack(rid)
        self.stats.acked += 1


# --- the bridge


@dataclass(slots=True)
class BridgeStats:
    """Counters of one bridge run (logged periodically and at the end)."""

    packets: int = 0
    translated: int = 0  # packets of the vehicle handed to the translator
    samples: int = 0
    events: int = 0
    messages_spooled: int = 0
    spool_full: int = 0
    rejected: dict[str, int] = field(default_factory=dict)


class Bridge:
    """Source → filter → translator → batcher → spool; the publisher drains the spool."""

    def __init__(
        self,
        drone: MavlinkDrone,
        spool: Spool,
        *,
        vehicle: VehicleFilter | None = None,
        batch_ms: int = 1_000,
        batch_max: int = 50,
    ) -> None:
        self.drone = drone
        self.spool = spool
        self.vehicle = vehicle or VehicleFilter()
        self.translator = MavlinkTranslator(drone)
        self.batcher = WireBatcher(drone.coop, drone.drone, batch_ms, batch_max)
        self.stats = BridgeStats()
        self._said: set[str] = set()

    def feed(self, packet: Packet) -> None:
        """One packet from the link: translated, and whatever it completes spooled."""
        self.stats.packets += 1
        for p in self.vehicle.feed(packet):
            self.stats.translated += 1
            out = self.translator.feed(p.msgtype, p.fields, p.received_ms, p.seq)
            self._note(out)
            self._spool(self.batcher.add(out, p.received_ms))

    def tick(self, now_ms: int) -> None:
        """Close a batch that has waited ``batch_ms`` (live links, when nothing arrives)."""
        self._spool(self.batcher.tick(now_ms))

    def finish(self) -> None:
        """End of the stream: held positions released, the open batch spooled."""
        out = self.translator.flush()
        self._note(out)
        self._spool(self.batcher.add(out, 0) + self.batcher.flush())

    def _note(self, out: Translation) -> None:
        self.stats.samples += len(out.samples)
        self.stats.events += len(out.events)
        for r in out.rejections:
            self.stats.rejected[r.reason] = self.stats.rejected.get(r.reason, 0) + 1
            if r.reason not in self._said:  # once per reason and run, then only counted
                self._said.add(r.reason)
                log.warning(
                    "event=bridge_rejected reason=%s detail=%r (further ones are counted)",
                    r.reason,
                    r.detail,
                )
        for notice in out.notices:
            log.warning("event=bridge_notice detail=%r", notice)

    def _spool(self, msgs: list[Outgoing]) -> None:
        for topic, payload in msgs:
            problem = None
            try:
                self.spool.append(topic, payload)
                self.stats.messages_spooled += 1
            except SpoolError as exc:
                problem = str(exc)
            if problem is None:
                continue
            self.stats.spool_full += 1
            if self.stats.spool_full == 1 or self.stats.spool_full % 1000 == 0:
                log.error(
                    "event=bridge_spool_refused dropped=%d error=%r",
                    self.stats.spool_full,
                    problem,
                )


def run_source(
    bridge: Bridge,
    source: MavlinkSource,
    stop: threading.Event,
    *,
    on_idle: Callable[[], None] | None = None,
    clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
) -> None:
    """Read ``source`` into ``bridge`` until ``stop`` is set or a replayed log ends;
    ``on_idle`` (e.g. a periodic stats line) is called between packets and when idle."""
    while not stop.is_set():
        packet = source.read()
        if packet is None:
            if source.replay:
                break
            bridge.tick(clock_ms())
            if on_idle is not None:
                on_idle()
            continue
        bridge.feed(packet)
        if not source.replay:
            bridge.tick(clock_ms())
        if on_idle is not None:
            on_idle()
    bridge.finish()


@contextlib.contextmanager
def running_bridge(
    drone: MavlinkDrone,
    master: str,
    address: BrokerAddress,
    spool_dir: Path,
    *,
    client_id: str | None = None,
    protocol: str = "5",
) -> Iterator[Bridge]:
    """A bridge reading a live ``master`` in a thread until the block ends (the demo's way;
    ``agridrone mavlink-bridge`` runs the same parts in the foreground)."""
    spool = Spool(spool_dir)
    bridge = Bridge(drone, spool)
    source = MavlinkSource(master)
    publisher = SpoolPublisher(
        spool,
        address,
        client_id or f"agridrone-bridge-{drone.coop}-{drone.drone}",
        drone.coop,
        drone.drone,
        protocol=protocol,
    )
    stop = threading.Event()
    reader = threading.Thread(
        target=run_source, args=(bridge, source, stop), name=f"bridge-{drone.drone}", daemon=True
    )
    publisher.start()
    reader.start()
    try:
        yield bridge
    finally:
        stop.set()
        reader.join(10)
        publisher.stop()
        source.close()
        spool.close()
