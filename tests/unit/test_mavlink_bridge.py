"""The bridge's pure parts: which packets are the vehicle's, and how translated objects
become wire-v1 messages."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import orjson
import pytest

from adapters import ConfigError, Translation
from adapters.mavlink import MavlinkDrone
from adapters.mavlink_bridge import (
    Bridge,
    MavlinkSource,
    Packet,
    VehicleFilter,
    WireBatcher,
    is_log_file,
)
from adapters.spool import Spool
from ingest.wire import decode_message

T0 = 1_795_869_000_000
VEHICLE_HB = {"type": 2, "autopilot": 3, "base_mode": 81, "custom_mode": 0}
GCS_HB = {"type": 6, "autopilot": 8, "base_mode": 0, "custom_mode": 0}
RADIO_HB = {"type": 0, "autopilot": 8, "base_mode": 0, "custom_mode": 0}


def packet(msgtype: str, sysid: int, compid: int = 1, seq: int = 0, **fields: Any) -> Packet:
    return Packet(msgtype, fields, T0, sysid, compid, seq)


def test_the_vehicle_is_the_first_autopilot_heartbeat_not_the_ground_station_or_radio() -> None:
    f = VehicleFilter()
    assert f.feed(packet("HEARTBEAT", 255, 190, **GCS_HB)) == []
    assert f.feed(packet("HEARTBEAT", 51, 68, **RADIO_HB)) == []
    early = packet("SYSTEM_TIME", 1, 1, seq=4, time_unix_usec=1, time_boot_ms=1)
    assert f.feed(early) == []
    got = f.feed(packet("HEARTBEAT", 1, 1, seq=5, **VEHICLE_HB))
    assert [p.msgtype for p in got] == ["SYSTEM_TIME", "HEARTBEAT"]
    assert (f.sysid, f.compid) == (1, 1)
    assert f.other_systems == 2
    assert f.feed(packet("HEARTBEAT", 255, 190, **GCS_HB)) == []
    assert len(f.feed(packet("GPS_RAW_INT", 1, 1, fix_type=3))) == 1


def test_another_component_of_the_vehicle_passes_without_its_sequence() -> None:
    f = VehicleFilter(sysid=1, compid=1)
    (p,) = f.feed(packet("BATTERY_STATUS", 1, 154, seq=77, id=1))
    assert p.seq is None
    (q,) = f.feed(packet("GPS_RAW_INT", 1, 1, seq=9, fix_type=3))
    assert q.seq == 9


def test_packets_held_before_the_vehicle_is_known_are_bounded() -> None:
    f = VehicleFilter(hold_max=3)
    for i in range(5):
        f.feed(packet("GPS_RAW_INT", 1, 1, seq=i, fix_type=3))
    got = f.feed(packet("HEARTBEAT", 1, 1, seq=5, **VEHICLE_HB))
    assert [p.seq for p in got] == [2, 3, 4, 5]
    assert f.dropped_before_vehicle == 2


@pytest.mark.parametrize(("kwargs", "says"), [({"sysid": 0}, "sysid 0"), ({"compid": 256}, "256")])
def test_bad_vehicle_ids_are_config_errors(kwargs: dict[str, int], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        VehicleFilter(**kwargs)


def sample(ts: int) -> dict[str, Any]:
    return {"ts": ts, "lat": 21.08, "lon": 106.52, "spraying": False}


def test_samples_are_batched_by_receive_time_and_decode_as_wire_v1() -> None:
    b = WireBatcher("htx", "d-07", batch_ms=1_000, batch_max=50)
    assert b.add(Translation(samples=(sample(T0),)), T0) == []
    assert b.add(Translation(samples=(sample(T0 + 500),)), T0 + 500) == []
    (msg,) = b.add(Translation(samples=(sample(T0 + 1_000),)), T0 + 1_000)
    topic, payload = msg
    assert topic == "agri/v1/htx/d-07/telemetry"
    decoded = decode_message(topic, payload, T0 + 2_000)
    assert decoded.rejections == []
    assert [s.ts_ms for s in decoded.samples] == [T0, T0 + 500]
    assert [orjson.loads(p)["samples"][0]["ts"] for _t, p in b.flush()] == [T0 + 1_000]
    assert b.flush() == []


def test_a_full_batch_leaves_at_once_and_events_follow_the_samples_before_them() -> None:
    b = WireBatcher("htx", "d-07", batch_ms=60_000, batch_max=2)
    out = b.add(Translation(samples=(sample(T0), sample(T0 + 1), sample(T0 + 2))), T0)
    assert len(out) == 1
    event = {"v": 1, "ts": T0 + 3, "type": "takeoff"}
    out = b.add(Translation(events=(event,)), T0 + 3)
    assert [t for t, _p in out] == ["agri/v1/htx/d-07/telemetry", "agri/v1/htx/d-07/event"]
    assert orjson.loads(out[1][1]) == event
    assert decode_message(out[1][0], out[1][1], T0 + 10).events[0].type == "takeoff"


def test_the_batcher_refuses_batches_the_wire_refuses() -> None:
    with pytest.raises(ConfigError, match="batch_max 501"):
        WireBatcher("c", "d", batch_max=501)


def test_a_tlog_path_is_a_replay_and_a_udp_url_is_not(tmp_path: Path) -> None:
    log = tmp_path / "flight.tlog"
    log.write_bytes(b"")
    assert is_log_file(str(log))
    assert not is_log_file("udpin:0.0.0.0:14550")
    assert not is_log_file(str(tmp_path / "missing.tlog"))


def test_the_bridge_spools_what_the_translator_gives_and_counts_rejections(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool") as spool:
        bridge = Bridge(MavlinkDrone("htx", "d-07"), spool, batch_ms=0)
        bridge.feed(packet("HEARTBEAT", 1, 1, seq=0, **VEHICLE_HB))
        bridge.feed(
            packet("SYSTEM_TIME", 1, 1, seq=1, time_unix_usec=T0 * 1000, time_boot_ms=10_000)
        )
        bridge.feed(packet("GPS_RAW_INT", 1, 1, seq=2, fix_type=3))
        position = {"lat": 210800000, "lon": 1065200000, "relative_alt": 2500, "vx": 300,
                    "vy": 400, "hdg": 9000}  # fmt: skip
        bridge.feed(packet("GLOBAL_POSITION_INT", 1, 1, seq=3, time_boot_ms=10_100, **position))
        bridge.feed(
            packet("GLOBAL_POSITION_INT", 1, 1, seq=4, time_boot_ms=10_200,
                   **{**position, "lat": 0, "lon": 0})
        )  # fmt: skip
        bridge.finish()
        records = spool.take(10)
    assert bridge.stats.rejected == {"no_fix": 1}
    assert [r.topic for r in records] == ["agri/v1/htx/d-07/telemetry"]
    (s,) = orjson.loads(records[0].payload)["samples"]
    assert (s["ts"], s["lat"], s["speed_mps"], s["fix"]) == (T0 + 100, 21.08, 5.0, "3d")


@pytest.mark.parametrize("name", ["flight.BIN", "log.ulg", "track.csv"])
def test_a_flight_log_is_refused_as_a_master_naming_the_import(name: str) -> None:
    with pytest.raises(ConfigError, match="logs import"):
        MavlinkSource(name)


def test_a_negative_replay_rate_is_refused() -> None:
    with pytest.raises(ConfigError, match="rate -1"):
        MavlinkSource("udpin:127.0.0.1:0", rate=-1)


def test_a_udp_link_gets_a_large_receive_buffer() -> None:
    source = MavlinkSource("udpin:127.0.0.1:0")
    try:
        sock = source._conn.port
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) > 212_992 * 2 or (
            Path("/proc/sys/net/core/rmem_max").read_text().strip() == "212992"
        )
    finally:
        source.close()
