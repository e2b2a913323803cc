"""The simulator speaking MAVProxy's MQTT JSON and DJI OSD to a real Mosquitto: what a
subscriber receives translates, through the adapters, into the simulator's own track."""

from __future__ import annotations

import csv
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from adapters import DjiDrone, DjiTranslator, MavlinkDrone, MavproxyFleet, MavproxyTopics
from adapters.mavlink import parse_spray_rules
from simulators.fleet import FlightConfig
from simulators.foreign_out import FLOW_BATTERY, SPRAY_RULE, dji_serial
from simulators.geo import FieldSet, load_fields
from simulators.runner import run_fleet
from tests.integration.mqtt_helpers import wait_until
from tests.servers import Mosquitto

pytestmark = pytest.mark.integration

SMALL = ("dt-hp-013", "dt-yt-007")


def test_a_mavproxy_drone_and_a_dji_drone_publish_what_translates_back_to_their_tracks(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    fs = load_fields()
    fields = FieldSet(
        tuple(replace(f, coop=f"{f.coop}-{tag}") for f in fs.fields if f.id in SMALL),
        fs.no_spray,
    )
    got: list[tuple[str, bytes, int]] = []
    lock = threading.Lock()

    def on_message(_c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        with lock:
            got.append((msg.topic, bytes(msg.payload), time.time_ns() // 1_000_000))

    ready = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"sub-{tag}")
    client.on_message = on_message
    client.on_subscribe = lambda *_a: ready.set()
    client.connect("127.0.0.1", mosquitto.port)
    coops = sorted(fields.coops())
    client.subscribe(
        [(f"agri/mavlink/{c}/#", 1) for c in coops]
        + [(f"thing/product/{dji_serial(c, d)}/osd", 1) for c in coops for d in ("dt-02",)]
    )
    client.loop_start()
    assert ready.wait(10)
    try:
        stats = run_fleet(
            mosquitto.url,
            drones=2,
            fields=fields,
            flights=1,
            speedup=float("inf"),
            seed=3,
            config=FlightConfig(rate_hz=5.0, flow_lpm=5.0),
            speaks=("mavproxy", "dji"),
            track_path=tmp_path / "track.csv",
        )
        assert stats.all_acknowledged
        with (tmp_path / "track.csv").open(newline="") as f:
            track = list(csv.DictReader(f))
        dji_rows = [r for r in track if r["drone"] == "dt-02"]
        wait_until(
            lambda: (
                sum(1 for t, _p, _r in got if t.endswith("/GLOBAL_POSITION_INT"))
                >= len(track) - len(dji_rows)
            ),
            what="every position",
        )
        time.sleep(0.5)
    finally:
        client.disconnect()
        client.loop_stop()
    mav_rows = [r for r in track if r["drone"] == "dt-01"]
    mav_coop, dji_coop = mav_rows[0]["coop"], dji_rows[0]["coop"]
    fleet = MavproxyFleet(
        MavproxyTopics(),
        {
            (mav_coop, "dt-01"): MavlinkDrone(
                mav_coop,
                "dt-01",
                spray=parse_spray_rules(SPRAY_RULE),
                flow_battery_instance=FLOW_BATTERY,
                tank_capacity_l=35.0,
            )
        },
    )
    dji = DjiTranslator({dji_serial(dji_coop, "dt-02"): DjiDrone(dji_coop, "dt-02", spraying=True)})
    mav_samples: list[dict[str, object]] = []
    dji_samples: list[dict[str, object]] = []
    for topic, payload, received in got:
        if topic.startswith("thing/"):
            res = dji.feed(topic, payload, received)
            assert res.translation.rejections == ()
            dji_samples += res.translation.samples
        else:
            _parsed, out = fleet.feed(topic, payload, received)
            assert out.rejections == ()
            mav_samples += out.samples
    want = {int(r["ts"]): r for r in mav_rows}
    assert [s["ts"] for s in mav_samples] == list(want)
    for s in mav_samples:
        row = want[int(str(s["ts"]))]
        assert abs(float(str(s["lat"])) - float(row["lat"])) <= 1e-7
        assert s["spraying"] == (row["spraying"] in ("1", "true", "True"))
    dji_want = {int(r["ts"]): r for r in dji_rows}
    assert len(dji_samples) >= (int(dji_rows[-1]["ts"]) - int(dji_rows[0]["ts"])) / 2000
    for s in dji_samples:
        row = dji_want[int(str(s["ts"]))]
        assert (s["lat"], s["lon"]) == (float(row["lat"]), float(row["lon"]))
