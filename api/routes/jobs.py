"""Spray jobs: what a drone's ``job_start`` announced, and corrections afterwards.

A job's id is ``{coop}.{drone}.{job}`` (the drone's cooperative and id, then the job id the
drone sent). The drone's cooperative and operators read and correct a job; anyone else gets
404, as for a job that does not exist; farmers read what matters to them in their field's
diary. ``PUT`` sets the details given (``null`` removes a correction, back to what the
drone announced), refuses an unknown product or a dose out of range with 422 and stores
nothing then, and rewrites the diary entries of the job's flights. ``GET .../refly`` is the
job's re-fly list (``flights.refly``), for whoever may read the job.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

import orjson
from fastapi import APIRouter, HTTPException, Path, Query, Response
from pydantic import BaseModel, ConfigDict

from api.auth import CoopOrOperatorDep, Principal, PrincipalDep, can_see_drone, can_see_field
from api.catalog import being_recomputed, heavy
from api.deps import CatalogDep, MetadataDep
from api.routes.fields import file_response
from api.times import WindowDep, rfc3339
from fields.refly import (
    DEFAULT_MIN_M2,
    MAX_MIN_M2,
    TooManyPiecesError,
    feature_collection,
    polygon_collection,
)
from fields.registry import ID_PATTERN
from flights.diary_sync import sync_job
from flights.jobs import JOB_DETAIL_KEYS, check_detail
from flights.refly import ReflyStaleError, ReflyStateError, refly_list
from reports.refly_render import to_csv
from storage.metadata import JobRecord, MetadataDB

router = APIRouter(tags=["jobs"])

_ID: Final = f"^{ID_PATTERN}$"
JobId = Annotated[
    str,
    Path(
        pattern=rf"^{ID_PATTERN}\.{ID_PATTERN}\.{ID_PATTERN}$",
        description="{coop}.{drone}.{job}",
    ),
]


class JobUpdate(BaseModel):
    """Details to set on a job; keys left out stay as they are, ``null`` removes a
    correction."""

    model_config = ConfigDict(extra="forbid")

    product: str | None = None
    dose_l_per_ha: float | None = None
    pilot_name: str | None = None
    pilot_licence: str | None = None
    drone_registration: str | None = None
    wind_mps: float | None = None


def job_view(job: JobRecord, metadata: MetadataDB) -> dict[str, Any]:
    """A job as answered: stored figures, its details, and what is wrong with them."""
    doc = job.to_dict()
    product = doc["details"].get("product")
    if isinstance(product, str) and metadata.product(job.coop, product) is None:
        doc["problems"].append(
            {
                "code": "unknown_product",
                "key": "product",
                "message": f"product {product!r} is not registered by cooperative {job.coop}",
            }
        )
    return doc


def _no_job(job_id: str) -> HTTPException:
    return HTTPException(
        404, detail=f"no job {job_id!r} that your key may see; GET /api/v1/jobs lists yours"
    )


def _visible_job(principal: Principal, metadata: MetadataDB, job_id: str) -> JobRecord:
    coop = job_id.split(".", 1)[0]
    job = metadata.job(job_id) if can_see_drone(principal, coop) else None
    if job is None:
        raise _no_job(job_id)
    return job


@router.get("/jobs")
def list_jobs(
    principal: CoopOrOperatorDep,
    metadata: MetadataDep,
    window: WindowDep,
    coop: Annotated[str | None, Query(pattern=_ID, description="only this cooperative's")] = None,
) -> list[dict[str, Any]]:
    """Jobs announced in [from, to): a cooperative's own drones', or (operator) all."""
    if principal.role == "coop":
        if coop is not None and coop != principal.subject:
            return []
        coop = principal.subject
    jobs = metadata.jobs(window.start_ms, window.end_ms, coop=coop)
    return [job_view(j, metadata) for j in jobs]


@router.get("/jobs/{job_id}")
def get_job(job_id: JobId, principal: PrincipalDep, metadata: MetadataDep) -> dict[str, Any]:
    """One job."""
    return job_view(_visible_job(principal, metadata, job_id), metadata)


@router.put("/jobs/{job_id}")
def put_job(
    job_id: JobId,
    body: JobUpdate,
    principal: PrincipalDep,
    metadata: MetadataDep,
    catalog: CatalogDep,
) -> dict[str, Any]:
    """Set a job's product, planned dose, pilot, drone registration or wind afterwards."""
    job = _visible_job(principal, metadata, job_id)
    given = body.model_dump(include=body.model_fields_set)
    problems = []
    for key in JOB_DETAIL_KEYS:
        if key not in given:
            continue
        value, problem = check_detail(key, given[key])
        if problem is not None:
            problems.append(problem.message)
        given[key] = value
    product = given.get("product")
    if isinstance(product, str) and metadata.product(job.coop, product) is None:
        problems.append(
            f"product {product!r} is not registered by cooperative {job.coop}; register it"
            " with POST /api/v1/products first"
        )
    if problems:
        raise HTTPException(422, detail="; ".join(problems))
    updated = metadata.set_job_overrides(job_id, given)
    if updated is None:  # pragma: no cover - deleted between the two statements
        raise _no_job(job_id)
    sync_job(metadata, updated, catalog.current().engine_at)
    return job_view(updated, metadata)


