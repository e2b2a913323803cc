"""The compliance flags that concern each flight, as a caller may see them (docs/diary.md,
"Flags per flight").

A flight's flags are those of the diary entries it served (the latest version of each), on
the fields the caller sees the flight over, and only entries the caller may read in the
field's diary (ownership as each entry recorded it): a farmer never sees a flag of another
member's field, a cooperative none of another cooperative's field.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from api.auth import Principal
from api.routes.diary import visible_entry
from flights.diary import flight_flags
from storage.metadata import MetadataDB, StoredFlight


def flags_by_flight(
    principal: Principal,
    metadata: MetadataDB,
    flights: Sequence[tuple[StoredFlight, Collection[str]]],
) -> dict[str, list[dict[str, Any]]]:
    """Each flight's flags by flight id; ``flights``: each flight with the fields the caller
    sees it over. One read per drone of the flights."""
    spans: dict[tuple[str, str], tuple[int, int]] = {}
    for f, _ in flights:
        lo, hi = spans.get((f.coop, f.drone), (f.start_ms, f.start_ms))
        spans[(f.coop, f.drone)] = (min(lo, f.start_ms), max(hi, f.start_ms))
    visible = visible_entry(principal)
    entries: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for (coop, drone), (lo, hi) in spans.items():
        for row in metadata.diary_latest_of_drone(coop, drone, lo, hi):
            doc = row.doc()
            if not doc.get("withdrawn") and visible(doc):
                entries.setdefault((coop, drone), []).append({**doc, "field_id": row.field_id})
    out: dict[str, list[dict[str, Any]]] = {}
    for f, fields in flights:
        mine = [e for e in entries.get((f.coop, f.drone), []) if e["field_id"] in fields]
        out[f.id] = flight_flags(mine, f.id)
    return out


def flag_codes(flags: Sequence[dict[str, Any]]) -> list[str]:
    """The distinct codes of a flight's flags, sorted (the list's compact form)."""
    return sorted({str(f.get("code")) for f in flags})
