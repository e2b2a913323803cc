"""A field's spray diary (nhật ký phun): one entry per job on the field, as JSON, CSV for
Excel or a printable PDF (``flights.diary`` says what an entry holds, docs/diary.md how it
is kept).

Who may read it: the field's farmer, its cooperative, operators (``can_see_field``, by the
field's ownership when each job sprayed it); anyone else gets the 404 of a missing field.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, HTTPException, Query, Response

from api.auth import Principal, PrincipalDep, can_see_field
from api.deps import CatalogDep, MetadataDep
from api.routes.fields import FieldId
from api.times import TimeInputError, parse_time, rfc3339
from flights.diary import ha_to_sao
from reports.diary_render import DiaryFontError, to_csv, to_pdf
from storage.metadata import DiaryRow, MetadataDB

router = APIRouter(tags=["diary"])

_ALL_TIME: Final = (0, 253_402_128_000_000)


def diary_entries(
    rows: list[DiaryRow], *, history: bool, visible: Any = None
) -> list[dict[str, Any]]:
    """The entries to show: the latest version of each (withdrawn ones left out), or with
    ``history`` every version; each with its chain number, hash and write time."""
    latest: dict[str, int] = {}
    for r in rows:
        latest[r.entry_key] = r.n
    out = []
    for r in rows:
        doc = r.doc()
        current = latest[r.entry_key] == r.n
        if not history and (not current or doc.get("withdrawn")):
            continue
        if visible is not None and not visible(doc):
            continue
        out.append(
            {
                **doc,
                "n": r.n,
                "entry_hash": r.entry_hash,
                "prev_hash": r.prev_hash,
                "written": rfc3339(r.written_ms),
                "superseded": not current,
            }
        )
    return out


def field_header(metadata: MetadataDB, catalog_field: Any) -> dict[str, Any]:
    """The field's id, name, owner, cooperative and area for the diary's header."""
    f = catalog_field
    coop = metadata.coop(f.coop) if f.coop else None
    owner_name = metadata.member_names(f.coop).get(f.owner) if f.coop else None
    return {
        "id": f.id,
        "name": f.name,
        "owner": f.owner,
        "owner_name": owner_name,
        "coop": f.coop,
        "coop_name": coop.name if coop is not None else f.coop,
        "area_ha": round(f.area_ha, 4),
        "area_sao": round(ha_to_sao(f.area_ha), 2),
        "area": f"{f.area_ha:.4f} ha ({ha_to_sao(f.area_ha):.2f} sào)",
    }


@router.get(
    "/fields/{field_id}/diary",
    response_model=None,
    responses={
        200: {
            "description": "the diary as JSON, CSV (text/csv) or PDF (application/pdf)",
            "content": {"text/csv": {}, "application/pdf": {}},
        }
    },
)
def field_diary(  # noqa: PLR0917 -- one parameter per documented query option
    field_id: FieldId,
    principal: PrincipalDep,
    metadata: MetadataDep,
    catalog: CatalogDep,
    from_: Annotated[
        str | None,
        Query(alias="from", description="jobs that started from (date or RFC 3339); default all"),
    ] = None,
    to: Annotated[
        str | None, Query(description="jobs that started before (date or RFC 3339)")
    ] = None,
    format_: Annotated[Literal["json", "csv", "pdf"], Query(alias="format")] = "json",
    lang: Annotated[Literal["vi", "en"], Query(description="CSV/PDF language")] = "vi",
    history: Annotated[
        bool, Query(description="every written version, superseded and withdrawn too")
    ] = False,
) -> Response | dict[str, Any]:
    """The field's diary: one entry per job that sprayed it, oldest first.

    Each entry holds the date, start and end (local time, UTC+07:00), cooperative, drone and
    its registration, pilot and licence, product (trade name, active ingredient,
    concentration, registration number, target), planned dose and the applied L/ha measured
    from telemetry, area sprayed in ha and sào, coverage %, litres, wind if reported, PHI
    and the safe-harvest date, and flags; plus its place in the field's hash chain
    (``n``, ``entry_hash``, ``prev_hash``; ``agridrone diary verify`` checks them).
    """
    versions = [v for v in catalog.current().history.of(field_id) if v.field.kind == "field"]
    seen = [v for v in versions if can_see_field(principal, v.field.owner, v.field.coop)]
    if not seen:
        raise HTTPException(404, detail=f"no field {field_id!r}")
    try:
        start = _ALL_TIME[0] if from_ is None else parse_time("from", from_)
        end = _ALL_TIME[1] if to is None else parse_time("to", to)
    except TimeInputError as exc:
        raise HTTPException(422, detail=str(exc)) from exc
    if end <= start:
        raise HTTPException(422, detail="to must be after from")
    rows = metadata.diary_rows(field_id, start, end)
    entries = diary_entries(rows, history=history, visible=visible_entry(principal))
    header = field_header(metadata, catalog.current().history.field(seen[-1]))
    head = rows[-1].entry_hash if rows else None
    answer = {
        "field": header,
        "from": rfc3339(start) if from_ is not None else None,
        "to": rfc3339(end) if to is not None else None,
        "entries": entries,
        "chain_head": head,
    }
    name = f"nhat-ky-phun-{field_id}" if lang == "vi" else f"spray-diary-{field_id}"
    if format_ == "csv":
        return Response(
            to_csv(entries, lang),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    if format_ == "pdf":
        period = period_label(from_, to, lang)
        try:
            pdf = to_pdf(entries, header, lang, period=period, head_hash=head)
        except DiaryFontError as exc:
            raise HTTPException(500, detail=str(exc)) from exc
        return Response(
            pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{name}.pdf"'},
        )
    return answer


def visible_entry(principal: Principal) -> Any:
    """Entries of jobs when the field was someone else's are not shown (ownership as the
    entry recorded it when written)."""

    def visible(doc: dict[str, Any]) -> bool:
        owner, coop = doc.get("field_owner"), doc.get("field_coop")
        if owner is None and coop is None:  # a withdrawn version: shown with history only
            return principal.role != "farmer"
        return can_see_field(principal, str(owner or ""), str(coop or ""))

    return visible


def period_label(from_: str | None, to: str | None, lang: str) -> str:
    """The PDF header's period: the dates asked for, or all time."""
    if from_ is None and to is None:
        return "toàn bộ" if lang == "vi" else "all time"
    return f"{from_ or '...'} - {to or '...'}"
