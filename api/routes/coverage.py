"""A field's coverage over a window: the coverage engine's metrics and a per-flight breakdown.

Built from the stored flight summaries, never from raw samples: each flight over the field
kept its own coverage state of that field, and the states of the flights that started in
the window are merged (``flights.summary.merge_states``). The result equals running the
engine over all their samples at once (tests/integration/test_flight_service.py).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from api.auth import PrincipalDep, can_see_field
from api.deps import CatalogDep, MetadataDep
from api.overlaps import visible_parts
from api.routes.fields import FieldSummary, summary
from api.times import Window, WindowDep, rfc3339
from fields.coverage import CoverageEngine, FieldCoverage
from fields.registry import M2_PER_HA, SAO_M2
from flights.summary import StateMismatchError, decode_state, merge_states
from storage.metadata import FieldFlight

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


class FieldCoverageAnswer(BaseModel):
    """The field's coverage from every flight that started in [from, to)."""

    field: FieldSummary
    from_: str = Field(serialization_alias="from")
    to: str
    coverage: dict[str, Any]
    positioning: str
    uncertain: bool
    flights: list[FlightPart]


@router.get(
    "/fields/{field_id}/coverage",
    response_model=None,
    responses={200: {"description": "FieldCoverageAnswer, or a GeoJSON FeatureCollection"}},
)
def field_coverage(
    field_id: str,
    *,
    principal: PrincipalDep,
    metadata: MetadataDep,
    catalog: CatalogDep,
    window: WindowDep,
    format_: Annotated[
        Literal["json", "geojson"],
        Query(alias="format", description="json: metrics and flights; geojson: the polygons"),
    ] = "json",
) -> FieldCoverageAnswer | dict[str, Any]:
    """Coverage of one field by the flights that started in [from, to).

    ``coverage`` holds exactly the keys of `agridrone coverage` (field_ha, covered_ha,
    coverage_pct, missed_ha, overlap_ha, off_target_ha, no_spray_ha, applied_l,
    mean_rate_l_per_ha, rate_cv_pct, passes). ``uncertain`` is true when the spraying was
    not on RTK positioning: gaps and overlap are then within GNSS error. With
    ``format=geojson`` the answer is a FeatureCollection of the covered, missed, overlap,
    off-target and no-spray polygons, each with ``kind`` and ``area_ha``.
    """
    current = catalog.current()
    the_field = current.by_id.get(field_id)
    if the_field is None or not can_see_field(principal, the_field.owner, the_field.coop):
        raise HTTPException(404, detail=f"no field {field_id!r}")
    engine = current.engine()
    if the_field.kind != "field" or engine is None:
        raise HTTPException(
            422,
            detail=f"{field_id!r} is a no-spray zone: it has no coverage of its own; spray on "
            "it shows as no_spray_ha in the coverage of the fields around it",
        )
    parts = metadata.field_flights(field_id, window.start_ms, window.end_ms)
    parts = visible_parts(principal, the_field, parts, current, metadata)
    state = _merged(engine, field_id, parts, window)
    result = engine.result(state)
    if format_ == "geojson":
        features = engine.geometry(state).features(uncertain=result.uncertain)
        return {
            "type": "FeatureCollection",
            "field_id": field_id,
            "from": window.start,
            "to": window.end,
            "features": features,
        }
    return FieldCoverageAnswer(
        field=summary(the_field),
        from_=window.start,
        to=window.end,
        coverage=result.metrics(),
        positioning=result.positioning,
        uncertain=result.uncertain,
        flights=[_part(p, result.field_ha) for p in parts],
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
                detail=f"flight {part.flight_id}: its stored coverage of field {field_id} no "
                f"longer fits the field ({exc}); an operator recomputes it with `agridrone "
                f"flights rebuild --from {window.start} --to {window.end}`",
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
