"""Flights from the telemetry store into the metadata database (the I/O around the pure
segmentation and summaries).

``summarize_drone`` and ``rebuild`` read a drone's samples and events, cut them into
flights, summarize the closed flights that started in the window with a coverage engine
over the registered fields, and store them. ``FlightWatcher`` decides, from when each drone
was last heard from, which windows to summarize as flights end, and which flights to
summarize again for late data; its ``poll`` does one round.
docs/flights.md ("Stored flights") has the rules.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

import orjson

from fields.coverage import CoverageEngine, CoverageParams
from fields.stored import FieldHistory, VersionSet
from flights.diary_sync import sync_after_summary
from flights.jobs import JOB_EVENT_TYPES, JOB_LOOKBACK_MS, announcements, job_of
from flights.segment import IDLE_GAP_S, Flight, segment_flights
from flights.summary import FlightSummaryError, encode_state, summarize_flight
from storage.contract import StoreError, TelemetryStore
from storage.metadata import (
    FlightFieldState,
    JobRecord,
    LateRange,
    MetadataDB,
    StoredFlight,
    job_key,
    pack_state,
)
from storage.records import DroneLastSeen, Event, Sample

log = logging.getLogger(__name__)

#: How much more is read at a time while the last flight of a window has not ended yet.
READ_CHUNK_MS: Final = 3_600_000
#: Stored flights that started this long before late data are not looked at for it.
LONGEST_FLIGHT_MS: Final = 24 * 3_600_000


@dataclass(frozen=True, slots=True)
class DroneOutcome:
    """What one drone's summarizing did: flights stored, still open, failed, removed."""

    coop: str
    drone: str
    start_ms: int
    end_ms: int
    saved: tuple[str, ...] = ()
    open: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()  # "flight id: reason", one per flight that could not be summed
    removed: int = 0
    samples_read: int = 0
    open_since_ms: int | None = None  # start of the earliest open flight, if any

    def to_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {
            "coop": self.coop,
            "drone": self.drone,
            "saved": list(self.saved),
            "open": list(self.open),
            "failed": list(self.failed),
            "removed": self.removed,
            "samples_read": self.samples_read,
        }


class Engines:
    """Coverage engines over the fields as they were when each flight started (every stored
    version: a flight is judged against the outlines valid when it flew), one per set of
    versions valid together and default swath (a drone's registered width fills in samples
    that carry none); built once, reused. With no field registered at a flight's start
    there is no engine and every footprint counts as outside fields.

    ``Engines.current`` keeps one per metadata database across summarizer rounds and
    rebuilds only when ``fields_version`` moved, reusing the previous engines' parsed and
    prepared fields that did not change (``previous``)."""

    def __init__(
        self,
        metadata: MetadataDB,
        params: CoverageParams | None = None,
        *,
        previous: Engines | None = None,
    ) -> None:
        #: When the field versions were read: a summary made with these engines is as of
        #: then (its ``computed_ms``), so a field change recorded later marks it outdated.
        self.as_of_ms = int(time.time() * 1000)
        self.fields_version = metadata.fields_version()
        self._history: FieldHistory = FieldHistory(
            metadata.field_versions(), previous=previous.history if previous else None
        )
        self._params = params or CoverageParams()
        self._engines: dict[tuple[VersionSet, float | None], CoverageEngine] = {}
        self._latest: CoverageEngine | None = previous._latest if previous else None
        self._lock = threading.Lock()

    @property
    def history(self) -> FieldHistory:
        """The field versions these engines were built from."""
        return self._history

    @classmethod
    def current(cls, metadata: MetadataDB) -> Engines:
        """The engines of ``metadata``'s fields as they are now: the same object round
        after round while ``fields_version`` stays (its ``as_of_ms`` moves to now), new
        ones built on the previous when it moved. Never rebuilt on a timer or per poll."""
        with _shared_lock:
            known = _shared.get(metadata)
            now = int(time.time() * 1000)
            if known is not None and metadata.fields_version() == known.fields_version:
                # Read before the version: the fields were these at least until ``now``.
                known.as_of_ms = max(known.as_of_ms, now)
                return known
            fresh = cls(metadata, previous=known)
            _shared[metadata] = fresh
            return fresh

    def params(self, swath_m: float | None) -> CoverageParams:
        """The coverage parameters with ``swath_m`` as default swath (else the base one)."""
        if swath_m is None:
            return self._params
        return replace(self._params, default_swath_m=swath_m)

    def for_swath(self, swath_m: float | None, at_ms: int | None = None) -> CoverageEngine | None:
        """The engine whose parameters are ``params(swath_m)`` over the fields valid at
        ``at_ms`` (default: now), or None without fields then."""
        at = int(time.time() * 1000) if at_ms is None else at_ms
        key, registry = self._history.registry_at(at)
        if registry is None:
            return None
        with self._lock:
            engine = self._engines.get((key, swath_m))
            if engine is None:
                engine = CoverageEngine(registry, self.params(swath_m), previous=self._latest)
                self._engines[key, swath_m] = engine
            self._latest = engine
            return engine


