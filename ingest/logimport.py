"""Import an uploaded flight log: the same validation and storage path as live telemetry.

The log's reader (adapters/flightlog.py) turns the file into wire-v1 samples and events as
it streams; they are packed into wire-v1 messages for the drone's own topics and go through
the ingest worker's writer (``BatchWriter.store_messages``): wire validation, idempotent
writes on (drone, ts), the rejected-message log, late-data ranges for the flight watcher.
What the adapter refused (no fix, duplicates, ...) is counted by reason and logged as one
rejected-log row per reason. Then the flights the log holds are summarized at once, however
old they are (a log from 2018 too), and the answer says what was stored, what was
refused and why, which flights were found, and where a damaged file stopped.

A finished import is recorded by the SHA-256 of the file's content: the same file for the
same drone again stores nothing and answers "already imported" with the first result.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from adapters._common import AdapterRejection, Translation, WireObject
from adapters.flightlog import SNIFF_BYTES, LogKind, LogProblem, Progress, open_reader, sniff
from ingest.inbox import Inbox, Received
from ingest.jobcheck import RegisteredProducts
from ingest.metrics import IngestMetrics
from ingest.wire import MAX_BATCH_SAMPLES, WIRE_VERSION, event_topic, telemetry_topic
from ingest.worker import BatchWriter, WriterConfig
from storage.contract import TelemetryStore
from storage.metadata import LogImportRecord, MetadataDB, RejectedMessage

log = logging.getLogger(__name__)

#: Samples handed to the writer at a time (a batch of the live worker's size).
BATCH_SAMPLES: Final = 5_000
#: Notices kept for the answer (each distinct one once).
MAX_NOTICES: Final = 20
#: The rejected-log topic of a log import's own refusals (no MQTT topic carried them).
IMPORT_TOPIC: Final = "log-import/{coop}/{drone}"
HASH_CHUNK: Final = 1 << 20


class LogImportError(Exception):
    """The import could not finish (the store stayed down); nothing is recorded as imported."""


@dataclass(frozen=True, slots=True)
class FlightFound:
    """A flight the log holds, as stored."""

    id: str
    start_ms: int
    end_ms: int
    open: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"id": self.id, "start_ms": self.start_ms, "end_ms": self.end_ms, "open": self.open}


@dataclass
class ImportResult:
    """What one import did (``to_dict`` is the API's and the CLI's ``--json`` answer)."""

    coop: str
    drone: str
    name: str
    kind: str
    sha256: str
    bytes: int
    already_imported: bool = False
    #: When the content was first imported (ms), for an ``already_imported`` answer.
    imported_ms: int | None = None
    messages: int = 0
    samples_stored: int = 0
    events_stored: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    flights: list[FlightFound] = field(default_factory=list)
    first_ms: int | None = None
    last_ms: int | None = None
    stopped: LogProblem | None = None
    skipped: list[LogProblem] = field(default_factory=list)
    skipped_count: int = 0
    skipped_bytes: int = 0
    notes: dict[str, int] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    flight_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        """Whether the whole file was read without a corrupt stretch."""
        return self.stopped is None and self.skipped_count == 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "coop": self.coop,
            "drone": self.drone,
            "name": self.name,
            "kind": self.kind,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "already_imported": self.already_imported,
            "imported_ms": self.imported_ms,
            "messages": self.messages,
            "samples_stored": self.samples_stored,
            "events_stored": self.events_stored,
            "rejected": dict(sorted(self.rejected.items())),
            "rejected_total": sum(self.rejected.values()),
            "flights_found": len(self.flights),
            "flights": [f.to_dict() for f in self.flights],
            "first_ms": self.first_ms,
            "last_ms": self.last_ms,
            "complete": self.complete,
            "stopped": None if self.stopped is None else self.stopped.to_dict(),
            "skipped": [p.to_dict() for p in self.skipped],
            "skipped_count": self.skipped_count,
            "skipped_bytes": self.skipped_bytes,
            "notes": dict(self.notes),
            "notices": list(self.notices),
            "flight_errors": list(self.flight_errors),
            "seconds": round(self.seconds, 3),
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ImportResult:
        """A result back from ``to_dict``'s JSON (a recorded import)."""

        def problem(d: dict[str, Any]) -> LogProblem:
            return LogProblem(int(d["offset"]), int(d["message"]), str(d["reason"]))

        return cls(
            coop=doc["coop"],
            drone=doc["drone"],
            name=doc["name"],
            kind=doc["kind"],
            sha256=doc["sha256"],
            bytes=doc["bytes"],
            imported_ms=doc.get("imported_ms"),
            messages=doc["messages"],
            samples_stored=doc["samples_stored"],
            events_stored=doc["events_stored"],
            rejected=dict(doc["rejected"]),
            flights=[
                FlightFound(f["id"], f["start_ms"], f["end_ms"], open=f["open"])
                for f in doc["flights"]
            ],
            first_ms=doc["first_ms"],
            last_ms=doc["last_ms"],
            stopped=None if doc["stopped"] is None else problem(doc["stopped"]),
            skipped=[problem(p) for p in doc["skipped"]],
            skipped_count=doc["skipped_count"],
            skipped_bytes=doc["skipped_bytes"],
            notes=dict(doc["notes"]),
            notices=list(doc["notices"]),
            flight_errors=list(doc["flight_errors"]),
            seconds=doc["seconds"],
        )


