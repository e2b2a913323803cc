"""Flights: the stored flight summaries, listed and one by one, and a flight's track.

Who sees what (``api.auth.can_see_flight``): operators every flight; a cooperative its own
drones' flights whole, and other drones' flights over its members' fields; a farmer the
flights over their fields. A flight seen only through a field (``whole_flight`` false)
shows its time, drone, data quality and the part on the caller's fields (and whether its
job named them), not what the drone did elsewhere for someone else. A field drawn over a
field of the drone's own cooperative shows that cooperative's flights only when the job
named it (``api.auth.can_see_flight_on_field``).

Each flight carries the compliance flags that concern it (``api.flight_flags``): the list
their codes (``flag_codes``), one flight the flags themselves (``flags``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Annotated, Any, Final

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from api.auth import (
    Principal,
    PrincipalDep,
    can_see_drone,
    can_see_field,
    can_see_flight,
    can_see_flight_on_field,
)
from api.catalog import Catalog, FieldCatalog, heavy
from api.deps import CatalogDep, MetadataDep, StoreDep
from api.flight_flags import flag_codes, flags_by_flight
from api.flight_tracks import (
    TRACK_MARGIN_M,
    Region,
    around,
    clip_layout,
    positions_kept,
    span_inside,
    visible_region,
)
from api.overlaps import foreign_overlaps_of
from api.pagination import CursorQuery, decode_cursor, encode_cursor
from api.routes.drones import (
    DEFAULT_TRACK_POINTS,
    TRACK_GAP_S,
    MaxPointsQuery,
    TrackLayout,
    layout_read,
    stream_geojson,
    track_answer,
)
from api.times import WindowDep, rfc3339
from fields.registry import ID_PATTERN
from storage.metadata import FlightAudience, MetadataDB, StoredFlight
from storage.thinning import TrackRead

router = APIRouter(tags=["flights"])

MAX_LIMIT: Final = 5000
_ID: Final = f"^{ID_PATTERN}$"
#: A flight id: ``{coop}.{drone}.{start epoch ms}`` (``flights.segment.flight_id``).
FLIGHT_ID_PATTERN: Final = rf"^{ID_PATTERN}\.{ID_PATTERN}\.-?[0-9]{{1,19}}$"
FlightIdPath = Annotated[
    str, Path(pattern=FLIGHT_ID_PATTERN, description="flight id: {coop}.{drone}.{start ms}")
]
#: What a caller seeing a flight only through their fields is shown of it.
_FIELD_VIEW_KEYS: Final = (
    "id",
    "coop",
    "drone",
    "start",
    "end",
    "start_ms",
    "end_ms",
    "start_reason",
    "end_reason",
    "open",
    "duration_s",
    "samples_received",
    "samples_missing",
    "quality",
    "quality_reasons",
)


class FlightList(BaseModel):
    """A page of the flights that started in [from, to), oldest first (by start, id)."""

    from_: str = Field(serialization_alias="from")
    to: str
    limit: int
    returned: int
    more: bool
    next_cursor: str | None
    flights: list[dict[str, Any]]


def audience(principal: Principal) -> FlightAudience | None:
    """The flights a role may list (``None``: all of them)."""
    if principal.role == "operator":
        return None
    if principal.role == "coop":
        return FlightAudience(drone_coop=principal.subject, field_coop=principal.subject)
    return FlightAudience(field_owner=principal.subject)


def flight_view(
    principal: Principal,
    flight: StoredFlight,
    owners: Mapping[str, tuple[str, str]],
    overlapped: dict[str, frozenset[str]] | None = None,
) -> dict[str, Any] | None:
    """The summary as the caller may see it, times in local RFC 3339; ``None`` when every
    field it could be seen through hides it (``overlapped``: see
    ``api.auth.can_see_flight_on_field``). ``owners`` are the fields' (owner, coop) valid
    when the flight started, so a field's later owner never sees what was flown for the
    one before."""
    doc = flight.summary_dict()
    doc["start"], doc["end"] = rfc3339(flight.start_ms), rfc3339(flight.end_ms)
    if can_see_drone(principal, flight.coop):
        return doc | {"whole_flight": True}
    view: dict[str, Any] = {k: doc[k] for k in _FIELD_VIEW_KEYS if k in doc}
    named = set(doc.get("job_fields", []))
    hiding = overlapped or {}

    def visible(field_id: str) -> bool:
        return can_see_flight_on_field(
            principal,
            flight.coop,
            owners.get(field_id, ("", "")),
            overlapped_coops=hiding.get(field_id, frozenset()),
            named_by_job=field_id in named,
        )

    view["fields"] = [s for s in doc.get("fields") or [] if visible(s.get("field_id", ""))]
    view["job_fields"] = [f for f in doc.get("job_fields") or [] if visible(f)]
    if not view["fields"]:
        return None
    return view | {"whole_flight": False}


@router.get("/flights")
def list_flights(  # noqa: PLR0917 -- one parameter per documented query filter
    principal: PrincipalDep,
    metadata: MetadataDep,
    catalog: CatalogDep,
    window: WindowDep,
    drone: Annotated[
        str | None, Query(pattern=_ID, description="only this drone's flights")
    ] = None,
    coop: Annotated[
        str | None, Query(pattern=_ID, description="only flights by this cooperative's drones")
    ] = None,
    field: Annotated[
        str | None, Query(pattern=_ID, description="only flights over this field")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="most flights per page")] = 500,
    cursor: CursorQuery = None,
) -> FlightList:
    """Flights that started in [from, to) that the caller may see, oldest first (by start
    time, then id), a page of ``limit`` at a time.

    ``more`` is true when there are more: pass ``next_cursor`` back as ``cursor`` (with the
    same filters) for the next page. A field, drone or cooperative the caller may not see
    gives an empty list, as one that does not exist would (a field none of whose versions
    the caller could see is still empty: its flights would tell that it exists); a field
    the caller saw at some time (deleted or moved since) lists the flights the caller may
    see over it.
    """
    # Hidden only when no version of the field was ever the caller's to see; otherwise
    # each flight's audience (ownership when it flew) decides, as in the unfiltered list.
    hidden_field = field is not None and not any(
        can_see_field(principal, v.field.owner, v.field.coop)
        for v in catalog.current().history.of(field)
    )
    after = decode_cursor("flights", cursor, (int, str))
    # Keyset: the query starts at the cursor's start time; flights of that same
    # millisecond up to the cursor's id are dropped below.
    start_ms = window.start_ms if after is None else max(window.start_ms, int(after[0]))
    known = catalog.current()
    overlapped = foreign_overlaps_of(known)
    views: list[tuple[StoredFlight, dict[str, Any]]] = []
    wanted = limit + 1
    while not hidden_field:
        # The audience clause admits a superset: flights hidden by an overlapping field are
        # dropped here, so read on until limit + 1 are visible; ``more`` then never counts
        # a flight the caller may not see.
        rows = metadata.flights(
            start_ms,
            window.end_ms,
            coop=coop,
            drone=drone,
            field=field,
            limit=wanted,
            audience=audience(principal),
        )
        views = [
            (f, v)
            for f in rows
            if after is None or (f.start_ms, f.id) > after
            if (v := flight_view(principal, f, known.owners_at(f.start_ms), overlapped)) is not None
        ]
        if len(views) > limit or len(rows) < wanted:
            break
        wanted *= 2
    shown = views[:limit]
    flags = flags_by_flight(principal, metadata, [(f, _seen_fields(v)) for f, v in shown])
    for f, v in shown:
        v["flag_codes"] = flag_codes(flags[f.id])
    next_cursor = (
        encode_cursor("flights", (shown[-1][0].start_ms, shown[-1][0].id))
        if len(views) > limit
        else None
    )
    return FlightList(
        from_=window.start,
        to=window.end,
        limit=limit,
        returned=len(shown),
        more=next_cursor is not None,
        next_cursor=next_cursor,
        flights=[v for _, v in shown],
    )


def seen_flight(
    flight_id: str, principal: Principal, metadata: MetadataDB, catalog: FieldCatalog
) -> tuple[StoredFlight, dict[str, Any]]:
    """The flight and the caller's view of it; the 404 of an unknown id when the caller may
    not see it."""
    flight = metadata.flight(flight_id)
    if flight is not None:
        known = catalog.current()
        owners = known.owners_at(flight.start_ms)
        shares = flight.summary_dict().get("fields") or []
        touched = [owners.get(s.get("field_id", ""), ("", "")) for s in shares]
        if can_see_flight(principal, flight.coop, touched):
            view = flight_view(principal, flight, owners, foreign_overlaps_of(known))
            if view is not None:
                return flight, view
    raise HTTPException(404, detail=f"no flight {flight_id!r}")


@router.get("/flights/{flight_id}")
def get_flight(
    flight_id: str, principal: PrincipalDep, metadata: MetadataDep, catalog: CatalogDep
) -> dict[str, Any]:
    """One flight's summary: distances, litres, footprint inside and outside fields, the
    fields it touched, speed, height, battery, samples and data quality (docs/flights.md),
    and the compliance flags that concern it (``flags``; docs/diary.md)."""
    flight, view = seen_flight(flight_id, principal, metadata, catalog)
    flags = flags_by_flight(principal, metadata, [(flight, _seen_fields(view))])
    return view | {"flag_codes": flag_codes(flags[flight.id]), "flags": flags[flight.id]}


def _seen_fields(view: Mapping[str, Any]) -> set[str]:
    """The fields the caller sees the flight over (its flags are those fields' only)."""
    return {str(s.get("field_id")) for s in view.get("fields") or []}


@router.get(
    "/flights/{flight_id}/track",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/geo+json": {}}, "description": "GeoJSON"}},
)
def get_flight_track(  # noqa: PLR0917 -- path, principal, stores and max_points
    flight_id: FlightIdPath,
    principal: PrincipalDep,
    metadata: MetadataDep,
    catalog: CatalogDep,
    store: StoreDep,
    max_points: MaxPointsQuery = DEFAULT_TRACK_POINTS,
) -> StreamingResponse:
    """The flight's track as GeoJSON lines, spraying and not spraying told apart, each
    position with its time (``t_ms`` after the flight's start), for whoever may see the
    flight.

    Drawn and thinned as ``GET /drones/{coop}/{drone}/track`` over the flight's time. A
    caller who sees the flight only through their fields (``whole_flight`` false) gets only
    the positions over those fields and over unregistered ground within ``margin_m`` of
    them (``clipped``; ``api.flight_tracks``).
    """
    flight, view = seen_flight(flight_id, principal, metadata, catalog)
    start, end = flight.start_ms, flight.end_ms + 1

    def read(start_ms: int, end_ms: int) -> TrackRead:
        return store.drone_track(
            flight.coop,
            flight.drone,
            start_ms,
            end_ms,
            max_points=max_points,
            gap_ms=int(TRACK_GAP_S * 1000),
        )

    layout = layout_read(read(start, end))
    clipped: dict[str, Any] | None = None
    if not view["whole_flight"]:
        field_ids = [s["field_id"] for s in view["fields"]]
        with heavy():
            region = _region(catalog.current(), flight.start_ms, field_ids)
        layout = _clip(layout, region, read, start, end)
        clipped = {"fields": field_ids, "margin_m": TRACK_MARGIN_M}
    head = {
        "flight": flight.id,
        "coop": flight.coop,
        "drone": flight.drone,
        "start": view["start"],
        "end": view["end"],
        "start_ms": flight.start_ms,
        "whole_flight": view["whole_flight"],
        "clipped": clipped,
    }
    answer = track_answer(layout, max_points, times_from_ms=flight.start_ms)
    if clipped is not None:
        exact = layout.read is None or layout.read.bucket_ms is None
        answer.members["samples"] = positions_kept(layout) if exact else None
    return StreamingResponse(stream_geojson(head, answer), media_type="application/geo+json")


def _region(known: Catalog, at_ms: int, field_ids: Sequence[str]) -> Region | None:
    """Where a caller seeing the flight through ``field_ids`` may see its track, from the
    fields as they were when it started; ``None`` if none of them is usable."""
    by_id = known.by_id_at(at_ms)
    own = [by_id[i] for i in field_ids if i in by_id and by_id[i].kind == "field"]
    if not own:
        return None
    engine = known.engine_at(at_ms)
    near = engine.near(around(own).outline())[0] if engine is not None else []
    mine = {f.id for f in own}
    return visible_region(own, [f for f in near if f.id not in mine])


def _clip(
    layout: TrackLayout,
    region: Region | None,
    read: Callable[[int, int], TrackRead],
    start_ms: int,
    end_ms: int,
) -> TrackLayout:
    """The layout cut to ``region``. A thinned track is read again over the span of the
    flight spent near the region, so those positions are thinned no more than needed."""
    if region is None:
        return replace(layout, pieces=[])
    inside = region.contains(layout.lon, layout.lat)
    bucket_ms = None if layout.read is None else layout.read.bucket_ms
    if bucket_ms is not None:
        span = span_inside(layout.ts, inside, bucket_ms, start_ms, end_ms)
        if span is None:
            return replace(layout, pieces=[])
        if span != (start_ms, end_ms):
            layout = layout_read(read(*span))
            inside = region.contains(layout.lon, layout.lat)
    return clip_layout(layout, inside)