#: ``Engines.current``'s engines, one per metadata database (dropped with it).
_shared: weakref.WeakKeyDictionary[MetadataDB, Engines] = weakref.WeakKeyDictionary()
_shared_lock = threading.Lock()


def read_flights(
    store: TelemetryStore,
    coop: str,
    drone: str,
    start_ms: int,
    end_ms: int,
    *,
    now_ms: int,
    idle_gap_s: float = IDLE_GAP_S,
) -> tuple[list[Flight], int]:
    """The drone's flights that started in [start, end), each whole, and how many samples
    were read.

    The read starts one idle gap before ``start`` (segmentation needs no more to place the
    first flight's start) and grows past ``end`` an hour at a time until the window's last
    flight has ended (landing, next takeoff, silence seen) or the read reaches ``now_ms``.
    """
    gap_ms = int(idle_gap_s * 1000) + 1
    lo = start_ms - gap_ms
    hi = min(max(end_ms + gap_ms, lo + 1), now_ms + 1)
    samples: list[Sample] = store.drone_samples(coop, drone, lo, hi)
    events: list[Event] = store.drone_events(coop, drone, lo, hi)
    while True:
        flights = segment_flights(samples, events, idle_gap_s=idle_gap_s, now_ms=now_ms)
        inside = [f for f in flights if start_ms <= f.start_ms < end_ms]
        last = inside[-1] if inside else None
        if (
            last is None
            or hi > now_ms
            or last.end_reason in ("landing", "takeoff")
            or (last.end_reason == "gap" and last.end_ms < hi - gap_ms)
        ):
            return inside, len(samples)
        more = min(hi + READ_CHUNK_MS, now_ms + 1)
        samples += store.drone_samples(coop, drone, hi, more)
        events += store.drone_events(coop, drone, hi, more)
        hi = more


