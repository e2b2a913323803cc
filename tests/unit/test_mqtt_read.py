"""The consumer's own PUBLISH parser reads what paho's decoder reads, and leaves the rest.

``_BufferedClient._read_publishes`` parses QoS 0/1 PUBLISH packets straight from the read
buffer (MQTT 5 properties skipped); anything else must stay in the buffer for paho.
"""

from __future__ import annotations

import socket
from typing import Final

import paho.mqtt.client as paho
import pytest
from paho.mqtt import _packet
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from ingest.mqtt import Publish, _BufferedClient


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish(topic: str, payload: bytes, *, qos: int, mid: int, props: bytes | None) -> bytes:
    """A PUBLISH packet; ``props`` (MQTT 5 only) is the encoded property list."""
    body = len(topic.encode()).to_bytes(2, "big") + topic.encode()
    if qos:
        body += mid.to_bytes(2, "big")
    if props is not None:
        body += varint(len(props)) + props
    body += payload
    return bytes([0x30 | (qos << 1)]) + varint(len(body)) + body


def parsed(*, v5: bool, buffer: bytes) -> tuple[list[Publish], int]:
    client = _BufferedClient(
        CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5 if v5 else paho.MQTTv311
    )
    got: list[Publish] = []
    client.on_publishes = got.extend
    client._rbuf, client._rpos = buffer, 0
    client._read_publishes(got.extend)
    return got, client._rpos


#: Payload format indicator, a user property and a subscription identifier.
PROPS = b"\x01\x01" + b"\x26\x00\x01k\x00\x02vv" + b"\x0b\x85\x01"


@pytest.mark.parametrize("v5", [True, False])
def test_publishes_read_as_paho_decodes_them(v5: bool) -> None:
    packets = [
        publish("agri/v1/c/d1/telemetry", b'{"ts":1}', qos=1, mid=7, props=PROPS if v5 else None),
        publish("agri/v1/c/d2/event", b"x" * 300, qos=1, mid=65535, props=b"" if v5 else None),
        publish("agri/v1/c/d3/status", b"", qos=0, mid=0, props=b"" if v5 else None),
    ]
    got, pos = parsed(v5=v5, buffer=b"".join(packets))
    assert pos == sum(map(len, packets))
    protocol = MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311
    for (mid, qos, topic, payload), packet in zip(got, packets, strict=True):
        start = 2 if packet[1] < 0x80 else 3  # fixed header: type byte, 1-2 length bytes
        ref = _packet.decode_publish(packet[0], packet[start:], protocol)
        assert (mid, qos, topic.encode(), payload) == (ref.mid, ref.qos, ref.topic, ref.payload)


@pytest.mark.parametrize(
    "rest",
    [
        publish("t", b"p", qos=2, mid=1, props=b""),  # QoS 2: paho's exchange
        b"\xd0\x00",  # PINGRESP
        publish("t", b"payload", qos=1, mid=1, props=b"")[:-3],  # not wholly buffered yet
        publish("", b"p", qos=1, mid=1, props=b""),  # empty topic (an alias): paho decides
        b"\x32\x08\x00\x01\xff\x00\x01\x00pp",  # topic b"\xff": not UTF-8
    ],
)
def test_parsing_stops_where_paho_must_take_over(rest: bytes) -> None:
    first = publish("agri/v1/c/d/telemetry", b"{}", qos=1, mid=1, props=b"")
    got, pos = parsed(v5=True, buffer=first + rest)
    assert [g[0] for g in got] == [1]
    assert pos == len(first)


#: PUBLISHes too short for what their header promises, each the last bytes buffered.
TOO_SHORT: Final = (
    b"\x30\x00",  # QoS 0, remaining length 0: no topic length
    b"\x32\x00",  # QoS 1, remaining length 0
    b"\x30\x01\x00",  # remaining length 1: half a topic length
    b"\x32\x03\x00\x01t",  # QoS 1, topic "t", no packet id
    b"\x32\x04\x00\x01t\x00",  # QoS 1, topic "t", one byte of packet id
)


@pytest.mark.parametrize("v5", [True, False])
@pytest.mark.parametrize("short", TOO_SHORT)
def test_a_publish_too_short_for_its_fields_is_left_to_paho(v5: bool, short: bytes) -> None:
    first = publish("agri/v1/c/d/telemetry", b"{}", qos=1, mid=1, props=b"" if v5 else None)
    got, pos = parsed(v5=v5, buffer=first + short)
    assert [g[0] for g in got] == [1]
    assert pos == len(first)


def connected_client(v5: bool) -> tuple[_BufferedClient, socket.socket, list[Publish]]:
    """A client whose socket is one end of a local pair (the other end returned as the
    'broker'), collecting the PUBLISHes its fast path parses."""
    client = _BufferedClient(
        CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5 if v5 else paho.MQTTv311
    )
    ours, broker = socket.socketpair()
    ours.setblocking(False)  # noqa: FBT003 -- socket's API
    client._sock = ours
    got: list[Publish] = []
    client.on_publishes = got.extend
    return client, broker, got


@pytest.mark.parametrize("short", TOO_SHORT)
def test_paho_refuses_a_publish_too_short_without_crashing_the_network_thread(
    short: bytes,
) -> None:
    client, broker, got = connected_client(v5=False)
    try:
        by_paho: list[bytes] = []
        client.on_message = lambda _client, _data, message: by_paho.append(bytes(message.payload))
        # paho reads the first PUBLISH; the fast path then meets the short one buffered.
        broker.sendall(publish("agri/v1/c/d/telemetry", b"ok", qos=0, mid=0, props=None) + short)
        rc = client.loop_read()
        assert rc != paho.MQTT_ERR_SUCCESS
        assert by_paho == [b"ok"]
        assert got == []
    finally:
        broker.close()
        if client._sock is not None:
            client._sock.close()


def test_leftover_publishes_of_a_previous_connection_are_not_read_after_a_reconnect() -> None:
    client, broker, got = connected_client(v5=False)
    try:
        # The old connection's read left a whole PUBLISH buffered, then the socket changed.
        client._rbuf = publish("agri/v1/c/d/telemetry", b"old", qos=1, mid=9, props=None)
        client._rpos, client._rbuf_sock = 0, object()
        broker.sendall(publish("agri/v1/c/d/telemetry", b"new", qos=1, mid=1, props=None))
        by_paho: list[bytes] = []
        client.on_message = lambda _client, _data, message: by_paho.append(bytes(message.payload))
        assert client.loop_read() == paho.MQTT_ERR_SUCCESS
        assert got == []  # the old PUBLISH (mid 9) was dropped, not handled a second time
        assert by_paho == [b"new"]
    finally:
        broker.close()
        if client._sock is not None:
            client._sock.close()
