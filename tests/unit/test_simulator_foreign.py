"""The simulator's MAVLink and DJI output, read back through the adapters, gives the samples
the wire-v1 simulator publishes (to each protocol's resolution)."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import orjson
import pytest
from pymavlink.dialects.v20 import ardupilotmega

from adapters import DjiDrone, DjiTranslator, MavlinkDrone, MavproxyFleet, MavproxyTopics
from adapters.mavlink import MavlinkTranslator, parse_spray_rules
from adapters.mavlink_bridge import Packet, VehicleFilter
from simulators.fleet import DroneState, FlightConfig, Job, plan_job
from simulators.foreign_out import (
    FLOW_BATTERY,
    SPRAY_RULE,
    MavlinkEncoder,
    dji_osd_messages,
    mavproxy_messages,
)
from simulators.geo import load_fields
from simulators.wire_out import sample_dict

T0 = 1_764_300_000_000
TANK_L = 35.0


@pytest.fixture(scope="module")
def job() -> Job:
    """A real simulated job (flow 5 L/min: what MAVLink's int16 flow field can carry)."""
    field = load_fields().fields[0]
    config = FlightConfig(flow_lpm=5.0, tank_capacity_l=TANK_L)
    return plan_job(field, DroneState("htx", "dt-01", T0), config, np.random.default_rng(0))


def mavlink_drone() -> MavlinkDrone:
    return MavlinkDrone(
        "htx",
        "dt-01",
        spray=parse_spray_rules(SPRAY_RULE),
        flow_battery_instance=FLOW_BATTERY,
        tank_capacity_l=TANK_L,
    )


def assert_same_samples(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert [g["ts"] for g in got] == [w["ts"] for w in want]
    assert [g["spraying"] for g in got] == [w["spraying"] for w in want]
    assert any(w["spraying"] for w in want)
    assert not all(w["spraying"] for w in want)
    for g, w in zip(got, want, strict=True):
        assert abs(g["lat"] - w["lat"]) <= 1e-7  # degE7
        assert abs(g["lon"] - w["lon"]) <= 1e-7
        assert g["alt_m"] == pytest.approx(w["alt_m"], abs=0.001)
        assert g["speed_mps"] == pytest.approx(w["speed_mps"], abs=0.015)
        if w["speed_mps"] > 0:
            assert g["heading_deg"] == pytest.approx(w["heading_deg"] % 360, abs=0.01)
        assert g["battery_pct"] == round(w["battery_pct"])
        assert g["flow_lpm"] == pytest.approx(w["flow_lpm"], abs=0.001)
        assert g["tank_l"] == pytest.approx(w["tank_l"], abs=0.001)
        assert g["fix"] == w["fix"]


def test_mavproxy_json_from_the_simulator_translates_back_to_its_samples(job: Job) -> None:
    stream = MavlinkEncoder(T0 - 600_000, tank_capacity_l=TANK_L).job(job.samples, job.events)
    fleet = MavproxyFleet(MavproxyTopics(), {("htx", "dt-01"): mavlink_drone()})
    samples: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for release, topic, payload in mavproxy_messages("htx", "dt-01", stream):
        parsed, out = fleet.feed(topic, payload, release + 300)  # 300 ms on the way
        assert parsed is not None
        assert out.rejections == ()
        samples += out.samples
        events += out.events
    assert_same_samples(samples, [sample_dict(s) for s in job.samples])
    sim_events = [(e.type, e.ts_ms) for e in job.events if e.type in ("takeoff", "landing")]
    assert [(e["type"], e["ts"]) for e in events] == sim_events
    assert len(sim_events) >= 2


def test_mavlink_packets_over_a_link_translate_back_as_the_bridge_reads_them(job: Job) -> None:
    """Raw MAVLink 2 bytes, parsed by pymavlink on the other side, through the bridge's
    vehicle filter and the same translator: no sequence gap, the same samples."""
    encoder = MavlinkEncoder(T0 - 600_000, tank_capacity_l=TANK_L)
    stream = encoder.job(job.samples, job.events)
    wire = b"".join(encoder.pack(m) for m in stream)
    parser = ardupilotmega.MAVLink(None)
    parser.robust_parsing = True
    received = parser.parse_buffer(wire)
    assert received is not None
    assert len(received) == len(stream)
    t = MavlinkTranslator(mavlink_drone())
    vehicle = VehicleFilter()
    samples: list[dict[str, Any]] = []
    for m, sent in zip(received, stream, strict=True):
        fields = m.to_dict()
        fields.pop("mavpackettype")
        packet = Packet(m.get_type(), fields, sent.release_ms, 1, 1, m.get_seq())
        for p in vehicle.feed(packet):
            out = t.feed(p.msgtype, p.fields, p.received_ms, p.seq)
            assert out.rejections == ()
            samples += out.samples
    assert_same_samples(samples, [sample_dict(s) for s in job.samples])
    assert (t.counts.seq_gaps, t.counts.seq_lost) == (0, 0)


def test_two_jobs_of_one_flight_controller_keep_one_clock_and_arm_state(job: Job) -> None:
    encoder = MavlinkEncoder(T0 - 600_000, tank_capacity_l=TANK_L)
    field = load_fields().fields[1]
    state = DroneState("htx", "dt-01", job.end_ms + 60_000)
    second = plan_job(field, state, FlightConfig(flow_lpm=5.0), np.random.default_rng(1))
    t = MavlinkTranslator(mavlink_drone())
    types: list[str] = []
    count = 0
    for j in (job, second):
        for m in encoder.job(j.samples, j.events):
            out = t.feed(m.msgtype, m.fields(), m.release_ms)
            types += [e["type"] for e in out.events]
            count += len(out.samples)
    assert count == len(job.samples) + len(second.samples)
    want = [e.type for j in (job, second) for e in j.events if e.type in ("takeoff", "landing")]
    assert types == want


def test_dji_osd_from_the_simulator_translates_back_every_two_seconds(job: Job) -> None:
    messages = dji_osd_messages("1ZNBK7LC00SIM1", job.samples, job.events, gateway="GW1")
    translator = DjiTranslator({"1ZNBK7LC00SIM1": DjiDrone("htx", "dt-01", spraying=True)})
    got: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for release, topic, payload in messages:
        res = translator.feed(topic, payload, release + 500)
        assert res.translation.rejections == ()
        got += res.translation.samples
        events += res.translation.events
    by_ts = {s.ts_ms: s for s in job.samples}
    assert len(got) == len(messages)
    times = [g["ts"] for g in got]
    flips = sum(1 for e in job.events if e.type in ("takeoff", "landing"))
    assert all(0 < b - a <= 2_000 for a, b in itertools.pairwise(times))
    assert len(got) <= (job.end_ms - job.samples[0].ts_ms) / 2000 + 2 + flips
    for g in got:
        w = by_ts[g["ts"]]
        assert (g["lat"], g["lon"]) == (w.lat, w.lon)
        assert g["alt_m"] == w.alt_m
        assert g["speed_mps"] == w.speed_mps
        assert g["battery_pct"] == round(w.battery_pct or 0)
        assert g["spraying"] is True  # DJI's OSD has no spray state: the registration says
        assert g["fix"] == "rtk_fixed"
        if w.heading_deg is not None:
            assert math.isclose(g["heading_deg"], w.heading_deg % 360, abs_tol=1e-9)
    takeoffs = [e.ts_ms for e in job.events if e.type == "takeoff"]
    landings = [e.ts_ms for e in job.events if e.type == "landing"]
    assert [e["type"] for e in events] == ["takeoff", "landing"] * len(takeoffs)
    for kind, times in (("takeoff", takeoffs), ("landing", landings)):
        seen = [e["ts"] for e in events if e["type"] == kind]
        assert all(0 <= s - t < 2_000 + 100 for s, t in zip(seen, times, strict=True))


def test_mavproxy_payloads_are_plain_json_objects_without_pymavlinks_type_key(job: Job) -> None:
    stream = MavlinkEncoder(T0 - 1_000).job(job.samples[:5], [])
    payloads = [orjson.loads(p) for _r, _t, p in mavproxy_messages("c", "d", stream)]
    assert all("mavpackettype" not in p for p in payloads)
    assert {"lat", "lon", "relative_alt", "time_boot_ms"} <= set(payloads[-1])
