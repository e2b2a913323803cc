"""Adapter invariants: no input crashes a translator, and whatever it produces the wire accepts."""

from __future__ import annotations

import io
import json
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from adapters import (
    ADAPTER_REASONS,
    DjiDrone,
    DjiTranslator,
    FormatError,
    MavlinkDrone,
    MavlinkTranslator,
    MavproxyTopics,
    Translation,
    parse_spray_rules,
    read_track_csv,
)
from ingest.wire import MIN_TS_MS, decode_message, event_topic, telemetry_topic

NOW = 1_795_869_000_000
MAV_TYPES = [
    "GLOBAL_POSITION_INT",
    "SYSTEM_TIME",
    "GPS_RAW_INT",
    "HEARTBEAT",
    "STATUSTEXT",
    "SYS_STATUS",
    "BATTERY_STATUS",
    "SERVO_OUTPUT_RAW",
    "RC_CHANNELS",
    "VFR_HUD",
]
MAV_KEYS = [
    "time_boot_ms",
    "time_unix_usec",
    "lat",
    "lon",
    "relative_alt",
    "vx",
    "vy",
    "hdg",
    "fix_type",
    "type",
    "autopilot",
    "base_mode",
    "custom_mode",
    "severity",
    "text",
    "battery_remaining",
    "id",
    "current_battery",
    "current_consumed",
    "chan7_raw",
    "servo9_raw",
]
DJI_KEYS = [
    "timestamp",
    "data",
    "method",
    "latitude",
    "longitude",
    "elevation",
    "horizontal_speed",
    "attitude_head",
    "battery",
    "capacity_percent",
    "mode_code",
    "position_state",
    "is_fixed",
    "gps_number",
    "speed_x",
    "speed_y",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.integers(-100, 70_000)
    | st.integers(NOW - 10**9, NOW + 10**9)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.floats(-200, 200)
    | st.text(max_size=12)
)


def objects(keys: list[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(st.sampled_from(keys) | st.text(max_size=6), inner, max_size=10)
        ),
        max_leaves=30,
    )


def _wire_accepts(coop: str, drone: str, out: Translation, received_ms: int) -> None:
    for sample in out.samples:
        decoded = decode_message(telemetry_topic(coop, drone), orjson.dumps(sample), received_ms)
        assert decoded.rejections == [], (sample, decoded.rejections)
    for event in out.events:
        decoded = decode_message(event_topic(coop, drone), orjson.dumps(event), received_ms)
        assert decoded.rejections == [], (event, decoded.rejections)
    assert all(r.reason in ADAPTER_REASONS for r in out.rejections)


@given(
    st.lists(
        st.tuples(st.sampled_from(MAV_TYPES) | st.text(max_size=8), objects(MAV_KEYS)),
        max_size=25,
    ),
    st.integers(MIN_TS_MS - 10**6, NOW),
)
def test_no_mavlink_message_stream_crashes_the_translator(
    stream: list[tuple[str, Any]], start_ms: int
) -> None:
    t = MavlinkTranslator(
        MavlinkDrone(
            "c",
            "d",
            spray=parse_spray_rules("auto,rc7>1500"),
            flow_battery_instance=1,
            tank_capacity_l=10.0,
            hold_max_samples=3,
        )
    )
    for i, (msgtype, msg) in enumerate(stream):
        received = start_ms + 100 * i
        _wire_accepts("c", "d", t.feed(msgtype, msg, received), received)
    _wire_accepts("c", "d", t.flush(), start_ms + 100 * len(stream))


@given(st.binary(max_size=200), st.text(max_size=40))
def test_no_mavproxy_payload_or_topic_crashes(payload: bytes, topic: str) -> None:
    t = MavlinkTranslator(MavlinkDrone("c", "d"))
    _wire_accepts("c", "d", t.feed_payload("GLOBAL_POSITION_INT", payload, NOW), NOW)
    MavproxyTopics().parse(topic)


@given(
    st.sampled_from(["thing/product/SN1/osd", "thing/product/SN1/drc/up", "thing/product/X/osd"])
    | st.text(max_size=30),
    objects(DJI_KEYS) | st.binary(max_size=100),
)
def test_no_dji_message_crashes_the_translator(topic: str, payload: Any) -> None:
    t = DjiTranslator({"SN1": DjiDrone("c", "d")})
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    _wire_accepts("c", "d", t.feed(topic, body, NOW).translation, NOW)
    if isinstance(payload, dict):
        _wire_accepts("c", "d", t.feed(topic, payload, NOW).translation, NOW)


@given(
    st.sampled_from(["ts,lat,lon,alt_m,speed_mps,heading_deg,gpslevel,fix\n", "a,b\n", ""]),
    st.lists(
        st.lists(
            st.sampled_from(["", "0", "1", "3", "1630895028.1", "47.5", "-122.6", "nan", "x"])
            | st.text(max_size=8),
            max_size=9,
        ),
        max_size=20,
    ),
)
def test_no_csv_text_crashes_the_reader(header: str, cells: list[list[str]]) -> None:
    text = header + "".join(",".join(row) + "\n" for row in cells)
    try:
        rows = list(read_track_csv(io.StringIO(text)))
    except FormatError:
        return
    for row in rows:
        assert (row.sample is None) != (row.rejection is None)
        if row.sample is not None:
            _wire_accepts("c", "d", Translation(samples=(row.sample,)), NOW)


ints = st.integers(-(2**33), 2**33) | st.integers(0, 2_000) | st.just(0) | st.just(65535)
well_formed = st.one_of(
    st.tuples(
        st.just("GLOBAL_POSITION_INT"),
        st.fixed_dictionaries(
            dict.fromkeys(("time_boot_ms", "lat", "lon", "relative_alt", "vx", "vy", "hdg"), ints)
        ),
    ),
    st.tuples(
        st.just("SYSTEM_TIME"),
        st.fixed_dictionaries(
            {
                "time_boot_ms": ints,
                "time_unix_usec": st.integers(0, 2**64 - 1) | st.just(NOW * 1000),
            }
        ),
    ),
    st.tuples(
        st.just("HEARTBEAT"),
        st.fixed_dictionaries(
            dict.fromkeys(("type", "autopilot", "base_mode", "custom_mode"), ints)
        ),
    ),
    st.tuples(st.just("GPS_RAW_INT"), st.fixed_dictionaries({"fix_type": ints})),
    st.tuples(
        st.just("STATUSTEXT"),
        st.fixed_dictionaries({"severity": ints, "text": st.text(max_size=60)}),
    ),
    st.tuples(
        st.just("BATTERY_STATUS"),
        st.fixed_dictionaries(
            dict.fromkeys(("id", "battery_remaining", "current_battery", "current_consumed"), ints)
        ),
    ),
)


@given(st.lists(well_formed, max_size=40), st.integers(MIN_TS_MS, NOW))
def test_well_formed_mavlink_streams_give_only_what_the_wire_accepts(
    stream: list[tuple[str, dict[str, Any]]], start_ms: int
) -> None:
    t = MavlinkTranslator(
        MavlinkDrone("c", "d", flow_battery_instance=1, tank_capacity_l=5.0, hold_max_samples=5)
    )
    for i, (msgtype, msg) in enumerate(stream):
        received = start_ms + 250 * i
        _wire_accepts("c", "d", t.feed(msgtype, msg, received), received)
    _wire_accepts("c", "d", t.flush(), start_ms + 250 * len(stream))
