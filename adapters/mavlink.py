"""MAVLink (as MAVProxy's ``mqtt`` module publishes it) to wire v1: pure and I/O-free.

MAVProxy publishes each MAVLink message as JSON on ``{prefix}/{MSGTYPE}`` with pymavlink's
field names in raw MAVLink units, QoS 0, and no header (no sysid, no packet sequence).
``MavlinkTranslator`` is fed those message dicts one at a time, with the time they were
received, and keeps the little state a translation needs (clock anchor, fix, armed state,
spray channels, battery); ``MavproxyTopics`` reads the topic. docs/integrations.md says
what is mapped and what is lost.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import orjson

from adapters._common import (
    BAD_JSON,
    BAD_TOPIC,
    DUPLICATE,
    EMPTY,
    NO_FIX,
    NOT_AN_OBJECT,
    OUT_OF_RANGE,
    UNKNOWN_DEVICE,
    WIRE_VERSION,
    AdapterRejection,
    ConfigError,
    DroneRef,
    Invalid,
    Translation,
    WireObject,
    check_position,
    check_ts,
    integer,
    internal_error,
    rejection,
    show,
)

# --- MAVLink constants (common.xml)

MAV_MODE_FLAG_SAFETY_ARMED: Final = 128
MAV_MODE_FLAG_CUSTOM_MODE_ENABLED: Final = 1
MAV_AUTOPILOT_ARDUPILOTMEGA: Final = 3
MAV_AUTOPILOT_INVALID: Final = 8
MAV_AUTOPILOT_PX4: Final = 12
MAV_TYPE_GCS: Final = 6
#: STATUSTEXT severities EMERGENCY (0) .. ERROR (3) become ``error`` events.
MAX_ERROR_SEVERITY: Final = 3
UINT16_UNKNOWN: Final = 65535

#: GPS_RAW_INT.fix_type -> wire ``fix``; 0 (no GPS) and 1 (no fix) are rejected ``no_fix``.
#: STATIC (7) is reported as 3d and PPP (8) as dgps: neither is an RTK fix.
FIX_TYPES: Final[dict[int, str]] = {
    2: "2d",
    3: "3d",
    4: "dgps",
    5: "rtk_float",
    6: "rtk_fixed",
    7: "3d",
    8: "dgps",
}

#: ArduPilot's AUTO custom_mode by vehicle (HEARTBEAT.type): copters/heli/sub 3, plane 10,
#: rover/boat 10. Quadplanes report type 1 or one of the VTOL types 19..25.
_ARDUPILOT_AUTO: Final[dict[int, int]] = {
    **dict.fromkeys((2, 3, 4, 13, 14, 15, 29, 12), 3),
    **dict.fromkeys((1, 19, 20, 21, 22, 23, 24, 25), 10),
    **dict.fromkeys((10, 11), 10),
}
#: PX4 packs main mode AUTO (4) in bits 16..23 and sub mode MISSION (4) in bits 24..31.
_PX4_AUTO_MISSION: Final = (4 << 16) | (4 << 24)

_MSGTYPE_RE: Final = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_RULE_RE: Final = re.compile(r"(servo|rc)([0-9]{1,2})>([0-9]{1,5})")
_RULE_SOURCE: Final = {"servo": "SERVO_OUTPUT_RAW servo1..16", "rc": "RC_CHANNELS chan1..18"}


# --- spray rules


@dataclass(frozen=True, slots=True)
class SprayRule:
    """When a MAVLink drone sprays: ``servoN>PWM``, ``rcN>PWM`` or ``auto``.

    ``servoN>PWM``: SERVO_OUTPUT_RAW ``servoN_raw`` above PWM (N 1..16);
    ``rcN>PWM``: RC_CHANNELS ``chanN_raw`` above PWM (N 1..18; ArduPilot sprayers commonly
    use RC7 > 1500); ``auto``: armed and in an AUTO mission. A PWM of 0 or 65535 means
    "channel unused" and never sprays.
    """

    kind: Literal["servo", "rc", "auto"]
    channel: int = 0
    above_pwm: int = 0

    def __post_init__(self) -> None:
        if self.kind == "auto":
            if self.channel or self.above_pwm:
                raise ConfigError("spray rule 'auto' takes no channel or PWM")
            return
        if self.kind not in ("servo", "rc"):
            raise ConfigError(f"spray rule kind {self.kind!r} is not servo, rc or auto")
        top = 16 if self.kind == "servo" else 18
        if not 1 <= self.channel <= top:
            raise ConfigError(
                f"spray rule {self.kind}{self.channel}: channel outside 1..{top} "
                f"({_RULE_SOURCE[self.kind]})"
            )
        if not 1 <= self.above_pwm <= 65534:
            raise ConfigError(
                f"spray rule {self.kind}{self.channel}>{self.above_pwm}: PWM outside 1..65534 "
                "(typically 1000..2000 µs)"
            )

    @classmethod
    def parse(cls, text: str) -> SprayRule:
        """``"rc7>1500"``, ``"servo9>1600"`` or ``"auto"`` (case and spaces ignored)."""
        if not isinstance(text, str):
            raise ConfigError(f"spray rule {text!r} is not text")
        compact = "".join(text.split()).lower()
        if compact == "auto":
            return cls("auto")
        m = _RULE_RE.fullmatch(compact)
        if m is None:
            raise ConfigError(
                f"spray rule {text!r} is not servoN>PWM, rcN>PWM or auto "
                "(e.g. rc7>1500: spraying while RC channel 7 is above 1500 µs)"
            )
        kind: Literal["servo", "rc"] = "servo" if m.group(1) == "servo" else "rc"
        return cls(kind, int(m.group(2)), int(m.group(3)))

    def __str__(self) -> str:
        return "auto" if self.kind == "auto" else f"{self.kind}{self.channel}>{self.above_pwm}"


def parse_spray_rules(text: str) -> tuple[SprayRule, ...]:
    """A comma-separated rule set, e.g. ``"auto,rc7>1500"``; all must hold to spray."""
    parts = [p for p in text.split(",") if p.strip()] if isinstance(text, str) else [text]
    return tuple(SprayRule.parse(p) for p in parts)


# --- topics


@dataclass(frozen=True, slots=True)
class MavlinkTopic:
    """A MAVProxy topic read: whose drone, which MAVLink message type."""

    coop: str
    drone: str
    msgtype: str


@dataclass(frozen=True, slots=True)
class MavproxyTopics:
    """The topic layout a ground station's ``mqtt set prefix`` produces.

    ``prefix`` is what MAVProxy was given, with ``{coop}`` and ``{drone}`` standing for
    whole segments; MAVProxy appends ``/{MSGTYPE}``. A prefix without ``{coop}`` or
    ``{drone}`` names them with ``coop=``/``drone=`` (MAVProxy's default empty prefix makes
    topics like ``/GLOBAL_POSITION_INT``: ``MavproxyTopics("", coop="c", drone="d")``).
    """

    prefix: str = "agri/mavlink/{coop}/{drone}"
    coop: str | None = None
    drone: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.prefix, str):
            raise ConfigError(f"MAVProxy prefix {self.prefix!r} is not text")
        segments = self.prefix.split("/")
        for name in ("coop", "drone"):
            holder = "{" + name + "}"
            count = segments.count(holder)
            fixed = getattr(self, name)
            if count > 1:
                raise ConfigError(f"MAVProxy prefix {self.prefix!r} has {holder} twice")
            if count == 0 and fixed is None:
                raise ConfigError(
                    f"MAVProxy prefix {self.prefix!r} has no {holder} segment: give {name}="
                )
            if count == 1 and fixed is not None:
                raise ConfigError(
                    f"MAVProxy prefix {self.prefix!r} has {holder}; {name}={fixed!r} would be "
                    "ignored"
                )
        DroneRef(self.coop or "x", self.drone or "x")  # validates fixed ids
        for seg in segments:
            if seg not in ("{coop}", "{drone}") and any(c in seg for c in "+#{}"):
                raise ConfigError(
                    f"MAVProxy prefix {self.prefix!r}: segment {seg!r} may not contain + # {{ }}"
                )

    @property
    def subscription(self) -> str:
        """The MQTT filter that receives every message type of every matching drone."""
        parts = ["+" if s in ("{coop}", "{drone}") else s for s in self.prefix.split("/")]
        return "/".join([*parts, "+"])

    def topic(self, coop: str, drone: str, msgtype: str) -> str:
        """The topic MAVProxy publishes ``msgtype`` on for this drone (for tests, simulators)."""
        prefix = self.prefix.replace("{coop}", coop).replace("{drone}", drone)
        return f"{prefix}/{msgtype}"

    def parse(self, topic: str) -> MavlinkTopic | AdapterRejection:
        """The drone and message type of ``topic``, or a ``bad_topic`` rejection."""
        pattern = self.prefix.split("/")
        parts = topic.split("/")
        if len(parts) != len(pattern) + 1:
            return self._bad(topic)
        ids: dict[str, str | None] = {"coop": self.coop, "drone": self.drone}
        for want, got in zip(pattern, parts, strict=False):
            if want in ("{coop}", "{drone}"):
                if _ID.fullmatch(got) is None:
                    return AdapterRejection(
                        BAD_TOPIC,
                        f"{want[1:-1]} id {show(got)} in topic {show(topic)} does not match "
                        "[A-Za-z0-9_-]{1,64}",
                    )
                ids[want[1:-1]] = got
            elif want != got:
                return self._bad(topic)
        msgtype = parts[-1]
        if _MSGTYPE_RE.fullmatch(msgtype) is None:
            return AdapterRejection(
                BAD_TOPIC, f"message type {show(msgtype)} in topic {show(topic)} is not MAVLink's"
            )
        coop, drone = ids["coop"], ids["drone"]
        assert coop is not None  # guaranteed by __post_init__
        assert drone is not None
        return MavlinkTopic(coop, drone, msgtype)

    def _bad(self, topic: str) -> AdapterRejection:
        return AdapterRejection(
            BAD_TOPIC, f"topic {show(topic)} is not {self.prefix}/{{MSGTYPE}}", b""
        )


_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


# --- the translator


@dataclass(frozen=True, slots=True)
class MavlinkDrone:
    """How one MAVLink drone is translated: who it is, when it sprays, where flow comes from.

    ``flow_battery_instance``: the BATTERY_STATUS ``id`` of a battery monitor configured as
    a fuel-flow sensor (ArduPilot ``BATTn_MONITOR = 11``, which reports litres per hour as
    amperes and millilitres used as mAh): ``flow_lpm`` = current_battery (cA) / 100 / 60 and,
    with ``tank_capacity_l``, ``tank_l`` = capacity - current_consumed (mAh = mL) / 1000.
    ``battery_instance``: the BATTERY_STATUS ``id`` whose charge is ``battery_pct`` (SYS_STATUS
    reports the first battery as well).

    Timing: samples are timed by SYSTEM_TIME; before the first one of a boot they are held
    (at most ``hold_max_samples`` or ``hold_max_ms`` of receive time), then timed by their
    receive time. ``time_boot_ms`` stepping back more than ``reboot_backstep_ms`` is a reboot.
    ``position_interval_ms`` is the GLOBAL_POSITION_INT period for gap estimates (``None``:
    learnt as the median of recent intervals).
    """

    coop: str
    drone: str
    spray: tuple[SprayRule, ...] = ()
    flow_battery_instance: int | None = None
    tank_capacity_l: float | None = None
    battery_instance: int = 0
    hold_max_samples: int = 50
    hold_max_ms: int = 5_000
    reboot_backstep_ms: int = 5_000
    position_interval_ms: int | None = None

    def __post_init__(self) -> None:
        DroneRef(self.coop, self.drone)
        if not all(isinstance(r, SprayRule) for r in self.spray):
            raise ConfigError(f"spray {self.spray!r} is not a tuple of SprayRule")
        if self.flow_battery_instance is not None and not 0 <= self.flow_battery_instance <= 255:
            raise ConfigError(f"flow_battery_instance {self.flow_battery_instance} not in 0..255")
        if self.flow_battery_instance is not None and (
            self.flow_battery_instance == self.battery_instance
        ):
            raise ConfigError(
                f"battery instance {self.battery_instance} cannot also be the flow sensor"
            )
        if self.tank_capacity_l is not None and not 0 < self.tank_capacity_l < 10_000:
            raise ConfigError(f"tank_capacity_l {self.tank_capacity_l} not in (0, 10000) L")
        if self.tank_capacity_l is not None and self.flow_battery_instance is None:
            raise ConfigError("tank_capacity_l needs flow_battery_instance (the flow sensor)")
        for name in ("hold_max_samples", "hold_max_ms", "reboot_backstep_ms"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} {getattr(self, name)} is negative")
        if self.position_interval_ms is not None and self.position_interval_ms <= 0:
            raise ConfigError(f"position_interval_ms {self.position_interval_ms} is not > 0")


@dataclass(slots=True)
class MavlinkCounts:
    """What a translator has seen so far (a snapshot is copied out by ``counts``)."""

    messages: int = 0
    samples: int = 0
    events: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    ignored: int = 0  # message types that carry nothing v1 maps, e.g. VFR_HUD
    timed_by_receive: int = 0  # samples and events timed by receive time (no SYSTEM_TIME)
    reboots: int = 0
    position_gaps: int = 0  # GLOBAL_POSITION_INT intervals over twice the nominal period
    positions_missing: int = 0  # positions estimated lost in those gaps
    seq_gaps: int = 0  # MAVLink packet-sequence gaps (only when packet_seq is given)
    seq_lost: int = 0


@dataclass(slots=True)
class _Held:
    """A sample or event waiting for its boot's SYSTEM_TIME."""

    obj: WireObject  # without ts
    is_event: bool
    boot_ms: int | None
    received_ms: int


