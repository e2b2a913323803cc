"""A field's coverage over a window: the coverage engine's metrics and a per-flight breakdown.

Built from the stored flight summaries, never from raw samples: each flight over the field
kept its own coverage state of that field, and the states of the flights that started in
the window are merged (``flights.summary.merge_states``). The result equals running the
engine over all their samples at once (tests/integration/test_flight_service.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel, Field

from api.auth import Principal, PrincipalDep, can_read_field
from api.catalog import Catalog, FieldCatalog, being_recomputed, heavy
from api.deps import CatalogDep, MetadataDep
from api.overlaps import visible_parts
from api.routes.diary import diary_entries, visible_entry
from api.routes.fields import FieldId, FieldSummary, field_feature, file_response, summary
from api.times import Window, WindowDep, rfc3339
from fields.coverage import CoverageEngine, FieldCoverage, UnpreparedFieldError
from fields.registry import M2_PER_HA, SAO_M2
from fields.registry import Field as RegisteredField
from flights.summary import StateMismatchError, decode_state, merge_states
from storage.metadata import FieldFlight, FieldVersion, MetadataDB

router = APIRouter(tags=["coverage"])


class FlightPart(BaseModel):
    """What one flight did on this field (on its own, before merging with the others)."""

    id: str
    coop: str
    drone: str
    start: str
    end: str
    covered_ha: float
    covered_sao: float
    coverage_pct: float
    applied_l: float


class VersionCoverage(BaseModel):
    """The coverage of one version of the field by its own flights in the window."""

    field: FieldSummary
    version: int
    valid_from: str | None
    valid_to: str | None
    coverage: dict[str, Any]
    positioning: str
    uncertain: bool
    flights: list[FlightPart]


class FieldCoverageAnswer(BaseModel):
    """The field's coverage from every flight that started in [from, to): that of the
    version valid at the window's end (or the last one before), plus every version's."""

    field: FieldSummary
    from_: str = Field(serialization_alias="from")
    to: str
    version: int
    valid_from: str | None
    valid_to: str | None
    coverage: dict[str, Any]
    positioning: str
    uncertain: bool
    flights: list[FlightPart]
    versions: list[VersionCoverage]
    #: The compliance flags of the diary entries of jobs that started in the window
    #: (docs/diary.md), each with its ``entry``, ``job`` and ``date``.
    flags: list[dict[str, Any]] = []


@dataclass(frozen=True, slots=True)
class _Computed:
    version: FieldVersion
    parsed: RegisteredField
    engine: CoverageEngine
    state: FieldCoverage
    parts: list[FieldFlight]


@router.get(
    "/fields/{field_id}/coverage",
    response_model=None,
    responses={
        200: {
            "description": "FieldCoverageAnswer, or the polygons as GeoJSON, KML, a zipped "
            "Shapefile or zipped ISOXML (format=)"
        }
    },
)
def field_coverage(
    field_id: FieldId,
    *,
    principal: PrincipalDep,
    metadata: MetadataDep,
    catalog: CatalogDep,
    window: WindowDep,
    format_: Annotated[
        Literal["json", "geojson", "kml", "shp", "isoxml"],
        Query(
            alias="format",
            description="json: metrics and flights; geojson: the polygons; kml, shp (zipped "
            "Shapefile), isoxml (ISO 11783-10 TaskData, zipped): the polygons as a file",
        ),
    ] = "json",
) -> FieldCoverageAnswer | dict[str, Any] | Response:
    """Coverage of one field by the flights that started in [from, to).

    ``coverage`` holds exactly the keys of `agridrone coverage` (field_ha, covered_ha,
    coverage_pct, missed_ha, overlap_ha, off_target_ha, no_spray_ha, applied_l,
    mean_rate_l_per_ha, rate_cv_pct, passes, positioning, uncertainty_ha, uncertainty_pct).
    ``positioning`` is ``sparse`` when the samples were further apart than half a swath
    (e.g. DJI's 0.5 Hz OSD): ``uncertainty_ha``/``uncertainty_pct`` then state the ± on
    covered area from where passes start and end; else it is the fix (``rtk``, ``gnss``,
    ``unknown``). ``uncertain`` is true unless the spraying was on RTK positioning with
    dense samples: gaps and overlap are then within GNSS error. With
    ``format=geojson`` the answer is a FeatureCollection of the covered, missed, overlap,
    off-target and no-spray polygons, each with ``kind`` and ``area_ha``; ``kml``, ``shp``
    and ``isoxml`` give the same polygons as a file (ISOXML: a partfield with the field's
    boundary and the layers as its polygons, docs/gis.md).

    Each flight counts on the version of the field valid when it started. The top level is
    the version valid at the window's end (or the last one in it the caller may see);
    ``versions`` lists every version of the window with its own flights.
    """
    with heavy():
        return _field_coverage(field_id, principal, metadata, catalog, window, format_)


def _field_coverage(  # noqa: PLR0917 -- the route's own parameters, passed on
    field_id: str,
    principal: Principal,
    metadata: MetadataDB,
    catalog: FieldCatalog,
    window: Window,
    format_: str,
) -> FieldCoverageAnswer | dict[str, Any] | Response:
    computed = _computed_versions(field_id, principal, metadata, catalog, window)
    if format_ == "geojson":
        return _geojson(field_id, computed[-1], window)
    if format_ != "json":
        main = computed[-1]
        result = main.engine.result(main.state)
        features = main.engine.geometry(main.state).features(uncertain=result.uncertain)
        return _coverage_file(main.parsed, features, format_, window)
    return _answer(field_id, principal, metadata, window, computed)


def coverage_with_geojson(
    field_id: str,
    principal: Principal,
    metadata: MetadataDB,
    catalog: FieldCatalog,
    window: Window,
) -> tuple[FieldCoverageAnswer, dict[str, Any]]:
    """The route's two answers, ``format=json`` and ``format=geojson``, from one computation
    (the web app's first view of a field page); raises the route's HTTP errors."""
    with heavy():
        computed = _computed_versions(field_id, principal, metadata, catalog, window)
        return (
            _answer(field_id, principal, metadata, window, computed),
            _geojson(field_id, computed[-1], window),
        )


def _computed_versions(
    field_id: str,
    principal: Principal,
    metadata: MetadataDB,
    catalog: FieldCatalog,
    window: Window,
) -> list[_Computed]:
    """Each version of the field in the window the caller may see, with its own flights'
    merged state (the version valid at the window's end last); 404 and 422 as the route."""
    current = catalog.current()
    history = current.history
    versions = [
        v
        for v in history.of(field_id)
        if v.overlaps(window.start_ms, window.end_ms)
        and can_read_field(principal, v.field.kind, v.field.owner, v.field.coop)
    ]
    if not versions:
        raise HTTPException(404, detail=f"no field {field_id!r}")
    if versions[-1].field.kind != "field":
        raise HTTPException(
            422,
            detail=f"{field_id!r} is a no-spray zone: it has no coverage of its own; spray on "
            "it shows as no_spray_ha in the coverage of the fields around it",
        )
    parts = metadata.field_flights(field_id, window.start_ms, window.end_ms)
    return [
        _computed(
            current,
            v,
            visible_parts(
                principal,
                history.field(v),
                [p for p in parts if v.valid_at(p.start_ms)],
                current,
                metadata,
            ),
            window,
        )
        for v in versions
        if v.field.kind == "field"
    ]


def _geojson(field_id: str, main: _Computed, window: Window) -> dict[str, Any]:
    result = main.engine.result(main.state)
    features = main.engine.geometry(main.state).features(uncertain=result.uncertain)
    return {
        "type": "FeatureCollection",
        "field_id": field_id,
        "version": main.version.seq,
        "from": window.start,
        "to": window.end,
        "features": features,
    }


def _answer(
    field_id: str,
    principal: Principal,
    metadata: MetadataDB,
    window: Window,
    computed: list[_Computed],
) -> FieldCoverageAnswer:
    answers = [_version_coverage(c) for c in computed]
    last = answers[-1]
    return FieldCoverageAnswer(
        field=last.field,
        from_=window.start,
        to=window.end,
        version=last.version,
        valid_from=last.valid_from,
        valid_to=last.valid_to,
        coverage=last.coverage,
        positioning=last.positioning,
        uncertain=last.uncertain,
        flights=last.flights,
        versions=answers,
        flags=window_flags(principal, metadata, field_id, window),
    )


def _coverage_file(
    parsed: RegisteredField, layers: list[dict[str, Any]], format_: str, window: Window
) -> Response:
    """The coverage polygons as a KML, Shapefile or ISOXML file; ISOXML's polygons belong
    to a partfield, so the field itself goes first there."""
    features = [field_feature(parsed), *layers] if format_ == "isoxml" else layers
    name = f"{parsed.id}-coverage-{window.start[:10]}-{window.end[:10]}"
    return file_response({"type": "FeatureCollection", "features": features}, format_, name)


def window_flags(
    principal: Principal, metadata: MetadataDB, field_id: str, window: Window
) -> list[dict[str, Any]]:
    """The flags of the field's diary entries (latest versions the caller may see) whose
    jobs started in the window, each with its entry, job and local date."""
    rows = metadata.diary_rows(field_id, window.start_ms, window.end_ms)
    entries = diary_entries(rows, history=False, visible=visible_entry(principal))
    return [
        {**f, "entry": e["entry"], "job": e.get("job"), "date": e.get("date")}
        for e in entries
        for f in e["flags"]
    ]


def _computed(
    catalog: Catalog, version: FieldVersion, parts: list[FieldFlight], window: Window
) -> _Computed:
    """One version's merged state, decoded against the registry as it was at the last
    instant of the window the version was valid (which holds this version of the field)."""
    last_ms = window.end_ms - 1
    if version.valid_to_ms is not None:
        last_ms = min(last_ms, version.valid_to_ms - 1)
    engine = catalog.engine_at(last_ms)
    if engine is not None and version.id in engine.unprepared:
        raise HTTPException(
            409, detail=str(UnpreparedFieldError(version.id, engine.unprepared[version.id]))
        )
    if engine is None or version.id not in engine.fields:  # pragma: no cover - by construction
        raise HTTPException(404, detail=f"no field {version.id!r}")
    for part in parts:
        if catalog.history.outdated(part.start_ms, part.computed_ms):
            raise being_recomputed(part.flight_id, window.start, window.end)
    state = _merged(engine, version.id, parts, window)
    return _Computed(version, catalog.history.field(version), engine, state, parts)


def _version_coverage(c: _Computed) -> VersionCoverage:
    result = c.engine.result(c.state)
    return VersionCoverage(
        field=summary(c.parsed),
        version=c.version.seq,
        valid_from=_time(c.version.valid_from_ms),
        valid_to=_time(c.version.valid_to_ms),
        coverage=result.metrics(),
        positioning=result.positioning,
        uncertain=result.uncertain,
        flights=[_part(p, result.field_ha) for p in c.parts],
    )


def _time(ms: int | None) -> str | None:
    return None if ms is None else rfc3339(ms)


def _rebuild(part: FieldFlight, field_id: str, why: str, window: Window) -> str:
    return (
        f"flight {part.flight_id}: its stored coverage of field {field_id} {why}; an operator "
        f"recomputes it with `agridrone flights rebuild --from {window.start} --to "
        f"{window.end}`"
    )


def _merged(
    engine: CoverageEngine, field_id: str, parts: list[FieldFlight], window: Window
) -> FieldCoverage:
    state = engine.empty(field_id)
    for part in parts:
        try:
            state = merge_states(engine, state, decode_state(engine, part.state_doc()))
        except (StateMismatchError, ValueError) as exc:
            raise HTTPException(
                409,
                detail=_rebuild(
                    part, field_id, f"no longer fits the field's version ({exc})", window
                ),
            ) from exc
    return state


def _part(p: FieldFlight, field_ha: float) -> FlightPart:
    return FlightPart(
        id=p.flight_id,
        coop=p.coop,
        drone=p.drone,
        start=rfc3339(p.start_ms),
        end=rfc3339(p.end_ms),
        covered_ha=round(p.covered_ha, 6),
        covered_sao=round(p.covered_ha * M2_PER_HA / SAO_M2, 3),
        coverage_pct=round(100.0 * p.covered_ha / field_ha, 3) if field_ha else 0.0,
        applied_l=round(p.applied_l, 3),
    )
