"""Fields: import a cooperative's plots as GeoJSON, list them, fetch one.

Who sees what: a farmer sees the fields they own, a cooperative its members' fields, an
operator all. A field someone may not see answers 404, exactly like one that does not exist.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query
from pydantic import BaseModel
from shapely.geometry import mapping

from api.auth import CoopOrOperatorDep, PrincipalDep, can_see_field
from api.deps import CatalogDep, MetadataDep
from api.overlaps import OverlapPair, check_import, visible_overlaps
from fields.coverage import rfc7946_polygons
from fields.registry import Field, FieldValidationError, parse_fields
from fields.stored import to_stored

router = APIRouter(tags=["fields"])


class FieldSummary(BaseModel):
    """A field as listed: who owns it and how big it is."""

    id: str
    kind: str
    name: str
    owner: str
    coop: str
    crop: str
    area_ha: float
    area_sao: float


class ImportResult(BaseModel):
    """What an import stored."""

    imported: int
    fields: list[FieldSummary]


def summary(f: Field) -> FieldSummary:
    """The listing form of a field."""
    return FieldSummary(
        id=f.id,
        kind=f.kind,
        name=f.name,
        owner=f.owner,
        coop=f.coop,
        crop=f.crop,
        area_ha=round(f.area_ha, 6),
        area_sao=round(f.area_sao, 3),
    )


@router.post("/fields", status_code=201)
def import_fields(
    principal: CoopOrOperatorDep,
    metadata: MetadataDep,
    catalog: CatalogDep,
    collection: Annotated[dict[str, Any], Body(description="GeoJSON FeatureCollection")],
    force: Annotated[
        bool, Query(description="operators: register fields over another cooperative's")
    ] = False,
) -> ImportResult:
    """Register or replace fields (by id) from a GeoJSON Feature or FeatureCollection."""
    try:
        registry = parse_fields(collection, source="request body")
    except FieldValidationError as exc:
        raise HTTPException(
            422, detail={"message": "the GeoJSON has problems", "problems": list(exc.problems)}
        ) from exc
    everything = [*registry.fields, *registry.no_spray]
    check_import(principal, everything, catalog.current().registry, force=force)
    if principal.role == "coop":
        foreign = [f"{f.id} (coop {f.coop!r})" for f in everything if f.coop != principal.subject]
        if foreign:
            raise HTTPException(
                422,
                detail={
                    "message": f"your key is for cooperative {principal.subject!r}",
                    "problems": [f"feature {x} belongs to another cooperative" for x in foreign],
                },
            )
    metadata.save_fields(to_stored(everything))
    return ImportResult(imported=len(everything), fields=[summary(f) for f in everything])


@router.get("/fields")
def list_fields(
    principal: PrincipalDep,
    catalog: CatalogDep,
    overlaps: Annotated[
        bool, Query(description="list the overlapping pairs of your fields instead")
    ] = False,
) -> list[FieldSummary] | list[OverlapPair]:
    """The fields (and no-spray zones) the caller may see, by id (no-spray zones last); with
    ``overlaps=true``, the pairs of them that overlap significantly, with the area."""
    registry = catalog.current().registry
    if overlaps:
        return visible_overlaps(principal, registry)
    if registry is None:
        return []
    everything = (*registry.fields, *registry.no_spray)
    return [summary(f) for f in everything if can_see_field(principal, f.owner, f.coop)]


@router.get("/fields/{field_id}")
def get_field(field_id: str, principal: PrincipalDep, catalog: CatalogDep) -> dict[str, Any]:
    """One field as a GeoJSON Feature, with its area in hectares and sào."""
    f = catalog.current().by_id.get(field_id)
    if f is None or not can_see_field(principal, f.owner, f.coop):
        raise HTTPException(404, detail=f"no field {field_id!r}")
    feature = f.to_feature()
    feature["geometry"] = mapping(rfc7946_polygons(f.geometry))
    feature["properties"].update(area_ha=round(f.area_ha, 6), area_sao=round(f.area_sao, 3))
    return feature
