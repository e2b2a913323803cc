"""Against a real Mosquitto: the files `agridrone broker-acl` writes keep drones to their topics."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import queue
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from ingest import broker_acl
from ingest.broker_acl import mosquitto_hash
from storage.drones import DroneRecord
from storage.metadata import MetadataDB
from tests.servers import _stop, _wait_for_port, free_port

pytestmark = pytest.mark.integration

T0 = 1_764_300_000_000
INGEST = ("agridrone-ingest", "ingest-secret")
DRONE_A = ("htx-a", "d1", "password-of-a")
DRONE_B = ("htx-a", "d2", "password-of-b")
NOT_AUTHORIZED = 135
TIMEOUT = 10.0


@dataclass
class Broker:
    """A Mosquitto of this module with password_file, acl_file and no anonymous access."""

    port: int
    folder: Path
    metadata_path: Path
    proc: subprocess.Popen[bytes]


def write_acl_files(broker_folder: Path, metadata_path: Path) -> None:
    parser = argparse.ArgumentParser()
    broker_acl.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            *("broker-acl", "--password-file", str(broker_folder / "passwd")),
            *("--acl-file", str(broker_folder / "acl"), "--metadata-path", str(metadata_path)),
            *("--ingest-user", INGEST[0], "--ingest-password", INGEST[1]),
        ]
    )
    assert args.handler(args) == 0


def register(metadata_path: Path, coop: str, drone: str, password: str) -> None:
    db = MetadataDB(metadata_path)
    db.add_drone(DroneRecord(coop, drone, 5.5, T0, mosquitto_hash(password)))
    db.close()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    folder = tmp_path_factory.mktemp("mosquitto-acl")
    metadata_path = folder / "meta.db"
    for coop, drone, password in (DRONE_A, DRONE_B):
        register(metadata_path, coop, drone, password)
    write_acl_files(folder, metadata_path)
    port = free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous false\n"
        f"password_file {folder}/passwd\n"
        f"acl_file {folder}/acl\n"
        f"user {getpass.getuser()}\n"
        "persistence false\n"
        f"log_dest file {folder}/mosquitto.log\n"
        "log_type error\nlog_type warning\nlog_type notice\n"
    )
    log = folder / "mosquitto.out"
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    with log.open("ab") as out:
        proc = subprocess.Popen([exe, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, proc, log, timeout=10)
        yield Broker(port, folder, metadata_path, proc)
    finally:
        _stop(proc)


@dataclass
class Session:
    """One MQTT 5 client with queues of what the broker answered."""

    client: paho.Client
    connack: queue.Queue[ReasonCode] = field(default_factory=queue.Queue)
    messages: queue.Queue[tuple[str, bytes]] = field(default_factory=queue.Queue)
    pubacks: queue.Queue[tuple[int, ReasonCode]] = field(default_factory=queue.Queue)
    subacks: queue.Queue[list[ReasonCode]] = field(default_factory=queue.Queue)

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        info = self.client.publish(topic, payload, qos=1)
        mid, code = self.pubacks.get(timeout=TIMEOUT)
        assert mid == info.mid
        return code

    def subscribe(self, topic: str) -> ReasonCode:
        self.client.subscribe(topic, qos=1)
        return self.subacks.get(timeout=TIMEOUT)[0]

    def next_message(self) -> tuple[str, bytes]:
        return self.messages.get(timeout=TIMEOUT)


@contextlib.contextmanager
def session(port: int, credentials: tuple[str, str] | None) -> Iterator[Session]:
    """A connected (or refused: see ``connack``) MQTT 5 client, disconnected afterwards."""
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"acl-test-{uuid.uuid4().hex[:8]}",
        protocol=paho.MQTTv5,
    )
    s = Session(client)
    if credentials is not None:
        client.username_pw_set(*credentials)

    def on_connect(_c: Any, _u: Any, _f: Any, code: ReasonCode, _p: Any) -> None:
        s.connack.put(code)

    def on_message(_c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        s.messages.put((msg.topic, bytes(msg.payload)))

    def on_publish(_c: Any, _u: Any, mid: int, code: ReasonCode, _p: Any) -> None:
        s.pubacks.put((mid, code))

    def on_subscribe(_c: Any, _u: Any, _mid: int, codes: list[ReasonCode], _p: Any) -> None:
        s.subacks.put(codes)

    client.on_connect = on_connect
    client.on_message = on_message
    client.on_publish = on_publish
    client.on_subscribe = on_subscribe
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        yield s
    finally:
        client.disconnect()
        client.loop_stop()


def connected(s: Session) -> Session:
    code = s.connack.get(timeout=TIMEOUT)
    assert not code.is_failure, f"connect refused: {code}"
    return s


def telemetry(coop: str, drone: str) -> str:
    return f"agri/v1/{coop}/{drone}/telemetry"


def creds(drone: tuple[str, str, str]) -> tuple[str, str]:
    return f"{drone[0]}.{drone[1]}", drone[2]


def test_a_drone_publishes_under_its_own_topic_and_the_ingest_user_receives_it(
    broker: Broker,
) -> None:
    with session(broker.port, INGEST) as ingest, session(broker.port, creds(DRONE_A)) as a:
        assert connected(ingest).subscribe("agri/v1/#").value == 1
        assert connected(a).publish(telemetry("htx-a", "d1"), b'{"own":1}').value == 0
        assert ingest.next_message() == (telemetry("htx-a", "d1"), b'{"own":1}')


@pytest.mark.parametrize(
    "topic",
    [
        telemetry("htx-a", "d2"),  # drone B, same cooperative
        "agri/v1/htx-a/d2/status",
        telemetry("htx-a", "d10"),  # shares a prefix with d1's id
        telemetry("htx-b", "d1"),  # same drone id, another cooperative
        "agri/v1/htx-a",
        "agri/mavlink/htx-a/d2/GLOBAL_POSITION_INT",  # drone B's ground station
        "thing/product/SN-A/osd",  # a DJI serial drone A was not given
    ],
)
def test_a_drone_cannot_publish_as_another_drone(broker: Broker, topic: str) -> None:
    with session(broker.port, INGEST) as ingest, session(broker.port, creds(DRONE_A)) as a:
        connected(ingest).subscribe("agri/v1/#")
        assert connected(a).publish(topic, b'{"forged":1}').value == NOT_AUTHORIZED
        a.publish(telemetry("htx-a", "d1"), b'{"marker":1}')
        assert ingest.next_message() == (telemetry("htx-a", "d1"), b'{"marker":1}')
        assert ingest.messages.empty()


def test_a_ground_station_publishes_under_its_drones_mavproxy_tree(broker: Broker) -> None:
    topic = "agri/mavlink/htx-a/d1/GLOBAL_POSITION_INT"
    with session(broker.port, INGEST) as ingest, session(broker.port, creds(DRONE_A)) as a:
        assert connected(ingest).subscribe("agri/mavlink/+/+/+").value == 1
        assert connected(a).publish(topic, b'{"lat":1}').value == 0
        assert ingest.next_message() == (topic, b'{"lat":1}')


def test_the_ingest_user_receives_through_a_shared_subscription(broker: Broker) -> None:
    with session(broker.port, INGEST) as ingest, session(broker.port, creds(DRONE_B)) as b:
        granted = connected(ingest).subscribe("$share/ingest/agri/v1/+/+/telemetry")
        assert granted.value == 1
        connected(b).publish(telemetry("htx-a", "d2"), b'{"shared":1}')
        assert ingest.next_message() == (telemetry("htx-a", "d2"), b'{"shared":1}')


def test_the_ingest_user_cannot_publish(broker: Broker) -> None:
    with session(broker.port, INGEST) as ingest:
        assert connected(ingest).publish(telemetry("htx-a", "d1"), b"{}").value == NOT_AUTHORIZED


def test_a_drone_subscribed_to_the_fleet_receives_only_its_own_topics(broker: Broker) -> None:
    # Mosquitto 2.0 grants the wildcard subscription and checks read access per message.
    with session(broker.port, creds(DRONE_A)) as a, session(broker.port, creds(DRONE_B)) as b:
        connected(a).subscribe("agri/v1/#")
        assert not connected(b).publish(telemetry("htx-a", "d2"), b'{"b":1}').is_failure
        a.publish("agri/v1/htx-a/d1/command", b'{"a":1}')
        assert a.next_message() == ("agri/v1/htx-a/d1/command", b'{"a":1}')
        assert a.messages.empty()


@pytest.mark.parametrize(
    "credentials",
    [
        ("htx-a.d1", "password-of-b"),  # drone A's name with drone B's password
        ("htx-a.d1", ""),
        ("htx-a.d9", "password-of-a"),  # not registered
        (INGEST[0], "guess"),
    ],
)
def test_a_wrong_password_is_refused(broker: Broker, credentials: tuple[str, str]) -> None:
    with session(broker.port, credentials) as s:
        code = s.connack.get(timeout=TIMEOUT)
        assert code.is_failure
        assert code.getName() in {"Bad user name or password", "Not authorized"}


def test_an_anonymous_client_is_refused(broker: Broker) -> None:
    with session(broker.port, None) as s:
        code = s.connack.get(timeout=TIMEOUT)
        assert code.is_failure
        assert code.getName() == "Not authorized"


def test_a_drone_registered_later_gets_in_after_rewriting_the_files_and_a_sighup(
    broker: Broker,
) -> None:
    late = ("htx-a", "d3", "password-of-c")
    register(broker.metadata_path, *late)
    with session(broker.port, creds(late)) as before:
        assert before.connack.get(timeout=TIMEOUT).is_failure
    write_acl_files(broker.folder, broker.metadata_path)
    broker.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + TIMEOUT
    while True:
        with session(broker.port, creds(late)) as after:
            if not after.connack.get(timeout=TIMEOUT).is_failure:
                assert not after.publish(telemetry("htx-a", "d3"), b"{}").is_failure
                break
        assert time.monotonic() < deadline, "the broker did not reload its password file"
        time.sleep(0.1)
