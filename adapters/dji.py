"""DJI Cloud API OSD messages to wire v1: pure and I/O-free.

DJI docks, Pilot 2 and FlightHub-style gateways publish the aircraft's state about every
2 s on ``thing/product/{device_sn}/osd`` as an envelope ``{tid, bid, timestamp (ms), data,
gateway}``; the DRC link pushes ``osd_info_push`` on ``thing/product/{gateway_sn}/drc/up``.
``DjiTranslator`` maps serials to registered drones and turns either into samples, with
``mode_code`` transitions as takeoff/landing events. DJI's OSD carries no spray state:
spraying comes from the drone's configuration (``DjiDrone.spraying``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from adapters._common import (
    BAD_JSON,
    BAD_TOPIC,
    EMPTY,
    MISSING_KEY,
    NO_FIX,
    NO_POSITION,
    NOT_AN_OBJECT,
    OUT_OF_RANGE,
    UNKNOWN_DEVICE,
    WIRE_VERSION,
    WRONG_TYPE,
    AdapterRejection,
    ConfigError,
    DroneRef,
    Invalid,
    Translation,
    WireObject,
    as_number,
    check_position,
    check_ts,
    heading_0_360,
    internal_error,
    number,
    optional_number,
    rejection,
    show,
)

#: ``mode_code`` of an aircraft's OSD (DJI Cloud API, aircraft properties). Codes on the
#: ground: 0 standby, 1 takeoff preparation, 2 takeoff preparation finished, 13 upgrading.
#: In the air: 3 manual flight, 4 automatic takeoff, 5 wayline flight, 6 panorama,
#: 7 intelligent tracking, 8 ADS-B avoidance, 9 returning home, 10 automatic landing,
#: 11 forced landing, 12 three-propeller landing, 15 APAS, 16 virtual stick, 17 live flight
#: controls, 18 airborne RTK fixing, 19 dock address selecting, 20 POI.
#: 14 "not connected" and unlisted codes say nothing about flight: no transition.
MODE_ON_GROUND: Final = frozenset((0, 1, 2, 13))
MODE_AIRBORNE: Final = frozenset((3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15, 16, 17, 18, 19, 20))
MODE_NOT_CONNECTED: Final = 14

#: ``position_state.is_fixed`` 2 = RTK fixed (0 not started, 1 fixing, 3 failed).
RTK_FIXED: Final = 2

OSD: Final = "osd"
DRC: Final = "drc"
_SN_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True, slots=True)
class DjiDrone:
    """The registered drone a DJI serial belongs to; ``spraying`` stamps all its samples."""

    coop: str
    drone: str
    spraying: bool = False

    def __post_init__(self) -> None:
        DroneRef(self.coop, self.drone)
        if type(self.spraying) is not bool:
            raise ConfigError(f"spraying {self.spraying!r} is not true or false")


@dataclass(frozen=True, slots=True)
class DjiTopic:
    """A DJI Cloud API topic read: the serial it names and which kind of message."""

    serial: str
    kind: str  # OSD or DRC


def parse_topic(topic: str) -> DjiTopic | AdapterRejection:
    """``thing/product/{sn}/osd`` or ``thing/product/{sn}/drc/up``, else ``bad_topic``."""
    parts = topic.split("/")
    if len(parts) >= 4 and parts[0] == "thing" and parts[1] == "product":
        sn = parts[2]
        tail = parts[3:]
        if tail in (["osd"], ["drc", "up"]):
            if _SN_RE.fullmatch(sn) is None:
                return AdapterRejection(BAD_TOPIC, f"serial {show(sn)} is not a DJI serial")
            return DjiTopic(sn, OSD if tail == ["osd"] else DRC)
    return AdapterRejection(
        BAD_TOPIC, f"topic {show(topic)} is not thing/product/{{sn}}/osd or .../drc/up"
    )


@dataclass(frozen=True, slots=True)
class DjiTranslation:
    """A translation and the drone it belongs to (None when the serial was rejected)."""

    drone: DjiDrone | None
    translation: Translation


class DjiTranslator:
    """DJI OSD/DRC messages of the registered serials to wire-v1 samples and events.

    ``devices`` maps aircraft serials (OSD topics) and gateway serials (DRC topics) to
    drones. Keeps each serial's last ``mode_code`` for takeoff/landing. Never raises.
    """

    def __init__(self, devices: Mapping[str, DjiDrone]) -> None:
        self._devices: dict[str, DjiDrone] = {}
        self._airborne: dict[str, bool] = {}
        self.set_devices(devices)

    def set_devices(self, devices: Mapping[str, DjiDrone]) -> None:
        """Replace the serial -> drone map (the registry changed); each serial's last
        ``mode_code`` state is kept."""
        for sn, d in devices.items():
            if not isinstance(sn, str) or _SN_RE.fullmatch(sn) is None:
                raise ConfigError(f"DJI serial {sn!r} is not [A-Za-z0-9_-]{{1,64}}")
            if not isinstance(d, DjiDrone):
                raise ConfigError(f"serial {sn}: {d!r} is not a DjiDrone")
        self._devices = dict(devices)

    def device(self, serial: str) -> DjiDrone | None:
        """The drone a serial is mapped to, or ``None``."""
        return self._devices.get(serial)

    def feed(
        self, topic: str, payload: bytes | Mapping[str, Any], received_ms: int
    ) -> DjiTranslation:
        """One message on ``topic`` (raw bytes or already-parsed JSON) received at
        ``received_ms`` (epoch ms UTC)."""
        parsed = parse_topic(topic)
        if isinstance(parsed, AdapterRejection):
            return DjiTranslation(None, Translation(rejections=(parsed,)))
        drone = self._devices.get(parsed.serial)
        if drone is None:
            r = AdapterRejection(
                UNKNOWN_DEVICE,
                f"DJI serial {parsed.serial} is not registered "
                "(register it: agridrone drones add ... --dji-sn SN)",
            )
            return DjiTranslation(None, Translation(rejections=(r,)))
        try:
            msg = _object(payload, received_ms)
            if parsed.kind == OSD:
                out = self._osd(parsed.serial, drone, msg, received_ms)
            else:
                out = self._drc(drone, msg, received_ms)
        except Invalid as exc:
            out = Translation(rejections=(rejection(exc, payload),))
        except Exception as exc:  # noqa: BLE001 - no message may crash the caller
            out = Translation(rejections=(internal_error(exc, payload),))
        return DjiTranslation(drone, out)

    def _osd(
        self, serial: str, drone: DjiDrone, msg: Mapping[str, Any], received_ms: int
    ) -> Translation:
        ts = _ts(msg, "timestamp", received_ms)
        data = msg.get("data")
        if not isinstance(data, Mapping):
            if data is None:
                raise Invalid(MISSING_KEY, "missing required key 'data'")
            raise Invalid(NOT_AN_OBJECT, f"data {show(data)} is not an object")
        events = self._mode(serial, data, ts)
        if "latitude" not in data and "longitude" not in data:
            reason = Invalid(
                NO_POSITION, "OSD data carries no latitude/longitude (a dock's or RC's own OSD?)"
            )
            return Translation(events=events, rejections=(rejection(reason, msg),))
        try:
            sample = _sample(drone, data, ts, "data.")
        except Invalid as exc:
            return Translation(events=events, rejections=(rejection(exc, msg),))
        return Translation(samples=(sample,), events=events)

    def _drc(self, drone: DjiDrone, msg: Mapping[str, Any], received_ms: int) -> Translation:
        method = msg.get("method")
        if method != "osd_info_push":
            return EMPTY  # other DRC pushes (hsi_info_push, delay_info_push...) carry no position
        ts = _ts(msg, "timestamp", received_ms)
        data = msg.get("data")
        if not isinstance(data, Mapping):
            raise Invalid(NOT_AN_OBJECT, f"data {show(data)} is not an object")
        lat = as_number(number(data, "latitude", "data."), "latitude", "data.")
        lon = as_number(number(data, "longitude", "data."), "longitude", "data.")
        check_position(float(lat), float(lon), "data.")
        sx = optional_number(data, "speed_x", "data.")
        sy = optional_number(data, "speed_y", "data.")
        obj: WireObject = {"ts": ts, "lat": float(lat), "lon": float(lon)}
        obj["spraying"] = drone.spraying
        if sx is not None and sy is not None:
            obj["speed_mps"] = math.hypot(sx, sy)
        head = optional_number(data, "attitude_head", "data.")
        if head is not None:
            obj["heading_deg"] = heading_0_360(float(head))
        return Translation(samples=(obj,))

    def _mode(self, serial: str, data: Mapping[str, Any], ts: int) -> tuple[WireObject, ...]:
        code = data.get("mode_code")
        if type(code) is not int:
            return ()
        if code in MODE_AIRBORNE:
            airborne = True
        elif code in MODE_ON_GROUND:
            airborne = False
        else:
            return ()  # 14 not connected, or a code DJI added later: no transition
        was = self._airborne.get(serial)
        self._airborne[serial] = airborne
        if was is None or was == airborne:
            return ()
        return (
            {
                "v": WIRE_VERSION,
                "ts": ts,
                "type": "takeoff" if airborne else "landing",
                "source": "dji_mode_code",
                "mode_code": code,
            },
        )


def _object(payload: bytes | Mapping[str, Any], received_ms: object) -> Mapping[str, Any]:
    """The message as a mapping (parsed if bytes), if it and the receive time are usable."""
    if type(received_ms) is not int:
        raise Invalid(WRONG_TYPE, f"received_ms {show(received_ms)} is not an int")
    if isinstance(payload, Mapping):
        return payload
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise Invalid(WRONG_TYPE, f"payload {show(payload)} is neither bytes nor an object")
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise Invalid(BAD_JSON, f"payload is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise Invalid(NOT_AN_OBJECT, f"payload {show(obj)} is not a JSON object")
    return obj


def _ts(msg: Mapping[str, Any], key: str, received_ms: int) -> int:
    value = number(msg, key)
    if type(value) is float:
        if not value.is_integer():
            raise Invalid("bad_timestamp", f"{key} {value!r} is not whole milliseconds")
        value = int(value)
    return check_ts(int(value), received_ms, key)


def _sample(drone: DjiDrone, data: Mapping[str, Any], ts: int, where: str) -> WireObject:
    lat = float(number(data, "latitude", where))
    lon = float(number(data, "longitude", where))
    check_position(lat, lon, where)
    obj: WireObject = {"ts": ts, "lat": lat, "lon": lon, "spraying": drone.spraying}
    elevation = optional_number(data, "elevation", where)
    if elevation is not None:
        obj["alt_m"] = float(elevation)
    speed = optional_number(data, "horizontal_speed", where)
    if speed is not None:
        if speed < 0:
            raise Invalid(OUT_OF_RANGE, f"{where}horizontal_speed {speed!r} is negative")
        obj["speed_mps"] = float(speed)
    head = optional_number(data, "attitude_head", where)
    if head is not None:
        obj["heading_deg"] = heading_0_360(float(head))
    battery = data.get("battery")
    if isinstance(battery, Mapping):
        pct = optional_number(battery, "capacity_percent", f"{where}battery.")
        if pct is not None and 0 <= pct <= 100:
            obj["battery_pct"] = float(pct)
    state = data.get("position_state")
    if isinstance(state, Mapping):
        if state.get("is_fixed") == RTK_FIXED:
            obj["fix"] = "rtk_fixed"
        elif state.get("gps_number") == 0 and state.get("rtk_number") in (0, None):
            raise Invalid(NO_FIX, f"{where}position_state: no satellites")
    return obj
