"""ArduPilot DataFlash logs (``.bin``, the autopilot's own SD-card log) to wire v1, streamed.

A DataFlash log is a sequence of messages ``A3 95 <id> <payload>``; the log describes its
own message types first, in ``FMT`` messages (id 128: type id, length, name, field types,
column names). pymavlink's ``DFReader`` indexes the whole file before reading (memory grows
with the number of messages), so this reader decodes the stream itself, with pymavlink's
table of field types (``DFReader.FORMAT_TO_STRUCT``), and looks only at the messages it maps:

* ``GPS`` (first receiver): ``GWk`` + ``GMS`` (GPS week and ms, leap seconds removed)
  → ``ts``; ``Lat``, ``Lng`` → ``lat``, ``lon``; ``Spd`` (m/s) → ``speed_mps``; ``GCrs``
  (deg) → ``heading_deg``; ``Status`` (fix type) → ``fix``; ``Status`` < 2 or 0,0 →
  rejected ``no_fix``;
* ``POS.RelHomeAlt`` (m above home; newer firmware) → ``alt_m``;
* ``EV`` 10 / 11 (armed / disarmed), ``ARM.ArmState`` → ``takeoff`` / ``landing`` events;
* ``BAT.RemPct`` (first battery) → ``battery_pct``;
* spray rule: ``RCOU.Cn`` (servoN), ``RCIN.Cn`` (rcN), ``MODE`` AUTO while armed (auto)
  → ``spraying``.

Events are timed by the autopilot's microsecond clock (``TimeUS``) anchored by the latest
GPS time; events before the first GPS time wait for it. Corrupt stretches are skipped to
the next message that decodes, and a message cut short at the end stops the reader; both
are reported with their byte offset.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO, Final

from pymavlink.DFReader import FORMAT_TO_STRUCT

from adapters._common import (
    BAD_TIMESTAMP,
    DUPLICATE,
    NO_FIX,
    WIRE_VERSION,
    AdapterRejection,
    Invalid,
    Translation,
    WireObject,
    check_position,
    check_ts,
    heading_0_360,
    rejection,
)
from adapters.flightlog import ChunkedLogReader, LogKind, LogProblem, Progress
from adapters.mavlink import FIX_TYPES, UINT16_UNKNOWN, SprayRule

HEAD: Final = b"\xa3\x95"
FMT_ID: Final = 0x80
#: FMT's own layout: type id, total length, name, field types, column names.
FMT_STRUCT: Final = struct.Struct("<BB4s16s64s")
FMT_LENGTH: Final = 3 + FMT_STRUCT.size
GPS_EPOCH_MS: Final = 315_964_800_000  # 1980-01-06T00:00:00Z
WEEK_MS: Final = 604_800_000
#: (UTC ms from which, GPS - UTC in ms): leap seconds since the GPS epoch.
LEAP_MS: Final = (
    (int(datetime(2017, 1, 1, tzinfo=UTC).timestamp() * 1000), 18_000),
    (int(datetime(2015, 7, 1, tzinfo=UTC).timestamp() * 1000), 17_000),
    (int(datetime(2012, 7, 1, tzinfo=UTC).timestamp() * 1000), 16_000),
    (int(datetime(2009, 1, 1, tzinfo=UTC).timestamp() * 1000), 15_000),
    (0, 14_000),
)
EV_ARMED: Final = 10
EV_DISARMED: Final = 11
#: Events held for the first GPS time at most; more are rejected as untimed.
MAX_HELD_EVENTS: Final = 1_000
_FAR_FUTURE_MS: Final = 4_102_444_800_000  # a file has no receive time
_WANTED: Final = frozenset(("GPS", "POS", "EV", "ARM", "BAT", "RCOU", "RCIN", "MODE", "MSG"))


@dataclass(frozen=True, slots=True)
class _Format:
    """One message type of this log: its name, byte length and how to decode it."""

    name: str
    length: int
    unpack: struct.Struct | None  # None: not a type the reader maps (skipped by length)
    columns: tuple[str, ...]
    scale: tuple[float | None, ...]


def gps_to_utc_ms(week: int, week_ms: int) -> int:
    """UTC epoch ms of a GPS week and millisecond of week."""
    gps_ms = GPS_EPOCH_MS + week * WEEK_MS + week_ms
    for since, leap in LEAP_MS:
        if gps_ms - leap >= since:
            return gps_ms - leap
    return gps_ms  # unreachable: the last entry starts at 0


class DataflashReader(ChunkedLogReader):
    """An ArduPilot DataFlash log as translations, streamed (module doc)."""

    unit = "message"
    not_a = "not a DataFlash message (bad header or unknown type)"
    kind: Final = LogKind.DATAFLASH

    def __init__(
        self,
        stream: BinaryIO,
        spray: tuple[SprayRule, ...] = (),
        *,
        everything: bool = False,
        progress: Progress | None = None,
    ) -> None:
        super().__init__(stream, progress)
        self._spray = spray
        self._everything = everything
        self._formats: dict[int, _Format] = {FMT_ID: _Format("FMT", FMT_LENGTH, FMT_STRUCT, (), ())}
        self._offset_ms: int | None = None  # UTC ms - TimeUS/1000, from the latest GPS
        self._last_ts: int | None = None
        self._held: list[tuple[int, WireObject]] = []  # (TimeUS, event) before a GPS time
        self._armed: bool | None = None
        self._mode: int | None = None
        self._auto_mode = 3  # ArduCopter's AUTO; Plane and Rover use 10 (MSG tells)
        self._rel_alt: float | None = None
        self._battery: float | None = None
        self._rcou: dict[int, int] = {}
        self._rcin: dict[int, int] = {}

    def _finish(self) -> Iterator[Translation]:
        if self._held:
            n = len(self._held)
            self._held = []
            why = AdapterRejection(
                BAD_TIMESTAMP,
                f"{n} arm/disarm events before any GPS time: the log has no clock to time them",
            )
            yield Translation(rejections=(why,) * n)

    def _length_at(self, buf: bytearray, i: int) -> int | None:
        """The length of the message at ``i`` if its header is good and its type known."""
        if buf[i] != 0xA3 or buf[i + 1] != 0x95:
            return None
        fmt = self._formats.get(buf[i + 2])
        return None if fmt is None else fmt.length

    def _parse(self, buf: bytearray, base: int, eof: bool) -> tuple[int, list[Translation]]:
        out: list[Translation] = []
        state = self.state
        n = len(buf)
        i = 0
        while i + 3 <= n:
            length = self._length_at(buf, i)
            if length is None:
                if self._corrupt_at is None:
                    self._corrupt_at = (base + i, state.messages + 1)
                j = self._resync(buf, i + 1)
                if j is None:
                    i = n if eof else max(i + 1, n - 2)
                    continue
                i = j
                self._end_corrupt(base + i)
                continue
            if i + length > n:
                return i, out
            state.messages += 1
            try:
                t = self._message(buf, i)
            except (struct.error, UnicodeDecodeError, ValueError) as exc:
                state.skip(
                    LogProblem(base + i, state.messages, f"message unreadable: {exc}"), length
                )
                t = None
            if t:
                out.append(t)
            if state.messages % 4096 == 0 and self._progress is not None:
                self._progress(base + i)
            i += length
        return i, out

    def _resync(self, buf: bytearray, start: int) -> int | None:
        """The next offset where a known message starts and is followed by another (or by
        the end of what is buffered)."""
        j = buf.find(HEAD, start)
        while j != -1 and j + 3 <= len(buf):
            length = self._length_at(buf, j)
            if length is not None:
                k = j + length
                if k + 3 > len(buf) or self._length_at(buf, k) is not None:
                    return j
            j = buf.find(HEAD, j + 1)
        return None

    def _message(self, buf: bytearray, i: int) -> Translation | None:
        msgid = buf[i + 2]
        fmt = self._formats[msgid]
        if fmt.unpack is None:
            return None
        values = fmt.unpack.unpack_from(buf, i + 3)
        if msgid == FMT_ID:
            self._define(values)
            return None
        row: dict[str, Any] = {}
        for name, value, scale in zip(fmt.columns, values, fmt.scale, strict=False):
            if isinstance(value, bytes):
                row[name] = value.rstrip(b"\0").decode("ascii", "replace")
            elif scale is not None:
                row[name] = value * scale
            else:
                row[name] = value
        return self._translate(fmt.name, row)

    def _define(self, values: tuple[Any, ...]) -> None:
        type_id, length, raw_name, raw_format, raw_columns = values
        name = raw_name.rstrip(b"\0").decode("ascii", "replace")
        types = raw_format.rstrip(b"\0").decode("ascii", "replace")
        columns = tuple(raw_columns.rstrip(b"\0").decode("ascii", "replace").split(","))
        if type_id == FMT_ID or length < 3:
            return
        unpack: struct.Struct | None = None
        scale: tuple[float | None, ...] = ()
        if name in _WANTED:
            codes = [FORMAT_TO_STRUCT.get(c) for c in types]
            if all(c is not None for c in codes) and len(columns) == len(types):
                fmt = "<" + "".join(c[0] for c in codes if c is not None)
                candidate = struct.Struct(fmt)
                if candidate.size == length - 3:
                    unpack = candidate
                    scale = tuple(c[1] for c in codes if c is not None)
        self._formats[type_id] = _Format(name, length, unpack, columns, scale)

    def _translate(self, name: str, row: dict[str, Any]) -> Translation | None:
        if name == "GPS":
            return self._gps(row)
        if name == "POS":
            alt = row.get("RelHomeAlt")
            self._rel_alt = float(alt) if isinstance(alt, (int, float)) else None
        elif name in ("EV", "ARM"):
            return self._arming(row)
        elif name == "BAT":
            if row.get("Instance", row.get("Inst", 0)) == 0:
                pct = row.get("RemPct")
                self._battery = (
                    float(pct) if isinstance(pct, (int, float)) and 0 <= pct <= 100 else None
                )
        elif name == "RCOU":
            self._rcou.update(_channels(row))
        elif name == "RCIN":
            self._rcin.update(_channels(row))
        elif name == "MODE":
            mode = row.get("ModeNum", row.get("Mode"))
            self._mode = int(mode) if isinstance(mode, int) else None
        elif name == "MSG":
            text = str(row.get("Message", ""))
            if text.startswith(("ArduPlane", "ArduRover", "Rover")):
                self._auto_mode = 10
        return None

    def _gps(self, row: dict[str, Any]) -> Translation | None:
        if row.get("I", row.get("Instance", 0)) != 0:
            return None  # a second receiver
        released: Translation | None = None
        try:
            week, week_ms, status = int(row["GWk"]), int(row["GMS"]), int(row["Status"])
            ts: int | None = None
            if week > 0:
                ts = gps_to_utc_ms(week, week_ms)
                self._offset_ms = ts - int(row["TimeUS"]) // 1000
                released = self._release()
            sample = self._gps_sample(row, ts, status)
        except Invalid as exc:
            bad = Translation(rejections=(rejection(exc, repr(row)),))
            return bad if released is None else released + bad
        except (KeyError, TypeError, ValueError) as exc:
            missing = Invalid(NO_FIX, f"GPS message without a usable {exc}")
            bad = Translation(rejections=(rejection(missing, repr(row)),))
            return bad if released is None else released + bad
        out = Translation(samples=(sample,))
        return out if released is None else released + out

    def _gps_sample(self, row: dict[str, Any], ts: int | None, status: int) -> WireObject:
        """The sample of a GPS message; Invalid without a fix, a time or a new time."""
        if status < 2 or ts is None:
            raise Invalid(NO_FIX, f"GPS Status {status} (no fix)")
        lat, lon = float(row["Lat"]), float(row["Lng"])
        check_position(lat, lon, "GPS: ")
        check_ts(ts, _FAR_FUTURE_MS)
        if ts == self._last_ts:
            raise Invalid(DUPLICATE, f"GPS: time {ts} repeats the previous fix")
        self._last_ts = ts
        sample: WireObject = {"ts": ts, "lat": lat, "lon": lon, "spraying": self._spraying()}
        if self._rel_alt is not None:
            sample["alt_m"] = self._rel_alt
        spd = row.get("Spd")
        if isinstance(spd, (int, float)) and spd >= 0:
            sample["speed_mps"] = float(spd)
        crs = row.get("GCrs")
        if isinstance(crs, (int, float)):
            sample["heading_deg"] = heading_0_360(float(crs))
        fix = FIX_TYPES.get(status)
        if fix is not None:
            sample["fix"] = fix
        if self._battery is not None:
            sample["battery_pct"] = self._battery
        return sample

    def _arming(self, row: dict[str, Any]) -> Translation | None:
        if "ArmState" in row:
            armed = bool(row["ArmState"])
        elif row.get("Id") in (EV_ARMED, EV_DISARMED):
            armed = row["Id"] == EV_ARMED
        else:
            return None
        was, self._armed = self._armed, armed
        if was == armed:
            return None
        event: WireObject = {
            "v": WIRE_VERSION,
            "type": "takeoff" if armed else "landing",
            "source": "dataflash_armed" if armed else "dataflash_disarmed",
        }
        time_us = int(row.get("TimeUS", 0))
        if self._offset_ms is None:
            if len(self._held) < MAX_HELD_EVENTS:
                self._held.append((time_us, event))
            return None
        return Translation(events=({"ts": self._offset_ms + time_us // 1000, **event},))

    def _release(self) -> Translation | None:
        if not self._held or self._offset_ms is None:
            return None
        held, self._held = self._held, []
        return Translation(
            events=tuple({"ts": self._offset_ms + us // 1000, **e} for us, e in held)
        )

    def _spraying(self) -> bool:
        if self._everything:
            return True
        if not self._spray:
            return False
        for rule in self._spray:
            if rule.kind == "auto":
                ok = bool(self._armed) and self._mode == self._auto_mode
            else:
                pwm = (self._rcou if rule.kind == "servo" else self._rcin).get(rule.channel, 0)
                ok = pwm not in (0, UINT16_UNKNOWN) and pwm > rule.above_pwm
            if not ok:
                return False
        return True


def _channels(row: dict[str, Any]) -> dict[int, int]:
    """``C1``..``C16`` of an RCOU/RCIN message as {channel: PWM}."""
    out: dict[int, int] = {}
    for n in range(1, 17):
        value = row.get(f"C{n}")
        if isinstance(value, int):
            out[n] = value
    return out