def summarize_drone(  # noqa: PLR0917 -- the issue's signature: store, db, drone, window
    store: TelemetryStore,
    metadata: MetadataDB,
    coop: str,
    drone: str,
    start_ms: int,
    end_ms: int,
    *,
    now_ms: int,
    idle_gap_s: float = IDLE_GAP_S,
    engines: Engines | None = None,
    replace: bool = False,
) -> DroneOutcome:
    """Summarize and store the drone's closed flights that started in [start, end).

    Open flights are left for later. Each stored flight replaces the one with its id; with
    ``replace`` the drone's other stored flights of the window are removed (a rebuild). A
    flight that cannot be summarized is named in ``failed`` and the rest are still stored.
    """
    engines = engines or Engines(metadata)
    registered = metadata.drone(coop, drone)
    swath_m = registered.swath_m if registered else None
    flights, n_read = read_flights(
        store, coop, drone, start_ms, end_ms, now_ms=now_ms, idle_gap_s=idle_gap_s
    )
    job_events = (
        [
            e
            for e in store.drone_events(
                coop, drone, flights[0].start_ms - JOB_LOOKBACK_MS, flights[-1].end_ms + 1
            )
            if e.type in JOB_EVENT_TYPES
        ]
        if flights
        else []
    )
    rows: list[tuple[StoredFlight, Sequence[FlightFieldState]]] = []
    opened: list[Flight] = []
    failed: list[str] = []
    computed_ms = min(int(time.time() * 1000), engines.as_of_ms)
    for f in flights:
        if f.is_open:
            opened.append(f)
            continue
        try:
            engine = engines.for_swath(swath_m, f.start_ms)
            result = summarize_flight(
                f,
                engine,
                params=engines.params(swath_m),
                job=job_of(f.start_ms, f.end_ms, job_events),
            )
        except FlightSummaryError as exc:
            failed.append(str(exc))
            log.warning("flight_summary_failed flight=%s error=%r", f.id, str(exc))
            continue
        except Exception as exc:
            failed.append(f"{f.id}: could not be summarized ({type(exc).__name__}: {exc})")
            log.exception(
                "flight_summary_crashed flight=%s error_type=%s", f.id, type(exc).__name__
            )
            continue
        s = result.summary
        shares = {share.field_id: share for share in s.fields}
        states = [
            FlightFieldState(
                field_id=fid,
                covered_ha=shares[fid].covered_ha,
                applied_l=shares[fid].applied_l,
                state=pack_state(encode_state(engine, state)),
            )
            for fid, state in sorted(result.field_states.items())
            if engine is not None
        ]
        doc = orjson.dumps(s.to_dict()).decode()
        stored = StoredFlight(
            f.id,
            f.coop,
            f.drone,
            f.start_ms,
            f.end_ms,
            open=False,
            summary=doc,
            computed_ms=computed_ms,
        )
        rows.append((stored, states))
    window = (coop, drone, start_ms, end_ms)
    metadata.record_jobs(job_records(coop, drone, job_events))
    removed = metadata.save_flights(rows, replace_window=window if replace else None)
    try:
        sync_after_summary(
            metadata,
            (coop, drone),
            (start_ms, end_ms),
            [(flight, [s.field_id for s in states]) for flight, states in rows],
            lambda ms: engines.for_swath(swath_m, ms),
        )
    except StoreError:
        raise
    except Exception as exc:
        # The flights are stored; the diary is written again the next time they are.
        log.exception(
            "diary_sync_failed coop=%s drone=%s error_type=%s", coop, drone, type(exc).__name__
        )
    return DroneOutcome(
        coop=coop,
        drone=drone,
        start_ms=start_ms,
        end_ms=end_ms,
        saved=tuple(r[0].id for r in rows),
        open=tuple(f.id for f in opened),
        failed=tuple(failed),
        removed=removed,
        samples_read=n_read,
        open_since_ms=min((f.start_ms for f in opened), default=None),
    )


def job_records(coop: str, drone: str, events: Sequence[Event]) -> list[JobRecord]:
    """The jobs (with an id) a drone's job events announce, as stored (``jobs`` table)."""
    return [
        JobRecord(
            id=job_key(coop, drone, a.job),
            coop=coop,
            drone=drone,
            job=a.job,
            start_ms=a.start_ms,
            end_ms=a.end_ms,
            fields=a.fields,
            announced=dict(a.details),
            problems=tuple(p.to_dict() for p in a.problems),
        )
        for a in announcements(events)
    ]


def rebuild(
    store: TelemetryStore,
    metadata: MetadataDB,
    start_ms: int,
    end_ms: int,
    *,
    now_ms: int,
    coop: str | None = None,
    drone: str | None = None,
    idle_gap_s: float = IDLE_GAP_S,
    progress: Callable[[int, int], None] | None = None,
) -> list[DroneOutcome]:
    """Recompute every stored flight that started in [start, end) of every drone the store
    knows (or of one cooperative / drone): afterwards the window holds exactly what the
    samples say, stale flights removed. ``progress(done, total)`` hears of each drone
    finished (first with 0 done), for a progress bar."""
    engines = Engines(metadata)
    targets = sorted(
        {
            (d.coop, d.drone)
            for d in store.drones()
            if (coop is None or d.coop == coop) and (drone is None or d.drone == drone)
        }
    )
    outcomes = []
    if progress is not None:
        progress(0, len(targets))
    for c, d in targets:
        try:
            outcome = summarize_drone(
                store,
                metadata,
                c,
                d,
                start_ms,
                end_ms,
                now_ms=now_ms,
                idle_gap_s=idle_gap_s,
                engines=engines,
                replace=True,
            )
        except StoreError:
            raise
        except Exception as exc:
            log.exception(
                "drone_rebuild_failed coop=%s drone=%s error_type=%s", c, d, type(exc).__name__
            )
            reason = f"{c}/{d}: could not be rebuilt ({type(exc).__name__}: {exc})"
            outcome = DroneOutcome(c, d, start_ms, end_ms, failed=(reason,))
        outcomes.append(outcome)
        if progress is not None:
            progress(len(outcomes), len(targets))
    return outcomes


