"""DJI Cloud API OSD and DRC messages to wire v1, with DJI's documented examples and a real
aircraft capture."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from adapters import ConfigError, DjiDrone, DjiTranslator
from adapters.dji import MODE_AIRBORNE, MODE_NOT_CONNECTED, MODE_ON_GROUND, DjiTopic, parse_topic
from tests.realdata import needs_realdata, realdata, wire_accepts

T0_MS = 1_795_869_000_000
SN = "1ZNBK7LC00AB"
DRONE = DjiDrone("htx-a", "m3t")


def osd(data: dict[str, Any], ts: int = T0_MS) -> bytes:
    return orjson.dumps(
        {"tid": "t-1", "bid": "b-1", "timestamp": ts, "data": data, "gateway": "RC-SN-1"}
    )


def aircraft(**kw: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "latitude": 21.0812345,
        "longitude": 106.5212345,
        "height": 38.2,
        "elevation": 6.5,
        "horizontal_speed": 4.2,
        "attitude_head": -90.0,
        "battery": {"capacity_percent": 71},
        "mode_code": 5,
        "position_state": {"gps_number": 18, "is_fixed": 2, "quality": 5, "rtk_number": 25},
    }
    data.update(kw)
    return data


def translator(**devices: DjiDrone) -> DjiTranslator:
    return DjiTranslator(devices or {SN: DRONE})


def test_an_aircraft_osd_becomes_a_sample_in_wire_units() -> None:
    out = translator().feed(f"thing/product/{SN}/osd", osd(aircraft()), T0_MS)
    assert out.drone == DRONE
    assert out.translation.samples == (
        {
            "ts": T0_MS,
            "lat": 21.0812345,
            "lon": 106.5212345,
            "spraying": False,
            "alt_m": 6.5,
            "speed_mps": 4.2,
            "heading_deg": 270.0,
            "battery_pct": 71.0,
            "fix": "rtk_fixed",
        },
    )
    wire_accepts("htx-a", "m3t", out.translation.samples)


@pytest.mark.parametrize(
    ("head", "heading"), [(0, 0.0), (180, 180.0), (-180, 180.0), (-0.5, 359.5)]
)
def test_attitude_head_becomes_a_heading_from_0_to_360(head: float, heading: float) -> None:
    out = translator().feed(f"thing/product/{SN}/osd", osd(aircraft(attitude_head=head)), T0_MS)
    assert out.translation.samples[0]["heading_deg"] == heading


def test_a_drone_configured_as_spraying_stamps_every_sample() -> None:
    t = translator(**{SN: DjiDrone("htx-a", "agras", spraying=True)})
    out = t.feed(f"thing/product/{SN}/osd", osd(aircraft()), T0_MS)
    assert out.translation.samples[0]["spraying"] is True


def test_mode_code_from_ground_to_air_and_back_is_takeoff_then_landing() -> None:
    t = translator()
    codes = [0, 1, 4, 5, MODE_NOT_CONNECTED, 9, 10, 0, 0]
    events: list[dict[str, Any]] = []
    for i, code in enumerate(codes):
        out = t.feed(
            f"thing/product/{SN}/osd",
            osd(aircraft(mode_code=code), T0_MS + i * 2000),
            T0_MS + 20_000,
        )
        events.extend(out.translation.events)
    assert [(e["type"], e["ts"], e["mode_code"]) for e in events] == [
        ("takeoff", T0_MS + 4000, 4),
        ("landing", T0_MS + 14_000, 0),
    ]
    wire_accepts("htx-a", "m3t", [], events)


def test_the_mode_code_tables_are_disjoint_and_cover_dji_0_to_20() -> None:
    assert MODE_ON_GROUND.isdisjoint(MODE_AIRBORNE)
    assert MODE_ON_GROUND | MODE_AIRBORNE | {MODE_NOT_CONNECTED} == set(range(21))


def test_an_unknown_serial_is_rejected_unknown_device() -> None:
    out = translator().feed("thing/product/OTHER123/osd", osd(aircraft()), T0_MS)
    assert out.drone is None
    assert [r.reason for r in out.translation.rejections] == ["unknown_device"]
    assert "OTHER123" in out.translation.rejections[0].detail


@pytest.mark.parametrize(
    "topic",
    ["thing/product/SN/state", "thing/product/osd", "thing/product/S N/osd", "sys/product/SN/osd"],
)
def test_a_topic_that_is_not_an_osd_topic_is_rejected_bad_topic(topic: str) -> None:
    out = translator().feed(topic, osd(aircraft()), T0_MS)
    assert [r.reason for r in out.translation.rejections] == ["bad_topic"]


def test_topics_name_the_serial_and_the_kind() -> None:
    assert parse_topic("thing/product/ABC/osd") == DjiTopic("ABC", "osd")
    assert parse_topic("thing/product/GW1/drc/up") == DjiTopic("GW1", "drc")


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{", "bad_json"),
        (b"[1]", "not_an_object"),
        (orjson.dumps({"timestamp": T0_MS}), "missing_key"),
        (orjson.dumps({"timestamp": "now", "data": {}}), "wrong_type"),
        (orjson.dumps({"timestamp": T0_MS + 0.5, "data": {}}), "bad_timestamp"),
        (orjson.dumps({"timestamp": 1_700_000, "data": {}}), "bad_timestamp"),
        (osd(aircraft(latitude=95.0)), "out_of_range"),
        (osd(aircraft(horizontal_speed=-1.0)), "out_of_range"),
        (osd(aircraft(latitude=0, longitude=0)), "no_fix"),
        (osd({"mode_code": 0}), "no_position"),
    ],
)
def test_a_bad_osd_is_rejected_with_its_reason(payload: bytes, reason: str) -> None:
    out = translator().feed(f"thing/product/{SN}/osd", payload, T0_MS)
    assert out.translation.samples == ()
    assert [r.reason for r in out.translation.rejections] == [reason]


def test_the_translator_refuses_a_bad_device_map() -> None:
    with pytest.raises(ConfigError, match="DJI serial"):
        DjiTranslator({"bad sn": DRONE})
    with pytest.raises(ConfigError, match="does not match"):
        DjiDrone("htx a", "m3t")


# --- DJI's documented examples and a real capture


def _example(name: str) -> dict[str, Any]:
    obj = json.loads(realdata("mqtt_payloads", name).read_text(encoding="utf-8"))
    assert isinstance(obj, dict)
    return obj


@needs_realdata
def test_djis_osd_envelope_example_is_a_dock_osd_without_a_position() -> None:
    example = _example("dji_cloud_osd_envelope_doc_example.json")
    topic = example["_topic"].replace("{device_sn}", "DOCK1")
    out = translator(DOCK1=DRONE).feed(topic, orjson.dumps(example["message"]), T0_MS)
    assert out.translation.samples == ()
    assert [r.reason for r in out.translation.rejections] == ["no_position"]


@needs_realdata
def test_djis_drc_osd_info_push_example_becomes_a_sample() -> None:
    example = _example("dji_cloud_drc_osd_info_push_doc_example.json")
    topic = example["_topic"].replace("{gateway_sn}", "RC1")
    received = example["message"]["timestamp"] + 500
    out = translator(RC1=DRONE).feed(topic, orjson.dumps(example["message"]), received)
    (sample,) = out.translation.samples
    assert sample == {
        "ts": 1670415891013,
        "lat": 10.0,
        "lon": 10.0,
        "spraying": False,
        "speed_mps": pytest.approx(14.142135623730951),
        "heading_deg": 60.0,
    }
    wire_accepts("htx-a", "m3t", [dict(sample)], received_ms=received)


@needs_realdata
def test_the_real_aircraft_capture_without_a_fix_is_rejected_no_fix() -> None:
    example = _example("dji_cloud_pilot_aircraft_osd_real_capture.json")
    data = dict(example["data_as_printed"])
    data["latitude"] = 0  # the capture's status line: latitude 0 (left out of its dict)
    serial = example["_topic"].split("/")[2]
    out = translator(**{serial: DRONE}).feed(example["_topic"], osd(data), T0_MS)
    assert [r.reason for r in out.translation.rejections] == ["no_fix"]
    assert out.translation.events == ()  # mode_code 0 on first sight: no transition
