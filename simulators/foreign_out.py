"""Simulated drones speaking what real ones speak: MAVLink (encoded with pymavlink, as an
ArduPilot sprayer sends it) and DJI Cloud API OSD, beside wire v1 (simulators/wire_out.py).

Pure: a job's samples and events in, timed messages out. The MAVLink stream is what a
flight controller sends on its telemetry link; it goes either to MQTT the way MAVProxy's
``mqtt`` module publishes it (JSON on ``agri/mavlink/{coop}/{drone}/{MSGTYPE}``) or, as
raw packets, over UDP to ``agridrone mavlink-bridge``. Through adapters/mavlink.py (spray
rule ``servo9>1500``, flow sensor on battery instance 1) it gives back the wire-v1 samples
the simulator would have published itself, to MAVLink's resolution (1e-7 degrees, mm,
cm/s, centidegrees, whole battery percent); events other than takeoff and landing have no
MAVLink message and are not sent. The DJI OSD is sampled every 2 s (DJI's 0.5 Hz) and
carries no spray state: spraying comes from the drone's registration.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from storage.records import Event, Sample

#: What the simulated MAVLink sprayer is: pump on servo output 9, a flow sensor as battery 1.
SPRAY_SERVO: Final = 9
SPRAY_RULE: Final = f"servo{SPRAY_SERVO}>1500"
PWM_ON: Final = 1900
PWM_OFF: Final = 1100
FLOW_BATTERY: Final = 1
#: BATTERY_STATUS.current_battery is int16 centiamperes: a flow sensor reporting litres per
#: hour as amperes saturates at 327.67 L/h (5.46 L/min).
MAX_FLOW_CA: Final = 32_767
#: GPS_RAW_INT fix_type of a wire ``fix``.
FIX_TYPE: Final = {"none": 1, "2d": 2, "3d": 3, "dgps": 4, "rtk_float": 5, "rtk_fixed": 6}
#: HEARTBEAT of an ArduCopter: custom mode AUTO (3) while armed, LOITER (5) on the ground.
_COPTER, _ARDUPILOT, _AUTO, _LOITER = 2, 3, 3, 5
_CUSTOM_MODE_ENABLED, _ARMED = 1, 128
_STANDBY, _ACTIVE = 3, 4
HEARTBEAT_MS: Final = 1_000
#: DJI pushes OSD at about 0.5 Hz.
DJI_OSD_MS: Final = 2_000
DJI_ON_GROUND: Final = 0
DJI_WAYLINE: Final = 5


def mavproxy_topic(coop: str, drone: str, msgtype: str) -> str:
    """Where MAVProxy set up with ``mqtt set prefix agri/mavlink/{coop}/{drone}`` publishes."""
    return f"agri/mavlink/{coop}/{drone}/{msgtype}"


def dji_serial(coop: str, drone: str) -> str:
    """The aircraft serial a simulated DJI drone reports (register it with this serial)."""
    return f"SIM-{coop}-{drone}"[:64]


def dji_osd_topic(serial: str) -> str:
    """Where a DJI gateway publishes an aircraft's OSD."""
    return f"thing/product/{serial}/osd"


@dataclass(frozen=True, slots=True)
class MavlinkOut:
    """One MAVLink message at the simulated time it leaves the flight controller."""

    release_ms: int
    msg: Any  # a pymavlink MAVLink_message

    @property
    def msgtype(self) -> str:
        """Its MAVLink name, e.g. ``GLOBAL_POSITION_INT``."""
        return str(self.msg.get_type())

    def fields(self) -> dict[str, Any]:
        """Its fields as pymavlink (and so MAVProxy) names them."""
        d: dict[str, Any] = self.msg.to_dict()
        d.pop("mavpackettype", None)
        return d

    def json(self) -> bytes:
        """The payload MAVProxy's ``mqtt`` module publishes for it."""
        return orjson.dumps(self.fields())