@router.get(
    "/jobs/{job_id}/refly",
    response_model=None,
    responses={
        200: {
            "description": "the re-fly list as JSON, a GeoJSON FeatureCollection, CSV, KML, "
            "a zipped Shapefile or ISOXML TaskData",
            "content": {
                "application/geo+json": {},
                "text/csv": {},
                "application/vnd.google-earth.kml+xml": {},
                "application/zip": {},
            },
        }
    },
)
def job_refly(  # noqa: PLR0917 -- one parameter per documented query option
    job_id: JobId,
    principal: PrincipalDep,
    metadata: MetadataDep,
    catalog: CatalogDep,
    min_m2: Annotated[
        float,
        Query(gt=0, le=MAX_MIN_M2, description="smallest missed piece listed (m²)"),
    ] = DEFAULT_MIN_M2,
    format_: Annotated[
        Literal["json", "geojson", "csv", "kml", "shp", "isoxml"], Query(alias="format")
    ] = "json",
    lang: Annotated[Literal["vi", "en"], Query(description="CSV language")] = "vi",
) -> Response | dict[str, Any]:
    """The missed pieces of at least ``min_m2`` of every field the job named, left by the
    job's own flights, each with a flight line (the long axis of its minimum rotated
    rectangle), in an order a pilot can fly them (field by field, nearest next)."""
    job = _visible_job(principal, metadata, job_id)
    current = catalog.current()

    def may_see(field_id: str, ms: int) -> bool:
        owner, coop = current.owners_at(ms).get(field_id, ("", ""))
        return can_see_field(principal, owner, coop)

    with heavy():
        try:
            answer = refly_list(
                metadata,
                job,
                current.engine_at,
                min_m2,
                may_see=may_see,
                outdated=lambda p: current.history.outdated(p.start_ms, p.computed_ms),
            )
        except ReflyStaleError as exc:
            lo, hi = exc.window
            raise being_recomputed(exc.flight_id, rfc3339(lo), rfc3339(hi)) from exc
        except ReflyStateError as exc:
            raise HTTPException(409, detail=str(exc)) from exc
        except TooManyPiecesError as exc:
            raise HTTPException(422, detail=str(exc)) from exc
    doc = answer.to_dict()
    name = f"bay-lai-{job.id}" if lang == "vi" else f"refly-{job.id}"
    if format_ == "csv":
        return Response(
            to_csv(doc["pieces"], lang),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    if format_ in ("kml", "shp", "isoxml"):
        # GIS files carry the pieces as polygons, each flight line in its properties.
        pieces = polygon_collection(feature_collection(answer.pieces))
        return file_response(pieces, format_, name)
    if format_ == "geojson":
        collection = feature_collection(answer.pieces, job=job.id, min_m2=min_m2)
        return Response(
            orjson.dumps(collection),
            media_type="application/geo+json",
            headers={"Content-Disposition": f'attachment; filename="{name}.geojson"'},
        )
    return doc
