"""A short simulated flight published to a real Mosquitto arrives whole, in wire format."""

from __future__ import annotations

import argparse
import csv
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import orjson
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from simulators import cli
from simulators.fleet import FlightConfig
from simulators.geo import FieldSet, load_fields
from simulators.runner import run_fleet
from tests.servers import Mosquitto

pytestmark = pytest.mark.integration

REQUIRED = {"ts", "lat", "lon", "spraying"}
WIRE_KEYS = REQUIRED | {
    "seq",
    "alt_m",
    "speed_mps",
    "heading_deg",
    "battery_pct",
    "flow_lpm",
    "tank_l",
    "swath_m",
    "fix",
}
SMALL = ("dt-hp-013", "dt-yt-007")


@dataclass
class Received:
    """Everything one subscriber got, by kind."""

    fields: FieldSet
    lock: threading.Lock = field(default_factory=threading.Lock)
    telemetry: list[bytes] = field(default_factory=list)
    events: list[bytes] = field(default_factory=list)
    status: list[tuple[bytes, bool]] = field(default_factory=list)

    def samples(self) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        with self.lock:
            for payload in self.telemetry:
                body = orjson.loads(payload)
                out.extend(body.get("samples", [body]))
        return out


def own_fields() -> FieldSet:
    """The packaged plots under cooperatives unique to this test: topics no one else uses."""
    tag = uuid.uuid4().hex[:6]
    fs = load_fields()
    return FieldSet(
        tuple(replace(f, coop=f"{f.coop}-{tag}") for f in fs.fields if f.id in SMALL),
        fs.no_spray,
    )


@pytest.fixture
def subscriber(mosquitto: Mosquitto) -> Iterator[Received]:
    """Subscribed (QoS 1) to the topics of this test's own cooperatives, live messages only."""
    got = Received(own_fields())

    def on_message(_c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        kind = msg.topic.rsplit("/", 1)[-1]
        payload = bytes(msg.payload)
        with got.lock:
            if kind == "telemetry":
                got.telemetry.append(payload)
            elif kind == "event":
                got.events.append(payload)
            elif kind == "status":
                got.status.append((payload, msg.retain))

    ready = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"sim-sub-{uuid.uuid4().hex[:8]}")
    client.on_message = on_message
    client.on_subscribe = lambda *_a: ready.set()
    client.connect("127.0.0.1", mosquitto.port)
    client.subscribe([(f"agri/v1/{c}/#", 1) for c in got.fields.coops()])
    client.loop_start()
    assert ready.wait(10)
    try:
        yield got
    finally:
        client.disconnect()
        client.loop_stop()


def wait_for(predicate: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for the messages")


@pytest.mark.parametrize("batch", [1, 10])
def test_every_message_of_a_flight_arrives_in_wire_format(
    mosquitto: Mosquitto, subscriber: Received, batch: int
) -> None:
    stats = run_fleet(
        mosquitto.url,
        drones=2,
        fields=subscriber.fields,
        flights=1,
        batch=batch,
        speedup=float("inf"),
        seed=5,
        config=FlightConfig(rate_hz=5.0),
    )
    assert stats.all_acknowledged
    assert stats.messages > 0
    wait_for(lambda: len(subscriber.samples()) >= stats.samples)
    wait_for(lambda: len(subscriber.events) >= stats.events)
    samples = subscriber.samples()
    assert len(samples) == stats.samples
    for s in samples:
        assert REQUIRED <= set(s) <= WIRE_KEYS
        assert isinstance(s["ts"], int)
        assert isinstance(s["spraying"], bool)
    for payload in subscriber.events:
        body = orjson.loads(payload)
        assert body["v"] == 1
        assert isinstance(body["ts"], int)
        assert isinstance(body["type"], str)
    states = [orjson.loads(p)["state"] for p, _retained in subscriber.status]
    assert states.count("online") == 2
    wait_for(lambda: len(subscriber.status) >= 4)
    assert [orjson.loads(p)["state"] for p, _ in subscriber.status].count("offline") == 2


def test_pace_hears_of_every_publish_and_holds_back_the_next(
    mosquitto: Mosquitto, subscriber: Received
) -> None:
    def arrived() -> int:
        with subscriber.lock:
            return len(subscriber.telemetry) + len(subscriber.events)

    told: list[tuple[int, int]] = []

    def pace(published: int) -> None:
        told.append((published, arrived()))
        wait_for(lambda: arrived() >= published)  # flow control: the receiver catches up

    stats = run_fleet(
        mosquitto.url,
        drones=1,
        fields=subscriber.fields,
        flights=1,
        speedup=float("inf"),
        seed=2,
        config=FlightConfig(rate_hz=2.0),
        pace=pace,
    )
    assert [n for n, _ in told] == list(range(1, stats.messages + 1))
    # each message went out only once the receiver had every one before it
    assert all(had >= n - 1 for n, had in told)


def test_speedup_paces_the_publishes(mosquitto: Mosquitto, subscriber: Received) -> None:
    start = time.monotonic()
    stats = run_fleet(
        mosquitto.url,
        drones=1,
        fields=subscriber.fields,
        duration_s=20,
        speedup=20,
        seed=1,
    )
    wall = time.monotonic() - start
    simulated = (stats.sim_end_ms - stats.sim_start_ms) / 1000
    assert 0.5 * simulated / 20 <= wall <= simulated / 20 + 3


def test_stop_ends_an_endless_run_cleanly(mosquitto: Mosquitto, subscriber: Received) -> None:
    stop = threading.Event()
    timer = threading.Timer(1.0, stop.set)
    timer.start()
    stats = run_fleet(mosquitto.url, drones=1, fields=subscriber.fields, speedup=50, stop=stop)
    timer.join()
    assert stats.stopped
    assert stats.all_acknowledged
    wait_for(lambda: any(b'"offline"' in p for p, _ in subscriber.status))


@pytest.fixture
def restore_signals() -> Iterator[None]:
    saved = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGINT, saved[0])
    signal.signal(signal.SIGTERM, saved[1])


def test_cli_writes_the_track_and_the_intended_answer(
    mosquitto: Mosquitto,
    tmp_path: Path,
    restore_signals: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    p = argparse.ArgumentParser()
    cli.register(p.add_subparsers())
    track = tmp_path / "flight.csv"
    args = p.parse_args(
        [
            "simulate",
            "--mqtt-url",
            mosquitto.url,
            "--drones",
            "1",
            "--coop",
            "htx-hong-phong",
            "--field-id",
            "dt-hp-013",
            "--flights",
            "1",
            "--speedup",
            "max",
            "--fault",
            "missed-strip",
            "--write-track",
            str(track),
        ]
    )
    assert cli.run(args) == 0
    with track.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    intended = orjson.loads((tmp_path / "flight.intended.json").read_bytes())
    assert [a["field_id"] for a in intended] == ["dt-hp-013"]
    assert intended[0]["missed_strips"]
    assert 0 < intended[0]["coverage_pct"] < 100
    assert {r["spraying"] for r in rows} == {"true", "false"}
    assert "intended dt-hp-013" in capsys.readouterr().out