class MavlinkEncoder:
    """One simulated drone's flight controller: its boot time, arm state, packet sequence.

    ``boot_ms`` is when the autopilot booted (epoch ms): ``time_boot_ms`` counts from it and
    SYSTEM_TIME anchors it to UTC, so the translator recovers each sample's ``ts`` exactly.
    """

    def __init__(
        self,
        boot_ms: int,
        *,
        tank_capacity_l: float | None = None,
        sysid: int = 1,
        compid: int = 1,
    ) -> None:
        from pymavlink.dialects.v20 import ardupilotmega

        self._mav: Any = ardupilotmega.MAVLink(None, srcSystem=sysid, srcComponent=compid)
        self.boot_ms = boot_ms
        self.tank_capacity_l = tank_capacity_l
        self._armed = False
        self._last_heartbeat: int | None = None

    def pack(self, out: MavlinkOut) -> bytes:
        """The message as the bytes a telemetry link carries (MAVLink 2, next sequence)."""
        buf: bytes = out.msg.pack(self._mav)
        self._mav.seq = (self._mav.seq + 1) % 256
        return buf

    def job(self, samples: Sequence[Sample], events: Sequence[Event]) -> list[MavlinkOut]:
        """A job's MAVLink stream in time order: heartbeat and clock once a second, the
        state messages of each sample (fix, servo, battery, flow) before its position."""
        out: list[MavlinkOut] = []
        arming = sorted(
            (e.ts_ms, e.type == "takeoff") for e in events if e.type in ("takeoff", "landing")
        )
        i = 0
        if self._last_heartbeat is None and (samples or arming):
            first = min([*(ts for ts, _a in arming[:1]), *(s.ts_ms for s in samples[:1])])
            out += self._clock(first)
            out.append(self._heartbeat(first))  # the state before the job: no event
        for s in samples:
            while i < len(arming) and arming[i][0] <= s.ts_ms:
                ts, armed = arming[i]
                i += 1
                out += self._clock(ts)
                self._armed = armed
                out.append(self._heartbeat(ts))
            if self._last_heartbeat is None or s.ts_ms - self._last_heartbeat >= HEARTBEAT_MS:
                out.append(self._heartbeat(s.ts_ms))
                out += self._clock(s.ts_ms)
            out += self._sample(s)
        for ts, armed in arming[i:]:
            out += self._clock(ts)
            self._armed = armed
            out.append(self._heartbeat(ts))
        return out

    def _boot(self, ts_ms: int) -> int:
        boot = ts_ms - self.boot_ms
        if not 0 <= boot <= 0xFFFFFFFF:
            raise ValueError(f"ts {ts_ms} is outside the autopilot's uptime from {self.boot_ms}")
        return boot

    def _heartbeat(self, ts_ms: int) -> MavlinkOut:
        self._last_heartbeat = ts_ms
        base = _CUSTOM_MODE_ENABLED | (_ARMED if self._armed else 0)
        msg = self._mav.heartbeat_encode(
            _COPTER,
            _ARDUPILOT,
            base,
            _AUTO if self._armed else _LOITER,
            _ACTIVE if self._armed else _STANDBY,
            3,
        )
        return MavlinkOut(ts_ms, msg)

    def _clock(self, ts_ms: int) -> list[MavlinkOut]:
        return [MavlinkOut(ts_ms, self._mav.system_time_encode(ts_ms * 1000, self._boot(ts_ms)))]

    def _sample(self, s: Sample) -> list[MavlinkOut]:
        boot = self._boot(s.ts_ms)
        usec = (boot * 1000) & 0xFFFFFFFF
        lat, lon = round(s.lat * 1e7), round(s.lon * 1e7)
        alt_mm = round((s.alt_m or 0.0) * 1000)
        speed = s.speed_mps or 0.0
        if s.heading_deg is None:
            vx, vy, hdg = round(speed * 100), 0, 65535
        else:
            rad = math.radians(s.heading_deg)
            vx, vy = round(speed * 100 * math.cos(rad)), round(speed * 100 * math.sin(rad))
            hdg = round(s.heading_deg * 100) % 36000
        mav = self._mav
        msgs = [
            mav.gps_raw_int_encode(
                boot * 1000,
                FIX_TYPE.get(s.fix or "3d", 3),
                lat,
                lon,
                alt_mm,
                70,
                120,
                round(speed * 100),
                65535 if hdg == 65535 else hdg,
                18,
            ),
            mav.servo_output_raw_encode(
                usec, 0, *([1500] * 8), servo9_raw=PWM_ON if s.spraying else PWM_OFF
            ),
        ]
        if s.battery_pct is not None:
            msgs.append(
                mav.sys_status_encode(
                    0, 0, 0, 500, 22_200, 1_500, round(s.battery_pct), 0, 0, 0, 0, 0, 0
                )
            )
        if s.flow_lpm is not None:
            used_ml = (
                round((self.tank_capacity_l - s.tank_l) * 1000)
                if self.tank_capacity_l is not None and s.tank_l is not None
                else -1
            )
            msgs.append(
                mav.battery_status_encode(
                    FLOW_BATTERY,
                    0,
                    0,
                    32767,
                    [65535] * 10,
                    min(MAX_FLOW_CA, round(s.flow_lpm * 60 * 100)),
                    used_ml,
                    -1,
                    -1,
                )
            )
        msgs.append(mav.global_position_int_encode(boot, lat, lon, alt_mm, alt_mm, vx, vy, 0, hdg))
        return [MavlinkOut(s.ts_ms, m) for m in msgs]


