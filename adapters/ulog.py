"""PX4 ULog flight logs (``.ulg``) to wire v1, through pyulog.

pyulog parses the file and keeps, as arrays, only the topics asked for (GPS, vehicle
status, battery), so memory grows with those topics (tens of bytes per GPS fix), not with
the file: a 100 MB log of which 2 MB is GPS needs about that. It reads the whole file
before the first sample comes out, so progress jumps from 0 to the end.

| ULog topic | wire v1 |
|---|---|
| ``vehicle_gps_position`` / ``sensor_gps``: ``time_utc_usec`` (else boot time + offset) | ``ts`` |
| ``lat``, ``lon`` (1e-7 deg) or ``latitude_deg``, ``longitude_deg`` | ``lat``, ``lon`` |
| ``vel_m_s``, ``cog_rad``, ``fix_type`` | ``speed_mps``, ``heading_deg``, ``fix`` |
| ``fix_type`` < 2, or 0,0 | rejected ``no_fix`` |
| ``vehicle_status.arming_state`` to / from 2 (armed) | ``takeoff`` / ``landing`` events |
| ``battery_status.remaining`` (0..1) | ``battery_pct`` |
| spray ``all`` / ``none`` (ULog logs no sprayer channel this reader maps) | ``spraying`` |

Altitude is not mapped (the GPS altitude is above sea level, not above the ground).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, BinaryIO, Final

from adapters._common import (
    BAD_TIMESTAMP,
    DUPLICATE,
    NO_FIX,
    WIRE_VERSION,
    AdapterRejection,
    FormatError,
    Invalid,
    Translation,
    WireObject,
    check_position,
    check_ts,
    rejection,
)
from adapters.flightlog import LogKind, LogProblem, Progress, ReadState
from adapters.mavlink import FIX_TYPES

GPS_TOPICS: Final = ("vehicle_gps_position", "sensor_gps")
STATUS_TOPIC: Final = "vehicle_status"
BATTERY_TOPIC: Final = "battery_status"
ARMED: Final = 2
_FAR_FUTURE_MS: Final = 4_102_444_800_000


class UlogReader:
    """A PX4 ULog as translations (module doc)."""

    kind: Final = LogKind.ULOG

    def __init__(
        self, stream: BinaryIO, *, everything: bool = False, progress: Progress | None = None
    ) -> None:
        self.state = ReadState()
        self._stream = stream
        self._everything = everything
        self._progress = progress

    def __iter__(self) -> Iterator[Translation]:
        from pyulog import ULog

        start = self._stream.tell()
        end = self._stream.seek(0, 2)
        self._stream.seek(start)
        try:
            ulog = ULog(
                self._stream,
                [*GPS_TOPICS, STATUS_TOPIC, BATTERY_TOPIC],
                disable_str_exceptions=True,
            )
        except Exception as exc:  # noqa: BLE001 - pyulog raises bare exceptions on bad files
            raise FormatError(f"the ULog file cannot be read: {exc}") from None
        self.state.bytes_read = end - start
        if self._progress is not None:
            self._progress(end - start)
        if getattr(ulog, "file_corruption", False):
            self.state.skip(
                LogProblem(0, 0, "pyulog found corrupt data and skipped it (it gives no offset)"),
                0,
            )
        gps = next((d for d in ulog.data_list if d.name in GPS_TOPICS and d.multi_id == 0), None)
        status = next((d for d in ulog.data_list if d.name == STATUS_TOPIC), None)
        battery = next((d for d in ulog.data_list if d.name == BATTERY_TOPIC), None)
        self.state.messages = sum(len(d.data["timestamp"]) for d in ulog.data_list)
        if gps is None:
            self.state.stopped = LogProblem(
                end - start, self.state.messages, "the log holds no GPS topic (no positions)"
            )
            return
        yield from self._translate(
            gps.data, status.data if status else None, battery.data if battery else None
        )

    def _translate(
        self,
        gps: dict[str, Any],
        status: dict[str, Any] | None,
        battery: dict[str, Any] | None,
    ) -> Iterator[Translation]:
        n = len(gps["timestamp"])
        boot = [int(t) for t in gps["timestamp"]]
        utc = [int(t) for t in gps.get("time_utc_usec", [0] * n)]
        offset_us = next((u - b for u, b in zip(utc, boot, strict=True) if u > 0), None)
        events = _arming_events(status) if status is not None else []
        charge = _battery(battery) if battery is not None else []
        ev_i = bat_i = 0
        pct: float | None = None
        last_ts: int | None = None
        for k in range(n):
            t_boot = boot[k]
            out: list[WireObject] = []
            while ev_i < len(events) and events[ev_i][0] <= t_boot:
                ev_boot, event = events[ev_i]
                ev_i += 1
                if offset_us is not None:
                    out.append({"ts": (ev_boot + offset_us) // 1000, **event})
                else:
                    yield Translation(
                        rejections=(
                            AdapterRejection(BAD_TIMESTAMP, "arming change before any GPS time"),
                        )
                    )
            while bat_i < len(charge) and charge[bat_i][0] <= t_boot:
                pct = charge[bat_i][1]
                bat_i += 1
            try:
                sample = self._sample(gps, k, (utc[k], t_boot, offset_us), pct, last_ts)
                last_ts = sample["ts"]
            except Invalid as exc:
                yield Translation(events=tuple(out), rejections=(rejection(exc, f"gps #{k}"),))
                continue
            yield Translation(samples=(sample,), events=tuple(out))
        for ev_boot, event in events[ev_i:]:
            if offset_us is not None:
                yield Translation(events=({"ts": (ev_boot + offset_us) // 1000, **event},))

    def _sample(
        self,
        gps: dict[str, Any],
        k: int,
        times: tuple[int, int, int | None],
        pct: float | None,
        last_ts: int | None,
    ) -> WireObject:
        """GPS fix ``k`` as a sample; ``times`` is its (UTC µs, boot µs, UTC - boot µs)."""
        utc_us, boot_us, offset_us = times
        fix_type = int(gps["fix_type"][k])
        if "latitude_deg" in gps:
            lat, lon = float(gps["latitude_deg"][k]), float(gps["longitude_deg"][k])
        else:
            lat, lon = int(gps["lat"][k]) / 1e7, int(gps["lon"][k]) / 1e7
        check_position(lat, lon, "GPS: ")
        if fix_type < 2:
            raise Invalid(NO_FIX, f"GPS fix_type {fix_type} (no fix)")
        if utc_us > 0:
            ts = utc_us // 1000
        elif offset_us is not None:
            ts = (boot_us + offset_us) // 1000
        else:
            raise Invalid(BAD_TIMESTAMP, "GPS fix without UTC time in a log that never has one")
        check_ts(ts, _FAR_FUTURE_MS)
        if ts == last_ts:
            raise Invalid(DUPLICATE, f"GPS time {ts} repeats the previous fix")
        sample: WireObject = {"ts": ts, "lat": lat, "lon": lon, "spraying": self._everything}
        _motion(sample, gps, k)
        fix = FIX_TYPES.get(fix_type)
        if fix is not None:
            sample["fix"] = fix
        if pct is not None:
            sample["battery_pct"] = pct
        return sample


def _motion(sample: WireObject, gps: dict[str, Any], k: int) -> None:
    """Speed and course over ground of fix ``k``, where the log has them."""
    if "vel_m_s" in gps:
        speed = float(gps["vel_m_s"][k])
        if math.isfinite(speed) and speed >= 0:
            sample["speed_mps"] = speed
    if "cog_rad" in gps:
        cog = float(gps["cog_rad"][k])
        if math.isfinite(cog):
            sample["heading_deg"] = math.degrees(cog) % 360.0


def _arming_events(status: dict[str, Any]) -> list[tuple[int, WireObject]]:
    """(boot µs, event) at each change of ``arming_state`` to or from armed."""
    out: list[tuple[int, WireObject]] = []
    armed: bool | None = None
    for t, state in zip(status["timestamp"], status["arming_state"], strict=True):
        now = int(state) == ARMED
        if armed is not None and now != armed:
            out.append(
                (
                    int(t),
                    {
                        "v": WIRE_VERSION,
                        "type": "takeoff" if now else "landing",
                        "source": "ulog_armed" if now else "ulog_disarmed",
                    },
                )
            )
        armed = now
    return out


def _battery(battery: dict[str, Any]) -> list[tuple[int, float | None]]:
    """(boot µs, percent) of the first battery's ``remaining`` (0..1; negative unknown)."""
    out: list[tuple[int, float | None]] = []
    if "remaining" not in battery:
        return out
    for t, rem in zip(battery["timestamp"], battery["remaining"], strict=True):
        value = float(rem)
        out.append((int(t), value * 100.0 if 0.0 <= value <= 1.0 else None))
    return out
