"""MAVLink telemetry logs (``.tlog``) to wire v1, read as a stream.

A tlog is what a ground station (MAVProxy, Mission Planner, QGroundControl) records: each
MAVLink packet it received, behind the 8-byte big-endian UTC microsecond time it received it.
The reader frames the records itself, decodes with pymavlink (CRC checked) only the message
types the translator uses, and feeds them to ``adapters.mavlink.MavlinkTranslator`` with the
record's time as receive time: samples are timed by the autopilot's own clock
(``SYSTEM_TIME``), exactly as on the live MAVProxy path.

Decoding every packet through ``mavutil`` costs about 100 µs a message here; framing first
and decoding a fifth of them makes a one-hour 10 Hz log (400k messages) a few seconds.

Corruption: a record whose header is not plausible (magic byte, time in 2000..2100) starts
a corrupt stretch; the reader looks for the next plausible record and goes on, noting the
offset and the bytes skipped. A packet that fails its CRC is skipped and counted. A record
cut short at the end of the file stops the reader, which says where.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO, Final

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from adapters._common import Translation
from adapters.flightlog import (
    MAVLINK_V1,
    MAVLINK_V2,
    TLOG_MAX_US,
    TLOG_MIN_US,
    ChunkedLogReader,
    LogKind,
    LogProblem,
    Progress,
    tlog_record_length,
)
from adapters.mavlink import (
    MAV_AUTOPILOT_INVALID,
    MAV_TYPE_GCS,
    MavlinkDrone,
    MavlinkTranslator,
    SprayRule,
)

#: Report progress every this many records.
PROGRESS_EVERY: Final = 4096
#: MAVLink ids the translator reads; SERVO_OUTPUT_RAW (36) and RC_CHANNELS (65) only when a
#: spray rule needs them.
_ALWAYS: Final = {0: "HEARTBEAT", 1: "SYS_STATUS", 2: "SYSTEM_TIME", 24: "GPS_RAW_INT"}
_POSITION: Final = {33: "GLOBAL_POSITION_INT", 147: "BATTERY_STATUS", 253: "STATUSTEXT"}
_SERVO: Final = {36: "SERVO_OUTPUT_RAW"}
_RC: Final = {65: "RC_CHANNELS"}
_HEARTBEAT_ID: Final = 0
_STATUSTEXT_ID: Final = 253
_TIME: Final = struct.Struct(">Q")
_MAGICS: Final = frozenset((MAVLINK_V1, MAVLINK_V2))
_GCS_SYSID: Final = 255


class TlogReader(ChunkedLogReader):
    """One drone's ``.tlog`` as translations, streamed (module doc)."""

    unit = "record"
    not_a = "not a tlog record (no MAVLink packet behind a plausible time)"
    kind: Final = LogKind.TLOG

    def __init__(
        self,
        stream: BinaryIO,
        coop: str,
        drone: str,
        spray: tuple[SprayRule, ...] = (),
        *,
        everything: bool = False,
        progress: Progress | None = None,
    ) -> None:
        super().__init__(stream, progress)
        self._everything = everything
        self.translator = MavlinkTranslator(MavlinkDrone(coop, drone, spray=spray))
        wanted = {**_ALWAYS, **_POSITION}
        if any(r.kind == "servo" for r in spray):
            wanted |= _SERVO
        if any(r.kind == "rc" for r in spray):
            wanted |= _RC
        self._wanted = wanted
        self._mav = mavlink.MAVLink(None)
        self._vehicle: int | None = None  # system id of the first autopilot heard
        self._last_seq: int | None = None

    def _finish(self) -> Iterator[Translation]:
        flushed = self.translator.flush()
        if flushed:
            yield self._stamped(flushed)

    def _parse(  # noqa: PLR0912 - the per-record loop, kept in one piece for speed
        self, buf: bytearray, base: int, eof: bool
    ) -> tuple[int, list[Translation]]:
        """Translate the whole records at the start of ``buf``; how far it got."""
        out: list[Translation] = []
        state = self.state
        n = len(buf)
        i = 0
        wanted = self._wanted
        time_at = _TIME.unpack_from
        messages = state.messages
        while i + 12 <= n:
            # tlog_record_length, inlined: this loop runs once per record (400k an hour).
            us = time_at(buf, i)[0]
            magic = buf[i + 8]
            if not TLOG_MIN_US <= us < TLOG_MAX_US or magic not in _MAGICS:
                state.messages = messages
                if self._corrupt_at is None:
                    self._corrupt_at = (base + i, messages + 1)
                j = self._resync(buf, i + 1)
                if j is None:  # nothing plausible yet: keep only what a header may start in
                    i = n if eof else max(i + 1, n - 11)
                    continue
                i = j
                self._end_corrupt(base + i)
                continue
            if magic == MAVLINK_V1:
                length = 16 + buf[i + 9]
            else:
                length = 20 + buf[i + 9] + (13 if buf[i + 10] & 1 else 0)
            if i + length > n:
                break
            messages += 1
            if magic == MAVLINK_V1:
                seq, sysid, compid, msgid = buf[i + 10], buf[i + 11], buf[i + 12], buf[i + 13]
            else:
                seq, sysid, compid = buf[i + 12], buf[i + 13], buf[i + 14]
                msgid = buf[i + 15] | buf[i + 16] << 8 | buf[i + 17] << 16
            vehicle = self._vehicle
            if sysid == vehicle and compid == 1:
                self._count_seq(seq)
            name = wanted.get(msgid)
            if name is not None and sysid != _GCS_SYSID and (vehicle is None or sysid == vehicle):
                state.messages = messages
                got = self._decode(buf[i + 8 : i + length], base + i, msgid, sysid)
                if got is not None:
                    t = self.translator.feed(name, got, us // 1000)
                    if t:
                        out.append(self._stamped(t))
            if messages % PROGRESS_EVERY == 0 and self._progress is not None:
                self._progress(base + i)
            i += length
        state.messages = messages
        return i, out

    def _decode(
        self, packet: bytearray, offset: int, msgid: int, sysid: int
    ) -> Mapping[str, Any] | None:
        """A packet (of the record at file ``offset``) as a mapping of its fields, or None
        (CRC failure noted)."""
        try:
            msg = self._mav.decode(packet)
        except Exception as exc:  # noqa: BLE001 - pymavlink raises MAVError and struct errors
            self.state.skip(
                LogProblem(offset, self.state.messages, f"MAVLink packet unreadable: {exc}"),
                len(packet) + 8,
            )
            return None
        if msgid == _STATUSTEXT_ID:
            return dict(msg.to_dict())  # text as str
        fields = _Fields(msg)
        if (
            msgid == _HEARTBEAT_ID
            and self._vehicle is None
            and fields["autopilot"] != MAV_AUTOPILOT_INVALID
            and fields["type"] != MAV_TYPE_GCS
        ):
            self._vehicle = sysid
        return fields

    def _count_seq(self, seq: int) -> None:
        last, self._last_seq = self._last_seq, seq
        if last is not None:
            lost = (seq - last - 1) % 256
            if lost:
                notes = self.state.notes
                notes["sequence_gaps"] = notes.get("sequence_gaps", 0) + 1
                notes["packets_lost"] = notes.get("packets_lost", 0) + lost

    def _stamped(self, t: Translation) -> Translation:
        if not self._everything or not t.samples:
            return t
        return Translation(
            tuple({**s, "spraying": True} for s in t.samples), t.events, t.rejections, t.notices
        )

    @staticmethod
    def _resync(buf: bytearray, start: int) -> int | None:
        """The next offset from ``start`` where two plausible records follow each other
        (or one reaches the end of the buffer), or None if none is in ``buf`` yet."""
        n = len(buf)
        j = start
        while j + 12 <= n:
            length = tlog_record_length(buf, j)
            if length is not None:
                k = j + length
                if k + 12 > n or tlog_record_length(buf, k) is not None:
                    return j
            j += 1
        return None


class _Fields(Mapping[str, Any]):
    """A decoded pymavlink message's fields as a read-only mapping (what the translator
    reads), without copying them into a dict."""

    __slots__ = ("_msg",)

    def __init__(self, msg: Any) -> None:
        self._msg = msg

    def __getitem__(self, key: str) -> Any:
        if key not in self._msg._fieldnames:
            raise KeyError(key)
        return getattr(self._msg, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._msg._fieldnames)

    def __len__(self) -> int:
        return len(self._msg._fieldnames)