_HANDLED: Final = frozenset(
    (
        "GLOBAL_POSITION_INT",
        "SYSTEM_TIME",
        "GPS_RAW_INT",
        "HEARTBEAT",
        "STATUSTEXT",
        "SYS_STATUS",
        "BATTERY_STATUS",
        "SERVO_OUTPUT_RAW",
        "RC_CHANNELS",
    )
)


class MavlinkTranslator:
    """One drone's MAVLink message stream to wire-v1 samples and events.

    Stateful but pure: feed it decoded message dicts in arrival order with their receive
    time (epoch ms UTC); each call returns what became ready. Never raises for bad input.
    """

    def __init__(self, drone: MavlinkDrone) -> None:
        self.drone = drone
        self._c = MavlinkCounts()
        self._offset_ms: int | None = None  # unix ms - time_boot_ms, from SYSTEM_TIME
        self._boot_ms: int | None = None  # latest time_boot_ms of this boot
        self._boot_fell_back = False  # this boot is timed by receive time (notice sent)
        self._held: list[_Held] = []
        self._fix_type: int | None = None
        self._armed: bool | None = None
        self._auto = False
        self._servo: dict[int, int] = {}
        self._rc: dict[int, int] = {}
        self._battery_pct: float | None = None
        self._flow_lpm: float | None = None
        self._tank_l: float | None = None
        self._last_pos_boot_ms: int | None = None
        self._intervals: deque[int] = deque(maxlen=15)
        self._recent_boot_ms: deque[int] = deque(maxlen=64)
        self._last_seq: int | None = None
        self._spill = EMPTY  # released while handling a message, returned with its result

    @property
    def counts(self) -> MavlinkCounts:
        """A copy of the counters (rejections by reason, gaps, receive-timed items...)."""
        c = self._c
        return MavlinkCounts(
            c.messages,
            c.samples,
            c.events,
            dict(c.rejected),
            c.ignored,
            c.timed_by_receive,
            c.reboots,
            c.position_gaps,
            c.positions_missing,
            c.seq_gaps,
            c.seq_lost,
        )

    # --- entry points

    def feed_payload(
        self, msgtype: str, payload: bytes, received_ms: int, packet_seq: int | None = None
    ) -> Translation:
        """A MAVProxy JSON payload: parsed, then as ``feed``."""
        try:
            msg = orjson.loads(payload)
        except (orjson.JSONDecodeError, TypeError) as exc:
            return self._rejected(
                AdapterRejection(BAD_JSON, f"{msgtype}: payload is not JSON: {exc}"[:300])
            )
        return self.feed(msgtype, msg, received_ms, packet_seq, payload)

    def feed(
        self,
        msgtype: str,
        msg: object,
        received_ms: int,
        packet_seq: int | None = None,
        raw: object = None,
    ) -> Translation:
        """One decoded MAVLink message (pymavlink field names) received at ``received_ms``.

        ``packet_seq`` is the MAVLink header sequence (0..255) where the source has it (a
        pymavlink connection does; MAVProxy's JSON does not): gaps in it are counted.
        """
        self._c.messages += 1
        payload = raw if raw is not None else msg
        out = EMPTY
        try:
            msg = _checked_input(msgtype, msg, received_ms)
            if packet_seq is not None:
                self._count_seq(packet_seq)
            out = self._release_if_stale(received_ms)
            if msgtype in _HANDLED:
                out += self._handle(msgtype, msg, received_ms)
            else:
                self._c.ignored += 1
        except Invalid as exc:  # what was released before the problem is kept
            out += self._rejected(rejection(exc, payload))
        except Exception as exc:  # noqa: BLE001 - no message may crash the caller
            out += self._rejected(internal_error(exc, payload))
        spill, self._spill = self._spill, EMPTY
        return spill + out if spill else out

    def release_stale(self, now_ms: int) -> Translation:
        """Time held items by their receive time if they have waited ``hold_max_ms`` by
        ``now_ms``: for a live stream that went quiet before its SYSTEM_TIME (no later
        message comes to release them)."""
        return self._release_if_stale(now_ms)

    def flush(self) -> Translation:
        """Release held items (end of a stream or of a file) timed by receive time."""
        return self._fall_back("the stream ended before SYSTEM_TIME") if self._held else EMPTY

    # --- dispatch

    def _handle(  # noqa: PLR0911 - one branch per MAVLink message type
        self, msgtype: str, msg: Mapping[str, Any], received_ms: int
    ) -> Translation:
        if msgtype == "GLOBAL_POSITION_INT":
            return self._position(msg, received_ms)
        if msgtype == "SYSTEM_TIME":
            return self._system_time(msg)
        if msgtype == "GPS_RAW_INT":
            self._fix_type = integer(msg, "fix_type", "GPS_RAW_INT: ")
            return EMPTY
        if msgtype == "HEARTBEAT":
            return self._heartbeat(msg, received_ms)
        if msgtype == "STATUSTEXT":
            return self._statustext(msg, received_ms)
        if msgtype == "SERVO_OUTPUT_RAW":
            self._channels(msg, "servo", "_raw", 16, self._servo)
            return EMPTY
        if msgtype == "RC_CHANNELS":
            self._note_boot(msg, "RC_CHANNELS")
            self._channels(msg, "chan", "_raw", 18, self._rc)
            return EMPTY
        if msgtype == "SYS_STATUS":
            self._battery(msg, "SYS_STATUS")
            return EMPTY
        return self._battery_status(msg)

    # --- clock

    def _note_boot(self, msg: Mapping[str, Any], where: str) -> int:
        """``time_boot_ms`` of ``msg``; a big step back starts a new boot."""
        boot_ms = integer(msg, "time_boot_ms", f"{where}: ")
        if not 0 <= boot_ms <= 0xFFFFFFFF:
            raise Invalid(OUT_OF_RANGE, f"{where}: time_boot_ms {boot_ms} outside uint32")
        last = self._boot_ms
        if last is not None and boot_ms + self.drone.reboot_backstep_ms < last:
            if self._held:  # the old boot's items must not take the new boot's anchor
                self._spill += self._fall_back("the autopilot rebooted before SYSTEM_TIME")
            self._reboot()
        if self._boot_ms is None or boot_ms > self._boot_ms:
            self._boot_ms = boot_ms
        return boot_ms

    def _reboot(self) -> None:
        self._c.reboots += 1
        self._offset_ms = None
        self._boot_ms = None
        self._boot_fell_back = False
        self._last_pos_boot_ms = None
        self._intervals.clear()
        self._recent_boot_ms.clear()

    def _system_time(self, msg: Mapping[str, Any]) -> Translation:
        unix_us = integer(msg, "time_unix_usec", "SYSTEM_TIME: ")
        boot_ms = self._note_boot(msg, "SYSTEM_TIME")
        if unix_us <= 0 or unix_us // 1000 < 946_684_800_000:
            return EMPTY  # GPS time not known yet (time_unix_usec 0): no anchor
        self._offset_ms = unix_us // 1000 - boot_ms
        if not self._held:
            return EMPTY
        held, self._held = self._held, []
        samples: list[WireObject] = []
        events: list[WireObject] = []
        for h in held:
            if h.boot_ms is None:
                ts = h.received_ms
                self._c.timed_by_receive += 1
            else:
                ts = h.boot_ms + self._offset_ms
            (events if h.is_event else samples).append({"ts": ts, **h.obj})
        return self._emit(samples, events, held[-1].received_ms)

    def _timed(
        self, obj: WireObject, boot_ms: int | None, received_ms: int, *, is_event: bool
    ) -> Translation:
        """Time ``obj`` now if the boot is anchored (or fell back), else hold it."""
        if self._offset_ms is not None and boot_ms is not None:
            ts = boot_ms + self._offset_ms
        elif self._boot_fell_back or (boot_ms is None and not self._held):
            ts = received_ms
            self._c.timed_by_receive += 1
        else:
            self._held.append(_Held(obj, is_event, boot_ms, received_ms))
            return self._release_if_stale(received_ms)
        if is_event:
            return self._emit([], [{"ts": ts, **obj}], received_ms)
        return self._emit([{"ts": ts, **obj}], [], received_ms)

    def _release_if_stale(self, received_ms: int) -> Translation:
        if not self._held:
            return EMPTY
        d = self.drone
        if len(self._held) > d.hold_max_samples or (
            received_ms - self._held[0].received_ms >= d.hold_max_ms
        ):
            return self._fall_back(
                f"no SYSTEM_TIME within {d.hold_max_ms} ms or {d.hold_max_samples} samples"
            )
        return EMPTY

    def _fall_back(self, why: str) -> Translation:
        """Time every held item by its receive time, and say so once for this boot."""
        held, self._held = self._held, []
        self._boot_fell_back = True
        samples = [{"ts": h.received_ms, **h.obj} for h in held if not h.is_event]
        events = [{"ts": h.received_ms, **h.obj} for h in held if h.is_event]
        self._c.timed_by_receive += len(held)
        notice = (
            f"{self.drone.coop}/{self.drone.drone}: {why}: {len(held)} samples/events timed "
            "by receive time (the autopilot clock is not anchored to UTC yet)"
        )
        out = self._emit(samples, events, held[-1].received_ms)
        return Translation(out.samples, out.events, out.rejections, (*out.notices, notice))

    def _emit(
        self, samples: list[WireObject], events: list[WireObject], received_ms: int
    ) -> Translation:
        """Final check of the timestamps against the wire's limits."""
        good_s: list[WireObject] = []
        good_e: list[WireObject] = []
        bad: list[AdapterRejection] = []
        for objs, good in ((samples, good_s), (events, good_e)):
            for obj in objs:
                try:
                    check_ts(obj["ts"], received_ms)
                    good.append(obj)
                except Invalid as exc:
                    bad.append(rejection(exc, obj))
        self._c.samples += len(good_s)
        self._c.events += len(good_e)
        for r in bad:
            self._c.rejected[r.reason] = self._c.rejected.get(r.reason, 0) + 1
        return Translation(tuple(good_s), tuple(good_e), tuple(bad))

    def _rejected(self, r: AdapterRejection) -> Translation:
        self._c.rejected[r.reason] = self._c.rejected.get(r.reason, 0) + 1
        return Translation(rejections=(r,))

    # --- messages

    def _position(self, msg: Mapping[str, Any], received_ms: int) -> Translation:
        where = "GLOBAL_POSITION_INT: "
        boot_ms = self._note_boot(msg, "GLOBAL_POSITION_INT")
        self._count_interval(boot_ms)
        lat_e7 = integer(msg, "lat", where)
        lon_e7 = integer(msg, "lon", where)
        rel_mm = integer(msg, "relative_alt", where)
        vx = integer(msg, "vx", where)
        vy = integer(msg, "vy", where)
        hdg = integer(msg, "hdg", where)
        lat, lon = lat_e7 / 1e7, lon_e7 / 1e7
        check_position(lat, lon, where)
        if self._fix_type is not None and self._fix_type < 2:
            raise Invalid(NO_FIX, f"{where}GPS_RAW_INT fix_type {self._fix_type} (no fix)")
        if boot_ms in self._recent_boot_ms:
            raise Invalid(DUPLICATE, f"{where}time_boot_ms {boot_ms} already translated")
        self._recent_boot_ms.append(boot_ms)
        obj: WireObject = {
            "lat": lat,
            "lon": lon,
            "spraying": self._spraying(),
            "alt_m": rel_mm / 1000.0,
            "speed_mps": math.hypot(vx, vy) / 100.0,
        }
        if 0 <= hdg < 36000:
            obj["heading_deg"] = hdg / 100.0
        if self._battery_pct is not None:
            obj["battery_pct"] = self._battery_pct
        if self._flow_lpm is not None:
            obj["flow_lpm"] = self._flow_lpm
        if self._tank_l is not None:
            obj["tank_l"] = self._tank_l
        fix = FIX_TYPES.get(self._fix_type) if self._fix_type is not None else None
        if fix is not None:
            obj["fix"] = fix
        return self._timed(obj, boot_ms, received_ms, is_event=False)

    def _heartbeat(self, msg: Mapping[str, Any], received_ms: int) -> Translation:
        where = "HEARTBEAT: "
        autopilot = integer(msg, "autopilot", where)
        vtype = integer(msg, "type", where)
        if autopilot == MAV_AUTOPILOT_INVALID or vtype == MAV_TYPE_GCS:
            self._c.ignored += 1  # a ground station's or a peripheral's heartbeat
            return EMPTY
        base_mode = integer(msg, "base_mode", where)
        custom_mode = integer(msg, "custom_mode", where)
        armed = bool(base_mode & MAV_MODE_FLAG_SAFETY_ARMED)
        self._auto = armed and _is_auto(autopilot, vtype, base_mode, custom_mode)
        was, self._armed = self._armed, armed
        if was is None or was == armed:
            return EMPTY
        event: WireObject = {
            "v": WIRE_VERSION,
            "type": "takeoff" if armed else "landing",
            "source": "mavlink_armed" if armed else "mavlink_disarmed",
            "custom_mode": custom_mode,
        }
        return self._timed(event, self._boot_ms, received_ms, is_event=True)

    def _statustext(self, msg: Mapping[str, Any], received_ms: int) -> Translation:
        severity = integer(msg, "severity", "STATUSTEXT: ")
        if severity > MAX_ERROR_SEVERITY:
            return EMPTY
        text = msg.get("text")
        if not isinstance(text, str):
            raise Invalid("wrong_type", f"STATUSTEXT: text {show(text)} is not a string")
        event: WireObject = {
            "v": WIRE_VERSION,
            "type": "error",
            "source": "mavlink_statustext",
            "severity": severity,
            "message": text[:200],
        }
        return self._timed(event, self._boot_ms, received_ms, is_event=True)

    def _channels(
        self, msg: Mapping[str, Any], stem: str, tail: str, top: int, into: dict[int, int]
    ) -> None:
        for n in range(1, top + 1):
            value = msg.get(f"{stem}{n}{tail}")
            if value is not None:
                into[n] = integer(msg, f"{stem}{n}{tail}", f"{stem} channels: ")

    def _battery(self, msg: Mapping[str, Any], where: str) -> None:
        remaining = integer(msg, "battery_remaining", f"{where}: ")
        self._battery_pct = float(remaining) if 0 <= remaining <= 100 else None

    def _battery_status(self, msg: Mapping[str, Any]) -> Translation:
        where = "BATTERY_STATUS: "
        instance = integer(msg, "id", where)
        if instance == self.drone.battery_instance:
            self._battery(msg, "BATTERY_STATUS")
        elif instance == self.drone.flow_battery_instance:
            current_ca = integer(msg, "current_battery", where)
            self._flow_lpm = current_ca / 100.0 / 60.0 if current_ca >= 0 else None
            capacity = self.drone.tank_capacity_l
            if capacity is not None:
                used_ml = integer(msg, "current_consumed", where)
                self._tank_l = max(0.0, capacity - used_ml / 1000.0) if used_ml >= 0 else None
        return EMPTY

    # --- derived state

    def _spraying(self) -> bool:
        rules = self.drone.spray
        if not rules:
            return False
        for rule in rules:
            if rule.kind == "auto":
                ok = self._auto
            else:
                pwm = (self._servo if rule.kind == "servo" else self._rc).get(rule.channel, 0)
                ok = pwm != UINT16_UNKNOWN and pwm > rule.above_pwm
            if not ok:
                return False
        return True

    def _count_interval(self, boot_ms: int) -> None:
        last, self._last_pos_boot_ms = self._last_pos_boot_ms, boot_ms
        if last is None or boot_ms <= last:
            return
        interval = boot_ms - last
        nominal = self.drone.position_interval_ms
        if nominal is None and len(self._intervals) >= 5:
            nominal = int(statistics.median(self._intervals))
        self._intervals.append(interval)
        if nominal is not None and nominal > 0 and interval > 2 * nominal:
            self._c.position_gaps += 1
            self._c.positions_missing += round(interval / nominal) - 1

    def _count_seq(self, seq: int) -> None:
        if type(seq) is not int or not 0 <= seq <= 255:
            raise Invalid(OUT_OF_RANGE, f"packet_seq {show(seq)} outside 0..255")
        last, self._last_seq = self._last_seq, seq
        if last is None:
            return
        lost = (seq - last - 1) % 256
        if lost:
            self._c.seq_gaps += 1
            self._c.seq_lost += lost


