"""The ``TelemetryStore`` contract that the InfluxDB and SQLite stores both fulfil.

Writes are idempotent on (drone, ts): writing the same sample again overwrites it, so the
at-least-once delivery of the ingest path never double counts. A write that returns has
made its rows durable; the ingest worker acknowledges MQTT messages only after that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from storage.records import DroneLastSeen, Event, Sample
from storage.thinning import TrackRead


class StoreError(Exception):
    """Base class of every error a telemetry store raises."""


class StoreUnavailableError(StoreError):
    """The store cannot be reached or is failing (retry later; nothing was lost)."""


class StoreDataError(StoreError):
    """The store rejected the data itself; retrying the same write will fail again."""


@dataclass(frozen=True, slots=True)
class BBox:
    """A WGS84 bounding box, inclusive on all sides."""

    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float


@runtime_checkable
class TelemetryStore(Protocol):
    """What every telemetry store does. Times are epoch ms UTC; windows are [start, end)."""

    def write_samples(self, samples: Sequence[Sample]) -> None:
        """Store samples durably; the same (coop, drone, ts) again overwrites the earlier row.

        Redelivered duplicates are identical, so both stores end with one exact row. A rewrite
        that leaves out an optional key replaces the whole row in SQLite but keeps the old
        value of that key in InfluxDB, which merges fields of the same point.
        """
        ...

    def write_events(self, events: Sequence[Event]) -> None:
        """Store events durably; the same (coop, drone, ts, type) again replaces it."""
        ...

    def drone_samples(self, coop: str, drone: str, start_ms: int, end_ms: int) -> list[Sample]:
        """One drone's samples with start <= ts < end, oldest first."""
        ...

    def samples_in_area(self, bbox: BBox, start_ms: int, end_ms: int) -> list[Sample]:
        """Every drone's samples inside ``bbox`` with start <= ts < end, by (ts, coop, drone)."""
        ...

    def drone_track(
        self,
        coop: str,
        drone: str,
        start_ms: int,
        end_ms: int,
        *,
        max_points: int,
        gap_ms: int,
    ) -> TrackRead:
        """One drone's track with start <= ts < end in at most ``max_points`` positions.

        Every sample when the window holds at most ``max_points``; otherwise thinned inside
        the store (``storage.thinning``): the first and last sample of every piece between
        gaps longer than ``gap_ms`` kept exactly, the first and last sample of each time
        bucket between them. Never reads more than ``max_points`` rows out of the store.
        """
        ...

    def drone_events(self, coop: str, drone: str, start_ms: int, end_ms: int) -> list[Event]:
        """One drone's events with start <= ts < end, oldest first."""
        ...

    def drones(self) -> list[DroneLastSeen]:
        """Every drone that has a stored sample, with its latest sample's time and position."""
        ...

    def ping(self) -> None:
        """Raise ``StoreUnavailableError`` unless the store answers."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...