# --- Summarizing flights as they end ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    """One drone's window to summarize: flights that started in [start, end)."""

    coop: str
    drone: str
    start_ms: int
    end_ms: int


Span = tuple[int, int]
DroneKey = tuple[str, str]


def merge_late(ranges: Iterable[LateRange], gap_ms: int) -> dict[DroneKey, list[Span]]:
    """Late ranges per drone as sorted, disjoint spans ``(lo, hi)`` of ``ts`` (inclusive);
    ranges closer than ``gap_ms`` are one span (they may feed one flight)."""
    by_drone: dict[DroneKey, list[Span]] = {}
    for r in ranges:
        by_drone.setdefault((r.coop, r.drone), []).append((r.start_ms, r.end_ms))
    return {key: _merged(spans, gap_ms) for key, spans in sorted(by_drone.items())}


def _merged(spans: Iterable[Span], gap_ms: int) -> list[Span]:
    """Spans sorted, those within ``gap_ms`` of each other joined into one."""
    merged: list[Span] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1] + gap_ms:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def late_windows(
    spans: Mapping[DroneKey, Sequence[Span]],
    stored: Mapping[DroneKey, Sequence[Span]],
    since: Mapping[DroneKey, int],
    gap_ms: int,
) -> list[Window]:
    """The windows to summarize again (with ``replace``) for late data, one or more per drone.

    ``stored`` holds the drone's stored flights ``(start_ms, end_ms)`` near its spans. A
    span touches a stored flight when it comes within ``gap_ms`` of it: the flight may grow,
    merge with another or split, so the window runs from the earliest touched flight's start
    (or the span's) past the latest touched start and the span. Data at or after the drone's
    ``since`` with no stored flight near is left to the regular windows.
    """
    out: list[Window] = []
    for key in sorted(spans):
        drone_since = since.get(key)
        found: list[Span] = []
        for lo, hi in spans[key]:
            touched = [
                start
                for start, end in stored.get(key, ())
                if start <= hi + gap_ms and end >= lo - gap_ms
            ]
            if not touched and drone_since is not None and lo >= drone_since:
                continue
            end = hi + 1 if drone_since is None else min(hi + 1, drone_since)
            found.append((min([lo, *touched]), max([end, *(t + 1 for t in touched)])))
        out += [Window(key[0], key[1], start, end) for start, end in _merged(found, 0)]
    return out


