"""Synthetic flight logs for tests and benches: a MAVLink ``.tlog`` written with pymavlink's
own encoder, a minimal ArduPilot DataFlash ``.bin`` and a minimal PX4 ``.ulg``.

Each writer returns what it wrote (``LogTruth``): positions with and without a fix, and arm
and disarm times, so a test can compare an import with the truth. The flight is a drone
flying back and forth over a paddy near Đông Triều at a steady speed, in ``sorties`` armed
stretches separated by a minute on the ground (disarmed), after ``no_fix_s`` seconds of
waiting for a GNSS fix.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Final

ORIGIN: Final = (21.0800, 106.5200)
SPEED_MPS: Final = 5.0
LEG_M: Final = 200.0
SWATH_M: Final = 5.0
GROUND_S: Final = 70.0  # on the ground between sorties (longer than the 60 s idle gap)
GPS_EPOCH_MS: Final = 315_964_800_000
LEAP_MS: Final = 18_000  # GPS - UTC since 2017


@dataclass
class LogTruth:
    """What a synthetic log holds."""

    #: (UTC ms, lat, lon) of every position with a fix, in order.
    fixes: list[tuple[int, float, float]] = field(default_factory=list)
    no_fix: int = 0
    arms: list[int] = field(default_factory=list)  # UTC ms
    disarms: list[int] = field(default_factory=list)
    messages: int = 0


def _position(t_s: float) -> tuple[float, float, float]:
    """(lat, lon, heading) of the lawnmower pattern ``t_s`` seconds into the work."""
    dist = t_s * SPEED_MPS
    leg, along = divmod(dist, LEG_M)
    east = along if int(leg) % 2 == 0 else LEG_M - along
    north = leg * SWATH_M
    m_lat = 111_320.0
    m_lon = 111_320.0 * math.cos(math.radians(ORIGIN[0]))
    heading = 90.0 if int(leg) % 2 == 0 else 270.0
    return ORIGIN[0] + north / m_lat, ORIGIN[1] + east / m_lon, heading


def _timeline(
    seconds: float, sorties: int, no_fix_s: float
) -> tuple[list[tuple[float, float]], float]:
    """The armed stretches (start, end) in seconds from the log's start, and the work time."""
    flying = seconds - no_fix_s - (sorties - 1) * GROUND_S - 2.0 * sorties
    each = flying / sorties
    out = []
    t = no_fix_s + 1.0
    for _ in range(sorties):
        out.append((t, t + each))
        t += each + GROUND_S + 2.0
    return out, flying


