"""Real MAVProxy and DJI Cloud API traffic through the shipped, locked-down Mosquitto into the
ingest worker and the real stores (SQLite + SQLite metadata; InfluxDB + PostgreSQL).

Two ground stations run as MAVProxy does: QoS 0, the fixed client id ``mavproxy``, each with
its drone's credentials. One replays MAVProxy 1.8.75's own capture of a real ArduCopter log,
the other the capture of the same client with no fix yet. A DJI gateway publishes the Cloud
API examples and a real DJI flight as 0.5 Hz OSD. Every expected figure is computed here from
the captures themselves (positions, no-fix rows, sorties between arm and disarm, SYSTEM_TIME
clock), never from the worker's code.
"""

from __future__ import annotations

import contextlib
import csv
import getpass
import gzip
import queue
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from flights.service import rebuild
from ingest.broker_acl import ServiceAccount, mosquitto_hash, write_broker_files
from ingest.foreign import ForeignConfig
from ingest.mqtt import BrokerAddress, ConsumerConfig
from ingest.service import IngestConfig, IngestService
from storage.contract import TelemetryStore
from storage.drones import DroneRecord
from storage.metadata import MetadataDB, RejectedMessage
from storage.records import Sample
from tests.integration.conftest import scaled_metadata
from tests.integration.mqtt_helpers import wait_until
from tests.integration.shipped_broker import ShippedBroker, running_shipped_mosquitto
from tests.realdata import needs_realdata, realdata
from tests.servers import _stop, _wait_for_port, free_port

pytestmark = [pytest.mark.integration, needs_realdata]

INGEST: Final = ("agridrone-ingest", "ingest-secret")
COOP: Final = "htx-a"
GCS1: Final = ("gcs1", "password-of-gcs1")  # replays the 2018-09-25 capture, sprays in AUTO
GCS2: Final = ("gcs2", "password-of-gcs2")  # replays the 2018-09-17 capture (no fix yet)
DJI_COOP: Final = "htx-b"
DJI_DRONE: Final = ("mini2", "password-of-mini2")
DJI_SN: Final = "1ZNBK7LC00AB"  # the serial of the real Pilot 2 capture's topic
MAVPROXY_CLIENT_ID: Final = "mavproxy"  # MAVProxy's fixed client id
NOT_AUTHORIZED: Final = 135
ALL: Final = (0, 2**62)
TIMEOUT: Final = 10.0
ONE_SECOND_MS: Final = 1000
#: ArduCopter's custom_mode of AUTO, for HEARTBEAT.type 2 (quadrotor).
COPTER_AUTO: Final = 3


# --- what the captures say, computed here --------------------------------------------------


def capture(name: str) -> list[tuple[str, bytes]]:
    """(MSGTYPE, payload) of each line of a MAVProxy capture, in order."""
    path = realdata("mqtt_payloads", name)
    raw = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
    out = []
    for line in raw.splitlines():
        if line.strip():
            topic, payload = line.split(b" ", 1)
            out.append((topic.decode().rsplit("/", 1)[1], payload))
    return out


@dataclass
class Expected:
    """A capture's positions with a fix (their UTC time by SYSTEM_TIME), rejected ones,
    arm-to-disarm sorties, and positions flown armed in AUTO."""

    positions: list[tuple[int, int, int]] = field(default_factory=list)  # ts_ms, lat_e7, lon_e7
    no_fix: int = 0
    sorties: int = 0
    in_auto: int = 0
    first_utc_ms: int = 0


