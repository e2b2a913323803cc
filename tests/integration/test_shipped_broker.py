"""The shipped deploy/mosquitto.conf on a real Mosquitto: nobody anonymous, every user boxed in,
and no drone can take over the ingest worker's client id (the kick and the session wipe).

The attack, before the lock-down: a drone logging in with the worker's client id made the
broker disconnect the worker; connecting with a clean start it also threw away the worker's
persistent session, so nothing published meanwhile was queued for the worker. The control
tests run the same attack with ``use_username_as_clientid`` dropped from the file, to show the
tests see the attack when it works.
"""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from agridrone.init import HEALTH_OPTIONS_NAME, health_options_text
from ingest.broker_acl import HEALTH_USER, ServiceAccount, mosquitto_hash, write_broker_files
from ingest.mqtt import BrokerAddress, ConsumerConfig
from ingest.service import IngestConfig, IngestService
from ingest.wire import encode_sample
from storage.drones import DroneRecord
from storage.metadata import MetadataDB
from storage.sqlite import SqliteStore
from tests.deployment import compose_service, unescape_compose
from tests.integration.mqtt_helpers import sample_series, wait_until
from tests.integration.shipped_broker import ShippedBroker, running_shipped_mosquitto

pytestmark = pytest.mark.integration

INGEST: Final = ("agridrone-ingest", "ingest-secret")
HEALTH_PASSWORD: Final = "health-secret"
DRONE_A: Final = ("htx-a.d1", "password-of-a")
DRONE_B: Final = ("htx-a.d2", "password-of-b")
#: The client id docker-compose.yml gives the worker.
WORKER_ID: Final = "agridrone-ingest"
TOPIC_A: Final = "agri/v1/htx-a/d1/telemetry"
MESSAGES: Final = 500
NOT_AUTHORIZED: Final = 135
TIMEOUT: Final = 10.0
BINDING: Final = "use_username_as_clientid"


def write_users(broker_dir: Path) -> None:
    """The files `agridrone init` + `broker-acl` would write, with passwords the tests know."""
    drones = [
        DroneRecord("htx-a", "d1", 5.5, 0, mosquitto_hash(DRONE_A[1])),
        DroneRecord("htx-a", "d2", 5.5, 0, mosquitto_hash(DRONE_B[1])),
    ]
    services = [
        ServiceAccount(INGEST[0], mosquitto_hash(INGEST[1])),
        ServiceAccount(HEALTH_USER, mosquitto_hash(HEALTH_PASSWORD), "health"),
    ]
    write_broker_files(broker_dir / "passwd", broker_dir / "acl", drones, services)
    (broker_dir / HEALTH_OPTIONS_NAME).write_text(health_options_text(HEALTH_PASSWORD))


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShippedBroker]:
    folder = tmp_path_factory.mktemp("shipped")
    write_users(folder / "auth")
    with running_shipped_mosquitto(folder / "auth", folder / "data") as b:
        yield b


@pytest.fixture(scope="module")
def unbound_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShippedBroker]:
    """The shipped configuration without the client-id binding (the control case)."""
    folder = tmp_path_factory.mktemp("unbound")
    write_users(folder / "auth")
    with running_shipped_mosquitto(folder / "auth", folder / "data", without=[BINDING]) as b:
        yield b