@dataclass
class FlightWatcher:
    """Which drones to summarize, and over which window, as their flights end.

    Pure scheduling: ``plan`` turns the store's last-seen list into windows, ``done`` takes
    back what summarizing found. Per drone it keeps ``since``: every flight that started
    before it is stored. A window reaches up to ``now - settle_s`` so that samples still on
    their way through ingest are not skipped; an open flight keeps ``since`` at its start
    until it ends. A drone seen for the first time starts ``lookback_s`` back, or after its
    latest stored flight when that is later. Data written more than the ingest worker's
    ``late_after_ms`` (<= ``settle_s``) after its time is recorded as a late range, and
    ``poll_late`` summarizes again the flights it touches (``late_windows``).
    """

    interval_s: float = 30.0
    idle_gap_s: float = IDLE_GAP_S
    settle_s: float = 30.0
    lookback_s: float = 24 * 3600.0
    since: dict[tuple[str, str], int] = field(default_factory=dict)
    last_poll_ms: int | None = None

    def due(self, now_ms: int) -> bool:
        """Whether a round is due (the first one always is)."""
        return self.last_poll_ms is None or now_ms - self.last_poll_ms >= self.interval_s * 1000

    def plan(
        self,
        now_ms: int,
        drones: Iterable[DroneLastSeen],
        stored_until: dict[tuple[str, str], int] | None = None,
    ) -> list[Window]:
        """The windows to summarize now: drones heard from since their ``since``.

        ``stored_until`` gives, for drones not seen before, the start of their latest
        stored flight + 1 ms (flights from there on are new).
        """
        self.last_poll_ms = now_ms
        end = now_ms - int(self.settle_s * 1000)
        out: list[Window] = []
        for d in sorted(drones, key=lambda d: (d.coop, d.drone)):
            key = (d.coop, d.drone)
            if key not in self.since:
                floor = now_ms - int(self.lookback_s * 1000)
                self.since[key] = max(floor, (stored_until or {}).get(key, floor))
            since = self.since[key]
            if d.ts_ms >= since and end > since:
                out.append(Window(d.coop, d.drone, since, end))
        return out

    def done(self, window: Window, open_since_ms: int | None) -> None:
        """Record a summarized window: next time start at its end, or at the open flight."""
        key = (window.coop, window.drone)
        self.since[key] = window.end_ms if open_since_ms is None else open_since_ms

    def new_drones(self, drones: Iterable[DroneLastSeen]) -> list[tuple[str, str]]:
        """Drones the watcher has no ``since`` for yet."""
        return sorted({(d.coop, d.drone) for d in drones} - self.since.keys())

    def poll(self, store: TelemetryStore, metadata: MetadataDB, now_ms: int) -> list[DroneOutcome]:
        """One round: summarize every due window and store the flights that ended, then
        summarize again the flights that late data touched."""
        drones = store.drones()
        stored: dict[tuple[str, str], int] = {}
        for c, d in self.new_drones(drones):
            latest = metadata.latest_flight(c, d)
            if latest is not None:
                stored[(c, d)] = latest.start_ms + 1
        windows = self.plan(now_ms, drones, stored)
        engines = Engines.current(metadata) if windows else None
        outcomes = []
        for w in windows:
            try:
                outcome = self._summarize(store, metadata, w, now_ms, engines, replace=False)
            except StoreError:
                raise
            except Exception:
                # This drone's window is tried again next round; the others go on.
                log.exception("flight_window_failed coop=%s drone=%s", w.coop, w.drone)
                continue
            self.done(w, outcome.open_since_ms)
            outcomes.append(outcome)
        if engines is not None:
            redo_if_fields_changed(metadata, engines, outcomes, now_ms)
        return outcomes + self.poll_late(store, metadata, now_ms)

    def poll_late(
        self, store: TelemetryStore, metadata: MetadataDB, now_ms: int
    ) -> list[DroneOutcome]:
        """Summarize again, replacing what was stored, the flights that late data recorded
        by the ingest worker (or a past-dated field change, ``api.routes.fields``) touched;
        then forget those records. Cheap when none wait. The engines are built after the
        ranges are read, so they hold the field change that recorded a range."""
        ranges = metadata.late_ranges()
        if not ranges:
            return []
        gap_ms = int(self.idle_gap_s * 1000) + 1
        spans = merge_late(ranges, gap_ms)
        near: dict[DroneKey, list[Span]] = {}
        for (c, d), drone_spans in spans.items():
            lo, hi = drone_spans[0][0], drone_spans[-1][1]
            rows = metadata.flights(lo - LONGEST_FLIGHT_MS, hi + gap_ms + 1, coop=c, drone=d)
            near[(c, d)] = [(f.start_ms, f.end_ms) for f in rows]
        windows = late_windows(spans, near, self.since, gap_ms)
        engines = Engines.current(metadata)
        outcomes = []
        for w in windows:
            outcome = self._summarize(store, metadata, w, now_ms, engines, replace=True)
            key = (w.coop, w.drone)
            if outcome.open_since_ms is not None and key in self.since:
                self.since[key] = min(self.since[key], outcome.open_since_ms)
            outcomes.append(outcome)
        redo_if_fields_changed(metadata, engines, outcomes, now_ms)
        metadata.delete_late_ranges(ranges)
        log.info(
            "late_data_summarized ranges=%d windows=%d flights=%d removed=%d",
            len(ranges),
            len(windows),
            sum(len(o.saved) for o in outcomes),
            sum(o.removed for o in outcomes),
        )
        return outcomes

    def _summarize(
        self,
        store: TelemetryStore,
        metadata: MetadataDB,
        w: Window,
        now_ms: int,
        engines: Engines | None,
        *,
        replace: bool,
    ) -> DroneOutcome:
        return summarize_drone(
            store,
            metadata,
            w.coop,
            w.drone,
            w.start_ms,
            w.end_ms,
            now_ms=now_ms,
            idle_gap_s=self.idle_gap_s,
            engines=engines,
            replace=replace,
        )