def write_tlog(  # noqa: PLR0915 - one message stream, written in one place
    out: BinaryIO,
    *,
    start_ms: int,
    seconds: float,
    rate_hz: float = 10.0,
    sorties: int = 1,
    no_fix_s: float = 5.0,
    filler: int = 1,
) -> LogTruth:
    """A ground station's ``.tlog`` of one ArduCopter (MAVLink 2): at ``rate_hz``
    GLOBAL_POSITION_INT, GPS_RAW_INT and ``filler`` times nine more message types a real
    stream carries (ATTITUDE, VFR_HUD, SERVO_OUTPUT_RAW, RC_CHANNELS, RAW_IMU,
    SCALED_PRESSURE, NAV_CONTROLLER_OUTPUT, LOCAL_POSITION_NED, SCALED_IMU2); each second
    HEARTBEAT,
    SYSTEM_TIME and SYS_STATUS. About 11 messages per position with one round of filler;
    more rounds make a bigger file with the same flight."""
    from pymavlink.dialects.v20 import ardupilotmega as mavlink

    mav = mavlink.MAVLink(None, srcSystem=1, srcComponent=1)
    truth = LogTruth()
    armed_spans, _ = _timeline(seconds, sorties, no_fix_s)
    step_ms = round(1000 / rate_hz)
    boot0 = 5_000  # the autopilot booted 5 s before the log starts
    work_s = 0.0
    armed = False
    prev_tick_ms = -step_ms

    def put(t_ms: int, msg: object) -> None:
        out.write(struct.pack(">Q", (start_ms + t_ms) * 1000) + msg.pack(mav))  # type: ignore[attr-defined]
        truth.messages += 1

    for tick in range(int(seconds * 1000) // step_ms):
        t_ms = tick * step_ms
        t_s = t_ms / 1000
        boot = boot0 + t_ms
        utc = start_ms + t_ms
        now_armed = any(a <= t_s < b for a, b in armed_spans)
        if now_armed:
            work_s += (t_ms - prev_tick_ms) / 1000
        prev_tick_ms = t_ms
        if t_ms % 1000 == 0 or now_armed != armed:
            if now_armed != armed:
                (truth.arms if now_armed else truth.disarms).append(utc)
                armed = now_armed
            base_mode = 1 | (128 if armed else 0)
            put(t_ms, mav.heartbeat_encode(2, 3, base_mode, 3 if armed else 0, 4, 3))
            put(t_ms, mav.system_time_encode(utc * 1000, boot))
            put(
                t_ms,
                mav.sys_status_encode(0, 0, 0, 500, 15000, 2000, 80, 0, 0, 0, 0, 0, 0),
            )
        has_fix = t_s >= no_fix_s
        lat, lon, hdg = _position(work_s)
        if has_fix:
            truth.fixes.append((utc, lat, lon))
        else:
            truth.no_fix += 1
        lat_e7 = round(lat * 1e7) if has_fix else 0
        lon_e7 = round(lon * 1e7) if has_fix else 0
        vx = round(SPEED_MPS * 100 * math.cos(math.radians(hdg))) if armed else 0
        vy = round(SPEED_MPS * 100 * math.sin(math.radians(hdg))) if armed else 0
        alt_mm = 3_000 if armed else 0
        put(
            t_ms,
            mav.gps_raw_int_encode(
                boot * 1000, 3 if has_fix else 1, lat_e7, lon_e7, 10_000, 80, 100, 500, 9000, 14
            ),
        )
        put(
            t_ms,
            mav.global_position_int_encode(
                boot, lat_e7, lon_e7, 10_000 + alt_mm, alt_mm, vx, vy, 0, round(hdg * 100)
            ),
        )
        for _ in range(filler):
            put(t_ms, mav.attitude_encode(boot, 0.01, 0.02, math.radians(hdg), 0, 0, 0))
            put(t_ms, mav.vfr_hud_encode(5.0, 5.0, round(hdg), 50, 3.0, 0.0))
            put(t_ms, mav.servo_output_raw_encode(boot * 1000, 0, *([1500] * 8)))
            put(t_ms, mav.rc_channels_encode(boot, 8, *([1500] * 18), 255))
            put(t_ms, mav.raw_imu_encode(boot * 1000, 1, 2, 1000, 0, 0, 0, 100, 200, 300))
            put(t_ms, mav.scaled_pressure_encode(boot, 1013.0, 0.1, 2500))
            put(t_ms, mav.nav_controller_output_encode(0, 0, round(hdg), round(hdg), 10, 0, 0, 0))
            put(t_ms, mav.local_position_ned_encode(boot, 1.0, 2.0, -3.0, 0.1, 0.2, 0.0))
            put(t_ms, mav.scaled_imu2_encode(boot, 1, 2, 1000, 0, 0, 0, 100, 200, 300))
    return truth


def tlog_file(path: Path, **kwargs: object) -> LogTruth:
    """``write_tlog`` into a new file at ``path``."""
    with path.open("wb") as f:
        return write_tlog(f, **kwargs)  # type: ignore[arg-type]


# --- DataFlash


_DF_FMT: Final = struct.Struct("<BB4s16s64s")
#: (id, name, format, columns) of the message types written.
_DF_TYPES: Final = (
    (
        129,
        "GPS",
        "QBBIHBcLLeffffB",
        "TimeUS,I,Status,GMS,GWk,NSats,HDop,Lat,Lng,Alt,Spd,GCrs,VZ,Yaw,U",
    ),
    (130, "EV", "QB", "TimeUS,Id"),
    (131, "POS", "QLLfff", "TimeUS,Lat,Lng,Alt,RelHomeAlt,RelOriginAlt"),
    (132, "IMU", "QBffffff", "TimeUS,I,GyrX,GyrY,GyrZ,AccX,AccY,AccZ"),
)
_DF_STRUCT: Final = {
    "Q": "Q",
    "B": "B",
    "I": "I",
    "H": "H",
    "c": "h",
    "L": "i",
    "e": "i",
    "f": "f",
}


def _df_struct(fmt: str) -> struct.Struct:
    return struct.Struct("<" + "".join(_DF_STRUCT[c] for c in fmt))


def write_dataflash(
    out: BinaryIO, *, start_ms: int, seconds: float, rate_hz: float = 5.0, no_fix_s: float = 3.0
) -> LogTruth:
    """A minimal ArduCopter DataFlash log: FMT for GPS, EV, POS, IMU; GPS and POS at
    ``rate_hz``, IMU at twice that, an EV ARMED after the fix and DISARMED at the end."""
    truth = LogTruth()
    structs = {}
    for type_id, name, fmt, cols in _DF_TYPES:
        s = _df_struct(fmt)
        structs[name] = (type_id, s)
        out.write(
            b"\xa3\x95\x80"
            + _DF_FMT.pack(type_id, 3 + s.size, name.encode(), fmt.encode(), cols.encode())
        )
        truth.messages += 1

    def put(name: str, *values: object) -> None:
        type_id, s = structs[name]
        out.write(b"\xa3\x95" + bytes([type_id]) + s.pack(*values))
        truth.messages += 1

    step_ms = round(1000 / rate_hz)
    arm_s, disarm_s = no_fix_s + 1.0, seconds - 1.0
    boot0_us = 9_000_000
    armed = False
    for tick in range(int(seconds * 1000) // step_ms):
        t_ms = tick * step_ms
        t_s = t_ms / 1000
        time_us = boot0_us + t_ms * 1000
        utc = start_ms + t_ms
        gps_ms = utc + LEAP_MS - GPS_EPOCH_MS
        week, week_ms = divmod(gps_ms, 604_800_000)
        has_fix = t_s >= no_fix_s
        work = max(0.0, min(t_s, disarm_s) - arm_s)
        lat, lon, hdg = _position(work)
        if has_fix:
            truth.fixes.append((utc, lat, lon))
        else:
            truth.no_fix += 1
        if has_fix:
            put(
                "GPS",
                time_us,
                0,
                3,
                week_ms,
                week,
                12,
                80,
                round(lat * 1e7),
                round(lon * 1e7),
                1000,
                SPEED_MPS if armed else 0.0,
                hdg,
                0.0,
                0.0,
                1,
            )
        else:
            put("GPS", time_us, 0, 1, 0, 0, 0, 9999, 0, 0, 0, 0.0, 0.0, 0.0, 0.0, 1)
        put("POS", time_us, round(lat * 1e7), round(lon * 1e7), 10.0, 3.0 if armed else 0.0, 3.0)
        put("IMU", time_us, 0, 0.0, 0.0, 0.0, 0.0, 0.0, -9.8)
        put("IMU", time_us + 50_000, 0, 0.0, 0.0, 0.0, 0.0, 0.0, -9.8)
        if not armed and arm_s <= t_s < disarm_s:
            armed = True
            truth.arms.append(utc)
            put("EV", time_us, 10)
        elif armed and t_s >= disarm_s:
            armed = False
            truth.disarms.append(utc)
            put("EV", time_us, 11)
    return truth


# --- ULog


def write_ulog(
    out: BinaryIO, *, start_ms: int, seconds: float, rate_hz: float = 5.0, no_fix_s: float = 2.0
) -> LogTruth:
    """A minimal PX4 ULog (version 1): formats and subscriptions for
    ``vehicle_gps_position`` and ``vehicle_status``, GPS at ``rate_hz``, arming after the
    fix and disarming one second before the end."""
    truth = LogTruth()
    boot0_us = 20_000_000
    out.write(b"ULog\x01\x12\x35" + bytes([1]) + struct.pack("<Q", boot0_us))

    def msg(kind: bytes, body: bytes) -> None:
        out.write(struct.pack("<HB", len(body), kind[0]) + body)
        truth.messages += 1

    gps_fmt = (
        b"vehicle_gps_position:uint64_t timestamp;uint64_t time_utc_usec;int32_t lat;"
        b"int32_t lon;int32_t alt;float vel_m_s;float cog_rad;uint8_t fix_type;"
        b"uint8_t satellites_used;uint8_t[6] _padding0;"
    )
    status_fmt = b"vehicle_status:uint64_t timestamp;uint8_t arming_state;uint8_t[7] _padding0;"
    msg(b"F", gps_fmt)
    msg(b"F", status_fmt)
    msg(b"A", struct.pack("<BH", 0, 1) + b"vehicle_gps_position")
    msg(b"A", struct.pack("<BH", 0, 2) + b"vehicle_status")
    step_ms = round(1000 / rate_hz)
    arm_s, disarm_s = no_fix_s + 1.0, seconds - 1.0
    armed = False
    for tick in range(int(seconds * 1000) // step_ms):
        t_ms = tick * step_ms
        t_s = t_ms / 1000
        ts_us = boot0_us + t_ms * 1000
        utc = start_ms + t_ms
        now_armed = arm_s <= t_s < disarm_s
        if now_armed != armed or tick == 0:
            if now_armed != armed:
                (truth.arms if now_armed else truth.disarms).append(utc)
            armed = now_armed
            msg(b"D", struct.pack("<HQB", 2, ts_us, 2 if armed else 1))
        has_fix = t_s >= no_fix_s
        work = max(0.0, min(t_s, disarm_s) - arm_s)
        lat, lon, hdg = _position(work)
        if has_fix:
            truth.fixes.append((utc, lat, lon))
        else:
            truth.no_fix += 1
        body = struct.pack(
            "<HQQiiiffBB",
            1,
            ts_us,
            utc * 1000 if has_fix else 0,
            round(lat * 1e7) if has_fix else 0,
            round(lon * 1e7) if has_fix else 0,
            10_000,
            SPEED_MPS if armed else 0.0,
            math.radians(hdg),
            3 if has_fix else 0,
            12 if has_fix else 0,
        )
        msg(b"D", body)
    return truth
