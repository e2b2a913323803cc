"""Reports: a cooperative's usage over a period, as JSON, as a CSV file for Excel, or as
printable invoices (PDF, one per member, each with a VietQR code to pay it).

The report covers the flights of the cooperative's own drones that started in [from, to),
from their stored summaries (never raw samples), each billed at the cooperative's tariff in
force on the day it flew (``agridrone coops set``). docs/reports.md states every rule.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response

from api.auth import CoopOrOperatorDep, Principal, can_see_coop
from api.catalog import being_recomputed
from api.deps import CatalogDep, MetadataDep
from api.flight_flags import flags_by_flight
from api.times import Window, WindowDep, local_day
from fields.registry import ID_PATTERN
from fields.stored import FieldHistory
from reports.diary_render import DiaryFontError
from reports.invoices import Payee, invoice_book
from reports.render import to_csv, to_json
from reports.usage import (
    BilledPiece,
    FlightUsage,
    GroupBy,
    Tariff,
    UsageFlag,
    UsageInputError,
    UsageReport,
    billed_pieces,
    usage_report,
)
from storage.metadata import CoopRecord, MetadataDB, StoredFlight

router = APIRouter(tags=["reports"])

#: The most flights one report reads (a month of a busy cooperative is about 3,000).
MAX_FLIGHTS: Final = 20_000


def _known(
    principal: Principal, coop: str, record: CoopRecord | None, metadata: MetadataDB
) -> bool:
    """Whether the cooperative exists: set up with ``agridrone coops``, the caller's own,
    or owner of registered drones. An unknown one answers 404, like one the caller may not
    see; 409 is kept for one that exists but has no tariff."""
    if record is not None or (principal.role == "coop" and principal.subject == coop):
        return True
    return bool(metadata.drones(coop))


@router.get(
    "/reports/usage",
    response_model=None,
    responses={
        200: {
            "content": {"text/csv": {}, "application/pdf": {}},
            "description": "the report as JSON or CSV, or the members' invoices as PDF",
        }
    },
)
def usage(  # noqa: PLR0917 -- one parameter per documented query option
    principal: CoopOrOperatorDep,
    metadata: MetadataDep,
    catalog: CatalogDep,
    window: WindowDep,
    coop: Annotated[
        str | None,
        Query(
            pattern=f"^{ID_PATTERN}$",
            description="the cooperative; a cooperative's key defaults to its own",
        ),
    ] = None,
    group_by: Annotated[GroupBy, Query(description="one row per member, field, drone or day")] = (
        "member"
    ),
    format_: Annotated[Literal["json", "csv", "pdf"], Query(alias="format")] = "json",
    lang: Annotated[
        Literal["vi", "en"], Query(description="CSV and PDF language, dates and decimals")
    ] = "vi",
) -> dict[str, Any] | Response:
    """Flights, flight hours, sprayed ha and sào, litres, mean L/ha, mean coverage % and the
    amount to bill (VND), per member, field, drone or local day, with a totals row.

    Cooperatives read their own reports, operators any (naming ``coop``); farmer keys get
    403. CSV is UTF-8 with a byte-order mark; ``lang=vi`` gives Vietnamese headers,
    dd/mm/yyyy dates, ``;`` between cells and decimal commas, as Excel expects in Vietnam.
    ``format=pdf`` gives one invoice per member (``group_by`` member), each with a VietQR
    code of its total when the cooperative's bank account is set.
    """
    if format_ == "pdf" and group_by != "member":
        raise HTTPException(
            422,
            detail=f"format=pdf gives one invoice per member; leave group_by out (it was"
            f" {group_by!r}) or ask for format=json or csv",
        )
    if coop is None:
        if principal.role != "coop":
            raise HTTPException(
                422, detail="query parameter 'coop' is required with an operator key"
            )
        coop = principal.subject
    record = metadata.coop(coop)
    if not can_see_coop(principal, coop) or not _known(principal, coop, record, metadata):
        raise HTTPException(404, detail=f"no cooperative {coop!r}")
    if record is None or not record.tariffs:
        raise HTTPException(
            409,
            detail=f"cooperative {coop!r} has no tariff yet, so nothing can be billed; an "
            f"operator sets it with `agridrone coops set {coop} --tariff-vnd-per-ha 300000`",
        )
    fields = catalog.current()
    stored = metadata.flights(window.start_ms, window.end_ms, coop=coop, limit=MAX_FLIGHTS + 1)
    if len(stored) > MAX_FLIGHTS:
        raise HTTPException(
            422,
            detail=f"the window from {window.start} to {window.end} holds more than"
            f" {MAX_FLIGHTS} flights of cooperative {coop!r}, the most one report reads;"
            " ask for a shorter window (e.g. one month at a time) and add the reports up",
        )
    _refuse_stale(fields.history, stored, window)
    tariffs = [Tariff(Decimal(t.vnd), t.unit, t.effective_from) for t in record.tariffs]
    flags = usage_flags(principal, metadata, stored)
    try:
        flights = [
            FlightUsage.from_document(
                f.summary_dict(), fields.by_id_at(f.start_ms), flags.get(f.id, ())
            )
            for f in stored
        ]
        report = usage_report(
            flights,
            group_by=group_by,
            tariffs=tariffs,
            member_names=metadata.member_names(coop),
            coop=coop,
            from_ms=window.start_ms,
            to_ms=window.end_ms,
        )
        if format_ == "pdf":
            return _invoices(report, billed_pieces(flights, tariffs), record, window, lang)
    except UsageInputError as exc:
        raise HTTPException(409, detail=str(exc)) from exc
    if format_ == "csv":
        first, last = local_day(window.start_ms), local_day(window.end_ms - 1)
        name = f"agridrone-usage-{coop}-{group_by}-{first:%Y%m%d}-{last:%Y%m%d}.csv"
        return Response(
            to_csv(report, lang=lang),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return to_json(report) | {"coop_name": record.name}


def _invoices(
    report: UsageReport,
    pieces: list[BilledPiece],
    record: CoopRecord,
    window: Window,
    lang: Literal["vi", "en"],
) -> Response:
    """The members' invoices as one PDF; without a bank account they say so, with no code."""
    from reports.invoice_pdf import to_pdf  # ReportLab loads only when a PDF is asked for

    bank = record.bank
    payee = None if bank is None else Payee(bank.bank_bin, bank.account, bank.account_name)
    book = invoice_book(report, pieces, coop_name=record.name, payee=payee)
    try:
        pdf = to_pdf(book, lang)
    except DiaryFontError as exc:
        raise HTTPException(500, detail=str(exc)) from exc
    first, last = local_day(window.start_ms), local_day(window.end_ms - 1)
    name = f"agridrone-invoices-{record.id}-{first:%Y%m%d}-{last:%Y%m%d}.pdf"
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def usage_flags(
    principal: Principal, metadata: MetadataDB, stored: list[StoredFlight]
) -> dict[str, list[UsageFlag]]:
    """The compliance flags of each flight that the caller may read in its fields' diaries
    (docs/diary.md, "Flags per flight")."""
    seen = []
    for f in stored:
        try:
            touched = {str(s["field_id"]) for s in f.summary_dict().get("fields") or []}
        except (KeyError, TypeError, ValueError):
            touched = set()  # an unreadable summary is refused by the report itself
        seen.append((f, touched))
    return {
        fid: [
            UsageFlag(
                str(g.get("field_id")),
                str(g.get("entry")),
                str(g.get("code")),
                str(g.get("message_vi", "")),
                str(g.get("message_en", "")),
            )
            for g in found
        ]
        for fid, found in flags_by_flight(principal, metadata, seen).items()
    }


def _refuse_stale(history: FieldHistory, stored: list[StoredFlight], window: Window) -> None:
    """503 for a flight summarized before a field or zone change that reaches back past
    its start (a past-dated redraw): the flight watcher is summarizing it again, and its
    stored figures are of the outlines before."""
    for flight in stored:
        if history.outdated(flight.start_ms, flight.computed_ms):
            raise being_recomputed(flight.id, window.start, window.end)
