"""A bounded hand-off between the MQTT network thread and the store writer.

Bounded by message count and by payload bytes, so a store outage stops intake at a known
memory cost: when the inbox is full, ``put`` blocks the MQTT thread, paho stops reading
the socket, and the broker keeps the rest (unacknowledged, so nothing is lost).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Received:
    """One MQTT message as it came off the wire, with what is needed to acknowledge it."""

    generation: int
    mid: int
    qos: int
    topic: str
    payload: bytes
    received_ms: int


class Inbox:
    """FIFO of ``Received`` messages, bounded by ``max_messages`` and ``max_bytes``."""

    def __init__(self, max_messages: int = 20_000, max_bytes: int = 64 * 1024 * 1024) -> None:
        if max_messages < 1 or max_bytes < 1:
            raise ValueError("inbox bounds must be positive")
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._items: deque[Received] = deque()
        self._bytes = 0
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def bytes(self) -> int:
        """Payload bytes currently held."""
        return self._bytes

    def oldest_received_ms(self) -> int | None:
        """Receive time of the oldest message held, or None when empty."""
        with self._lock:
            return self._items[0].received_ms if self._items else None

    def put(self, item: Received, timeout: float) -> bool:
        """Append ``item``, waiting up to ``timeout`` s for room; False if there was none.

        A single message larger than ``max_bytes`` is still let in when the inbox is empty,
        so an oversized payload cannot wedge the pipeline.
        """
        size = len(item.payload)
        deadline = time.monotonic() + timeout
        with self._not_full:
            while self._items and (
                len(self._items) >= self.max_messages or self._bytes + size > self.max_bytes
            ):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._not_full.wait(remaining)
            self._items.append(item)
            self._bytes += size
            self._not_empty.notify()
            return True

    def put_many(self, items: Sequence[Received], timeout: float) -> int:
        """Append ``items`` in order, waiting up to ``timeout`` s for room; how many went in.

        One lock round for a whole read of the socket instead of one per message; the same
        bounds as ``put`` (a lone oversized message still goes into an empty inbox).
        """
        deadline = time.monotonic() + timeout
        done = 0
        with self._not_full:
            for item in items:
                size = len(item.payload)
                while self._items and (
                    len(self._items) >= self.max_messages or self._bytes + size > self.max_bytes
                ):
                    self._not_empty.notify()  # the taker may be waiting for what we added
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return done
                    self._not_full.wait(remaining)
                self._items.append(item)
                self._bytes += size
                done += 1
            self._not_empty.notify()
        return done

    def take(
        self, max_items: int, wait: float, linger: float = 0.0, max_bytes: int | None = None
    ) -> list[Received]:
        """Remove up to ``max_items`` messages (and about ``max_bytes`` of payload, at least one).

        Waits ``wait`` s for the first message, then up to ``linger`` s for more.
        """
        out: list[Received] = []
        budget = self.max_bytes if max_bytes is None else max_bytes
        with self._not_empty:
            if not self._items and not self._not_empty.wait_for(lambda: bool(self._items), wait):
                return out
            deadline = time.monotonic() + linger
            taken = 0
            while True:
                while self._items and len(out) < max_items and (not out or taken < budget):
                    item = self._items.popleft()
                    self._bytes -= len(item.payload)
                    taken += len(item.payload)
                    out.append(item)
                self._not_full.notify_all()
                remaining = deadline - time.monotonic()
                if len(out) >= max_items or taken >= budget or remaining <= 0:
                    return out
                self._not_empty.wait(remaining)
                if not self._items:
                    return out