@dataclass
class Client:
    """One MQTT 5 connection and what the broker told it, in queues."""

    client: paho.Client
    connacks: queue.Queue[tuple[ReasonCode, bool]] = field(default_factory=queue.Queue)
    disconnects: queue.Queue[ReasonCode] = field(default_factory=queue.Queue)
    messages: queue.Queue[tuple[str, bytes]] = field(default_factory=queue.Queue)
    pubacks: queue.Queue[tuple[int, ReasonCode]] = field(default_factory=queue.Queue)
    subacks: queue.Queue[list[ReasonCode]] = field(default_factory=queue.Queue)

    def connected(self) -> bool:
        """Whether the broker accepted us, and whether it had a session for us."""
        code, session_present = self.connacks.get(timeout=TIMEOUT)
        assert not code.is_failure, f"connect refused: {code}"
        return session_present

    def refusal(self) -> ReasonCode:
        code, _ = self.connacks.get(timeout=TIMEOUT)
        assert code.is_failure, "the broker accepted a connection it should refuse"
        return code

    def subscribe(self, topic: str) -> int:
        self.client.subscribe(topic, qos=1)
        return int(self.subacks.get(timeout=TIMEOUT)[0].value)

    def publish(self, topic: str, payload: bytes) -> int:
        info = self.client.publish(topic, payload, qos=1)
        mid, code = self.pubacks.get(timeout=TIMEOUT)
        assert mid == info.mid
        return int(code.value)

    def drain(self, expected: int, timeout: float = TIMEOUT) -> list[bytes]:
        """Payloads received until ``expected`` arrived or nothing came for ``timeout`` s."""
        got: list[bytes] = []
        with contextlib.suppress(queue.Empty):
            while len(got) < expected:
                got.append(self.messages.get(timeout=timeout)[1])
        return got


