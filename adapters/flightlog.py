"""Flight logs uploaded after the flight: which kind a file is, and one reader per kind.

A reader takes a binary stream and yields ``Translation`` objects (wire-v1 samples, events,
rejections, notices) as it goes, never holding the file: memory stays flat for a 100 MB
log. Where a log is truncated or corrupt, the reader imports what it can read and says
where it stopped or skipped and why (``LogProblem``: byte offset, message number, reason).

Kinds are recognised by content, not by name (``sniff``):

* MAVLink telemetry log (``.tlog``): records of an 8-byte big-endian UTC microsecond time
  followed by a MAVLink 1 (``0xFE``) or 2 (``0xFD``) packet (adapters/tlog.py);
* ArduPilot DataFlash log (``.bin``): messages starting ``0xA3 0x95``, the first a format
  (``FMT``, id 128) message (adapters/dataflash.py);
* PX4 ULog (``.ulg``): the magic ``ULog`` ``01 12 35`` (adapters/ulog.py, with pyulog);
* flight-record CSV: an Airdata export or a ``ts,lat,lon,...`` track (adapters/airdata.py).

The readers do the file reading (a thin I/O edge) and the translation; storing is the
caller's (ingest/logimport.py).
"""

from __future__ import annotations

import codecs
import csv
import enum
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, Final

from adapters._common import FormatError, Translation
from adapters.airdata import detect_layout, read_track_csv

if TYPE_CHECKING:
    from adapters.dataflash import DataflashReader
    from adapters.tlog import TlogReader
    from adapters.ulog import UlogReader

#: What an upload may be, for error messages (CLI and API say the same).
ACCEPTED: Final = (
    "a MAVLink telemetry log (.tlog), an ArduPilot DataFlash log (.bin), a PX4 ULog (.ulg), "
    "or a flight-record CSV (Airdata export, or a ts,lat,lon,... track)"
)
#: How many bytes ``sniff`` wants to see (fewer is fine for a short file).
SNIFF_BYTES: Final = 4096
#: Problems listed one by one; more are only counted.
MAX_PROBLEMS: Final = 20

ULOG_MAGIC: Final = b"ULog\x01\x12\x35"
DATAFLASH_HEAD: Final = b"\xa3\x95"
DATAFLASH_FMT_ID: Final = 0x80
MAVLINK_V1: Final = 0xFE
MAVLINK_V2: Final = 0xFD
#: A tlog record's time must fall in 2000..2100 (microseconds).
TLOG_MIN_US: Final = 946_684_800_000_000
TLOG_MAX_US: Final = 4_102_444_800_000_000

#: Progress callback: bytes of the file consumed so far.
Progress = Callable[[int], None]


class LogKind(enum.StrEnum):
    """The kinds of flight log an upload may be."""

    TLOG = "tlog"
    DATAFLASH = "dataflash"
    ULOG = "ulog"
    CSV = "csv"


class UnsupportedLogError(FormatError):
    """The file is none of the accepted kinds (the message names them)."""


@dataclass(frozen=True, slots=True)
class LogProblem:
    """Where a reader stopped or skipped, and why: byte ``offset`` of the file and the
    number of the message (record, line) it had reached, counting from 1."""

    offset: int
    message: int
    reason: str

    def __str__(self) -> str:
        return f"at byte {self.offset} (message {self.message}): {self.reason}"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {"offset": self.offset, "message": self.message, "reason": self.reason}


@dataclass(slots=True)
class ReadState:
    """What a reader has been through: bytes, messages, and the problems on the way."""

    bytes_read: int = 0
    messages: int = 0
    #: Where reading ended early (a truncated last record, an unreadable rest), if it did.
    stopped: LogProblem | None = None
    #: Corrupt stretches skipped while reading went on (the first MAX_PROBLEMS).
    skipped: list[LogProblem] = field(default_factory=list)
    skipped_count: int = 0
    skipped_bytes: int = 0
    #: Counts a reader keeps about its kind (e.g. MAVLink packets lost by sequence).
    notes: dict[str, int] = field(default_factory=dict)

    def skip(self, problem: LogProblem, nbytes: int) -> None:
        """Note a corrupt stretch of ``nbytes`` skipped at ``problem``."""
        self.skipped_count += 1
        self.skipped_bytes += nbytes
        if len(self.skipped) < MAX_PROBLEMS:
            self.skipped.append(problem)