def _is_auto(autopilot: int, vtype: int, base_mode: int, custom_mode: int) -> bool:
    """Whether a HEARTBEAT says "flying a mission" (ArduPilot AUTO, PX4 AUTO.MISSION)."""
    if not base_mode & MAV_MODE_FLAG_CUSTOM_MODE_ENABLED:
        return False
    if autopilot == MAV_AUTOPILOT_ARDUPILOTMEGA:
        auto = _ARDUPILOT_AUTO.get(vtype)
        return auto is not None and custom_mode == auto
    if autopilot == MAV_AUTOPILOT_PX4:
        return custom_mode & 0xFFFF0000 == _PX4_AUTO_MISSION
    return False


def _checked_input(msgtype: str, msg: object, received_ms: object) -> Mapping[str, Any]:
    """``msg`` as a mapping, if it and the receive time are usable at all."""
    if type(received_ms) is not int:
        raise Invalid("wrong_type", f"received_ms {show(received_ms)} is not epoch ms as int")
    if not isinstance(msg, Mapping):
        raise Invalid(NOT_AN_OBJECT, f"{show(msgtype)}: message is not a JSON object")
    return msg


class MavproxyFleet:
    """The MAVProxy path of the ingest worker, minus the I/O: topic + payload in, the drone's
    translation out. One translator per registered drone, made on its first message."""

    def __init__(
        self, topics: MavproxyTopics, drones: Mapping[tuple[str, str], MavlinkDrone]
    ) -> None:
        for key, drone in drones.items():
            if (drone.coop, drone.drone) != key:
                raise ConfigError(f"drone {key} is configured as {drone.coop}/{drone.drone}")
        self.topics = topics
        self._drones = dict(drones)
        self._translators: dict[tuple[str, str], MavlinkTranslator] = {}

    def feed(
        self, topic: str, payload: bytes, received_ms: int
    ) -> tuple[MavlinkTopic | None, Translation]:
        """One MQTT message; an unparseable topic or unregistered drone is a rejection."""
        parsed = self.topics.parse(topic)
        if isinstance(parsed, AdapterRejection):
            return None, Translation(rejections=(parsed,))
        key = (parsed.coop, parsed.drone)
        translator = self._translators.get(key)
        if translator is None:
            drone = self._drones.get(key)
            if drone is None:
                detail = (
                    f"drone {parsed.coop}/{parsed.drone} has no MAVLink configuration "
                    "(register it: agridrone drones add ... --mavlink-spray RULE)"
                )
                return parsed, Translation(rejections=(AdapterRejection(UNKNOWN_DEVICE, detail),))
            translator = self._translators[key] = MavlinkTranslator(drone)
        return parsed, translator.feed_payload(parsed.msgtype, payload, received_ms)

    def translator(self, coop: str, drone: str) -> MavlinkTranslator | None:
        """The translator of a drone that has sent something (its counts, its flush)."""
        return self._translators.get((coop, drone))
