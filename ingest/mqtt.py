"""The MQTT side of ingest: a thin paho-mqtt 2.x consumer with manual acknowledgement.

paho acknowledges a QoS 1 message after ``on_message`` returns unless ``manual_ack=True``;
with it, ``Client.ack(mid, qos)`` sends the PUBACK when we choose — after the batch holding
the message is durably written. aiomqtt acknowledges on enqueue and has no public manual-ack
API, so it is not used here (docs/architecture.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ingest.inbox import Inbox, Received
from storage.secrets import redact_urls

log = logging.getLogger(__name__)

#: MQTT 5 session expiry we ask for: a week, so a worker down for a weekend loses nothing
#: (the broker's own queue limits still apply; see docs/architecture.md).
SESSION_EXPIRY_S: Final = 7 * 24 * 3600
#: MQTT 5 Receive Maximum we announce: how many unacknowledged QoS 1 messages may be in flight.
RECEIVE_MAXIMUM: Final = 10_000
DEFAULT_PORT: Final = 1883

MqttProtocol = Literal["5", "3.1.1"]


#: Bytes asked of the socket at once, and socket reads per ``loop_read`` call (4 MiB).
READ_CHUNK: Final = 64 * 1024
READS_PER_LOOP: Final = 64

#: (mid, qos, topic, payload) of each PUBLISH parsed in one pass over the read buffer.
Publish = tuple[int, int, str, bytes]
PublishHandler = Callable[[list[Publish]], None]

_PUBLISH: Final = 0x30
_PUBACK_HEAD: Final = bytes([0x40, 0x02])  # PUBACK, remaining length 2 (reason: success)


class _BufferedClient(paho.Client):
    """paho's client, reading the socket in 64 KiB chunks and every packet they hold.

    Stock paho reads one packet per select() wake-up with three or more recv() calls per
    packet; at QoS 1 telemetry rates that, not our code, is the ceiling (docs/benchmarks.md).
    Here recv() fills a buffer that ``_sock_recv`` serves, and ``loop_read`` keeps parsing
    until the buffer is empty, so select() is only consulted when the socket is drained.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = b""
        self._rpos = 0
        self._rbuf_sock: object = None
        self._reads_left = READS_PER_LOOP
        #: Receives the QoS 0/1 PUBLISHes parsed straight from the buffer (None: paho's path).
        self.on_publishes: PublishHandler | None = None

    def _buffered(self) -> int:
        return len(self._rbuf) - self._rpos

    def _drop_stale_buffer(self) -> None:
        """Forget the bytes of a previous connection once the socket changed (a reconnect):
        its PUBLISHes were never acked and the broker sends them again on the new one."""
        if self._sock is not self._rbuf_sock:
            self._rbuf, self._rpos, self._rbuf_sock = b"", 0, self._sock

    def _sock_recv(self, bufsize: int) -> bytes:
        self._drop_stale_buffer()
        if not self._buffered():
            if self._reads_left <= 0:
                raise BlockingIOError
            self._reads_left -= 1
            chunk = super()._sock_recv(READ_CHUNK)
            if not chunk:
                return chunk
            self._rbuf, self._rpos = chunk, 0
        out = self._rbuf[self._rpos : self._rpos + bufsize]
        self._rpos += len(out)
        return out

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:  # noqa: ARG002 -- paho's signature
        self._reads_left = READS_PER_LOOP
        while True:
            if self._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            self._drop_stale_buffer()  # before parsing: not the old connection's leftovers
            if self.on_publishes is not None and self._in_packet["command"] == 0:
                self._read_publishes(self.on_publishes)
            rc = self._packet_read()
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                if not self._buffered():
                    return MQTTErrorCode.MQTT_ERR_SUCCESS
            elif rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return self._loop_rc_handle(rc)

    def _read_publishes(self, handler: PublishHandler) -> None:
        """Parse the complete QoS 0/1 PUBLISH packets at the head of the buffer in one pass.

        paho's own path costs ~35 µs a message under MQTT 5 (a ``Properties`` object decoded
        field by field, an ``MQTTMessage``, the topic matcher, a callback under a lock): the
        ceiling of the whole worker with one sample per message. The properties of a PUBLISH
        are skipped: we ask for no topic aliases (paho announces a Topic Alias Maximum of 0),
        so every PUBLISH carries its topic. Anything else (other packets, QoS 2, an empty or
        non-UTF-8 topic, a packet not wholly buffered, one too short for its topic length or
        packet id) is left to paho's ``_packet_read``, which rejects the malformed ones.
        """
        buf, pos = self._rbuf, self._rpos
        end = len(buf)
        v5 = self._protocol == MQTTProtocolVersion.MQTTv5
        out: list[Publish] = []
        while pos < end:
            header = buf[pos]
            qos = (header & 0x06) >> 1
            if header & 0xF0 != _PUBLISH or qos > 1:
                break
            length, i = _varint(buf, pos + 1, end)
            if length < 0 or i + length > end:
                break
            stop = i + length
            if length < 2:  # no room for the topic's length
                break
            topic_end = i + 2 + ((buf[i] << 8) | buf[i + 1])
            if topic_end == i + 2 or topic_end + 2 * qos > stop:  # QoS 1: and a packet id
                break
            j = topic_end
            mid = 0
            if qos:
                mid = (buf[j] << 8) | buf[j + 1]
                j += 2
            if v5:
                props, j = _varint(buf, j, stop)
                j += props
                if props < 0 or j > stop:
                    break
            try:
                topic = buf[i + 2 : topic_end].decode("utf-8")
            except UnicodeDecodeError:
                break
            out.append((mid, qos, topic, buf[j:stop]))
            pos = stop
        if out:
            self._rpos = pos
            with self._msgtime_mutex:
                self._last_bytes_received = paho.time_func()
            handler(out)

    def ack_many(self, mids: Sequence[int]) -> None:
        """PUBACK every mid as one outgoing write: one queue entry and one wake-up of the
        network thread for the lot, where ``ack`` makes one of each per message."""
        if mids:
            packet = b"".join([_PUBACK_HEAD + mid.to_bytes(2, "big") for mid in mids])
            self._packet_queue(paho.PUBACK, packet, 0, 1)


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """An MQTT variable byte integer at ``pos``: (value, position after it); (-1, pos) when
    it runs past ``end`` or beyond 4 bytes."""
    value = 0
    shift = 0
    i = pos
    while i < end and shift <= 21:
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        i += 1
        if byte < 0x80:
            return value, i
        shift += 7
    return -1, pos