def expected_from(lines: list[tuple[str, bytes]]) -> Expected:
    """The log's own clock: each SYSTEM_TIME gives UTC minus boot time; a position takes the
    latest one before it (the first one for positions before any)."""
    out = Expected()
    offsets: list[tuple[int, int]] = []  # (index in the stream, UTC ms - boot ms)
    raw_positions: list[tuple[int, int, int, int, bool]] = []  # index, boot, lat, lon, auto
    fix: int | None = None
    armed: bool | None = None
    auto = False
    for i, (kind, payload) in enumerate(lines):
        msg = orjson.loads(payload)
        if kind == "SYSTEM_TIME" and msg["time_unix_usec"] > 0:
            offsets.append((i, msg["time_unix_usec"] // 1000 - msg["time_boot_ms"]))
        elif kind == "GPS_RAW_INT":
            fix = msg["fix_type"]
        elif kind == "HEARTBEAT":
            now_armed = bool(msg["base_mode"] & 128)
            auto = now_armed and msg["custom_mode"] == COPTER_AUTO and bool(msg["base_mode"] & 1)
            if armed is True and not now_armed:
                out.sorties += 1
            armed = now_armed
        elif kind == "GLOBAL_POSITION_INT":
            if (msg["lat"] == 0 and msg["lon"] == 0) or (fix is not None and fix < 2):
                out.no_fix += 1
            else:
                raw_positions.append((i, msg["time_boot_ms"], msg["lat"], msg["lon"], auto))
    for i, boot_ms, lat, lon, in_auto in raw_positions:
        before = [off for at, off in offsets if at < i]
        offset = before[-1] if before else offsets[0][1]
        out.positions.append((boot_ms + offset, lat, lon))
        out.in_auto += in_auto
    out.first_utc_ms = offsets[0][1] if offsets else 0
    return out


def dji_flight() -> tuple[list[dict[str, Any]], int]:
    """The real DJI Mini 2 flight as DJI's gateway would push it: OSD every 2 s (every 20th
    row of the 10 Hz track), airborne (mode_code 3) between an on-ground message before and
    after; how many of them carry a position."""
    with realdata("tracks", "dji_mini2_2021-09-06_airdata.csv").open() as f:
        rows = list(csv.DictReader(f))[::20]
    envelopes = []
    positions = 0
    for n, row in enumerate(rows):
        ts_ms = round(float(row["ts"]) * 1000)
        heading = float(row["heading_deg"])
        data: dict[str, Any] = {
            "latitude": float(row["lat"]),
            "longitude": float(row["lon"]),
            "elevation": float(row["alt_m"]),
            "horizontal_speed": float(row["speed_mps"]),
            "attitude_head": heading - 360 if heading > 180 else heading,
            "mode_code": 0 if n in (0, len(rows) - 1) else 3,
            "battery": {"capacity_percent": 80},
        }
        positions += not (data["latitude"] == 0 and data["longitude"] == 0)
        envelopes.append(
            {"tid": f"t{n}", "bid": "b", "timestamp": ts_ms, "data": data, "gateway": "RC-SN"}
        )
    return envelopes, positions


# --- MQTT clients as the ground stations and gateways are -----------------------------------


@dataclass
class Station:
    """One MQTT connection; what the broker answered, in queues."""

    client: paho.Client
    connacks: queue.Queue[ReasonCode] = field(default_factory=queue.Queue)
    disconnects: queue.Queue[ReasonCode] = field(default_factory=queue.Queue)
    pubacks: queue.Queue[tuple[int, ReasonCode]] = field(default_factory=queue.Queue)

    def connected(self) -> None:
        code = self.connacks.get(timeout=TIMEOUT)
        assert not code.is_failure, f"connect refused: {code}"

    def publish_qos0(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=0)
        info.wait_for_publish(TIMEOUT)

    def publish_qos1(self, topic: str, payload: bytes) -> int:
        info = self.client.publish(topic, payload, qos=1)
        mid, code = self.pubacks.get(timeout=TIMEOUT)
        assert mid == info.mid
        return int(code.value)


@contextlib.contextmanager
def station(
    port: int, username: str, password: str, client_id: str, *, v5: bool = False
) -> Iterator[Station]:
    """An MQTT client with a fixed client id: 3.1.1 as MAVProxy's paho speaks by default, or
    5 (whose PUBACK says when the broker refused a publish)."""
    protocol = paho.MQTTv5 if v5 else paho.MQTTv311
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
    client.username_pw_set(username, password)
    s = Station(client)
    client.on_connect = lambda _c, _u, _f, code, _p: s.connacks.put(code)
    client.on_disconnect = lambda _c, _u, _f, code, _p: s.disconnects.put(code)
    client.on_publish = lambda _c, _u, mid, code, _p: s.pubacks.put((mid, code))
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        yield s
    finally:
        client.disconnect()
        client.loop_stop()


# --- the deployment -----------------------------------------------------------------------


def register(metadata: MetadataDB) -> None:
    metadata.add_drone(
        DroneRecord(COOP, GCS1[0], 5.0, 0, mosquitto_hash(GCS1[1]), mavlink_spray="auto")
    )
    metadata.add_drone(DroneRecord(COOP, GCS2[0], 5.0, 0, mosquitto_hash(GCS2[1])))
    metadata.add_drone(
        DroneRecord(
            DJI_COOP,
            DJI_DRONE[0],
            5.0,
            0,
            mosquitto_hash(DJI_DRONE[1]),
            dji_sn=DJI_SN,
            dji_spraying=True,
        )
    )


@dataclass
class Deployment:
    broker: ShippedBroker
    store: TelemetryStore
    metadata: MetadataDB
    worker: IngestService


@pytest.fixture
def deployment(
    request: pytest.FixtureRequest, store: TelemetryStore, tmp_path: Path
) -> Iterator[Deployment]:
    """The shipped broker with the files `broker-acl` writes from the registry, and a worker
    logged in as the ingest user, taking MAVProxy and DJI topics, registered drones only."""
    metadata = MetadataDB(scaled_metadata(request, store, tmp_path))
    register(metadata)
    auth = tmp_path / "auth"
    services = [ServiceAccount(INGEST[0], mosquitto_hash(INGEST[1]))]
    write_broker_files(auth / "passwd", auth / "acl", metadata.drones(), services)
    with running_shipped_mosquitto(auth, tmp_path / "data") as broker:
        config = IngestConfig(
            ConsumerConfig(BrokerAddress("127.0.0.1", broker.port, *INGEST), "worker-1"),
            require_registered=True,
            foreign=ForeignConfig(),
        )
        worker = IngestService(config, store, metadata)
        worker.start(connect_timeout_s=TIMEOUT)
        try:
            yield Deployment(broker, store, metadata, worker)
        finally:
            worker.stop()
            metadata.close()


def stored(store: TelemetryStore, coop: str, drone: str) -> list[Sample]:
    return store.drone_samples(coop, drone, *ALL)


def rejected(metadata: MetadataDB, topic_part: str) -> list[RejectedMessage]:
    return [r for r in metadata.rejected_messages(*ALL, limit=100_000) if topic_part in r.topic]


def counts_by_reason(rows: list[RejectedMessage]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        for reason, n in r.reasons.items():
            out[reason] = out.get(reason, 0) + n
    return out


# --- the tests ------------------------------------------------------------------------------


def test_two_mavproxy_ground_stations_replay_real_captures_into_the_stores(
    deployment: Deployment,
) -> None:
    d = deployment
    first = capture("mavproxy_mqtt_phoenix_2018-09-25_replay10x.txt.gz")
    second = capture("mavproxy_mqtt_prefix_example_phoenix_2018-09-17.txt")
    want1, want2 = expected_from(first), expected_from(second)
    assert (len(want1.positions), want1.sorties) == (1616, 6)  # the README's description
    assert want2.no_fix > 0
    port = d.broker.port
    with (
        station(port, f"{COOP}.{GCS1[0]}", GCS1[1], MAVPROXY_CLIENT_ID) as gcs1,
        station(port, f"{COOP}.{GCS2[0]}", GCS2[1], MAVPROXY_CLIENT_ID) as gcs2,
    ):
        gcs1.connected()
        gcs2.connected()
        for i in range(max(len(first), len(second))):
            if i < len(second):
                gcs2.publish_qos0(f"agri/mavlink/{COOP}/{GCS2[0]}/{second[i][0]}", second[i][1])
            if i < len(first):
                gcs1.publish_qos0(f"agri/mavlink/{COOP}/{GCS1[0]}/{first[i][0]}", first[i][1])
        wait_until(
            lambda: len(stored(d.store, COOP, GCS1[0])) == len(want1.positions),
            what=f"{len(want1.positions)} positions of gcs1",
            state=lambda: len(stored(d.store, COOP, GCS1[0])),
        )
        # Both ground stations stayed connected with the same client id: the broker keys
        # each session by its user name (use_username_as_clientid), so neither kicked the
        # other off.
        assert gcs1.disconnects.empty()
        assert gcs2.disconnects.empty()
    d.worker.stop()  # flushes what waits for a SYSTEM_TIME and closes the no-fix runs

    got = stored(d.store, COOP, GCS1[0])
    assert [(s.lat, s.lon) for s in got] == [(la / 1e7, lo / 1e7) for _, la, lo in want1.positions]
    worst = max(abs(s.ts_ms - ts) for s, (ts, _, _) in zip(got, want1.positions, strict=True))
    assert worst <= ONE_SECOND_MS, f"a sample is {worst} ms off the log's SYSTEM_TIME clock"
    assert got[0].ts_ms // 86_400_000 == want1.first_utc_ms // 86_400_000  # 2018-09-25
    assert sum(s.spraying for s in got) == want1.in_auto  # --mavlink-spray auto
    assert {s.fix for s in got} == {"3d"}

    got2 = stored(d.store, COOP, GCS2[0])
    assert len(got2) == len(want2.positions)
    rows2 = rejected(d.metadata, f"/{GCS2[0]}/")
    assert counts_by_reason(rows2) == {"no_fix": want2.no_fix}
    assert len(rows2) <= 2  # the first of the run at once, the rest counted in one row
    assert rejected(d.metadata, f"/{GCS1[0]}/") == []

    outcomes = rebuild(d.store, d.metadata, *ALL, now_ms=int(time.time() * 1000))
    flights = {(o.coop, o.drone): len(o.saved) for o in outcomes}
    assert flights[(COOP, GCS1[0])] == want1.sorties
    events = d.store.drone_events(COOP, GCS1[0], *ALL)
    kinds = [e.type for e in events if e.type in ("takeoff", "landing")]
    assert kinds == ["takeoff", "landing"] * want1.sorties


def test_a_dji_gateway_publishes_osd_examples_and_a_real_flight(deployment: Deployment) -> None:
    d = deployment
    envelopes, positions = dji_flight()
    doc = orjson.loads(
        realdata("mqtt_payloads", "dji_cloud_osd_envelope_doc_example.json").read_bytes()
    )
    real = orjson.loads(
        realdata("mqtt_payloads", "dji_cloud_pilot_aircraft_osd_real_capture.json").read_bytes()
    )
    # The capture's dict omits latitude; its printed status line gave 0 (its _source says so).
    real_data = {**real["data_as_printed"], "latitude": 0}
    real_envelope = {
        "tid": "t",
        "bid": "b",
        "timestamp": int(time.time() * 1000),
        "data": real_data,
    }
    topic = f"thing/product/{DJI_SN}/osd"
    with station(
        d.broker.port, f"{DJI_COOP}.{DJI_DRONE[0]}", DJI_DRONE[1], "pilot2", v5=True
    ) as gw:
        gw.connected()
        assert gw.publish_qos1(topic, orjson.dumps(doc["message"])) == 0
        assert gw.publish_qos1(topic, orjson.dumps(real_envelope)) == 0
        for envelope in envelopes:
            assert gw.publish_qos1(topic, orjson.dumps(envelope)) == 0
        # Its credentials cover its own serial's topics only.
        assert gw.publish_qos1("thing/product/OTHER-SN/osd", b"{}") == NOT_AUTHORIZED
        assert gw.publish_qos1(f"agri/mavlink/{COOP}/{GCS1[0]}/HEARTBEAT", b"{}") == NOT_AUTHORIZED
        wait_until(
            lambda: len(stored(d.store, DJI_COOP, DJI_DRONE[0])) == positions,
            what=f"{positions} DJI positions",
            state=lambda: len(stored(d.store, DJI_COOP, DJI_DRONE[0])),
        )
    d.worker.stop()
    got = stored(d.store, DJI_COOP, DJI_DRONE[0])
    want_ts = sorted({e["timestamp"] for e in envelopes})
    assert [s.ts_ms for s in got] == want_ts  # DJI's own envelope clock, to the millisecond
    assert all(s.spraying for s in got)  # --dji-spraying yes: every sample of the drone
    assert counts_by_reason(rejected(d.metadata, DJI_SN)) == {"no_position": 1, "no_fix": 1}
    outcomes = rebuild(d.store, d.metadata, *ALL, now_ms=int(time.time() * 1000))
    flights = {(o.coop, o.drone): len(o.saved) for o in outcomes}
    assert flights[(DJI_COOP, DJI_DRONE[0])] == 1


# --- a ground station as docs/integrations.md sets it up ------------------------------------

GROUND_STATION_CONF: Final = (
    Path(__file__).resolve().parents[2] / "deploy" / ("ground-station-mosquitto.conf")
)


@contextlib.contextmanager
def ground_station_broker(folder: Path, remote_port: int, drone: tuple[str, str]) -> Iterator[int]:
    """The shipped ground-station Mosquitto, its EDIT lines filled in for ``drone``; its port."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    here = {
        "listener": f"{port} 127.0.0.1",
        "address": f"127.0.0.1:{remote_port}",
        "remote_username": f"{COOP}.{drone[0]}",
        "remote_password": drone[1],
        "topic": f"agri/mavlink/{COOP}/{drone[0]}/# out 1",
    }
    lines = []
    for line in GROUND_STATION_CONF.read_text().splitlines():
        name = line.split(" ", 1)[0]
        lines.append(f"{name} {here[name]}" if name in here and not line.startswith("#") else line)
    lines.append(f"user {getpass.getuser()}")
    conf = folder / "mosquitto.conf"
    conf.write_text("\n".join(lines) + "\n")
    log = folder / "mosquitto.out"
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    with log.open("ab") as out:
        proc = subprocess.Popen([exe, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, proc, log, timeout=TIMEOUT)
        yield port
    finally:
        _stop(proc)


def test_mavproxy_through_the_ground_station_broker_as_documented(
    deployment: Deployment, tmp_path: Path
) -> None:
    """MAVProxy 1.8.75 as it is: no credentials, client id `mavproxy`, QoS 0, to the ground
    station's own Mosquitto, which forwards to agridrone's broker as the drone."""
    d = deployment
    lines = capture("mavproxy_mqtt_phoenix_2018-09-25_replay10x.txt.gz")
    want = expected_from(lines)
    prefix = f"agri/mavlink/{COOP}/{GCS1[0]}"
    with (
        ground_station_broker(tmp_path / "gs", d.broker.port, GCS1) as port,
        anonymous_station(port) as mavproxy,
    ):
        mavproxy.connected()

        # The bridge connects in the background: probe until a message gets through.
        def forwarded() -> bool:
            mavproxy.publish_qos0(f"{prefix}/PROBE", b"{}")  # a type nothing maps: ignored
            metric = "agridrone_ingest_foreign_messages_total"
            return d.worker.metrics.value(metric, source="mavproxy") > 0

        wait_until(forwarded, what="the ground station's bridge forwarding")
        for kind, payload in lines:
            mavproxy.publish_qos0(f"{prefix}/{kind}", payload)
        wait_until(
            lambda: len(stored(d.store, COOP, GCS1[0])) == len(want.positions),
            what=f"{len(want.positions)} positions through the ground station",
            state=lambda: len(stored(d.store, COOP, GCS1[0])),
        )
    d.worker.stop()
    got = stored(d.store, COOP, GCS1[0])
    assert [(s.lat, s.lon) for s in got] == [(la / 1e7, lo / 1e7) for _, la, lo in want.positions]
    assert rejected(d.metadata, prefix) == []


@contextlib.contextmanager
def anonymous_station(port: int) -> Iterator[Station]:
    """MAVProxy's own client: paho, client id `mavproxy`, MQTT 3.1.1, no credentials."""
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=MAVPROXY_CLIENT_ID, protocol=paho.MQTTv311
    )
    s = Station(client)
    client.on_connect = lambda _c, _u, _f, code, _p: s.connacks.put(code)
    client.on_disconnect = lambda _c, _u, _f, code, _p: s.disconnects.put(code)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        yield s
    finally:
        client.disconnect()
        client.loop_stop()
