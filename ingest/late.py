"""Which part of a written batch is late data (pure): samples and events that reach the
store more than ``late_after_ms`` after their own time.

The flight watcher only looks at data up to ``now - settle_s`` once; data written later
than that after its time would never be summarized. The worker records the late part of
every batch, one range per drone, so the watcher re-summarizes the flights it touches
(storage/metadata/dirty.py, docs/flights.md "Late data").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

from storage.metadata import LateRange
from storage.records import Event, Sample

#: Data older than this when written counts as late; keep the watcher's ``settle_s`` >= it.
LATE_AFTER_MS: Final = 10_000


def late_ranges(
    items: Iterable[Sample | Event],
    written_ms: int,
    late_after_ms: int = LATE_AFTER_MS,
    *,
    rows: Iterable[tuple[str, str, Sequence[tuple[Any, ...]]]] = (),
) -> list[LateRange]:
    """One range per drone spanning the ``ts`` of its items written more than
    ``late_after_ms`` after their time, by (coop, drone). ``rows`` are samples as
    (coop, drone, rows) groups whose rows start with ``ts_ms`` (``ingest.wire.Rows``)."""
    spans: dict[tuple[str, str], tuple[int, int]] = {}
    cutoff = written_ms - late_after_ms
    for coop, drone, group in rows:
        late = [row[0] for row in group if row[0] < cutoff]
        if late:
            key = (coop, drone)
            lo, hi = min(late), max(late)
            if key in spans:
                lo, hi = min(lo, spans[key][0]), max(hi, spans[key][1])
            spans[key] = (lo, hi)
    for item in items:
        if item.ts_ms >= cutoff:
            continue
        key = (item.coop, item.drone)
        lo, hi = spans.get(key, (item.ts_ms, item.ts_ms))
        spans[key] = (min(lo, item.ts_ms), max(hi, item.ts_ms))
    return [
        LateRange(coop, drone, lo, hi, written_ms)
        for (coop, drone), (lo, hi) in sorted(spans.items())
    ]
