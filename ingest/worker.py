"""The ingest pipeline: inbox → decode and validate → durable write → acknowledge.

The MQTT thread only enqueues; one writer thread takes batches (by size, or whatever has
arrived when the inbox runs dry), writes samples, events and rejections durably, and only
then acknowledges the batch's messages. While the store is down it retries with backoff and
takes nothing more; the bounded inbox then pushes back on the broker.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar, runtime_checkable

from ingest.inbox import Inbox, Received
from ingest.jobcheck import KnownProduct, check_job_start
from ingest.jumps import IMPLAUSIBLE_JUMP, MAX_SPEED_MPS, Jump, JumpFilter
from ingest.late import LATE_AFTER_MS, late_ranges
from ingest.metrics import IngestMetrics
from ingest.wire import Rows, decode_message, decode_rows
from storage.contract import StoreDataError, StoreUnavailableError, TelemetryStore
from storage.metadata import MetadataDB, RejectedMessage
from storage.records import Event, Sample

if TYPE_CHECKING:
    from ingest.foreign import ForeignTelemetry

log = logging.getLogger(__name__)

#: Reason recorded for samples the store itself refused (e.g. an InfluxDB field-type clash).
STORE_REJECTED = "store_rejected"

T = TypeVar("T")

#: Decoded batches that may wait for the store while the next one is decoded.
DECODED_AHEAD: Final = 2


class Acker(Protocol):
    """Whatever acknowledges messages to the broker (the MQTT consumer)."""

    def ack(self, messages: Sequence[Received]) -> int: ...


@dataclass(frozen=True, slots=True)
class WriterConfig:
    """Batching and retry policy of the writer."""

    batch_messages: int = 5_000
    #: About 5,000 samples whether they come one or ten to a message; bounds memory per batch.
    batch_bytes: int = 1024 * 1024
    linger_s: float = 0.005
    idle_wait_s: float = 0.2
    retry_initial_s: float = 0.2
    retry_max_s: float = 10.0
    stop_grace_s: float = 10.0
    #: Data written this long after its time is recorded as late for the flight watcher.
    late_after_ms: int = LATE_AFTER_MS
    #: Retention of the rejected-message log: rows older than this many days are deleted...
    rejected_days: int = 30
    #: ...and the log never holds more rows (messages) than this.
    rejected_max_rows: int = 1_000_000
    #: How often (at most, after a batch) rows past their age are deleted.
    prune_every_s: float = 60.0
    #: How often (at most) foreign translators are asked for what they held too long.
    foreign_tick_s: float = 1.0
    #: Samples further from the drone's previous one than this speed allows (plus 5 m of
    #: noise) are rejected ``implausible_jump`` (``ingest.jumps``); 0 turns the check off.
    max_speed_mps: float = MAX_SPEED_MPS


@runtime_checkable
class PreEncoding(Protocol):
    """A store that can encode samples apart from writing them (InfluxDB's line protocol):
    the decoder thread encodes the next batch while the writer waits on the store."""

    def encode_samples(self, samples: Sequence[Sample]) -> Any: ...

    def write_encoded(self, encoded: Any) -> None: ...


@runtime_checkable
class RowEncoding(PreEncoding, Protocol):
    """A pre-encoding store that also encodes common samples as rows of values
    (``ingest.wire.Rows``), so the decoder builds no ``Sample`` objects for them."""

    def encode_rows(self, groups: Sequence[Rows]) -> Any: ...


@dataclass(slots=True)
class DecodedBatch:
    """What a batch of messages decodes to."""

    samples: list[Sample]
    events: list[Event]
    rejected: list[RejectedMessage]
    #: ``samples`` (or ``rows``) as the store encoded them (None: write them as items).
    encoded: Any = None
    #: Common samples as rows, one group per message (``decode_batch(rows=True)``); a batch
    #: holds samples in one form or the other, never both, so their order is kept.
    rows: list[Rows] = field(default_factory=list)

    def sample_count(self) -> int:
        """How many samples, in either form."""
        return len(self.samples) + sum([len(group.rows) for group in self.rows])

    def max_ts_ms(self) -> int | None:
        """The latest sample time, or None without samples."""
        times = [s.ts_ms for s in self.samples]
        times += [row[0] for group in self.rows for row in group.rows]
        return max(times) if times else None

    def materialize(self) -> None:
        """Turn the rows into ``Sample`` objects in ``samples`` (for the item path)."""
        for group in self.rows:
            self.samples.extend(group.samples())
        self.rows = []


#: Reason recorded for messages of a drone the registry does not know (when it is enforced).
UNKNOWN_DRONE = "unknown_drone"

#: Whether (coop, drone) may send data; None admits every well-formed drone id.
Admission = Callable[[str, str], bool]


def decode_batch(
    messages: Sequence[Received],
    admit: Admission | None = None,
    *,
    rows: bool = False,
    jumps: JumpFilter | None = None,
    known_product: KnownProduct | None = None,
) -> DecodedBatch:
    """Decode every message; keep what is valid, and turn each message with refused content
    into one rejection record (a batch of 500 bad samples is one record counting 500).

    With ``rows``, telemetry messages of common samples become ``Rows`` (no ``Sample``
    objects) until a message needs the full decoder; from then on the batch's samples are
    ``Sample`` objects, the rows so far included, so they stay in the order received.
    With ``jumps``, samples no drone can have flown to are refused ``implausible_jump``
    (the filter keeps each drone's last accepted position across batches).
    A ``job_start`` naming a product ``known_product`` does not know, or a dose outside
    (0, 500] L/ha, is stored without that key and the message gets a rejection
    (``ingest.jobcheck``).
    """
    out = DecodedBatch([], [], [])
    fast = rows
    for msg in messages:
        if fast:
            group = decode_rows(msg.topic, msg.payload, msg.received_ms)
            if group is not None:
                if admit is not None and group.rows and not admit(group.coop, group.drone):
                    out.rejected.append(
                        _unknown_drone(msg, group.coop, group.drone, len(group.rows))
                    )
                else:
                    _add_rows(out, msg, group, jumps)
                continue
        decoded = decode_message(msg.topic, msg.payload, msg.received_ms)
        if fast and decoded.samples:
            fast = False
            out.materialize()
        if admit is not None and (decoded.samples or decoded.events):
            first = decoded.samples[0] if decoded.samples else decoded.events[0]
            if not admit(first.coop, first.drone):
                lost = len(decoded.samples) + len(decoded.events)
                out.rejected.append(_unknown_drone(msg, first.coop, first.drone, lost))
                continue
        samples, jumped = _without_jumps(decoded.samples, jumps)
        out.samples.extend(samples)
        dropped: list[RejectedMessage] = []
        for sent in decoded.events:
            event = sent
            if sent.type == "job_start":
                event, details = check_job_start(sent, known_product)
                dropped += [
                    RejectedMessage(
                        msg.received_ms, msg.topic, d.reason, d.detail, msg.payload[:1024]
                    )
                    for d in details
                ]
            out.events.append(event)
        if decoded.rejections or jumped or dropped:
            parts = [
                RejectedMessage(msg.received_ms, r.topic, r.reason, r.detail, r.payload_excerpt)
                for r in decoded.rejections
            ]
            if jumped:
                parts.append(_jumped(msg, jumped))
            parts += dropped
            out.rejected.append(merge_rejections(parts))
    return out


def _add_rows(out: DecodedBatch, msg: Received, group: Rows, jumps: JumpFilter | None) -> None:
    """A message's rows into the batch, those at implausible positions refused."""
    if jumps is None or not group.rows:
        out.rows.append(group)
        return
    rows = group.rows
    if len(rows) == 1:  # a sample per message (the common live case): the cheapest call
        row = rows[0]
        jump = jumps.check(group.coop, group.drone, row[0], row[1], row[2])
        refused: Sequence[tuple[int, Jump]] = () if jump is None else ((0, jump),)
    else:
        refused = jumps.scan(group.coop, group.drone, rows)
    if refused:
        out.rejected.append(_jumped(msg, [jump for _, jump in refused]))
        drop = {i for i, _ in refused}
        kept = [row for i, row in enumerate(group.rows) if i not in drop]
        group = Rows(group.coop, group.drone, kept)
    out.rows.append(group)


def _without_jumps(
    samples: list[Sample], jumps: JumpFilter | None
) -> tuple[list[Sample], list[Jump]]:
    """One message's samples at plausible positions, and the refusals of the others."""
    if jumps is None or not samples:
        return samples, []
    first = samples[0]  # one message's samples: one drone (the wire refuses a mismatch)
    if len(samples) == 1:  # a sample per message: the cheapest call, nothing built
        jump = jumps.check(first.coop, first.drone, first.ts_ms, first.lat, first.lon)
        return (samples, []) if jump is None else ([], [jump])
    points = [(s.ts_ms, s.lat, s.lon) for s in samples]
    refused = jumps.scan(first.coop, first.drone, points)
    if not refused:
        return samples, []
    drop = {i for i, _ in refused}
    return [s for i, s in enumerate(samples) if i not in drop], [j for _, j in refused]


def _jumped(msg: Received, jumped: list[Jump]) -> RejectedMessage:
    """One record for a message's implausible samples (detail: the first, and how many)."""
    more = f" (and {len(jumped) - 1} more)" if len(jumped) > 1 else ""
    return RejectedMessage(
        msg.received_ms,
        msg.topic,
        IMPLAUSIBLE_JUMP,
        jumped[0].detail + more,
        msg.payload[:1024],
        count=len(jumped),
    )


def _unknown_drone(msg: Received, coop: str, drone: str, lost: int) -> RejectedMessage:
    detail = f"drone {coop}/{drone} is not registered (register it: agridrone drones add)"
    return RejectedMessage(
        msg.received_ms, msg.topic, UNKNOWN_DRONE, detail, msg.payload[:1024], count=lost
    )


def merge_rejections(parts: Iterable[RejectedMessage]) -> RejectedMessage:
    """One record for several rejections of one message (or one drone's refused samples):
    the first one's time, topic, reason and excerpt, its detail with how many more there
    were, and the counts by reason."""
    items = list(parts)
    first = items[0]
    if len(items) == 1:
        return first
    by_reason: Counter[str] = Counter()
    for r in items:
        by_reason.update(r.reasons)
    total = sum(by_reason.values())
    return RejectedMessage(
        first.received_ms,
        first.topic,
        first.reason,
        f"{first.detail} (and {total - first.count} more)",
        first.payload_excerpt,
        count=total,
        by_reason=dict(by_reason) if len(by_reason) > 1 else None,
    )


@dataclass(frozen=True, slots=True)
class _Pending:
    """A decoded batch waiting to be stored, with the messages to acknowledge after."""

    messages: list[Received]
    decoded: DecodedBatch
    started: float


class BatchWriter:
    """Takes batches from the inbox, stores them durably, then acknowledges them."""

    def __init__(
        self,
        inbox: Inbox,
        store: TelemetryStore,
        metadata: MetadataDB,
        acker: Acker,
        *,
        metrics: IngestMetrics,
        config: WriterConfig | None = None,
        admit: Admission | None = None,
        known_product: KnownProduct | None = None,
        clock: Callable[[], float] = time.time,
        foreign: ForeignTelemetry | None = None,
    ) -> None:
        self.inbox = inbox
        #: MAVProxy and DJI messages are translated to wire v1 here, in the decoder thread.
        self.foreign = foreign
        self.store = store
        self.metadata = metadata
        self.acker = acker
        self.metrics = metrics
        self.config = config or WriterConfig()
        self.admit = admit
        #: Whether a job_start's product is registered (``ingest.jobcheck``); None: unchecked.
        self.known_product = known_product
        self.clock = clock
        self._pruned_at: float | None = None
        #: Decode common samples as rows when the store can encode them so.
        self._rows = isinstance(store, RowEncoding)
        #: Each drone's last accepted position, for ``implausible_jump`` (decoder thread only).
        self.jumps: JumpFilter | None = None
        if self.config.max_speed_mps > 0:
            self.jumps = JumpFilter(self.config.max_speed_mps)
        self._seeded = False

    def run(self, stop: threading.Event) -> None:
        """Write batches until ``stop`` is set and the inbox is drained (or the store is down).

        Two stages overlap: a decoder thread validates the next batch while this thread
        waits on the store for the previous one. Batches are stored and acknowledged in the
        order they were received.
        """
        decoded: queue.Queue[_Pending | None] = queue.Queue(maxsize=DECODED_AHEAD)
        abandon = threading.Event()
        decoder = threading.Thread(
            target=self._decode_stage, args=(stop, abandon, decoded), name="ingest-decoder"
        )
        decoder.start()
        try:
            while (pending := decoded.get()) is not None:
                if not self.store_and_ack(pending, stop):
                    abandon.set()
                    log.error(
                        "ingest_stopped_unwritten messages=%d"
                        " note=left unacknowledged for redelivery",
                        len(pending.messages) + len(self.inbox),
                    )
                    return
        finally:
            abandon.set()
            decoder.join()

    def _decode_stage(
        self,
        stop: threading.Event,
        abandon: threading.Event,
        out: queue.Queue[_Pending | None],
    ) -> None:
        cfg = self.config
        ticked = time.monotonic()
        try:
            while not abandon.is_set() and not (stop.is_set() and len(self.inbox) == 0):
                batch = self.inbox.take(
                    cfg.batch_messages, cfg.idle_wait_s, cfg.linger_s, cfg.batch_bytes
                )
                wire: Sequence[Received] = batch
                extra: list[RejectedMessage] = []
                if self.foreign is not None:
                    wire, extra = self.foreign.translate(batch) if batch else ([], [])
                    if time.monotonic() - ticked >= cfg.foreign_tick_s:
                        ticked = time.monotonic()
                        held = self.foreign.tick()
                        wire, extra = [*wire, *held.messages], extra + held.rejected
                if batch or wire or extra:
                    self._seed_jumps()
                    self._put_decoded(batch, wire, extra, out, abandon)
            if self.foreign is not None and not abandon.is_set():
                rest = self.foreign.flush()
                if rest:
                    self._put_decoded([], rest.messages, rest.rejected, out, abandon)
        except Exception:  # the writer then stops; nothing unwritten was acknowledged
            log.exception("ingest_decoder_crashed")
            raise
        finally:
            _put_unless(out, None, abandon)

    def _put_decoded(
        self,
        batch: list[Received],
        wire: Sequence[Received],
        extra: list[RejectedMessage],
        out: queue.Queue[_Pending | None],
        abandon: threading.Event,
    ) -> None:
        """Decode ``wire`` (the batch's wire-v1 messages and what its foreign ones became),
        add the foreign rejections, and pass it on to be stored; ``batch`` is acknowledged
        after."""
        decoded = decode_batch(
            wire, self.admit, rows=self._rows, jumps=self.jumps, known_product=self.known_product
        )
        decoded.rejected.extend(extra)
        self._pre_encode(decoded)
        _put_unless(out, _Pending(batch, decoded, time.perf_counter()), abandon)

    def _seed_jumps(self) -> None:
        """Anchor the jump filter at every drone's last stored position, once (so the first
        sample after a restart is checked, not trusted); a store that cannot answer now
        leaves the filter to anchor on what arrives, and so does one whose stored rows cannot
        be read as positions (a field type clash in InfluxDB, say): seeding is a refinement
        and must never stop the decoder."""
        if self._seeded or self.jumps is None:
            return
        self._seeded = True
        try:
            last_seen = self.store.drones()
            self.jumps.seed(last_seen)
        except Exception as exc:  # noqa: BLE001 -- see the docstring: logged, never fatal
            log.warning("jump_filter_unseeded error=%r", str(exc))
            return
        log.info("jump_filter_seeded drones=%d", len(self.jumps))

    def _pre_encode(self, decoded: DecodedBatch) -> None:
        """Encode the samples for the store now, if it can; a data error leaves them to the
        writer's item path, which pins the refusal on the samples that cause it."""
        store = self.store
        with contextlib.suppress(StoreDataError):
            if decoded.rows and isinstance(store, RowEncoding):
                decoded.encoded = store.encode_rows(decoded.rows)
            elif decoded.samples and isinstance(store, PreEncoding):
                decoded.encoded = store.encode_samples(decoded.samples)

    def store_messages(
        self, messages: Sequence[Received], stop: threading.Event
    ) -> DecodedBatch | None:
        """Decode, store and "acknowledge" messages that did not come from the inbox (an
        uploaded flight log's samples, ingest/logimport.py) through the same validation,
        rejected log, late-data ranges and metrics; what was stored, or None if a stop gave
        up on a store outage."""
        decoded = decode_batch(
            messages,
            self.admit,
            rows=self._rows,
            jumps=self.jumps,
            known_product=self.known_product,
        )
        self._pre_encode(decoded)
        pending = _Pending(list(messages), decoded, time.perf_counter())
        return decoded if self.store_and_ack(pending, stop) else None

    def store_and_ack(self, pending: _Pending, stop: threading.Event) -> bool:
        """Store one decoded batch, then acknowledge it; False if a stop gave up on an outage."""
        decoded = pending.decoded
        if decoded.rejected:  # one line per batch, so a flood of bad messages is a few lines
            first = decoded.rejected[0]
            log.warning(
                "messages_rejected messages=%d first_topic=%s first_reason=%s first_detail=%r",
                len(decoded.rejected),
                first.topic,
                first.reason,
                first.detail,
            )
        if not self._write_with_retry(decoded, stop):
            return False
        acked = self.acker.ack(pending.messages)
        m = self.metrics
        m.messages_received.inc(len(pending.messages))
        m.messages_acked.inc(acked)
        m.samples_written.inc(decoded.sample_count())
        m.events_written.inc(len(decoded.events))
        for r in decoded.rejected:
            m.messages_rejected.labels(r.reason).inc()
            for reason, n in r.reasons.items():
                m.samples_rejected.labels(reason).inc(n)
        last_ts = decoded.max_ts_ms()
        if last_ts is not None:
            m.last_sample_ts.set(last_ts / 1000)
        m.batch_messages.observe(len(pending.messages))
        m.batch_seconds.observe(time.perf_counter() - pending.started)
        self.prune_if_due()
        return True

    def prune_if_due(self) -> int:
        """Delete rejected-log rows past their age (and beyond the row cap) when the last
        prune is ``prune_every_s`` old; how many were deleted. A failure is logged and
        retried next time: retention never stops ingest."""
        now = self.clock()
        cfg = self.config
        if self._pruned_at is not None and now - self._pruned_at < cfg.prune_every_s:
            return 0
        self._pruned_at = now
        cutoff_ms = int(now * 1000) - cfg.rejected_days * 86_400_000
        try:
            deleted = self.metadata.prune_rejected(
                older_than_ms=cutoff_ms, max_rows=cfg.rejected_max_rows
            )
        except StoreUnavailableError as exc:
            log.warning("rejected_prune_failed error=%r", str(exc))
            return 0
        if deleted:
            log.info("rejected_pruned rows=%d older_than_ms=%d", deleted, cutoff_ms)
        return deleted

    def _write_with_retry(self, decoded: DecodedBatch, stop: threading.Event) -> bool:
        delay = self.config.retry_initial_s
        give_up_at: float | None = None
        while True:
            try:
                self._write(decoded)
            except StoreUnavailableError as exc:
                self.metrics.store_up.set(0)
                self.metrics.store_retries.inc()
                log.warning("store_unavailable retry_in_s=%.1f error=%r", delay, str(exc))
            else:
                self.metrics.store_up.set(1)
                return True
            if stop.is_set():
                give_up_at = give_up_at or time.monotonic() + self.config.stop_grace_s
                if time.monotonic() >= give_up_at:
                    return False
            stop.wait(delay)
            delay = min(delay * 2, self.config.retry_max_s)

    def _write(self, decoded: DecodedBatch) -> None:
        refused: dict[int, RejectedMessage] = {}
        if decoded.encoded is not None and isinstance(self.store, PreEncoding):
            try:
                self.store.write_encoded(decoded.encoded)
            except StoreDataError:
                decoded.encoded = None  # find the refused samples item by item
        if decoded.encoded is None:
            decoded.materialize()  # the item path pins a refusal on the samples that cause it
            refused = _write_isolating(decoded.samples, self.store.write_samples, _refused_sample)
        refused |= _write_isolating(decoded.events, self.store.write_events, _refused_event)
        if refused:
            decoded.samples = [s for s in decoded.samples if id(s) not in refused]
            decoded.events = [e for e in decoded.events if id(e) not in refused]
            by_topic: dict[str, list[RejectedMessage]] = {}
            for r in refused.values():
                by_topic.setdefault(r.topic, []).append(r)
            decoded.rejected.extend(merge_rejections(rs) for rs in by_topic.values())
        self.metadata.record_rejections(decoded.rejected, max_rows=self.config.rejected_max_rows)
        written: list[Sample | Event] = [*decoded.samples, *decoded.events]
        late = late_ranges(written, _now_ms(), self.config.late_after_ms, rows=decoded.rows)
        self.metadata.record_late_ranges(late)


def _put_unless(q: queue.Queue[T], item: T, abandon: threading.Event) -> None:
    """Put ``item`` on ``q``, waiting for room unless ``abandon`` is set meanwhile."""
    while not abandon.is_set():
        with contextlib.suppress(queue.Full):
            q.put(item, timeout=0.2)
            return


def _write_isolating(
    items: Sequence[T],
    write: Callable[[Sequence[T]], None],
    refusal: Callable[[T, StoreDataError], RejectedMessage],
) -> dict[int, RejectedMessage]:
    """Write items; on a data error bisect to find the ones the store refuses, by ``id``.

    A store's data error is never retried as is: halving the batch stores every good item
    and pins the refusal on the items that cause it.
    """
    if not items:
        return {}
    try:
        write(items)
    except StoreDataError as exc:
        if len(items) == 1:
            return {id(items[0]): refusal(items[0], exc)}
        mid = len(items) // 2
        return _write_isolating(items[:mid], write, refusal) | _write_isolating(
            items[mid:], write, refusal
        )
    return {}


def _refused_sample(s: Sample, exc: StoreDataError) -> RejectedMessage:
    detail = f"store refused sample ts={s.ts_ms}: {exc}"
    topic = f"agri/v1/{s.coop}/{s.drone}/telemetry"
    return RejectedMessage(_now_ms(), topic, STORE_REJECTED, detail, b"")


def _refused_event(e: Event, exc: StoreDataError) -> RejectedMessage:
    detail = f"store refused {e.type} event ts={e.ts_ms}: {exc}"
    topic = f"agri/v1/{e.coop}/{e.drone}/event"
    return RejectedMessage(_now_ms(), topic, STORE_REJECTED, detail, b"")


def _now_ms() -> int:
    return int(time.time() * 1000)