#: Bytes a binary log reader reads at a time.
CHUNK_BYTES: Final = 1 << 20


class ChunkedLogReader:
    """The streaming loop of a binary log reader: read ``chunk_bytes`` at a time, let the
    kind's ``_parse`` frame what it can, keep the rest, report progress, and at the end
    say where a cut-short last unit or an open corrupt stretch left off. Subclasses name
    their ``unit`` ("record", "message") and what a corrupt stretch is not (``not_a``)."""

    #: Bytes read from the stream at a time (the most of the file held at once, twice).
    chunk_bytes: int = CHUNK_BYTES
    unit: str = "message"
    not_a: str = "not a message"

    def __init__(self, stream: BinaryIO, progress: Progress | None) -> None:
        self.state = ReadState()
        self._stream = stream
        self._progress = progress
        self._corrupt_at: tuple[int, int] | None = None  # (offset, message) of a bad stretch

    def __iter__(self) -> Iterator[Translation]:
        state = self.state
        buf = bytearray()
        base = 0  # file offset of buf[0]
        eof = False
        while not eof:
            chunk = self._stream.read(self.chunk_bytes)
            if chunk:
                buf += chunk
            else:
                eof = True
            i, out = self._parse(buf, base, eof)
            yield from out
            del buf[:i]
            base += i
            state.bytes_read = base
            if self._progress is not None:
                self._progress(base)
        self._end_corrupt(base + len(buf))
        if buf:
            state.stopped = LogProblem(
                base,
                state.messages + 1,
                f"the last {self.unit} is cut short ({len(buf)} bytes of it left):"
                " the file is truncated",
            )
        state.bytes_read = base + len(buf)
        yield from self._finish()

    def _parse(self, buf: bytearray, base: int, eof: bool) -> tuple[int, list[Translation]]:
        """Frame and translate what ``buf`` (at file offset ``base``) holds: the bytes used
        and the translations."""
        raise NotImplementedError

    def _finish(self) -> Iterator[Translation]:
        """What the reader still holds once the file has ended."""
        return iter(())

    def _end_corrupt(self, offset: int) -> None:
        """Close the corrupt stretch that started at ``_corrupt_at``, if one is open."""
        if self._corrupt_at is None:
            return
        start, message = self._corrupt_at
        self._corrupt_at = None
        self.state.skip(
            LogProblem(
                start,
                message,
                f"{self.not_a}; skipped {offset - start} bytes to the next {self.unit}",
            ),
            offset - start,
        )


def tlog_record_length(buf: bytes | bytearray | memoryview, i: int) -> int | None:
    """The length of the tlog record at ``buf[i:]`` if its header is plausible (magic byte
    and a time in 2000..2100), else None; needs ``i + 12 <= len(buf)``."""
    us = int.from_bytes(buf[i : i + 8], "big")
    if not TLOG_MIN_US <= us < TLOG_MAX_US:
        return None
    magic = buf[i + 8]
    if magic == MAVLINK_V1:
        return 8 + 6 + buf[i + 9] + 2
    if magic == MAVLINK_V2:
        signed = 13 if buf[i + 10] & 1 else 0
        return 8 + 10 + buf[i + 9] + 2 + signed
    return None


