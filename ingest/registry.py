"""Which drones may send data: the drone registry, cached for the ingest hot path."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from storage.drones import DroneRecord


class RegisteredDrones:
    """Admits (coop, drone) pairs registered with ``agridrone drones add``.

    The registry is re-read every ``refresh_s`` seconds, and at most once a second when an
    unknown drone shows up, so a drone registered a moment ago is let in without a restart.
    """

    def __init__(
        self,
        load: Callable[[], list[DroneRecord]],
        refresh_s: float = 30.0,
        miss_refresh_s: float = 1.0,
    ) -> None:
        self._load = load
        self.refresh_s = refresh_s
        self.miss_refresh_s = miss_refresh_s
        self._known: frozenset[tuple[str, str]] = frozenset()
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    def _reload(self, now: float) -> None:
        self._known = frozenset((d.coop, d.drone) for d in self._load())
        self._loaded_at = now

    def __call__(self, coop: str, drone: str) -> bool:
        now = time.monotonic()
        with self._lock:
            age = now - self._loaded_at
            if age >= self.refresh_s or (
                (coop, drone) not in self._known and age >= self.miss_refresh_s
            ):
                self._reload(now)
            return (coop, drone) in self._known
