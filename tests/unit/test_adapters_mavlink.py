"""MAVLink (MAVProxy's mqtt module) to wire v1: rules, topics, the translator's behaviours,
and the real capture of MAVProxy 1.8.75 publishing the 2018-09-25 ArduCopter log."""

from __future__ import annotations

import csv
import gzip
import itertools
import math
import struct
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from pyproj import Geod

from adapters import (
    AdapterRejection,
    ConfigError,
    MavlinkDrone,
    MavlinkTopic,
    MavlinkTranslator,
    MavproxyFleet,
    MavproxyTopics,
    SprayRule,
    Translation,
    parse_spray_rules,
)
from tests.realdata import needs_realdata, realdata, wire_accepts

T0_MS = 1_795_869_000_000  # 2026-11-28 12:30:00 UTC
REC = T0_MS + 60_000  # receive times a minute later


def gpi(
    boot_ms: int, lat: float = 21.0812345, lon: float = 106.5212345, **kw: int
) -> dict[str, Any]:
    msg = {
        "time_boot_ms": boot_ms,
        "lat": round(lat * 1e7),
        "lon": round(lon * 1e7),
        "alt": 12_000,
        "relative_alt": 2_500,
        "vx": 300,
        "vy": 400,
        "vz": 0,
        "hdg": 8730,
    }
    msg.update(kw)
    return msg


def system_time(boot_ms: int, unix_ms: int) -> dict[str, Any]:
    return {"time_unix_usec": unix_ms * 1000, "time_boot_ms": boot_ms}


def heartbeat(
    *, armed: bool, custom_mode: int = 0, vtype: int = 2, autopilot: int = 3
) -> dict[str, Any]:
    base = 81 | (128 if armed else 0)
    return {
        "type": vtype,
        "autopilot": autopilot,
        "base_mode": base,
        "custom_mode": custom_mode,
        "system_status": 4 if armed else 3,
        "mavlink_version": 3,
    }


def anchored(drone: MavlinkDrone | None = None) -> MavlinkTranslator:
    """A translator whose boot is anchored: boot 0 ms = T0."""
    t = MavlinkTranslator(drone or MavlinkDrone("htx-a", "d1"))
    t.feed("SYSTEM_TIME", system_time(1_000, T0_MS + 1_000), REC)
    return t


def one_sample(out: Translation) -> dict[str, Any]:
    assert out.rejections == ()
    assert len(out.samples) == 1
    return out.samples[0]


# --- spray rules


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("rc7>1500", SprayRule("rc", 7, 1500)),
        ("RC7 > 1500", SprayRule("rc", 7, 1500)),
        ("servo9>1600", SprayRule("servo", 9, 1600)),
        ("auto", SprayRule("auto")),
    ],
)
def test_spray_rules_parse_from_text(text: str, rule: SprayRule) -> None:
    assert SprayRule.parse(text) == rule


def test_a_spray_rule_prints_as_it_is_written() -> None:
    assert [str(r) for r in parse_spray_rules("auto, rc7>1500")] == ["auto", "rc7>1500"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("rc7", "is not servoN>PWM, rcN>PWM or auto"),
        ("pump>1500", "is not servoN>PWM"),
        ("rc0>1500", "channel outside 1..18"),
        ("rc19>1500", "channel outside 1..18"),
        ("servo17>1500", "channel outside 1..16"),
        ("rc7>0", "PWM outside 1..65534"),
        ("rc7>99999", "PWM outside 1..65534"),
    ],
)
def test_a_bad_spray_rule_is_a_value_error_saying_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        SprayRule.parse(text)


def test_a_bad_spray_rule_is_also_a_config_error() -> None:
    with pytest.raises(ConfigError):
        parse_spray_rules("auto,rc7")


# --- topics


def test_the_default_topic_pattern_names_coop_drone_and_message_type() -> None:
    topics = MavproxyTopics()
    assert topics.subscription == "agri/mavlink/+/+/+"
    assert topics.parse("agri/mavlink/htx-a/d1/GLOBAL_POSITION_INT") == MavlinkTopic(
        "htx-a", "d1", "GLOBAL_POSITION_INT"
    )


