"""A disk spool of MQTT messages: append-only, fsync'd, drained oldest first, at least once.

The MAVLink bridge (adapters/mavlink_bridge.py) writes every batch here before publishing
it, and marks it acknowledged when the broker's PUBACK arrives; whatever is not
acknowledged when the broker goes away or the bridge dies is sent again later, oldest
first. Duplicates are harmless downstream (rows are keyed by drone and ``ts``).

Layout of the folder:

* ``{first_id:016d}.seg``: segment files of records, appended to and fsync'd per record.
  A record is ``<u32 body length><u32 CRC-32 of body><body>``, the body
  ``<u16 topic length><topic UTF-8><payload>``. Record ids are consecutive: a segment's
  records are numbered from the id in its name.
* ``acked``: the id below which every record is acknowledged (written to a temporary file,
  fsync'd and renamed over the old one by ``commit``).

Crash safety: a torn or corrupt record at the end of the newest segment (a crash in the
middle of ``append``) is cut off at open; corruption inside older segments skips the rest of
that segment and is reported. Segments wholly below the acknowledged mark are deleted.

Bookkeeping: ``take`` hands out each pending record once, oldest first; ``ack`` marks one
done; ``rewind`` makes every taken-but-unacknowledged record pending again (the connection
that carried them is gone). Acknowledgements are durable once ``commit`` ran; records acked
but not committed when the process dies are sent again after restart (at least once).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import struct
import threading
import zlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

_HEADER: Final = struct.Struct("<II")
_TOPIC_LEN: Final = struct.Struct("<H")
#: Largest record body accepted (a wire-v1 batch of 500 samples is well below 256 KiB).
MAX_RECORD_BYTES: Final = 4 * 1024 * 1024
#: A new segment is started once the current one reaches this size.
SEGMENT_BYTES: Final = 4 * 1024 * 1024
#: Default limit of the whole spool on disk.
MAX_SPOOL_BYTES: Final = 1024**3
_SUFFIX: Final = ".seg"
_ACKED: Final = "acked"
_LOCK: Final = "lock"


class SpoolError(RuntimeError):
    """The spool folder cannot be used, or a record cannot be added."""


class SpoolFullError(SpoolError):
    """Appending would take the spool past its size limit."""


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    """One spooled MQTT message."""

    id: int
    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class _Loc:
    id: int
    segment: Path
    offset: int  # of the record header
    size: int  # header + body


@dataclass(frozen=True, slots=True)
class OpenReport:
    """What ``Spool`` found on disk when it opened."""

    pending: int  # records not acknowledged, to be sent again
    torn_bytes: int  # bytes cut off the end of the newest segment (a torn last record)
    corrupt_segments: tuple[str, ...]  # older segments whose tail was unreadable


def _encode(topic: str, payload: bytes) -> bytes:
    raw_topic = topic.encode("utf-8")
    if len(raw_topic) > 0xFFFF:
        raise SpoolError(f"topic of {len(raw_topic)} bytes is longer than 65535")
    body = _TOPIC_LEN.pack(len(raw_topic)) + raw_topic + payload
    if len(body) > MAX_RECORD_BYTES:
        raise SpoolError(f"record of {len(body)} bytes is larger than {MAX_RECORD_BYTES}")
    return _HEADER.pack(len(body), zlib.crc32(body)) + body


def _decode(body: bytes) -> tuple[str, bytes]:
    (n,) = _TOPIC_LEN.unpack_from(body)
    return body[2 : 2 + n].decode("utf-8"), body[2 + n :]


def _scan(path: Path) -> tuple[list[tuple[int, int]], int, bool]:
    """(offset, size) of each good record of a segment, the end of the good part, and
    whether something unreadable follows it."""
    data = path.read_bytes()
    out: list[tuple[int, int]] = []
    pos = 0
    while pos < len(data):
        if pos + _HEADER.size > len(data):
            return out, pos, True
        length, crc = _HEADER.unpack_from(data, pos)
        end = pos + _HEADER.size + length
        if length < _TOPIC_LEN.size or length > MAX_RECORD_BYTES or end > len(data):
            return out, pos, True
        body = data[pos + _HEADER.size : end]
        if zlib.crc32(body) != crc or _TOPIC_LEN.unpack_from(body)[0] + 2 > length:
            return out, pos, True
        out.append((pos, end - pos))
        pos = end
    return out, pos, False


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """A folder of spooled messages; thread-safe (the bridge appends from its reader thread
    and takes/acks from its publisher thread). One process per folder: a second one is
    refused (an exclusive ``flock`` on ``lock``, released by the kernel if the holder dies)."""

    def __init__(
        self,
        folder: Path,
        *,
        max_bytes: int = MAX_SPOOL_BYTES,
        segment_bytes: int = SEGMENT_BYTES,
    ) -> None:
        if max_bytes <= 0 or segment_bytes <= 0:
            raise SpoolError(f"spool limits must be > 0 (max {max_bytes}, segment {segment_bytes})")
        self.folder = folder
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(folder / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise SpoolError(f"spool folder {folder}: {exc}") from exc
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise SpoolError(
                f"spool folder {folder} is in use by another process (one bridge per spool)"
            ) from None
        self._acked_below = self._read_acked()
        self._committed = self._acked_below
        self._acked_ahead: set[int] = set()
        self._pending: deque[_Loc] = deque()  # not taken yet, oldest first
        self._taken: dict[int, _Loc] = {}  # handed out, not acknowledged yet
        self._segments: list[tuple[int, Path, int]] = []  # (first id, path, last id + 1)
        self._bytes = 0
        self.report = self._recover()
        self._next_id = self._segments[-1][2] if self._segments else self._acked_below
        self._out: Path | None = None
        self._out_size = 0
        self._fd: int | None = None

    # --- opening

    def _read_acked(self) -> int:
        path = self.folder / _ACKED
        try:
            text = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise SpoolError(f"spool mark {path}: {exc}") from exc
        if not text.isdigit():
            raise SpoolError(f"spool mark {path} holds {text[:40]!r}, not a record id")
        return int(text)

    def _recover(self) -> OpenReport:
        paths = sorted(p for p in self.folder.iterdir() if p.name.endswith(_SUFFIX))
        torn = 0
        corrupt: list[str] = []
        for i, path in enumerate(paths):
            stem = path.name.removesuffix(_SUFFIX)
            if not stem.isdigit():
                raise SpoolError(f"spool segment {path}: name is not a record id")
            first = int(stem)
            records, good_end, bad_tail = _scan(path)
            if bad_tail:
                if i == len(paths) - 1:
                    torn = path.stat().st_size - good_end
                    with path.open("r+b") as f:
                        f.truncate(good_end)
                        os.fsync(f.fileno())
                    log.warning("event=spool_torn_record segment=%s cut_bytes=%d", path.name, torn)
                else:
                    corrupt.append(path.name)
                    log.error(
                        "event=spool_corrupt_segment segment=%s good_records=%d "
                        "detail='unreadable record; the rest of this segment is skipped'",
                        path.name,
                        len(records),
                    )
            end_id = first + len(records)
            if end_id <= self._acked_below:
                path.unlink()
                continue
            self._segments.append((first, path, end_id))
            self._bytes += good_end
            for n, (offset, size) in enumerate(records):
                if first + n >= self._acked_below:
                    self._pending.append(_Loc(first + n, path, offset, size))
        return OpenReport(len(self._pending), torn, tuple(corrupt))

    # --- writing

    def append(self, topic: str, payload: bytes) -> int:
        """Add one message durably (written and fsync'd before returning); its record id."""
        record = _encode(topic, payload)
        with self._lock:
            if self._bytes + len(record) > self.max_bytes:
                raise SpoolFullError(
                    f"spool {self.folder} holds {self._bytes} bytes; a {len(record)}-byte "
                    f"record would pass its limit of {self.max_bytes}"
                )
            if self._fd is None or self._out_size >= self.segment_bytes:
                self._start_segment()
            assert self._fd is not None
            assert self._out is not None
            offset = self._out_size
            try:
                written = os.write(self._fd, record)
                if written == len(record):
                    os.fsync(self._fd)
            except OSError as exc:
                self._close_fd()  # the next append starts a fresh segment
                raise SpoolError(f"spool segment {self._out}: {exc}") from exc
            if written != len(record):  # disk full: the torn record is cut at the next open
                self._close_fd()
                raise SpoolError(
                    f"spool segment {self._out}: wrote {written} of {len(record)} bytes"
                )
            rid = self._next_id
            self._next_id += 1
            self._out_size += len(record)
            self._bytes += len(record)
            first, path, _end = self._segments[-1]
            self._segments[-1] = (first, path, self._next_id)
            self._pending.append(_Loc(rid, self._out, offset, len(record)))
            return rid

    def _start_segment(self) -> None:
        self._close_fd()
        path = self.folder / f"{self._next_id:016d}{_SUFFIX}"
        # an emptied segment from before a torn record is continued
        size = path.stat().st_size if path.exists() else 0
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            _fsync_dir(self.folder)
        except OSError as exc:
            raise SpoolError(f"spool segment {path}: {exc}") from exc
        self._out, self._out_size = path, size
        if not self._segments or self._segments[-1][1] != path:
            self._segments.append((self._next_id, path, self._next_id))

    def _close_fd(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    # --- draining

    def take(self, limit: int) -> list[SpoolRecord]:
        """Up to ``limit`` pending records, oldest first; each is handed out once until
        ``rewind``."""
        out: list[SpoolRecord] = []
        with self._lock:
            while self._pending and len(out) < limit:
                loc = self._pending[0]
                topic, payload = self._read(loc)
                self._pending.popleft()
                self._taken[loc.id] = loc
                out.append(SpoolRecord(loc.id, topic, payload))
        return out

    def _read(self, loc: _Loc) -> tuple[str, bytes]:
        try:
            with loc.segment.open("rb") as f:
                f.seek(loc.offset + _HEADER.size)
                body = f.read(loc.size - _HEADER.size)
        except OSError as exc:
            raise SpoolError(f"spool segment {loc.segment}: {exc}") from exc
        return _decode(body)

    def ack(self, record_id: int) -> None:
        """The broker has this record: it is never handed out again."""
        with self._lock:
            if self._taken.pop(record_id, None) is None:
                return  # not taken in this session (already acked, or a stale callback)
            if record_id == self._acked_below:
                self._acked_below += 1
                while self._acked_below in self._acked_ahead:
                    self._acked_ahead.discard(self._acked_below)
                    self._acked_below += 1
            else:
                self._acked_ahead.add(record_id)

    def rewind(self) -> int:
        """Every taken, unacknowledged record becomes pending again (oldest first); how many."""
        with self._lock:
            back = sorted(self._taken.values(), key=lambda loc: loc.id, reverse=True)
            self._taken.clear()
            for loc in back:
                self._pending.appendleft(loc)
            return len(back)

    def commit(self) -> None:
        """Make the acknowledgements durable and delete segments wholly acknowledged."""
        with self._lock:
            mark = self._acked_below
            if mark == self._committed:
                return
            tmp = self.folder / (_ACKED + ".tmp")
            try:
                with tmp.open("w", encoding="ascii") as f:
                    f.write(f"{mark}\n")
                    f.flush()
                    os.fsync(f.fileno())
                tmp.replace(self.folder / _ACKED)
                _fsync_dir(self.folder)
            except OSError as exc:
                raise SpoolError(f"spool mark {self.folder / _ACKED}: {exc}") from exc
            self._committed = mark
            keep: list[tuple[int, Path, int]] = []
            for first, path, end in self._segments:
                if end <= mark and path != self._out:
                    self._bytes -= path.stat().st_size
                    path.unlink()
                else:
                    keep.append((first, path, end))
            self._segments = keep

    # --- state

    @property
    def pending(self) -> int:
        """Records neither acknowledged nor handed out."""
        with self._lock:
            return len(self._pending)

    @property
    def unacked(self) -> int:
        """Records not acknowledged (pending or handed out)."""
        with self._lock:
            return len(self._pending) + len(self._taken)

    @property
    def size_bytes(self) -> int:
        """Bytes of the segments on disk."""
        with self._lock:
            return self._bytes

    def close(self) -> None:
        """Commit and close the open segment (the spool can be opened again afterwards)."""
        self.commit()
        with self._lock:
            self._close_fd()
            if self._lock_fd >= 0:
                os.close(self._lock_fd)  # releases the flock
                self._lock_fd = -1

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