def resummarize_since(metadata: MetadataDB, start_ms: int, recorded_ms: int) -> int:
    """Record that every stored flight that started in [start, recorded) must be summarized
    again (a field or zone change valid from ``start_ms``, recorded at ``recorded_ms``):
    one late range per drone, from its first such flight's start to its last one's, which
    the watcher's ``poll_late`` consumes. Any drone, not only those over the changed
    field: a flight that missed the old outline may touch the new one. Returns how many
    drones."""
    spans = metadata.drone_flight_spans(start_ms, recorded_ms)
    metadata.record_late_ranges(
        [LateRange(coop, drone, lo, hi, recorded_ms) for coop, drone, lo, hi in spans]
    )
    return len(spans)


def redo_if_fields_changed(
    metadata: MetadataDB, engines: Engines, outcomes: Sequence[DroneOutcome], now_ms: int
) -> None:
    """When the fields changed while a round summarized flights with engines read before
    the change, record the windows it stored as late ranges: the next round summarizes
    them again (a change with a past ``valid_from`` may reach them, and it could not see
    flights that were not stored yet)."""
    if metadata.fields_version() == engines.fields_version:
        return
    metadata.record_late_ranges(
        [
            LateRange(o.coop, o.drone, o.start_ms, max(o.start_ms, o.end_ms - 1), now_ms)
            for o in outcomes
            if o.saved
        ]
    )


#: The lease only its holder runs summarizer rounds under (storage/metadata/leases.py).
SUMMARIZER_LEASE: Final = "flight-summarizer"


@dataclass(frozen=True, slots=True)
class WatchLease:
    """Run rounds only while holding the lease ``name`` as ``holder`` (a name stable across
    restarts, such as the worker's MQTT client id, so a restarted worker takes its own lease
    back at once). It is renewed before every round and lasts ``ttl_s``: a few rounds, so
    that a holder that dies is replaced within ``ttl_s`` and one that is merely slow is not."""

    holder: str
    ttl_s: float
    name: str = SUMMARIZER_LEASE


def watch(
    store: TelemetryStore,
    metadata: MetadataDB,
    stop: threading.Event,
    watcher: FlightWatcher | None = None,
    tick_s: float = 5.0,
    *,
    lease: WatchLease | None = None,
) -> None:
    """Summarize flights as they end, until ``stop`` is set (run it in its own thread).

    With a ``lease``, several processes may run this and only the lease's holder runs
    rounds; a process that takes the lease over starts its watcher afresh from the stored
    flights (``FlightWatcher.since`` is per process). Every take-over, renewal and loss is
    one log line. The lease is released on the way out, so another process takes over at
    once.

    A failing round (store down, say, or any unexpected error) is logged and tried again
    at the next one: the thread never dies of it. Nothing is lost, because the watcher only
    moves past flights it has stored. An unexpected error is logged with its traceback the
    first time, then one line per round.
    """
    watcher = watcher or FlightWatcher()
    keeper = _LeaseKeeper(lease, watcher) if lease is not None else None
    seen: set[str] = set()
    while not stop.is_set():
        now_ms = int(time.time() * 1000)
        if watcher.due(now_ms):
            if keeper is not None and not keeper.hold(metadata, now_ms):
                watcher.last_poll_ms = now_ms  # ask again next interval, not every tick
                stop.wait(tick_s)
                continue
            try:
                outcomes = watcher.poll(store, metadata, now_ms)
            except StoreError as exc:
                log.warning("flight_watch_failed error=%r", str(exc))
            except Exception as exc:  # noqa: BLE001 -- the thread must outlive any round
                _log_round_error(exc, seen)
            else:
                saved = sum(len(o.saved) for o in outcomes)
                if saved:
                    log.info("flights_summarized flights=%d drones=%d", saved, len(outcomes))
            if keeper is not None:
                keeper.check_overrun(now_ms)
        stop.wait(tick_s)
    if keeper is not None:
        keeper.release(metadata)