def mavproxy_messages(
    coop: str, drone: str, stream: Sequence[MavlinkOut]
) -> Iterator[tuple[int, str, bytes]]:
    """(release ms, topic, JSON payload) as MAVProxy's ``mqtt`` module publishes them."""
    for m in stream:
        yield m.release_ms, mavproxy_topic(coop, drone, m.msgtype), m.json()


def dji_osd_messages(
    serial: str,
    samples: Sequence[Sample],
    events: Sequence[Event],
    *,
    gateway: str | None = None,
    every_ms: int = DJI_OSD_MS,
) -> list[tuple[int, str, bytes]]:
    """(release ms, topic, payload) of an aircraft's OSD pushes: one sample every
    ``every_ms`` (and the last), ``mode_code`` on the ground (0) or flying a wayline (5) from
    the job's takeoff and landing events, pushed at once when it changes."""
    topic = dji_osd_topic(serial)
    flips = sorted(
        (e.ts_ms, e.type == "takeoff") for e in events if e.type in ("takeoff", "landing")
    )
    out: list[tuple[int, str, bytes]] = []
    airborne, i, last = False, 0, None
    for n, s in enumerate(samples):
        was = airborne
        # a takeoff at a sample's time counts from the next sample (that one is on the
        # ground), a landing at once
        while i < len(flips) and (
            flips[i][0] < s.ts_ms or (flips[i][0] == s.ts_ms and not flips[i][1])
        ):
            airborne = flips[i][1]
            i += 1
        due = last is None or s.ts_ms - last >= every_ms or n == len(samples) - 1
        if not due and airborne == was:  # a change of mode is pushed at once
            continue
        last = s.ts_ms
        data: dict[str, Any] = {
            "latitude": s.lat,
            "longitude": s.lon,
            "elevation": s.alt_m if s.alt_m is not None else 0.0,
            "height": (s.alt_m or 0.0) + 30.0,  # ellipsoid height: not mapped
            "horizontal_speed": s.speed_mps if s.speed_mps is not None else 0.0,
            "vertical_speed": 0.0,
            "mode_code": DJI_WAYLINE if airborne else DJI_ON_GROUND,
            "position_state": {
                "gps_number": 18,
                "is_fixed": 2 if s.fix == "rtk_fixed" else 0,
                "quality": 5,
                "rtk_number": 20 if s.fix in ("rtk_fixed", "rtk_float") else 0,
            },
        }
        if s.heading_deg is not None:
            data["attitude_head"] = s.heading_deg - 360 if s.heading_deg > 180 else s.heading_deg
        if s.battery_pct is not None:
            data["battery"] = {"capacity_percent": round(s.battery_pct)}
        body = {
            "tid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"osd/{serial}/{s.ts_ms}/t")),
            "bid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"osd/{serial}/{s.ts_ms}/b")),
            "timestamp": s.ts_ms,
            "data": data,
            "gateway": gateway or serial,
        }
        out.append((s.ts_ms, topic, orjson.dumps(body)))
    return out