@pytest.mark.parametrize(
    "topic",
    [
        "agri/mavlink/htx-a/d1",
        "agri/mavlink/htx-a/d1/HEARTBEAT/extra",
        "agri/other/htx-a/d1/HEARTBEAT",
        "agri/mavlink/htx.a/d1/HEARTBEAT",
        "agri/mavlink/htx-a/d1/heartbeat",
        "agri/mavlink/htx-a//HEARTBEAT",
    ],
)
def test_a_topic_outside_the_pattern_is_rejected_bad_topic(topic: str) -> None:
    parsed = MavproxyTopics().parse(topic)
    assert isinstance(parsed, AdapterRejection)
    assert parsed.reason == "bad_topic"


def test_mavproxys_default_empty_prefix_needs_fixed_ids() -> None:
    topics = MavproxyTopics("", coop="ubc", drone="phoenix")
    assert topics.subscription == "/+"
    assert topics.parse("/HEARTBEAT") == MavlinkTopic("ubc", "phoenix", "HEARTBEAT")


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"prefix": "agri/{coop}"}, "no {drone} segment"),
        ({"prefix": "agri/{coop}/{drone}", "drone": "d1"}, "would be ignored"),
        ({"prefix": "agri/{coop}/{coop}/{drone}"}, "twice"),
        ({"prefix": "agri/+/{coop}/{drone}"}, "may not contain"),
        ({"prefix": "agri/{drone}", "coop": "bad coop"}, "does not match"),
    ],
)
def test_a_bad_topic_pattern_is_refused_when_configured(kwargs: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        MavproxyTopics(**kwargs)


# --- units and timing


def test_a_position_is_translated_to_wire_units() -> None:
    t = anchored()
    s = one_sample(t.feed("GLOBAL_POSITION_INT", gpi(2_000), REC))
    assert s == {
        "ts": T0_MS + 2_000,
        "lat": 21.0812345,
        "lon": 106.5212345,
        "spraying": False,
        "alt_m": 2.5,
        "speed_mps": 5.0,
        "heading_deg": 87.3,
    }
    wire_accepts("htx-a", "d1", [s])


def test_an_unknown_heading_is_left_out() -> None:
    s = one_sample(anchored().feed("GLOBAL_POSITION_INT", gpi(2_000, hdg=65535), REC))
    assert "heading_deg" not in s


def test_positions_before_the_first_system_time_are_held_then_anchored() -> None:
    t = MavlinkTranslator(MavlinkDrone("htx-a", "d1"))
    assert t.feed("GLOBAL_POSITION_INT", gpi(500), REC) == Translation()
    out = t.feed("SYSTEM_TIME", system_time(700, T0_MS + 700), REC + 10)
    assert [s["ts"] for s in out.samples] == [T0_MS + 500]
    assert t.counts.timed_by_receive == 0


def test_a_system_time_without_gps_time_does_not_anchor() -> None:
    t = MavlinkTranslator(MavlinkDrone("htx-a", "d1"))
    t.feed("GLOBAL_POSITION_INT", gpi(500), REC)
    assert t.feed("SYSTEM_TIME", {"time_unix_usec": 0, "time_boot_ms": 600}, REC) == Translation()


def test_held_positions_fall_back_to_receive_time_after_the_sample_bound_and_say_so() -> None:
    t = MavlinkTranslator(MavlinkDrone("htx-a", "d1", hold_max_samples=2))
    t.feed("GLOBAL_POSITION_INT", gpi(100), REC)
    t.feed("GLOBAL_POSITION_INT", gpi(200), REC + 1)
    out = t.feed("GLOBAL_POSITION_INT", gpi(300), REC + 2)
    assert [s["ts"] for s in out.samples] == [REC, REC + 1, REC + 2]
    assert len(out.notices) == 1
    assert "timed by receive time" in out.notices[0]
    later = t.feed("GLOBAL_POSITION_INT", gpi(400), REC + 3)
    assert [s["ts"] for s in later.samples] == [REC + 3]
    assert later.notices == ()
    assert t.counts.timed_by_receive == 4


def test_held_positions_fall_back_after_the_duration_bound() -> None:
    t = MavlinkTranslator(MavlinkDrone("htx-a", "d1", hold_max_ms=5_000))
    t.feed("GLOBAL_POSITION_INT", gpi(100), REC)
    out = t.feed("VFR_HUD", {"groundspeed": 0.0}, REC + 5_000)
    assert [s["ts"] for s in out.samples] == [REC]


def test_a_later_system_time_anchors_a_boot_that_fell_back() -> None:
    t = MavlinkTranslator(MavlinkDrone("htx-a", "d1", hold_max_samples=0))
    t.feed("GLOBAL_POSITION_INT", gpi(100), REC)
    t.feed("SYSTEM_TIME", system_time(150, T0_MS + 150), REC + 1)
    s = one_sample(t.feed("GLOBAL_POSITION_INT", gpi(200), REC + 2))
    assert s["ts"] == T0_MS + 200


def test_flush_releases_held_positions_at_the_end_of_a_stream() -> None:
    t = MavlinkTranslator(MavlinkDrone("htx-a", "d1"))
    t.feed("GLOBAL_POSITION_INT", gpi(100), REC)
    out = t.flush()
    assert [s["ts"] for s in out.samples] == [REC]
    assert "stream ended" in out.notices[0]


def test_time_boot_ms_going_backwards_is_a_reboot_and_unanchors_the_clock() -> None:
    t = anchored()
    one_sample(t.feed("GLOBAL_POSITION_INT", gpi(600_000), REC))
    assert t.feed("GLOBAL_POSITION_INT", gpi(1_000), REC + 1) == Translation()  # held
    out = t.feed("SYSTEM_TIME", system_time(1_100, T0_MS + 700_000), REC + 2)
    assert [s["ts"] for s in out.samples] == [T0_MS + 700_000 - 100]
    assert t.counts.reboots == 1


def test_positions_held_when_the_autopilot_reboots_keep_their_receive_time() -> None:
    t = MavlinkTranslator(MavlinkDrone("htx-a", "d1"))
    t.feed("GLOBAL_POSITION_INT", gpi(600_000), REC)
    out = t.feed("GLOBAL_POSITION_INT", gpi(1_000), REC + 1)
    assert [s["ts"] for s in out.samples] == [REC]  # the old boot's position, released
    assert "rebooted" in out.notices[0]
    anchored_out = t.feed("SYSTEM_TIME", system_time(1_100, T0_MS + 1_100), REC + 2)
    assert [s["ts"] for s in anchored_out.samples] == [T0_MS + 1_000]  # the new boot's


def test_positions_released_before_a_bad_message_are_not_lost() -> None:
    t = MavlinkTranslator(MavlinkDrone("htx-a", "d1", hold_max_ms=1_000))
    t.feed("GLOBAL_POSITION_INT", gpi(100), REC)
    out = t.feed("GLOBAL_POSITION_INT", {"time_boot_ms": 200}, REC + 1_000)
    assert [s["ts"] for s in out.samples] == [REC]
    assert [r.reason for r in out.rejections] == ["missing_key"]


def test_a_timestamp_far_past_the_receive_time_is_rejected_like_the_wire_does() -> None:
    t = MavlinkTranslator(MavlinkDrone("htx-a", "d1"))
    t.feed("SYSTEM_TIME", system_time(0, REC + 2 * 86_400_000), REC)
    out = t.feed("GLOBAL_POSITION_INT", gpi(10), REC)
    assert [r.reason for r in out.rejections] == ["future_timestamp"]


# --- fix


def test_a_position_at_0_0_is_rejected_no_fix() -> None:
    out = anchored().feed("GLOBAL_POSITION_INT", gpi(2_000, lat=0.0, lon=0.0), REC)
    assert [r.reason for r in out.rejections] == ["no_fix"]


def test_a_position_while_gps_raw_int_reports_no_fix_is_rejected_no_fix() -> None:
    t = anchored()
    t.feed("GPS_RAW_INT", {"fix_type": 1}, REC)
    out = t.feed("GLOBAL_POSITION_INT", gpi(2_000), REC)
    assert [r.reason for r in out.rejections] == ["no_fix"]
    assert t.counts.rejected == {"no_fix": 1}


@pytest.mark.parametrize(
    ("fix_type", "fix"), [(2, "2d"), (3, "3d"), (4, "dgps"), (5, "rtk_float"), (6, "rtk_fixed")]
)
def test_gps_raw_int_fix_type_becomes_the_samples_fix(fix_type: int, fix: str) -> None:
    t = anchored()
    t.feed("GPS_RAW_INT", {"fix_type": fix_type}, REC)
    assert one_sample(t.feed("GLOBAL_POSITION_INT", gpi(2_000), REC))["fix"] == fix


def test_the_same_position_twice_is_translated_once() -> None:
    t = anchored()
    one_sample(t.feed("GLOBAL_POSITION_INT", gpi(2_000), REC))
    out = t.feed("GLOBAL_POSITION_INT", gpi(2_000), REC)
    assert [r.reason for r in out.rejections] == ["duplicate"]


# --- events


def test_arming_and_disarming_are_takeoff_and_landing() -> None:
    t = anchored()
    assert t.feed("HEARTBEAT", heartbeat(armed=False), REC) == Translation()
    t.feed("GLOBAL_POSITION_INT", gpi(5_000), REC)
    up = t.feed("HEARTBEAT", heartbeat(armed=True), REC)
    t.feed("GLOBAL_POSITION_INT", gpi(9_000), REC)
    down = t.feed("HEARTBEAT", heartbeat(armed=False), REC)
    assert [(e["type"], e["ts"]) for e in up.events + down.events] == [
        ("takeoff", T0_MS + 5_000),
        ("landing", T0_MS + 9_000),
    ]
    wire_accepts("htx-a", "d1", [], up.events + down.events)


def test_a_ground_stations_heartbeat_changes_nothing() -> None:
    t = anchored()
    t.feed("HEARTBEAT", heartbeat(armed=False), REC)
    assert t.feed("HEARTBEAT", heartbeat(armed=True, vtype=6, autopilot=8), REC) == Translation()


def test_statustext_up_to_severity_error_becomes_an_error_event() -> None:
    t = anchored()
    err = t.feed("STATUSTEXT", {"severity": 3, "text": "PreArm: Check fence"}, REC)
    info = t.feed("STATUSTEXT", {"severity": 4, "text": "EKF2 IMU0 is using GPS"}, REC)
    assert [(e["type"], e["message"], e["severity"]) for e in err.events] == [
        ("error", "PreArm: Check fence", 3)
    ]
    assert info == Translation()


# --- battery, flow, spraying


def test_sys_status_battery_goes_on_the_following_samples() -> None:
    t = anchored()
    t.feed("SYS_STATUS", {"battery_remaining": 63}, REC)
    assert one_sample(t.feed("GLOBAL_POSITION_INT", gpi(2_000), REC))["battery_pct"] == 63.0
    t.feed("SYS_STATUS", {"battery_remaining": -1}, REC)
    assert "battery_pct" not in one_sample(t.feed("GLOBAL_POSITION_INT", gpi(3_000), REC))


def test_a_battery_monitor_used_as_flow_sensor_gives_flow_and_tank() -> None:
    drone = MavlinkDrone("htx-a", "d1", flow_battery_instance=1, tank_capacity_l=10.0)
    t = anchored(drone)
    # ArduPilot fuel-flow monitor: 12 "A" = 12 L/h = 0.2 L/min; 1500 "mAh" = 1.5 L used
    t.feed(
        "BATTERY_STATUS",
        {"id": 1, "current_battery": 1200, "current_consumed": 1500, "battery_remaining": -1},
        REC,
    )
    t.feed(
        "BATTERY_STATUS",
        {"id": 0, "current_battery": 3000, "current_consumed": 900, "battery_remaining": 80},
        REC,
    )
    s = one_sample(t.feed("GLOBAL_POSITION_INT", gpi(2_000), REC))
    assert s["flow_lpm"] == pytest.approx(0.2)
    assert s["tank_l"] == pytest.approx(8.5)
    assert s["battery_pct"] == 80.0


def test_the_flow_sensor_cannot_be_the_battery() -> None:
    with pytest.raises(ConfigError, match="cannot also be the flow sensor"):
        MavlinkDrone("htx-a", "d1", flow_battery_instance=0)


def _spraying(t: MavlinkTranslator, boot_ms: int) -> bool:
    value = one_sample(t.feed("GLOBAL_POSITION_INT", gpi(boot_ms), REC))["spraying"]
    assert isinstance(value, bool)
    return value


def test_an_rc_rule_sprays_while_the_channel_is_above_its_pwm() -> None:
    t = anchored(MavlinkDrone("htx-a", "d1", spray=parse_spray_rules("rc7>1500")))
    assert _spraying(t, 2_000) is False
    t.feed("RC_CHANNELS", {"time_boot_ms": 2_100, "chan7_raw": 1600}, REC)
    assert _spraying(t, 2_200) is True
    t.feed("RC_CHANNELS", {"time_boot_ms": 2_300, "chan7_raw": 1500}, REC)
    assert _spraying(t, 2_400) is False


def test_a_servo_rule_reads_servo_output_raw() -> None:
    t = anchored(MavlinkDrone("htx-a", "d1", spray=parse_spray_rules("servo9>1600")))
    t.feed("SERVO_OUTPUT_RAW", {"time_usec": 1, "servo9_raw": 1900}, REC)
    assert _spraying(t, 2_000) is True


def test_the_auto_rule_sprays_only_armed_in_an_auto_mission() -> None:
    t = anchored(MavlinkDrone("htx-a", "d1", spray=parse_spray_rules("auto")))
    t.feed("HEARTBEAT", heartbeat(armed=True, custom_mode=5), REC)  # LOITER
    assert _spraying(t, 2_000) is False
    t.feed("HEARTBEAT", heartbeat(armed=True, custom_mode=3), REC)  # ArduCopter AUTO
    assert _spraying(t, 3_000) is True
    t.feed("HEARTBEAT", heartbeat(armed=False, custom_mode=3), REC)
    assert _spraying(t, 4_000) is False


def test_the_auto_rule_knows_px4s_mission_mode() -> None:
    t = anchored(MavlinkDrone("htx-a", "d1", spray=parse_spray_rules("auto")))
    t.feed("HEARTBEAT", heartbeat(armed=True, custom_mode=(4 << 16) | (4 << 24), autopilot=12), REC)
    assert _spraying(t, 2_000) is True


def test_a_rule_set_sprays_only_when_every_rule_holds() -> None:
    t = anchored(MavlinkDrone("htx-a", "d1", spray=parse_spray_rules("auto,rc7>1500")))
    t.feed("HEARTBEAT", heartbeat(armed=True, custom_mode=3), REC)
    assert _spraying(t, 2_000) is False
    t.feed("RC_CHANNELS", {"time_boot_ms": 2_100, "chan7_raw": 1900}, REC)
    assert _spraying(t, 2_200) is True


# --- loss accounting


def test_position_gaps_are_estimated_from_time_boot_ms() -> None:
    t = anchored(MavlinkDrone("htx-a", "d1", position_interval_ms=1_000))
    for boot_ms in (2_000, 3_000, 6_000, 7_000):
        t.feed("GLOBAL_POSITION_INT", gpi(boot_ms), REC)
    assert (t.counts.position_gaps, t.counts.positions_missing) == (1, 2)


def test_packet_sequence_gaps_are_counted_where_the_source_has_them() -> None:
    t = anchored()
    for seq in (250, 251, 254, 255, 0, 1):
        t.feed("VFR_HUD", {}, REC, packet_seq=seq)
    assert (t.counts.seq_gaps, t.counts.seq_lost) == (1, 2)


# --- bad input never raises


@pytest.mark.parametrize(
    ("msgtype", "msg", "reason"),
    [
        ("GLOBAL_POSITION_INT", [1, 2], "not_an_object"),
        ("GLOBAL_POSITION_INT", {"time_boot_ms": 1}, "missing_key"),
        ("GLOBAL_POSITION_INT", gpi(2_000, lat=0.0) | {"lat": "49.2"}, "wrong_type"),
        ("GLOBAL_POSITION_INT", gpi(2_000) | {"vx": True}, "wrong_type"),
        ("GLOBAL_POSITION_INT", gpi(2_000) | {"lat": 950_000_000}, "out_of_range"),
        ("HEARTBEAT", {"type": 2}, "missing_key"),
        ("STATUSTEXT", {"severity": 2, "text": 5}, "wrong_type"),
    ],
)
def test_a_malformed_message_is_rejected_with_its_reason(
    msgtype: str, msg: Any, reason: str
) -> None:
    out = anchored().feed(msgtype, msg, REC)
    assert [r.reason for r in out.rejections] == [reason]


def test_a_payload_that_is_not_json_is_rejected_bad_json() -> None:
    t = anchored()
    out = t.feed_payload("HEARTBEAT", b"{not json", REC)
    assert [r.reason for r in out.rejections] == ["bad_json"]
    assert t.counts.rejected == {"bad_json": 1}


# --- the fleet (the worker's MAVProxy path without I/O)


def test_the_fleet_routes_each_topic_to_its_drones_translator() -> None:
    fleet = MavproxyFleet(MavproxyTopics(), {("htx-a", "d1"): MavlinkDrone("htx-a", "d1")})
    base = "agri/mavlink/htx-a/d1/"
    fleet.feed(base + "SYSTEM_TIME", orjson.dumps(system_time(1_000, T0_MS + 1_000)), REC)
    parsed, out = fleet.feed(base + "GLOBAL_POSITION_INT", orjson.dumps(gpi(2_000)), REC)
    assert parsed == MavlinkTopic("htx-a", "d1", "GLOBAL_POSITION_INT")
    assert [s["ts"] for s in out.samples] == [T0_MS + 2_000]
    translator = fleet.translator("htx-a", "d1")
    assert translator is not None
    assert translator.counts.samples == 1


def test_the_fleet_rejects_a_drone_without_mavlink_configuration_unknown_device() -> None:
    fleet = MavproxyFleet(MavproxyTopics(), {})
    parsed, out = fleet.feed("agri/mavlink/htx-a/d9/HEARTBEAT", b"{}", REC)
    assert parsed == MavlinkTopic("htx-a", "d9", "HEARTBEAT")
    assert [r.reason for r in out.rejections] == ["unknown_device"]
    assert fleet.translator("htx-a", "d9") is None


def test_the_fleet_rejects_a_foreign_topic_bad_topic() -> None:
    fleet = MavproxyFleet(MavproxyTopics(), {})
    assert (
        fleet.feed("agri/v1/htx-a/d1/telemetry", b"{}", REC)[1].rejections[0].reason == "bad_topic"
    )


def test_a_fleet_entry_must_name_its_own_drone() -> None:
    with pytest.raises(ConfigError, match="configured as"):
        MavproxyFleet(MavproxyTopics(), {("htx-a", "d1"): MavlinkDrone("htx-a", "d2")})


# --- the real capture


CAPTURE = "mavproxy_mqtt_phoenix_2018-09-25_replay10x.txt.gz"
REPLAY_RECEIVED_MS = 1_795_869_000_000  # when the capture is replayed (any later time works)


def replay(
    path: Path, topics: MavproxyTopics, drone: MavlinkDrone
) -> tuple[MavlinkTranslator, Translation]:
    """Feed a ``topic payload`` capture through one translator, 10 ms of receive time apart."""
    t = MavlinkTranslator(drone)
    out = Translation()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            topic, payload = line.rstrip("\n").split(" ", 1)
            parsed = topics.parse(topic)
            assert isinstance(parsed, MavlinkTopic), parsed
            assert (parsed.coop, parsed.drone) == (drone.coop, drone.drone)
            out += t.feed_payload(parsed.msgtype, payload.encode(), REPLAY_RECEIVED_MS + 10 * i)
    return t, out + t.flush()


def phoenix(**kw: Any) -> MavlinkDrone:
    return MavlinkDrone("ubc", "phoenix", **kw)


def tlog_frames(path: Path) -> list[tuple[int, int, bytes]]:
    """(record time µs, message id, payload) of every MAVLink v1/v2 packet of a .tlog.

    Independent of the adapter: a .tlog is an 8-byte big-endian µs timestamp before each
    raw packet; v2 payloads have their trailing zero bytes cut (callers pad them).
    """
    data = path.read_bytes()
    frames: list[tuple[int, int, bytes]] = []
    i = 0
    while i + 10 < len(data):
        (t_us,) = struct.unpack_from(">Q", data, i)
        magic, length = data[i + 8], data[i + 9]
        if magic == 0xFE:
            msgid, header, tail = data[i + 13], 6, 2
        elif magic == 0xFD:
            msgid = int.from_bytes(data[i + 15 : i + 18], "little")
            header, tail = 10, 2 + (13 if data[i + 10] & 1 else 0)
        else:
            raise AssertionError(f"byte {i + 8}: no MAVLink packet start")
        start = i + 8 + header
        frames.append((t_us, msgid, data[start : start + length]))
        i = start + length + tail
    return frames


def _unpack(fmt: str, payload: bytes) -> tuple[int, ...]:
    return struct.unpack(fmt, payload.ljust(struct.calcsize(fmt), b"\0")[: struct.calcsize(fmt)])


def tlog_positions(path: Path) -> list[tuple[int, int, int]]:
    """(UTC ms anchored by the log's own latest SYSTEM_TIME, lat e7, lon e7) per position."""
    offset: int | None = None
    out: list[tuple[int, int, int]] = []
    pending: list[tuple[int, int, int]] = []
    for _t, msgid, payload in tlog_frames(path):
        if msgid == 2:  # SYSTEM_TIME: uint64 time_unix_usec, uint32 time_boot_ms
            unix_us, boot_ms = _unpack("<QI", payload)
            if unix_us:
                offset = unix_us // 1000 - boot_ms
                out.extend((b + offset, la, lo) for b, la, lo in pending)
                pending.clear()
        elif msgid == 33:  # GLOBAL_POSITION_INT: time_boot_ms, lat, lon, ...
            boot_ms, lat, lon = _unpack("<Iii", payload)
            if offset is None:
                pending.append((boot_ms, lat, lon))
            else:
                out.append((boot_ms + offset, lat, lon))
    return out


def track_length_m(lats: list[float], lons: list[float]) -> float:
    geod = Geod(ellps="WGS84")
    _az1, _az2, dists = geod.inv(lons[:-1], lats[:-1], lons[1:], lats[1:])
    return float(sum(dists))


@needs_realdata
def test_the_mavproxy_capture_translates_to_1616_samples_and_six_sorties() -> None:
    t, out = replay(
        realdata("mqtt_payloads", CAPTURE),
        MavproxyTopics("", coop="ubc", drone="phoenix"),
        phoenix(),
    )
    assert len(out.samples) == 1616
    assert out.rejections == ()
    assert out.notices == ()
    types = [e["type"] for e in out.events if e["type"] != "error"]
    assert types == ["takeoff", "landing"] * 6
    assert Counter(e["type"] for e in out.events)["error"] == 6  # "GPS Glitch" is CRITICAL
    counts = t.counts
    assert (counts.messages, counts.samples, counts.events) == (13659, 1616, 18)
    assert counts.timed_by_receive == 0
    assert counts.reboots == 0
    stored, events = wire_accepts("ubc", "phoenix", out.samples, out.events)
    assert len(stored) == 1616
    assert len(events) == 18


@needs_realdata
def test_the_capture_under_the_agri_mavlink_prefix_goes_through_the_fleet() -> None:
    """The same capture as if MAVProxy had been told `mqtt set prefix agri/mavlink/ubc/phoenix`."""
    fleet = MavproxyFleet(MavproxyTopics(), {("ubc", "phoenix"): phoenix()})
    samples = 0
    with gzip.open(realdata("mqtt_payloads", CAPTURE), "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            topic, payload = line.rstrip("\n").split(" ", 1)
            parsed, out = fleet.feed(
                "agri/mavlink/ubc/phoenix" + topic, payload.encode(), REPLAY_RECEIVED_MS + 10 * i
            )
            assert parsed is not None
            assert out.rejections == ()
            samples += len(out.samples)
    assert samples == 1616


@needs_realdata
def test_the_capture_has_the_same_positions_as_the_tlog_track() -> None:
    _t, out = replay(
        realdata("mqtt_payloads", CAPTURE),
        MavproxyTopics("", coop="ubc", drone="phoenix"),
        phoenix(),
    )
    with realdata("tracks", "phoenix_ubc_2018-09-25_tlog.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(out.samples) == 1616
    assert [(round(s["lat"], 7), round(s["lon"], 7)) for s in out.samples] == [
        (round(float(r["lat"]), 7), round(float(r["lon"]), 7)) for r in rows
    ]
    arms = sum(1 for a, b in itertools.pairwise(rows) if (a["armed"], b["armed"]) == ("0", "1"))
    assert arms == 6 == sum(1 for e in out.events if e["type"] == "takeoff")
    # The CSV's ts is the ground station's record time: it lags the autopilot's clock by a
    # link latency that stays within a few seconds, and the sorties lag by the same amount.
    lags = [float(r["ts"]) * 1000 - smp["ts"] for r, smp in zip(rows, out.samples, strict=True)]
    assert 7_000 < min(lags) <= max(lags) < 12_000
    for flip, kind in ((("0", "1"), "takeoff"), (("1", "0"), "landing")):
        csv_times = [
            float(b["ts"]) * 1000
            for a, b in itertools.pairwise(rows)
            if (a["armed"], b["armed"]) == flip
        ]
        event_times = [e["ts"] for e in out.events if e["type"] == kind]
        assert len(csv_times) == len(event_times) == 6
        assert all(
            min(lags) - 1_000 <= t - o <= max(lags) + 1_000
            for t, o in zip(csv_times, event_times, strict=True)
        )
    ours = track_length_m([s["lat"] for s in out.samples], [s["lon"] for s in out.samples])
    theirs = track_length_m([float(r["lat"]) for r in rows], [float(r["lon"]) for r in rows])
    assert ours == pytest.approx(theirs, rel=0.01)
    assert ours > 1_000  # the six sorties along the line, not a parked drone


@needs_realdata
def test_capture_times_match_the_tlogs_own_system_time_clock_within_a_second() -> None:
    """The track CSV's ``ts`` is the ground station's record time (7.5-11.3 s after the
    autopilot's GPS time here: link latency and PC clock), so the adapter's SYSTEM_TIME
    anchoring is compared with the tlog's SYSTEM_TIME decoded independently."""
    _t, out = replay(
        realdata("mqtt_payloads", CAPTURE),
        MavproxyTopics("", coop="ubc", drone="phoenix"),
        phoenix(),
    )
    expected = tlog_positions(realdata("raw", "phoenix_ubc_2018-09-25.tlog"))
    assert len(expected) == len(out.samples)
    assert [(round(s["lat"] * 1e7), round(s["lon"] * 1e7)) for s in out.samples] == [
        (la, lo) for _ts, la, lo in expected
    ]
    worst = max(abs(s["ts"] - ts) for s, (ts, _la, _lo) in zip(out.samples, expected, strict=True))
    assert worst < 1_000
    first = out.samples[0]["ts"]
    assert math.isclose(first / 1000, 1537915008.4, abs_tol=1.0)  # 2018-09-25 22:36:48 UTC


@needs_realdata
def test_position_gaps_in_the_capture_match_the_tlogs_intervals() -> None:
    t, _out = replay(
        realdata("mqtt_payloads", CAPTURE),
        MavproxyTopics("", coop="ubc", drone="phoenix"),
        phoenix(position_interval_ms=800),
    )
    boots = [
        _unpack("<I", p)[0]
        for _t, msgid, p in tlog_frames(realdata("raw", "phoenix_ubc_2018-09-25.tlog"))
        if msgid == 33
    ]
    steps = [b - a for a, b in itertools.pairwise(boots)]
    gaps = [s for s in steps if s > 1_600]
    assert (t.counts.position_gaps, t.counts.positions_missing) == (
        len(gaps),
        sum(round(s / 800) - 1 for s in gaps),
    )
    assert (t.counts.position_gaps, t.counts.positions_missing) == (50, 76)


@needs_realdata
def test_the_auto_rule_sprays_during_the_auto_missions_of_the_capture() -> None:
    _t, out = replay(
        realdata("mqtt_payloads", CAPTURE),
        MavproxyTopics("", coop="ubc", drone="phoenix"),
        phoenix(spray=parse_spray_rules("auto")),
    )
    spraying = [s for s in out.samples if s["spraying"]]
    assert len(spraying) == 368
    assert wire_accepts("ubc", "phoenix", spraying)[0][0].spraying is True


@needs_realdata
def test_the_prefix_example_before_a_fix_gives_only_no_fix_rejections() -> None:
    topics = MavproxyTopics("agridrone/telemetry/{drone}", coop="ubc")
    t, out = replay(
        realdata("mqtt_payloads", "mavproxy_mqtt_prefix_example_phoenix_2018-09-17.txt"),
        topics,
        MavlinkDrone("ubc", "pixhawk1"),
    )
    assert out.samples == ()
    assert [r.reason for r in out.rejections] == ["no_fix"] * 4
    assert t.counts.rejected == {"no_fix": 4}