class _LeaseKeeper:
    """``watch``'s side of the lease: take, renew, notice a loss, release; one log line
    for each change (and one per renewal)."""

    def __init__(self, lease: WatchLease, watcher: FlightWatcher) -> None:
        self.lease = lease
        self.watcher = watcher
        self.holding = False
        self.waiting_for: str | None = None

    def hold(self, metadata: MetadataDB, now_ms: int) -> bool:
        """Take or renew the lease; whether this process may run a round now."""
        name, me = self.lease.name, self.lease.holder
        try:
            got = metadata.acquire_lease(name, me, int(self.lease.ttl_s * 1000), now_ms)
        except StoreError as exc:
            log.warning("lease_check_failed lease=%s holder=%s error=%r", name, me, str(exc))
            self.holding = False
            return False
        if not got.held_by(me):
            if self.holding:
                log.warning("lease_lost lease=%s holder=%s to=%s", name, me, got.holder)
            elif self.waiting_for != got.holder:
                log.info("lease_waiting lease=%s holder=%s held_by=%s", name, me, got.holder)
            self.holding, self.waiting_for = False, got.holder
            return False
        if self.holding:
            log.info("lease_renewed lease=%s holder=%s until_ms=%d", name, me, got.expires_ms)
            return True
        # A fresh hold: what this process remembered of its past rounds may be stale.
        self.watcher.since.clear()
        self.holding, self.waiting_for = True, None
        if got.taken_over():
            expired_s = (now_ms - (got.previous_expires_ms or now_ms)) / 1000
            log.warning(
                "lease_taken_over lease=%s holder=%s from=%s expired_s_ago=%.1f",
                name,
                me,
                got.previous,
                expired_s,
            )
        else:
            log.info("lease_acquired lease=%s holder=%s until_ms=%d", name, me, got.expires_ms)
        return True

    def check_overrun(self, started_ms: int) -> None:
        """Warn when a round outlasted the lease: another process may have taken over and
        summarized the same flights (harmless, writes replace by flight id, but wasted)."""
        seconds = time.time() - started_ms / 1000
        if seconds > self.lease.ttl_s:
            log.warning(
                "lease_round_overran lease=%s holder=%s seconds=%.1f ttl_s=%.1f",
                self.lease.name,
                self.lease.holder,
                seconds,
                self.lease.ttl_s,
            )

    def release(self, metadata: MetadataDB) -> None:
        """Give the lease up on the way out, so another process need not wait for expiry."""
        if not self.holding:
            return
        with contextlib.suppress(StoreError):
            if metadata.release_lease(self.lease.name, self.lease.holder):
                log.info("lease_released lease=%s holder=%s", self.lease.name, self.lease.holder)


#: Distinct unexpected errors whose traceback ``watch`` logs; later ones get one line.
MAX_TRACED_ERRORS: Final = 100


def _log_round_error(exc: Exception, seen: set[str]) -> None:
    """Log a round's unexpected error: with its traceback the first time it is seen."""
    signature = f"{type(exc).__name__}: {exc}"
    if signature in seen:
        log.warning("flight_watch_crashed again=true error=%r", signature)
        return
    if len(seen) < MAX_TRACED_ERRORS:
        seen.add(signature)
    log.error("flight_watch_crashed again=false error=%r", signature, exc_info=exc)