class MqttError(Exception):
    """The broker could not be reached or refused us."""


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where the broker is, parsed from ``mqtt://[user:pass@]host[:port]``."""

    host: str
    port: int = DEFAULT_PORT
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_url(cls, url: str) -> BrokerAddress:
        """Parse an ``mqtt://`` URL; anything else is a clear ValueError (password hidden)."""
        parts = urlsplit(url)
        shown = redact_urls(url)
        if parts.scheme != "mqtt":
            raise ValueError(f"MQTT URL {shown!r}: scheme must be mqtt:// (TLS is not built yet)")
        if not parts.hostname:
            raise ValueError(f"MQTT URL {shown!r}: no host")
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError as exc:
            raise ValueError(f"MQTT URL {shown!r}: bad port") from exc
        return cls(
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


def subscriptions(coops: Sequence[str] = (), share_group: str | None = None) -> list[str]:
    """The topic filters ingest subscribes to: telemetry, events and status of ``coops``."""
    levels = list(coops) or ["+"]
    filters = [f"agri/v1/{coop}/+/{kind}" for coop in levels for kind in ("telemetry", "event")]
    topics = [f"$share/{share_group}/{f}" for f in filters] if share_group else filters
    # Status is retained and per drone: every worker takes it whole, never shared.
    return [*topics, *(f"agri/v1/{coop}/+/status" for coop in levels)]


@dataclass(frozen=True, slots=True)
class ConsumerConfig:
    """How the consumer connects: a stable client id and a persistent session."""

    address: BrokerAddress
    client_id: str
    topics: Sequence[str] = field(default_factory=subscriptions)
    protocol: MqttProtocol = "5"
    keepalive_s: int = 30
    put_timeout_s: float = 0.5


class MqttConsumer:
    """Receives QoS 1 messages into an ``Inbox`` and acknowledges them when told to.

    Each connection has a generation number; a message is acknowledged only on the
    connection that delivered it. After a reconnect the broker redelivers what was not
    acknowledged, and the store's idempotent writes absorb the duplicates.
    """

    def __init__(self, config: ConsumerConfig, inbox: Inbox) -> None:
        self.config = config
        self.inbox = inbox
        self._lock = threading.Lock()
        self._generation = 0
        self._accepting = True
        self._subscribe_mid: int | None = None
        #: Set once the broker has confirmed every subscription, cleared on disconnect.
        self.connected = threading.Event()
        self.dropped_at_stop = 0
        v5 = config.protocol == "5"
        self._client = _BufferedClient(
            CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        if config.address.username is not None:
            self._client.username_pw_set(config.address.username, config.address.password)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.on_publishes = self._on_publishes

    def start(self) -> None:
        """Connect in the background; paho keeps reconnecting until ``stop``."""
        props: Properties | None = None
        if self.config.protocol == "5":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            props.ReceiveMaximum = RECEIVE_MAXIMUM
        kwargs: dict[str, Any] = {"keepalive": self.config.keepalive_s}
        if props is not None:
            kwargs.update(clean_start=False, properties=props)
        self._client.connect_async(self.config.address.host, self.config.address.port, **kwargs)
        self._client.loop_start()

    def wait_connected(self, timeout: float) -> None:
        """Block until the first subscription is in place; MqttError after ``timeout`` s."""
        if not self.connected.wait(timeout):
            addr = self.config.address
            raise MqttError(f"no MQTT connection to {addr.host}:{addr.port} after {timeout} s")

    def pause(self) -> None:
        """Take no more messages; those arriving now stay unacknowledged for redelivery."""
        with self._lock:
            self._accepting = False

    def ack(self, messages: Sequence[Received]) -> int:
        """Acknowledge ``messages`` (in receive order) still on the live connection."""
        with self._lock:
            generation = self._generation
            mids = [m.mid for m in messages if m.qos == 1 and m.generation == generation]
            self._client.ack_many(mids)
            for msg in messages:
                if msg.qos == 2 and msg.generation == generation:
                    self._client.ack(msg.mid, msg.qos)
                    mids.append(msg.mid)
        return len(mids)

    def stop(self) -> None:
        """Disconnect cleanly (queued acks go out first) and stop the network thread."""
        self.pause()
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(
        self,
        client: paho.Client,
        _userdata: object,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.error("mqtt_connect_refused reason=%s", reason_code)
            return
        with self._lock:
            self._generation += 1
        log.info(
            "mqtt_connected host=%s port=%d client_id=%s session_present=%s",
            self.config.address.host,
            self.config.address.port,
            self.config.client_id,
            flags.session_present,
        )
        result, self._subscribe_mid = client.subscribe([(topic, 1) for topic in self.config.topics])
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.error("mqtt_subscribe_failed code=%s", result)

    def _on_subscribe(
        self,
        _client: paho.Client,
        _userdata: object,
        mid: int,
        reason_codes: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        if mid != self._subscribe_mid:
            return
        refused = [
            topic
            for topic, rc in zip(self.config.topics, reason_codes, strict=False)
            if rc.is_failure
        ]
        if refused:
            log.error("mqtt_subscription_refused topics=%s", ",".join(refused))
            return
        log.info("mqtt_subscribed topics=%s", ",".join(self.config.topics))
        self.connected.set()

    def _on_disconnect(
        self,
        _client: paho.Client,
        _userdata: object,
        _flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        self.connected.clear()
        log.warning("mqtt_disconnected reason=%s", reason_code)

    def _on_message(self, _client: paho.Client, _userdata: object, msg: paho.MQTTMessage) -> None:
        """paho's path: packets the buffer parser leaves to it (e.g. split across reads)."""
        payload = msg.payload if isinstance(msg.payload, bytes) else bytes(msg.payload)
        self._on_publishes([(msg.mid, msg.qos, msg.topic, payload)])

    def _on_publishes(self, publishes: list[Publish]) -> None:
        generation = self._generation
        now_ms = int(time.time() * 1000)
        items = [
            Received(generation, mid, qos, topic, payload, now_ms)
            for mid, qos, topic, payload in publishes
        ]
        # Blocking here is the back-pressure: paho stops reading and the broker holds the rest.
        done = 0
        while self._accepting and done < len(items):
            done += self.inbox.put_many(items[done:], self.config.put_timeout_s)
        self.dropped_at_stop += len(items) - done