def sniff(head: bytes) -> LogKind:
    """The kind of a log from its first bytes (``SNIFF_BYTES`` or the whole of a shorter
    file); ``UnsupportedLogError`` naming the accepted kinds for anything else."""
    if head.startswith(ULOG_MAGIC):
        return LogKind.ULOG
    if len(head) >= 3 and head[:2] == DATAFLASH_HEAD and head[2] == DATAFLASH_FMT_ID:
        return LogKind.DATAFLASH
    # A tlog record, and a second one right behind it where the head is long enough.
    n = tlog_record_length(head, 0) if len(head) >= 12 else None
    if n is not None and (len(head) < n + 12 or tlog_record_length(head, n) is not None):
        return LogKind.TLOG
    if _csv_header(head):
        return LogKind.CSV
    if not head:
        raise UnsupportedLogError(f"the file is empty; accepted: {ACCEPTED}")
    raise UnsupportedLogError(
        f"the file is not a flight log this service reads (it starts with bytes "
        f"{head[:8].hex(' ')}); accepted: {ACCEPTED}"
    )


def _csv_header(head: bytes) -> bool:
    """Whether ``head`` starts with a text line that is a known flight-record CSV header."""
    text = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        decoded = text.decode(head[:SNIFF_BYTES])
    except UnicodeDecodeError:
        return False
    first = decoded.removeprefix("\ufeff").split("\n", 1)[0]
    try:
        row = next(csv.reader([first]))
        detect_layout(row)
    except (StopIteration, csv.Error, FormatError):
        return False
    return True


class CsvLog:
    """A flight-record CSV as a log reader (one sample or rejection per data line)."""

    kind: Final = LogKind.CSV

    def __init__(
        self, stream: BinaryIO, *, spraying: bool = False, progress: Progress | None = None
    ) -> None:
        self.state = ReadState()
        self._stream = stream
        self._spraying = spraying
        self._progress = progress

    def __iter__(self) -> Iterator[Translation]:
        counted = _CountingReader(self._stream)
        text = io.TextIOWrapper(
            io.BufferedReader(counted), encoding="utf-8", errors="replace", newline=""
        )
        state = self.state
        try:
            for row in read_track_csv(text, spraying=self._spraying):
                state.messages = row.line
                state.bytes_read = counted.count
                if row.sample is not None:
                    yield Translation(samples=(row.sample,))
                elif row.rejection is not None:
                    yield Translation(rejections=(row.rejection,))
                if self._progress is not None and row.line % 1024 == 0:
                    self._progress(counted.count)
        finally:
            text.detach()
        state.bytes_read = counted.count
        if self._progress is not None:
            self._progress(counted.count)


class _CountingReader(io.RawIOBase):
    """A raw binary stream over another, counting the bytes read through it."""

    def __init__(self, inner: BinaryIO) -> None:
        super().__init__()
        self._inner = inner
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n


def open_reader(
    kind: LogKind,
    stream: BinaryIO,
    *,
    coop: str,
    drone: str,
    spray: str | None = None,
    progress: Progress | None = None,
) -> TlogReader | DataflashReader | UlogReader | CsvLog:
    """The reader of ``kind`` over ``stream`` for one drone. ``spray`` is a MAVLink spray
    rule set (``rc7>1500``, ``servo9>1600``, ``auto``; adapters/mavlink.py) for the MAVLink
    kinds, or ``all`` / ``none`` for every kind; None is no spraying (ConfigError if bad)."""
    from adapters.mavlink import parse_spray_rules

    everything = spray is not None and spray.strip().lower() == "all"
    rules = () if spray is None or spray.strip().lower() in ("", "none", "all") else spray
    if kind == LogKind.CSV:
        if rules:
            raise FormatError(
                f"spray rule {spray!r} needs a MAVLink log: a flight-record CSV carries no "
                "spray channels (give --spray all or none)"
            )
        return CsvLog(stream, spraying=everything, progress=progress)
    parsed = parse_spray_rules(rules) if isinstance(rules, str) else ()
    if kind == LogKind.TLOG:
        from adapters.tlog import TlogReader

        return TlogReader(stream, coop, drone, parsed, everything=everything, progress=progress)
    if kind == LogKind.DATAFLASH:
        from adapters.dataflash import DataflashReader

        return DataflashReader(stream, parsed, everything=everything, progress=progress)
    from adapters.ulog import UlogReader

    return UlogReader(stream, everything=everything, progress=progress)