@contextlib.contextmanager
def mqtt(
    port: int,
    credentials: tuple[str, str] | None,
    client_id: str,
    *,
    persistent: bool = False,
) -> Iterator[Client]:
    """A connection; ``persistent`` as the worker connects: clean start off, a session kept."""
    paho_client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5
    )
    c = Client(paho_client)
    if credentials is not None:
        paho_client.username_pw_set(*credentials)
    paho_client.max_inflight_messages_set(1000)

    def on_connect(_c: Any, _u: Any, flags: paho.ConnectFlags, code: ReasonCode, _p: Any) -> None:
        c.connacks.put((code, flags.session_present))

    def on_disconnect(_c: Any, _u: Any, _f: Any, code: ReasonCode, _p: Any) -> None:
        c.disconnects.put(code)

    def on_message(_c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        c.messages.put((msg.topic, bytes(msg.payload)))

    def on_publish(_c: Any, _u: Any, mid: int, code: ReasonCode, _p: Any) -> None:
        c.pubacks.put((mid, code))

    def on_subscribe(_c: Any, _u: Any, _mid: int, codes: list[ReasonCode], _p: Any) -> None:
        c.subacks.put(codes)

    paho_client.on_connect = on_connect
    paho_client.on_disconnect = on_disconnect
    paho_client.on_message = on_message
    paho_client.on_publish = on_publish
    paho_client.on_subscribe = on_subscribe
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600 if persistent else 0
    paho_client.connect("127.0.0.1", port, clean_start=not persistent, properties=props)
    paho_client.loop_start()
    try:
        yield c
    finally:
        paho_client.disconnect()
        paho_client.loop_stop()


def publish_many(port: int, n: int) -> list[int]:
    """Drone A publishes ``n`` numbered QoS 1 messages; the PUBACK reason code of each."""
    with mqtt(port, DRONE_A, "drone-a") as drone:
        drone.connected()
        return [drone.publish(TOPIC_A, str(i).encode()) for i in range(n)]


def numbered(n: int) -> list[bytes]:
    return [str(i).encode() for i in range(n)]


# --- no anonymous access, each user boxed in ---------------------------------------------------


def test_an_anonymous_client_is_refused(broker: ShippedBroker) -> None:
    with mqtt(broker.port, None, "anonymous") as anonymous:
        assert anonymous.refusal().getName() == "Not authorized"


def test_a_wrong_password_for_the_ingest_user_is_refused(broker: ShippedBroker) -> None:
    with mqtt(broker.port, (INGEST[0], "guess"), WORKER_ID) as guesser:
        assert guesser.refusal().getName() in {"Bad user name or password", "Not authorized"}


def test_the_ingest_user_reads_every_drone_but_cannot_publish(broker: ShippedBroker) -> None:
    with mqtt(broker.port, INGEST, WORKER_ID) as ingest:
        ingest.connected()
        assert ingest.subscribe("agri/v1/+/+/telemetry") == 1
        assert publish_many(broker.port, 1) == [0]
        assert ingest.drain(1) == [b"0"]
        assert ingest.publish(TOPIC_A, b'{"forged":1}') == NOT_AUTHORIZED


def test_the_health_user_reads_the_uptime_and_nothing_else(broker: ShippedBroker) -> None:
    with mqtt(broker.port, (HEALTH_USER, HEALTH_PASSWORD), "health") as health:
        health.connected()
        health.subscribe("agri/v1/#")
        health.subscribe("$SYS/broker/uptime")
        topic, _ = health.messages.get(timeout=TIMEOUT)
        assert topic == "$SYS/broker/uptime"
        publish_many(broker.port, 1)
        assert health.publish(TOPIC_A, b"{}") == NOT_AUTHORIZED
        with contextlib.suppress(queue.Empty):
            while True:
                assert health.messages.get(timeout=1)[0] == "$SYS/broker/uptime"


def test_composes_broker_healthcheck_passes_with_the_login_init_writes(
    broker: ShippedBroker,
) -> None:
    service = compose_service("mosquitto")
    command = unescape_compose(service["healthcheck"]["test"])
    assert command[0] == "CMD"
    # XDG_CONFIG_HOME is compose's broker folder (tests/unit/test_deploy_files.py); here ours.
    env = {**os.environ, "XDG_CONFIG_HOME": str(broker.broker_dir)}
    done = subprocess.run(
        [*command[1:], "-p", str(broker.port)],
        env=env,
        capture_output=True,
        timeout=10,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(b"seconds")


def test_composes_broker_healthcheck_fails_without_the_login(broker: ShippedBroker) -> None:
    command = unescape_compose(compose_service("mosquitto")["healthcheck"]["test"])
    env = {**os.environ, "XDG_CONFIG_HOME": str(broker.data_dir / "nowhere")}
    done = subprocess.run(
        [*command[1:], "-p", str(broker.port)],
        env=env,
        capture_output=True,
        timeout=10,
        check=False,
    )
    assert done.returncode != 0
    assert b"not authorised" in done.stderr.lower() or b"not authorized" in done.stderr.lower()


# --- the client-id takeover ---------------------------------------------------------------------


@dataclass(frozen=True)
class KickOutcome:
    disconnects: int
    received: list[bytes]
    pubacks: list[int]


def kick_attempt(port: int) -> KickOutcome:
    """The worker is online; drone B logs in with the worker's client id; drone A publishes."""
    with mqtt(port, INGEST, WORKER_ID, persistent=True) as worker:
        worker.connected()
        assert worker.subscribe("agri/v1/+/+/telemetry") == 1
        with mqtt(port, DRONE_B, WORKER_ID) as attacker:
            attacker.connected()
            time.sleep(0.5)  # a kicked worker notices the closed socket within this
            pubacks = publish_many(port, MESSAGES)
            received = worker.drain(MESSAGES, timeout=3)
        return KickOutcome(worker.disconnects.qsize(), received, pubacks)


@dataclass(frozen=True)
class WipeOutcome:
    session_present: bool
    received: list[bytes]


def wipe_attempt(port: int, worker_id: str) -> WipeOutcome:
    """The worker is offline with a persistent session; drone B logs in with its client id
    and a clean start and stays while drone A publishes; then the worker comes back."""
    with mqtt(port, INGEST, worker_id, persistent=True) as worker:
        worker.connected()
        assert worker.subscribe("agri/v1/+/+/telemetry") == 1
    with mqtt(port, DRONE_B, worker_id) as attacker:
        attacker.connected()
        publish_many(port, MESSAGES)
    with mqtt(port, INGEST, worker_id, persistent=True) as worker:
        session_present = worker.connected()
        received = worker.drain(MESSAGES, timeout=3)
    return WipeOutcome(session_present, received)


def test_a_drone_with_the_workers_client_id_does_not_kick_the_worker(
    broker: ShippedBroker,
) -> None:
    outcome = kick_attempt(broker.port)
    assert outcome.disconnects == 0
    assert outcome.received == numbered(MESSAGES)
    assert set(outcome.pubacks) == {0}  # 0: delivered to a subscriber (16 would mean none)


def test_a_drone_with_the_workers_client_id_does_not_wipe_its_session(
    broker: ShippedBroker,
) -> None:
    outcome = wipe_attempt(broker.port, "worker-session-test")
    assert outcome.session_present
    assert outcome.received == numbered(MESSAGES)


def test_control_without_the_binding_the_drone_kicks_the_worker(
    unbound_broker: ShippedBroker,
) -> None:
    outcome = kick_attempt(unbound_broker.port)
    assert outcome.disconnects >= 1


def test_control_without_the_binding_the_drone_wipes_the_session(
    unbound_broker: ShippedBroker,
) -> None:
    outcome = wipe_attempt(unbound_broker.port, "worker-session-test")
    assert not outcome.session_present
    assert outcome.received == []


def test_the_ingest_worker_stores_everything_while_a_drone_poses_as_it(
    broker: ShippedBroker, tmp_path: Path
) -> None:
    # The real worker (paho, manual acks, MQTT 5 session of 7 days) with a client id of its own
    # choosing: under the binding the broker keeps its session under its user name instead.
    samples = sample_series("htx-a", "d1", MESSAGES)
    address = BrokerAddress("127.0.0.1", broker.port, *INGEST)
    config = IngestConfig(ConsumerConfig(address, "agridrone-ingest-host1"))
    metadata = MetadataDB(tmp_path / "agridrone.db")
    with SqliteStore(tmp_path / "telemetry.db") as store:
        worker = IngestService(config, store, metadata)
        worker.start(connect_timeout_s=TIMEOUT)
        worker.stop()
        with mqtt(broker.port, DRONE_B, "agridrone-ingest-host1") as attacker:
            attacker.connected()
            with mqtt(broker.port, DRONE_A, "drone-a") as drone:
                drone.connected()
                codes = {drone.publish(TOPIC_A, encode_sample(s)) for s in samples}
        worker = IngestService(config, store, metadata)
        worker.start(connect_timeout_s=TIMEOUT)
        try:
            wait_until(
                lambda: len(store.drone_samples("htx-a", "d1", 0, 2**62)) == MESSAGES,
                what=f"{MESSAGES} samples stored",
                state=lambda: len(store.drone_samples("htx-a", "d1", 0, 2**62)),
            )
        finally:
            worker.stop()
        assert store.drone_samples("htx-a", "d1", 0, 2**62) == samples
    metadata.close()
    assert codes == {0}


def test_two_connections_of_one_user_share_one_session_so_each_worker_needs_its_own_user(
    broker: ShippedBroker,
) -> None:
    with mqtt(broker.port, INGEST, "worker-1", persistent=True) as first:
        first.connected()
        with mqtt(broker.port, INGEST, "worker-2", persistent=True) as second:
            assert second.connected()  # session_present: worker-1's session, taken over
            first.disconnects.get(timeout=TIMEOUT)


# --- MAVProxy's fixed client id ------------------------------------------------------------------

#: MAVProxy's ``mqtt`` module always connects as this client id.
MAVPROXY_ID: Final = "mavproxy"


def ground_stations_attempt(port: int) -> int:
    """Drones A and B each have a ground station running MAVProxy, so both log in with the
    client id ``mavproxy``; how many times either was disconnected while both were on."""
    with mqtt(port, DRONE_A, MAVPROXY_ID) as first:
        first.connected()
        with mqtt(port, DRONE_B, MAVPROXY_ID) as second:
            second.connected()
            assert first.publish("agri/mavlink/htx-a/d1/HEARTBEAT", b"{}") in {0, 16}
            time.sleep(0.5)  # a kicked station notices the closed socket within this
            return first.disconnects.qsize() + second.disconnects.qsize()


def test_two_mavproxy_ground_stations_with_the_same_client_id_both_stay_connected(
    broker: ShippedBroker,
) -> None:
    assert ground_stations_attempt(broker.port) == 0


def test_control_without_the_binding_two_mavproxy_ground_stations_kick_each_other(
    unbound_broker: ShippedBroker,
) -> None:
    assert ground_stations_attempt(unbound_broker.port) >= 1