def hash_file(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def detect_kind(path: Path) -> LogKind:
    """The kind of the log at ``path`` by its content (``UnsupportedLogError`` otherwise)."""
    with path.open("rb") as f:
        return sniff(f.read(SNIFF_BYTES))


class _NoAcks:
    """The writer's acknowledger for messages that came from a file: nothing to ack."""

    def ack(self, messages: Any) -> int:
        return len(messages)


@dataclass
class _Reasons:
    """Adapter refusals: counts by reason, and the first of each for the rejected log."""

    counts: Counter[str] = field(default_factory=Counter)
    first: dict[str, AdapterRejection] = field(default_factory=dict)

    def add(self, r: AdapterRejection) -> None:
        self.counts[r.reason] += 1
        self.first.setdefault(r.reason, r)


def import_log(
    path: Path,
    *,
    coop: str,
    drone: str,
    store: TelemetryStore,
    metadata: MetadataDB,
    spray: str | None = None,
    name: str | None = None,
    sha256: str | None = None,
    progress: Progress | None = None,
    rejected_max_rows: int = 1_000_000,
    summarize: bool = True,
    stop: threading.Event | None = None,
) -> ImportResult:
    """Import the log at ``path`` for ``coop``/``drone`` (module doc).

    ``UnsupportedLogError`` (a ``FormatError``) when the file is no accepted kind and
    ``ConfigError`` for a bad ``spray`` rule, both before anything is stored;
    ``LogImportError`` when the store stayed down (what was written stays, nothing is
    recorded as imported, so running it again finishes the job).
    """
    started = time.perf_counter()
    if sha256 is None:
        sha256, size = hash_file(path)
    else:
        size = path.stat().st_size
    label = name or path.name
    previous = metadata.log_import(coop, drone, sha256)
    if previous is not None:
        first = ImportResult.from_dict(orjson.loads(previous.result))
        first.already_imported = True
        first.imported_ms = previous.imported_ms
        first.samples_stored = first.events_stored = 0
        first.rejected = {}
        first.name = label
        first.seconds = time.perf_counter() - started
        log.info(
            "log_import_repeated coop=%s drone=%s sha256=%s first_imported_ms=%d",
            coop,
            drone,
            sha256,
            previous.imported_ms,
        )
        return first
    kind = detect_kind(path)
    result = ImportResult(coop, drone, label, kind.value, sha256, size)
    writer = BatchWriter(
        Inbox(1, 1),
        store,
        metadata,
        _NoAcks(),
        metrics=IngestMetrics(),
        # The import never prunes the rejected log by age (the worker does), only caps it.
        config=WriterConfig(rejected_days=36_500, rejected_max_rows=rejected_max_rows),
        known_product=RegisteredProducts(metadata.product),
    )
    halt = stop or threading.Event()
    reasons = _Reasons()
    with path.open("rb") as f:
        reader = open_reader(kind, f, coop=coop, drone=drone, spray=spray, progress=progress)
        batch = _Batch(coop, drone)
        for t in reader:
            batch.add(t, reasons, result)
            if len(batch.samples) >= BATCH_SAMPLES:
                _store(writer, batch.take(), halt, result)
        _store(writer, batch.take(), halt, result)
        state = reader.state
    result.messages = state.messages
    result.stopped = state.stopped
    result.skipped = list(state.skipped)
    result.skipped_count = state.skipped_count
    result.skipped_bytes = state.skipped_bytes
    result.notes = dict(state.notes)
    for reason, n in reasons.counts.items():
        result.rejected[reason] = result.rejected.get(reason, 0) + n
    _record_refusals(metadata, reasons, result, rejected_max_rows)
    if summarize and result.first_ms is not None and result.last_ms is not None:
        _summarize(store, metadata, result)
    result.seconds = time.perf_counter() - started
    metadata.record_log_import(
        LogImportRecord(
            coop,
            drone,
            sha256,
            kind.value,
            label[:200],
            int(time.time() * 1000),
            orjson.dumps(result.to_dict()).decode(),
        )
    )
    log.info(
        "log_imported coop=%s drone=%s kind=%s bytes=%d samples=%d events=%d rejected=%d"
        " flights=%d complete=%s seconds=%.2f",
        coop,
        drone,
        kind.value,
        size,
        result.samples_stored,
        result.events_stored,
        sum(result.rejected.values()),
        len(result.flights),
        result.complete,
        result.seconds,
    )
    return result


@dataclass
class _Batch:
    """Samples and events waiting for the writer, with the times they span."""

    coop: str
    drone: str
    samples: list[WireObject] = field(default_factory=list)
    events: list[WireObject] = field(default_factory=list)

    def add(self, t: Translation, reasons: _Reasons, result: ImportResult) -> None:
        self.samples.extend(t.samples)
        self.events.extend(t.events)
        for r in t.rejections:
            reasons.add(r)
        for notice in t.notices:
            if notice not in result.notices and len(result.notices) < MAX_NOTICES:
                result.notices.append(notice)

    def take(self) -> Iterator[Received]:
        """The waiting items as wire-v1 messages (a sample batch per 500, an event each)."""
        samples, self.samples = self.samples, []
        events, self.events = self.events, []
        now = int(time.time() * 1000)
        topic = telemetry_topic(self.coop, self.drone)
        for k in range(0, len(samples), MAX_BATCH_SAMPLES):
            chunk = samples[k : k + MAX_BATCH_SAMPLES]
            payload = orjson.dumps({"v": WIRE_VERSION, "samples": chunk})
            yield Received(0, 0, 0, topic, payload, now)
        etopic = event_topic(self.coop, self.drone)
        for e in events:
            yield Received(0, 0, 0, etopic, orjson.dumps({"v": WIRE_VERSION, **e}), now)


def _store(
    writer: BatchWriter, messages: Iterator[Received], stop: threading.Event, result: ImportResult
) -> None:
    items = list(messages)
    if not items:
        return
    decoded = writer.store_messages(items, stop)
    if decoded is None:
        raise LogImportError(
            "the telemetry store stayed unavailable; what was written stays, nothing is"
            " recorded as imported: run the import again"
        )
    result.samples_stored += decoded.sample_count()
    result.events_stored += len(decoded.events)
    times = [s.ts_ms for s in decoded.samples] + [e.ts_ms for e in decoded.events]
    times += [row[0] for group in decoded.rows for row in group.rows]
    if times:
        lo, hi = min(times), max(times)
        result.first_ms = lo if result.first_ms is None else min(result.first_ms, lo)
        result.last_ms = hi if result.last_ms is None else max(result.last_ms, hi)
    for r in decoded.rejected:
        for reason, n in r.reasons.items():
            result.rejected[reason] = result.rejected.get(reason, 0) + n


def _record_refusals(
    metadata: MetadataDB, reasons: _Reasons, result: ImportResult, max_rows: int
) -> None:
    """One rejected-log row per reason the adapter refused samples for (with the count)."""
    if not reasons.counts:
        return
    now = int(time.time() * 1000)
    topic = IMPORT_TOPIC.format(coop=result.coop, drone=result.drone)
    rows = []
    for reason, n in sorted(reasons.counts.items()):
        first = reasons.first[reason]
        more = f" (and {n - 1} more)" if n > 1 else ""
        detail = f"log {result.name} ({result.kind}, sha256 {result.sha256[:12]}): {first.detail}"
        rows.append(RejectedMessage(now, topic, reason, detail + more, first.excerpt, count=n))
    metadata.record_rejections(rows, max_rows=max_rows)


def _summarize(store: TelemetryStore, metadata: MetadataDB, result: ImportResult) -> None:
    """Summarize the flights that started within the log's time span (replacing what was
    stored for them), whatever their age, and list them in the result."""
    from flights.service import Engines, summarize_drone  # the import's heaviest part

    assert result.first_ms is not None
    assert result.last_ms is not None
    now = int(time.time() * 1000)
    outcome = summarize_drone(
        store,
        metadata,
        result.coop,
        result.drone,
        result.first_ms,
        result.last_ms + 1,
        now_ms=now,
        engines=Engines.current(metadata),
        replace=True,
    )
    result.flight_errors = list(outcome.failed)
    saved = set(outcome.saved)
    stored = metadata.flights(
        result.first_ms, result.last_ms + 1, coop=result.coop, drone=result.drone
    )
    result.flights = [
        FlightFound(f.id, f.start_ms, f.end_ms, open=False) for f in stored if f.id in saved
    ]
    opened = sorted(outcome.open)
    result.flights += [
        FlightFound(fid, int(fid.rsplit(".", 1)[1]), result.last_ms, open=True) for fid in opened
    ]
