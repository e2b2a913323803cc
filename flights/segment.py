"""Cut one drone's samples and events into flights (pure; docs/flights.md has the rules).

A flight starts at a ``takeoff`` event, or at the first sample after more than
``idle_gap_s`` of silence; it ends at ``landing``, at the last sample before more than
``idle_gap_s`` of silence, or just before the next ``takeoff``. Samples after silence that
run into a ``takeoff`` with no landing or silence between are the drone on the ground
before take-off and belong to no flight; so do samples between a landing and what follows.
A flight whose end has not been seen yet (no landing, last sign of life less than
``idle_gap_s`` before ``now_ms``) is *open*: the service waits for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from storage.records import Event, Sample

IntArray = npt.NDArray[np.int64]
StartReason = Literal["takeoff", "gap"]
EndReason = Literal["landing", "gap", "takeoff", "open"]

#: Default silence (seconds) that ends one flight and lets the next sample start another.
IDLE_GAP_S: Final = 60.0

#: Events a flight is cut at; every other event type only rides along.
_CUT_TYPES: Final = ("takeoff", "landing")

# Markers at one instant are handled in this order: a run of samples resumes, a flight
# lands, a new one takes off, a silence begins after the instant's sample.
_RUN_START, _LANDING, _TAKEOFF, _RUN_END = 0, 1, 2, 3


class FlightInputError(ValueError):
    """The samples or events cannot be segmented as given (the message says which)."""


@dataclass(frozen=True, slots=True)
class Flight:
    """One flight of one drone: its samples (by time, one per ``ts``) and its events.

    ``end_ms`` is the landing time, or the last sample's time when the flight ended by
    silence, by the next takeoff, or is still open. ``ground_events`` are the events
    between the drone's previous flight (or the start of the input) and this one's start:
    refills and battery swaps done on the ground to prepare it. ``duplicates`` counts
    samples dropped because another sample had the same ``ts``.
    """

    id: str
    coop: str
    drone: str
    start_ms: int
    end_ms: int
    start_reason: StartReason
    end_reason: EndReason
    samples: tuple[Sample, ...]
    events: tuple[Event, ...] = ()
    ground_events: tuple[Event, ...] = ()
    duplicates: int = 0

    @property
    def is_open(self) -> bool:
        """Whether more of this flight may still arrive (summaries wait for it to end)."""
        return self.end_reason == "open"

    @property
    def duration_s(self) -> float:
        """Seconds from start to end."""
        return (self.end_ms - self.start_ms) / 1000.0


def flight_id(coop: str, drone: str, start_ms: int) -> str:
    """The stable id of the flight of ``coop``/``drone`` that started at ``start_ms``."""
    return f"{coop}.{drone}.{start_ms}"


@dataclass(frozen=True, slots=True)
class _Cut:
    start_ms: int
    end_ms: int
    start_reason: StartReason
    end_reason: EndReason


def cut_flights(
    ts_ms: npt.ArrayLike,
    takeoff_ms: Iterable[int],
    landing_ms: Iterable[int],
    *,
    idle_gap_s: float = IDLE_GAP_S,
    now_ms: int | None = None,
) -> list[tuple[int, int, StartReason, EndReason]]:
    """Flight time spans ``(start_ms, end_ms, start_reason, end_reason)`` from sorted,
    distinct sample times and the takeoff/landing times (any order).

    ``now_ms`` None means the data is complete: nothing is left open.
    """
    return [
        (c.start_ms, c.end_ms, c.start_reason, c.end_reason)
        for c in _cuts(
            np.asarray(ts_ms, dtype=np.int64),
            sorted(set(takeoff_ms)),
            sorted(set(landing_ms)),
            idle_gap_ms=idle_gap_s * 1000.0,
            now_ms=now_ms,
        )
    ]


def _markers(
    ts: IntArray, takeoffs: list[int], landings: list[int], idle_gap_ms: float, now_ms: int | None
) -> list[tuple[int, int]]:
    """(time, kind) of every run start/end of the samples and every takeoff/landing."""
    out: list[tuple[int, int]] = []
    if len(ts):
        silent = np.flatnonzero(np.diff(ts) > idle_gap_ms)
        starts = np.concatenate([[0], silent + 1])
        ends = np.concatenate([silent, [len(ts) - 1]])
        out += [(int(ts[i]), _RUN_START) for i in starts]
        out += [(int(ts[i]), _RUN_END) for i in ends[:-1]]
        last = int(ts[-1])
        if now_ms is None or now_ms - last > idle_gap_ms:
            out.append((last, _RUN_END))
    out += [(t, _TAKEOFF) for t in takeoffs]
    out += [(t, _LANDING) for t in landings]
    out.sort()
    return out


def _cuts(
    ts: IntArray,
    takeoffs: list[int],
    landings: list[int],
    *,
    idle_gap_ms: float,
    now_ms: int | None,
) -> list[_Cut]:
    if idle_gap_ms <= 0:
        raise FlightInputError(f"idle gap must be > 0 s, got {idle_gap_ms / 1000.0} s")
    cutter = _Cutter(ts, idle_gap_ms)
    step = {
        _RUN_START: cutter.run_start,
        _RUN_END: cutter.run_end,
        _LANDING: cutter.landing,
        _TAKEOFF: cutter.takeoff,
    }
    for t, kind in _markers(ts, takeoffs, landings, idle_gap_ms, now_ms):
        step[kind](t)
    cutter.finish(now_ms)
    return cutter.cuts


class _Cutter:
    """The state machine behind ``_cuts``: at most one flight open at a time."""

    def __init__(self, ts: IntArray, idle_gap_ms: float) -> None:
        self.ts = ts
        self.idle_gap_ms = idle_gap_ms
        self.cuts: list[_Cut] = []
        self.start: int | None = None
        self.reason: StartReason = "gap"
        self.alive = 0  # last sign of life of the open flight seen so far (run start, takeoff)

    def _close(self, end: int, reason: EndReason) -> None:
        if self.start is not None:
            self.cuts.append(_Cut(self.start, max(end, self.start), self.reason, reason))
        self.start = None

    def _last_sample_before(self, t: int) -> int | None:
        i = int(np.searchsorted(self.ts, t, side="left")) - 1
        return int(self.ts[i]) if i >= 0 else None

    def run_start(self, t: int) -> None:
        if self.start is not None and t - self.alive > self.idle_gap_ms:
            self._close(self.alive, "gap")  # took off, then nothing for too long
        if self.start is None:
            self.start, self.reason = t, "gap"
        self.alive = t

    def run_end(self, t: int) -> None:
        self._close(t, "gap")

    def landing(self, t: int) -> None:
        self._close(t, "landing")

    def takeoff(self, t: int) -> None:
        if self.start is not None and self.reason == "takeoff":
            previous = self._last_sample_before(t)
            self._close(previous if previous is not None else self.start, "takeoff")
        # A flight opened by silence and running into a takeoff was the drone on the ground.
        self.start, self.reason, self.alive = t, "takeoff", t

    def finish(self, now_ms: int | None) -> None:
        if self.start is None:
            return
        if len(self.ts) and int(self.ts[-1]) >= self.start:
            self.alive = max(self.alive, int(self.ts[-1]))
        if now_ms is None or now_ms - self.alive > self.idle_gap_ms:
            self._close(self.alive, "gap")
        else:
            self._close(self.alive, "open")


def segment_flights(
    samples: Sequence[Sample],
    events: Sequence[Event] = (),
    *,
    idle_gap_s: float = IDLE_GAP_S,
    now_ms: int | None = None,
) -> list[Flight]:
    """One drone's flights, oldest first, from its samples and events in any order.

    Samples with the same ``ts`` are one sample (the first kept, the rest counted as
    ``duplicates``); repeated events are one event. ``now_ms`` None means the data is
    complete, so no flight is open.
    """
    if not samples and not events:
        return []
    owners = {(s.coop, s.drone) for s in samples} | {(e.coop, e.drone) for e in events}
    if len(owners) > 1:
        names = ", ".join(f"{c}/{d}" for c, d in sorted(owners)[:5])
        raise FlightInputError(f"segment one drone at a time; got samples/events of {names}")
    coop, drone = owners.pop()
    ts_all = np.fromiter((s.ts_ms for s in samples), dtype=np.int64, count=len(samples))
    order = np.argsort(ts_all, kind="stable")
    ts_sorted = ts_all[order]
    first = np.ones(len(ts_sorted), dtype=bool)
    first[1:] = ts_sorted[1:] != ts_sorted[:-1]
    ts = ts_sorted[first]
    kept = order[first]
    dup_at = ts_sorted[~first]  # times of the dropped duplicates
    ordered = [samples[i] for i in kept.tolist()]
    ev_objs = _dedupe_events(events)
    takeoffs = [e.ts_ms for e in ev_objs if e.type == "takeoff"]
    landings = [e.ts_ms for e in ev_objs if e.type == "landing"]
    cuts = _cuts(ts, takeoffs, landings, idle_gap_ms=idle_gap_s * 1000.0, now_ms=now_ms)

    ev_ts = np.array([e.ts_ms for e in ev_objs], dtype=np.int64)
    flights: list[Flight] = []
    prev_stop = 0
    prev_end_ms: int | None = None
    for c in cuts:
        lo = max(int(np.searchsorted(ts, c.start_ms, side="left")), prev_stop)
        hi = max(int(np.searchsorted(ts, c.end_ms, side="right")), lo)
        if c.end_reason == "open":
            hi = len(ts)
        e_lo = int(np.searchsorted(ev_ts, c.start_ms, side="left"))
        e_hi = int(np.searchsorted(ev_ts, c.end_ms, side="right"))
        if c.end_reason == "open":
            e_hi = len(ev_ts)
        g_lo = 0 if prev_end_ms is None else int(np.searchsorted(ev_ts, prev_end_ms, "right"))
        ground = [e for e in ev_objs[g_lo:e_lo] if e.type not in _CUT_TYPES]
        dups = int(np.count_nonzero((dup_at >= c.start_ms) & (dup_at <= c.end_ms)))
        flights.append(
            Flight(
                id=flight_id(coop, drone, c.start_ms),
                coop=coop,
                drone=drone,
                start_ms=c.start_ms,
                end_ms=c.end_ms,
                start_reason=c.start_reason,
                end_reason=c.end_reason,
                samples=tuple(ordered[lo:hi]),
                events=tuple(ev_objs[e_lo:e_hi]),
                ground_events=tuple(ground),
                duplicates=dups,
            )
        )
        prev_stop, prev_end_ms = hi, c.end_ms
    return flights


def _dedupe_events(events: Sequence[Event]) -> list[Event]:
    """Events by time, one per (ts, type): a redelivered event is the same event."""
    seen: dict[tuple[int, str], Event] = {}
    for e in events:
        seen.setdefault((e.ts_ms, e.type), e)
    return [seen[k] for k in sorted(seen, key=lambda k: (k[0], _type_rank(k[1]), k[1]))]


def _type_rank(kind: str) -> int:
    """At one instant a landing comes before a takeoff, and both before anything else."""
    return {"landing": 0, "takeoff": 1}.get(kind, 2)
