"""Fields: import a cooperative's plots (GeoJSON, KML, a zipped Shapefile or ISOXML), list
them, fetch one; lists and fields also as KML, Shapefile or ISOXML files (docs/gis.md).

Who sees what: a farmer sees the fields they own, a cooperative its members' fields, an
operator all. A field someone may not see answers 404, exactly like one that does not exist.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Final, Literal, cast

import orjson
from fastapi import APIRouter, Body, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel
from shapely.geometry import mapping

from api.auth import CoopOrOperatorDep, Principal, PrincipalDep, can_read_field
from api.catalog import Catalog, FieldCatalog, heavy
from api.deps import CatalogDep, MetadataDep
from api.overlaps import OverlapPair, check_import, plan_checked, visible_overlaps
from api.pagination import CursorQuery, decode_cursor, page_of, set_next
from api.problems import ProblemsError
from api.times import TimeInputError, parse_time, rfc3339
from fields import gis
from fields.coverage import rfc7946_polygons
from fields.registry import (
    ID_PATTERN,
    Field,
    FieldProblem,
    FieldRegistry,
    FieldValidationError,
    document_problem,
    parse_each,
    parse_fields,
)
from fields.stored import FieldHistory, UnusableFieldError, to_stored
from flights.service import resummarize_since
from storage.metadata import (
    FieldOwnershipError,
    FieldsChangedError,
    FieldVersion,
    FieldVersionError,
    StoredField,
    UnknownFieldError,
)

router = APIRouter(tags=["fields"])
log = logging.getLogger("agridrone.api")

#: How far back a cooperative key may date a change (``valid_from``); operators: any time.
COOP_BACKDATE_DAYS: Final = 31
COOP_BACKDATE_MS: Final = COOP_BACKDATE_DAYS * 86_400_000

#: A field id in a path: malformed ids are 422 for every key (it tells nothing about data).
FieldId = Annotated[str, Path(pattern=f"^{ID_PATTERN}$", description="field or zone id")]

#: Properties a PUT clears with ``""`` back to their default (a field; the scope its
#: ``coop`` implies), rather than storing an empty string the parser would refuse.
_DERIVED: Final = ("kind", "scope")


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


class CodedProblem(BaseModel):
    """A refused feature's problem: ``text`` in English, ``code`` and ``params`` for a page
    to say it in its own language; ``index`` (in the document) and ``id`` name the feature
    (``null``: the whole document)."""

    index: int | None
    id: str | None
    code: str
    params: dict[str, str | int | float]
    text: str


class ImportResult(BaseModel):
    """What an import stored (``imported``, ``fields``), and with ``valid_only=true`` the
    problems of the features it refused."""

    imported: int
    fields: list[FieldSummary]
    refused: list[CodedProblem] = []


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


#: The bodies ``POST /fields`` reads, for the OpenAPI description.
_IMPORT_BODIES: Final = {
    "requestBody": {
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/geo+json": {"schema": {"type": "object"}},
            gis.KML_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
            "application/zip": {"schema": {"type": "string", "format": "binary"}},
        }
    }
}
#: Where a converted file's features get their properties, for the 422 of its problems.
_PROPERTIES_FROM: Final = {
    "KML": "each Placemark's <name> and ExtendedData Data (id, owner, coop, crop, kind, scope)",
    "KMZ": "each Placemark's <name> and ExtendedData Data (id, owner, coop, crop, kind, scope)",
    "Shapefile": "the .dbf columns id, name, owner, coop, crop, kind, scope",
    "ISOXML": "each partfield's code (id), designator (name), customer (owner), farm (coop) "
    "and crop type",
}


@router.post("/fields", status_code=201, openapi_extra=_IMPORT_BODIES)
def import_fields(  # noqa: PLR0917 -- principal, stores, the body and its type, two flags
    principal: CoopOrOperatorDep,
    metadata: MetadataDep,
    catalog: CatalogDep,
    request: Request,
    collection: Annotated[
        Any,
        Body(
            description="GeoJSON FeatureCollection; or KML, KMZ, a zipped Shapefile or ISOXML "
            "TaskData sent with their Content-Type (docs/gis.md)"
        ),
    ],
    force: Annotated[
        bool, Query(description="operators: register fields over another cooperative's")
    ] = False,
    valid_only: Annotated[
        bool,
        Query(
            description="store the features without problems and list the refused ones"
            " (default: a document with any problem stores nothing)"
        ),
    ] = False,
) -> ImportResult:
    """Register fields from a GeoJSON Feature or FeatureCollection (or a KML, KMZ, zipped
    Shapefile or ISOXML TaskData, validated the same way); an id already registered by the
    caller's cooperative gets a new version (valid from now), one of another cooperative is
    409 and nothing is stored. With ``valid_only=true`` every feature without a problem is
    stored and the refused ones are listed (``refused``), by the same rules."""
    source, doc = _document(collection, request.headers.get("content-type", ""))
    pairs, problems = _parsed_each(doc, source)
    if problems and not valid_only:
        raise _problems(problems, source)
    known = catalog.current().history
    now = _now_ms()
    # A new id's first version is valid from the beginning of time, a known id's next
    # one from now: each is checked against what other cooperatives held since then.
    starts = {f.id: (now if known.of(f.id) else None) for _, f in pairs}
    if valid_only:
        plan = plan_checked(principal, pairs, catalog.current(), force=force, valid_from=starts)
        refused = {p.index for p in plan.problems}
        problems = sorted(
            [*problems, *(p.coded() for p in plan.problems)],
            key=lambda p: -1 if p.index is None else p.index,
        )
        pairs = [(i, f) for i, f in pairs if i not in refused]
        if not pairs:
            raise ProblemsError(
                422,
                detail={
                    "message": "no feature of the GeoJSON can be imported; nothing was stored",
                    "problems": [p.text for p in problems],
                },
                problems=problems,
            )
    else:
        plan = check_import(principal, pairs, catalog.current(), force=force, valid_from=starts)
        foreign = plan.of_kind("invalid", "foreign")
        if foreign:
            raise ProblemsError(
                422,
                detail={
                    "message": f"your key is for cooperative {principal.subject!r}",
                    "problems": [p.reason for p in foreign],
                },
                problems=[p.coded() for p in foreign],
            )
    everything = [f for _, f in pairs]
    _store(principal, metadata, known, everything, now, {f.id: i for i, f in pairs})
    if valid_only:
        log.info(
            "field_import_valid_only key=%s stored=%d refused=%d",
            principal.key_id,
            len(everything),
            len({p.index for p in problems}),
        )
    return ImportResult(
        imported=len(everything),
        fields=[summary(f) for f in everything],
        refused=[CodedProblem(**p.to_dict()) for p in problems],
    )


def _store(  # noqa: PLR0917 -- who, where, against what, what, when, and its indexes
    principal: Principal,
    metadata: MetadataDep,
    known: FieldHistory,
    features: Sequence[Field],
    now: int,
    index_of: dict[str, int],
) -> None:
    """Store an import in one transaction. The plan saw each id's latest version in the
    catalog; the write re-checks them, so an id registered or changed meanwhile (another
    key, another API process) refuses the import (409) instead of being ended by it."""
    seen = {f.id: (versions[-1].seq if (versions := known.of(f.id)) else None) for f in features}
    try:
        metadata.save_fields_bulk(
            _stored(features),
            expected=seen,
            at_ms=now,
            by=changed_by(principal),
            coop=principal.subject if principal.role == "coop" else None,
            take_over=principal.role == "operator",
            atomic=True,
        )
    except FieldOwnershipError as exc:
        taken = [
            FieldProblem(
                f"feature {field_id}: the id is already taken",
                "taken",
                {},
                index_of.get(field_id),
                field_id,
            )
            for field_id in exc.ids
        ]
        raise ProblemsError(409, detail=_taken(exc.ids), problems=taken) from exc
    except FieldsChangedError as exc:
        raise HTTPException(409, detail=str(exc)) from exc


#: ``GET /fields`` and ``/versions`` page size: default and most.
FIELDS_PAGE: Final = 1_000
MAX_FIELDS_PAGE: Final = 10_000
PageLimit = Annotated[
    int, Query(ge=1, le=MAX_FIELDS_PAGE, description=f"most items per page (1..{MAX_FIELDS_PAGE})")
]


ExportFormat = Literal["json", "geojson", "kml", "shp", "isoxml"]
FormatQuery = Annotated[
    ExportFormat,
    Query(
        alias="format",
        description="json: the listing; geojson, kml, shp (zipped Shapefile) or isoxml "
        "(ISO 11783-10 TaskData, zipped): the outlines as a file",
    ),
]
#: The OpenAPI description of a route that also answers files.
_FILES: Final = {
    "description": "a GeoJSON, KML, zipped Shapefile or zipped ISOXML file (format=)",
    "content": {
        "application/geo+json": {},
        gis.KML_MEDIA_TYPE: {},
        "application/zip": {},
    },
}


@router.get(
    "/fields",
    response_model=list[FieldSummary] | list[OverlapPair],
    responses={200: _FILES},
)
def list_fields(  # noqa: PLR0917 -- principal, catalog, request/response, filters, page
    principal: PrincipalDep,
    catalog: CatalogDep,
    request: Request,
    response: Response,
    overlaps: Annotated[
        bool, Query(description="list the overlapping pairs of your fields instead")
    ] = False,
    limit: PageLimit = FIELDS_PAGE,
    cursor: CursorQuery = None,
    format_: FormatQuery = "json",
) -> list[FieldSummary] | list[OverlapPair] | Response:
    """The fields (and no-spray zones) the caller may see, by id (no-spray zones last); with
    ``overlaps=true``, the pairs of them that overlap significantly, with the area. With
    ``format=geojson|kml|shp|isoxml``, the same page of fields as a file of their outlines.

    A page of ``limit``; the next page's cursor is in ``X-Next-Cursor`` (and ``Link``).
    """
    current = catalog.current()
    registry = current.registry
    if overlaps and format_ != "json":
        raise HTTPException(422, detail="format: overlaps=true answers JSON only; leave format out")
    if overlaps:
        after = decode_cursor("overlaps", cursor, (str, str))
        pairs, next_cursor = page_of(
            "overlaps",
            visible_overlaps(principal, registry),
            lambda p: (p.field_id, p.other_field_id),
            after=after,
            limit=limit,
        )
        set_next(request, response, next_cursor)
        return pairs
    after = decode_cursor("fields", cursor, (int, str))
    if registry is None:
        if format_ != "json":
            empty = {"type": "FeatureCollection", "features": []}
            return file_response(empty, format_, "agridrone-fields")
        return []
    page, next_cursor = page_of(
        "fields",
        _listing_order(current),
        _listing_key,
        after=after,
        limit=limit,
        visible=lambda f: can_read_field(principal, f.kind, f.owner, f.coop),
    )
    set_next(request, response, next_cursor)
    if format_ != "json":
        fc = {"type": "FeatureCollection", "features": [field_feature(f) for f in page]}
        with heavy():  # (ISOXML takes about a second per 40,000 points)
            return file_response(fc, format_, "agridrone-fields", response.headers)
    return [summary(f) for f in page]


def field_feature(f: Field) -> dict[str, Any]:
    """A field as the API hands it out: its GeoJSON Feature, outline as RFC 7946 wants it,
    with its area in hectares and sào."""
    feature = f.to_feature()
    feature["geometry"] = mapping(rfc7946_polygons(f.geometry))
    feature["properties"].update(area_ha=round(f.area_ha, 6), area_sao=round(f.area_sao, 3))
    return feature


def file_response(
    fc: dict[str, Any], fmt: str, name: str, headers: Mapping[str, str] | None = None
) -> Response:
    """A FeatureCollection handed out as a file of ``fmt`` (``fields.gis.export``), with
    ``headers`` (a page's ``X-Next-Cursor`` and ``Link``) carried over."""
    exported = gis.export(fc, cast(gis.ExportFormat, fmt), name=name)
    kept = {k: v for k, v in (headers or {}).items() if k.lower() in ("x-next-cursor", "link")}
    return Response(
        content=exported.content,
        media_type=exported.media_type,
        headers={
            **kept,
            "Content-Disposition": f'attachment; filename="{exported.filename}"',
        },
    )


_listing_lock = threading.Lock()
_listings: weakref.WeakKeyDictionary[Catalog, list[Field]] = weakref.WeakKeyDictionary()


def _listing_key(f: Field) -> tuple[int, str]:
    """Fields before no-spray zones, each by id."""
    return (0 if f.kind == "field" else 1, f.id)


def _listing_order(current: Catalog) -> list[Field]:
    """The registry's fields and zones in listing order, sorted once per catalog version."""
    registry = current.registry
    if registry is None:
        return []
    with _listing_lock:
        order = _listings.get(current)
        if order is None:
            order = sorted((*registry.fields, *registry.no_spray), key=_listing_key)
            _listings[current] = order
        return order


@router.get("/fields/{field_id}", response_model=dict[str, Any], responses={200: _FILES})
def get_field(
    field_id: FieldId, principal: PrincipalDep, catalog: CatalogDep, format_: FormatQuery = "json"
) -> dict[str, Any] | Response:
    """One field (or no-spray zone) as a GeoJSON Feature, with its area in hectares and sào;
    with ``format=geojson|kml|shp|isoxml``, as a file (a FeatureCollection of it).

    Commune-wide zones are readable by every key; a stored field that can no longer be
    used is 409 saying why, to whoever may see it.
    """
    feature = visible_field(field_id, principal, catalog)
    if format_ != "json":
        collection = {"type": "FeatureCollection", "features": [feature]}
        return file_response(collection, format_, field_id)
    return feature


def visible_field(field_id: str, principal: Principal, catalog: FieldCatalog) -> dict[str, Any]:
    """The field as ``GET /fields/{id}`` answers it in JSON; the route's 404 and 409."""
    current = catalog.current()
    f = current.by_id.get(field_id)
    if f is None:
        _raise_if_unusable(principal, current.history, field_id)
    if f is None or not can_read_field(principal, f.kind, f.owner, f.coop):
        raise HTTPException(404, detail=f"no field {field_id!r}")
    return field_feature(f)


class VersionAnswer(BaseModel):
    """One version of a field: what it was and when it was valid."""

    field: FieldSummary
    version: int
    valid_from: str | None
    valid_to: str | None
    recorded: str
    recorded_by: str
    ended_by: str


class ChangeAnswer(VersionAnswer):
    """A version just written or ended, with what to do about flights already summarized."""

    note: str | None = None


def changed_by(principal: Principal) -> str:
    """Who changed a field, as the history keeps it (role, subject and key id; no secret)."""
    return f"{principal.role}:{principal.subject} (key {principal.key_id})"


def version_answer(version: FieldVersion, parsed: Field | FieldSummary) -> VersionAnswer:
    """The answer form of one version."""
    return VersionAnswer(
        field=parsed if isinstance(parsed, FieldSummary) else summary(parsed),
        version=version.seq,
        valid_from=None if version.valid_from_ms is None else rfc3339(version.valid_from_ms),
        valid_to=None if version.valid_to_ms is None else rfc3339(version.valid_to_ms),
        recorded=rfc3339(version.recorded_ms),
        recorded_by=version.recorded_by,
        ended_by=version.ended_by,
    )


def _resummarize(metadata: MetadataDep, history: FieldHistory, version: FieldVersion) -> str | None:
    """Have the flight watcher summarize again the flights a past-dated change reaches
    (``flights.service.resummarize_since``); a change flight summaries do not depend on
    (a rename, a new owner) needs nothing. Returns the answer's note."""
    start = version.valid_from_ms
    if start is None or start >= version.recorded_ms or not history.changes_summaries(version):
        return None
    drones = resummarize_since(metadata, start, version.recorded_ms)
    log.info(
        "field_change_resummarize field=%s version=%d from_ms=%d drones=%d",
        version.id,
        version.seq,
        start,
        drones,
    )
    if not drones:
        return None
    return (
        f"{drones} drone(s) flew since valid_from: the flight watcher summarizes their flights "
        "again against this version within a minute or two; until then coverage and reports "
        "that hold them answer 503 with Retry-After"
    )


def _now_ms() -> int:
    return int(time.time() * 1000)


def _stored(features: Sequence[Field]) -> list[Any]:
    """The features as stored rows; JSON the database cannot hold is a 422, as a second
    line behind the registry's own checks (64-bit integers, valid Unicode)."""
    try:
        return to_stored(features)
    except orjson.JSONEncodeError as exc:
        reason = str(exc)
        text = f"a feature's properties cannot be stored as JSON ({reason})"
        raise _problems([document_problem("not_storable", text, reason=reason)]) from exc


def _document(body: Any, content_type: str) -> tuple[str, Any]:
    """The body as a GeoJSON document and the format it came in: JSON as FastAPI parsed it;
    KML, KMZ, a zipped Shapefile or ISOXML converted (``fields.gis``), told apart by content.
    415 for another Content-Type, 413 past the unpacked-size limit, 422 naming what to fix
    in a file that cannot be read."""
    if not isinstance(body, bytes):
        return "GeoJSON", body
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in gis.READ_MEDIA_TYPES:
        raise HTTPException(
            415,
            detail=f"Content-Type {media[:100]!r} is not read here: send GeoJSON "
            "(application/json or application/geo+json), KML (application/vnd.google-earth."
            "kml+xml), or a KMZ, zipped Shapefile or ISOXML TaskData (application/zip)",
        )
    try:
        with heavy():
            read = gis.read(body, gis.API_LIMITS, what="the request body")
    except gis.GisTooLargeError as exc:
        raise HTTPException(413, detail=f"{exc} (nothing was stored)") from exc
    except gis.GisFormatError as exc:
        raise HTTPException(422, detail=f"{exc} (nothing was stored)") from exc
    return read.format, read.collection


def _parsed(doc: Any, source: str = "GeoJSON") -> FieldRegistry:
    """The request body's fields, validated by the registry; 422 listing every problem."""
    try:
        return parse_fields(doc, source="request body")
    except FieldValidationError as exc:
        raise _problems(exc.coded, source) from exc


def _parsed_each(
    doc: Any, source: str = "GeoJSON"
) -> tuple[list[tuple[int, Field]], list[FieldProblem]]:
    """The request body's valid features (document index, field; fields before zones, as
    listed) and the problems of the others; 422 for a body that is no GeoJSON of fields or
    is over the limits."""
    try:
        pairs, problems, _ = parse_each(doc, source="request body")
    except FieldValidationError as exc:
        raise _problems(exc.coded, source) from exc
    return sorted(pairs, key=lambda p: (p[1].kind != "field", p[0])), problems


def _problems(problems: Sequence[FieldProblem], source: str = "GeoJSON") -> ProblemsError:
    """The 422 of a body's features, one problem per line, each with its code (for a
    converted file, saying where its features' properties come from)."""
    message = f"the {source} has problems"
    if source in _PROPERTIES_FROM:
        message += f" (its features' properties are {_PROPERTIES_FROM[source]})"
    return ProblemsError(
        422,
        detail={"message": message, "problems": [p.text for p in problems]},
        problems=problems,
    )


def _taken(ids: Sequence[str]) -> str:
    """The 409 of ids held by someone else: true whoever holds them (another cooperative,
    or an operator's commune-wide zone), naming no holder."""
    names = ", ".join(repr(i) for i in ids)
    return f"field id {names} is already taken; choose another id (nothing was stored)"


def _raise_if_unusable(principal: Principal, history: FieldHistory, field_id: str) -> None:
    """409 when the field's current version is stored but cannot be used, and the caller
    may see it (else nothing: the caller answers 404)."""
    current = [v for v in history.of(field_id) if v.valid_to_ms is None]
    for v in current:
        if can_read_field(principal, v.field.kind, v.field.owner, v.field.coop):
            history.field(v)  # raises UnusableFieldError, answered 409 by the app


def _editable(principal: Principal, metadata: MetadataDep, field_id: str) -> StoredField:
    """The current version of a field the caller may change, else the 404 of an unknown id."""
    current = metadata.stored_field(field_id)
    if current is None or not (principal.role == "operator" or current.coop == principal.subject):
        raise HTTPException(404, detail=f"no field {field_id!r}")
    return current


def _merged_feature(field_id: str, current: StoredField, body: dict[str, Any]) -> dict[str, Any]:
    """The body laid over the current version: properties and geometry left out keep their
    current values; the id comes from the path."""
    if body.get("type", "Feature") != "Feature":
        raise HTTPException(
            422,
            detail=f"the body must be one GeoJSON Feature (type 'Feature'), got "
            f"{str(body['type'])[:80]!r}",
        )
    props = body.get("properties")
    if props is None:
        props = {}
    if not isinstance(props, dict):
        raise HTTPException(
            422,
            detail="the Feature's 'properties' must be an object (leave it out to keep the "
            f"current ones), got {type(props).__name__}",
        )
    given_id = props.get("id", body.get("id"))
    if given_id not in (None, field_id):
        raise HTTPException(
            422,
            detail=f"the body names field {given_id!r} but the path {field_id!r}; ids never "
            "change (DELETE this one and POST the new id)",
        )
    stored: dict[str, Any] = orjson.loads(current.feature)
    # A stored zone's scope is derived (from its coop), never carried over: it is kept only
    # when the body gives it, and "" clears kind or scope back to their defaults.
    kept = {k: v for k, v in stored.get("properties", {}).items() if k != "scope"}
    merged = {**kept, **props, "id": field_id}
    for key in _DERIVED:
        if merged.get(key) == "":
            del merged[key]
    geometry = body["geometry"] if "geometry" in body else stored.get("geometry")
    return {"type": "Feature", "properties": merged, "geometry": geometry}


@router.put("/fields/{field_id}")
def redraw_field(
    field_id: FieldId,
    *,
    principal: CoopOrOperatorDep,
    metadata: MetadataDep,
    catalog: CatalogDep,
    body: Annotated[
        dict[str, Any],
        Body(description="GeoJSON Feature; optional member valid_from (RFC 3339 or date)"),
    ],
    force: Annotated[
        bool, Query(description="operators: redraw over another cooperative's field")
    ] = False,
) -> ChangeAnswer:
    """Redraw, rename or (operators) move a field to another cooperative: a new version,
    valid from now or from ``valid_from``; flights before it keep the version they flew over.

    The field's cooperative or an operator; anyone else gets the 404 of an unknown id.
    """
    current = _editable(principal, metadata, field_id)
    now = _now_ms()
    start = _valid_from(body.get("valid_from"), metadata, field_id, now)
    if start is not None and principal.role == "coop" and start < now - COOP_BACKDATE_MS:
        raise HTTPException(
            422,
            detail=f"valid_from: a cooperative key may date a change at most "
            f"{COOP_BACKDATE_DAYS} days back (to {rfc3339(now - COOP_BACKDATE_MS)}); "
            f"got {rfc3339(start)}. Ask an operator for an older correction",
        )
    feature = _merged_feature(field_id, current, body)
    parsed = _parsed(feature)
    new = next(iter((*parsed.fields, *parsed.no_spray)))
    check_import(
        principal,
        [(0, new)],
        catalog.current(),
        force=force,
        valid_from={new.id: now if start is None else start},
    )
    if principal.role == "coop" and new.coop != current.coop:
        raise HTTPException(
            403,
            detail=f"only an operator may move a field to another cooperative; field "
            f"{field_id!r} stays with {current.coop!r} (leave 'coop' out to keep it)",
        )
    try:
        version = metadata.redraw_field(
            _stored([new])[0],
            at_ms=now,
            valid_from_ms=start,
            by=changed_by(principal),
            coop=principal.subject if principal.role == "coop" else None,
        )
    except UnknownFieldError as exc:
        raise HTTPException(404, detail=f"no field {field_id!r}") from exc
    except FieldVersionError as exc:
        raise HTTPException(
            422, detail=f"valid_from: {exc.problem} ({rfc3339(exc.instant_ms)})"
        ) from exc
    note = _resummarize(metadata, catalog.current().history, version)
    return ChangeAnswer(**version_answer(version, new).model_dump(), note=note)


def _valid_from(raw: Any, metadata: MetadataDep, field_id: str, now_ms: int) -> int | None:
    """The body's ``valid_from`` in ms (None: from now); 422 in RFC 3339 terms when it is not
    a time, is in the future, or is not after the current version's start."""
    if raw is None:
        return None
    try:
        start = parse_time("valid_from", str(raw)[:100])
    except TimeInputError as exc:
        raise HTTPException(422, detail=str(exc)) from exc
    if start > now_ms:
        raise HTTPException(
            422,
            detail=f"valid_from: {rfc3339(start)} is in the future; a version starts at most "
            f"now ({rfc3339(now_ms)})",
        )
    latest = [v for v in metadata.field_versions(field_id) if v.valid_to_ms is None]
    if latest and latest[-1].valid_from_ms is not None and start <= latest[-1].valid_from_ms:
        raise HTTPException(
            422,
            detail=f"valid_from: {rfc3339(start)} must be after the current version's start "
            f"({rfc3339(latest[-1].valid_from_ms)})",
        )
    return start


@router.delete("/fields/{field_id}")
def delete_field(
    field_id: FieldId, principal: CoopOrOperatorDep, metadata: MetadataDep, catalog: CatalogDep
) -> ChangeAnswer:
    """End the field's current version now: it leaves listings and new flights, while the
    coverage and bills of flights flown before stay as they were.

    The field's cooperative or an operator; anyone else gets the 404 of an unknown id.
    """
    _editable(principal, metadata, field_id)
    try:
        version = metadata.end_field(
            field_id,
            at_ms=_now_ms(),
            by=changed_by(principal),
            coop=principal.subject if principal.role == "coop" else None,
        )
    except UnknownFieldError as exc:
        raise HTTPException(404, detail=f"no field {field_id!r}") from exc
    return ChangeAnswer(**_answer_of(catalog.current().history, version).model_dump())


def _answer_of(history: FieldHistory, version: FieldVersion) -> VersionAnswer:
    """The answer form of a version; one whose stored outline cannot be used is described by
    its stored columns (area 0: there is none to trust)."""
    try:
        return version_answer(version, history.field(version))
    except UnusableFieldError:
        props = orjson.loads(version.field.feature).get("properties") or {}
        name = props.get("name")
        described = FieldSummary(
            id=version.id,
            kind=version.field.kind,
            name=name if isinstance(name, str) else "",
            owner=version.field.owner,
            coop=version.field.coop,
            crop="",
            area_ha=0.0,
            area_sao=0.0,
        )
        return version_answer(version, described)


@router.get("/fields/{field_id}/versions")
def field_versions(  # noqa: PLR0917 -- path, principal, catalog, request/response, page
    field_id: FieldId,
    principal: PrincipalDep,
    catalog: CatalogDep,
    request: Request,
    response: Response,
    limit: PageLimit = FIELDS_PAGE,
    cursor: CursorQuery = None,
) -> list[VersionAnswer]:
    """Every version of the field the caller may see (each by its own owner and
    cooperative; commune-wide zones by every key), oldest first, deleted fields included.

    A page of ``limit``; the next page's cursor is in ``X-Next-Cursor`` (and ``Link``).
    """
    after = decode_cursor(f"versions:{field_id}", cursor, (int,))
    history = catalog.current().history
    versions = sorted(history.of(field_id), key=lambda v: v.seq)

    def readable(v: FieldVersion) -> bool:
        return can_read_field(principal, v.field.kind, v.field.owner, v.field.coop)

    if not any(readable(v) for v in versions):
        raise HTTPException(404, detail=f"no field {field_id!r}")
    page, next_cursor = page_of(
        f"versions:{field_id}",
        versions,
        lambda v: (v.seq,),
        after=after,
        limit=limit,
        visible=readable,
    )
    set_next(request, response, next_cursor)
    return [_answer_of(history, v) for v in page]
