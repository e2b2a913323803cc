"""Invoices: a usage report by member as one bill per member, each with a VietQR code.

A member's invoice bills exactly the member's row of the usage report (the report's total is
rounded once and shared among members by largest remainder: reports/usage.py). Its lines are
the member's fields by the local day flights started (the day that chose the tariff), and
share the member's amount again by largest remainder, so the lines add up to the invoice to
the đồng. Each invoice has a number that names it (cooperative, period, member) and a short
ASCII reference for the bank transfer, carried in its VietQR payload. docs/reports.md,
"Invoices".
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Final
from zoneinfo import ZoneInfo

from reports import vietqr
from reports.usage import (
    SAO_PER_HA,
    TARIFF_TZ,
    UNASSIGNED,
    BilledPiece,
    Tariff,
    UsageReport,
    local_date,
    share_vnd,
)

#: Letters of a member id kept in the transfer reference (the rest names it by its digest).
_MEMBER_CODE_LEN: Final = 9
_CHECK_LEN: Final = 8


@dataclass(frozen=True, slots=True)
class Payee:
    """The cooperative's bank account: NAPAS BIN, account number, holder as the bank shows it."""

    bank_bin: str
    account: str
    account_name: str


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """A member's field on one local day: what its flights sprayed and what that costs."""

    day: date
    field_id: str
    field_name: str
    flights: int
    sprayed_ha: Decimal
    tariff: Tariff
    exact_vnd: Fraction
    amount_vnd: int

    @property
    def sprayed_sao(self) -> Decimal:
        """The area in sào Bắc Bộ (360 m²)."""
        return self.sprayed_ha * SAO_PER_HA


@dataclass(frozen=True, slots=True)
class Invoice:
    """One member's bill; ``member`` ``""`` holds fields with no owner (billed to nobody:
    no number, no reference)."""

    member: str
    member_name: str
    number: str
    reference: str
    lines: tuple[InvoiceLine, ...]
    flights: int
    sprayed_ha: Decimal
    amount_vnd: int

    @property
    def sprayed_sao(self) -> Decimal:
        """The area in sào Bắc Bộ (360 m²)."""
        return self.sprayed_ha * SAO_PER_HA

    def qr_payload(self, payee: Payee | None) -> str | None:
        """The VietQR text paying this invoice into ``payee``'s account, or ``None`` when
        there is no account, nothing to pay, or no member to pay it."""
        if payee is None or self.amount_vnd <= 0 or not self.member:
            return None
        return vietqr.payload(payee.bank_bin, payee.account, self.amount_vnd, self.reference)


@dataclass(frozen=True, slots=True)
class InvoiceBook:
    """Every invoice of a report (by member id), the unbilled ownerless fields, the total."""

    coop: str
    coop_name: str
    payee: Payee | None
    first_day: date
    last_day: date
    period: str
    invoices: tuple[Invoice, ...]
    unassigned: Invoice | None
    total_vnd: int


def period_code(from_ms: int, to_ms: int, tz: str = TARIFF_TZ) -> tuple[date, date, str]:
    """(first local day, last local day, code) of a window: ``YYYY-MM`` for one whole
    calendar month, ``YYYYMMDD`` for one whole day, else ``YYYYMMDD-YYYYMMDD`` (its first
    and last days)."""
    zone = ZoneInfo(tz)
    start = datetime.fromtimestamp(from_ms / 1000, tz=zone)
    end = datetime.fromtimestamp(to_ms / 1000, tz=zone)
    first, last = start.date(), (end - timedelta(milliseconds=1)).date()
    midnight = start.time() == end.time() == datetime.min.time()
    next_month = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    if midnight and first.day == 1 and end.date() == next_month:
        return first, last, f"{first:%Y-%m}"
    if midnight and first == last:
        return first, last, f"{first:%Y%m%d}"
    return first, last, f"{first:%Y%m%d}-{last:%Y%m%d}"


def invoice_number(coop: str, period: str, member: str) -> str:
    """``coop/period/member``: the same window gives the same number."""
    return f"{coop}/{period}/{member}"


def transfer_reference(number: str, first_day: date, member: str) -> str:
    """The bank transfer's content (≤ 25 ASCII characters): ``HD``, the period's first
    month ``YYMM``, the member id's letters and digits (at most 9, upper case) and 8
    characters of the SHA-256 of the invoice number, which tell apart two invoices whose
    readable parts agree (two windows of one month, ``nd-1`` and ``nd_1``)."""
    code = re.sub(r"[^A-Z0-9]", "", member.upper())[:_MEMBER_CODE_LEN] or "TV"
    digest = base64.b32encode(hashlib.sha256(number.encode()).digest()).decode()
    return f"HD{first_day:%y%m} {code} {digest[:_CHECK_LEN]}"


def invoice_book(
    report: UsageReport,
    pieces: Sequence[BilledPiece],
    *,
    coop_name: str,
    payee: Payee | None,
) -> InvoiceBook:
    """The invoices of a report grouped by member, from the pieces it priced
    (``billed_pieces`` of the same flights and tariffs)."""
    if report.group_by != "member" or report.coop is None:
        raise ValueError("invoices come from a report by member of one cooperative")
    if report.from_ms is None or report.to_ms is None:
        raise ValueError("invoices need the report's window (from_ms, to_ms)")
    first, last, period = period_code(report.from_ms, report.to_ms)
    zone = ZoneInfo(TARIFF_TZ)
    by_member: dict[str, list[BilledPiece]] = {}
    for piece in pieces:
        by_member.setdefault(piece.field.owner, []).append(piece)
    invoices: list[Invoice] = []
    unassigned: Invoice | None = None
    for row in report.rows:
        mine = by_member.get(row.key, [])
        if sum((p.exact_vnd for p in mine), Fraction(0)) != row.exact_vnd:
            raise ValueError(f"member {row.key!r}: the pieces do not add up to the report's row")
        number = invoice_number(report.coop, period, row.key) if row.key else ""
        invoice = Invoice(
            member=row.key,
            member_name=row.label,
            number=number,
            reference=transfer_reference(number, first, row.key) if row.key else "",
            lines=_lines(mine, row.amount_vnd, zone),
            flights=row.flights,
            sprayed_ha=row.sprayed_ha,
            amount_vnd=row.amount_vnd,
        )
        if row.key == UNASSIGNED:
            unassigned = invoice if mine else None
        else:
            invoices.append(invoice)
    return InvoiceBook(
        coop=report.coop,
        coop_name=coop_name,
        payee=payee,
        first_day=first,
        last_day=last,
        period=period,
        invoices=tuple(invoices),
        unassigned=unassigned,
        total_vnd=report.totals.amount_vnd,
    )


def _lines(pieces: Sequence[BilledPiece], amount: int, zone: ZoneInfo) -> tuple[InvoiceLine, ...]:
    """The member's pieces by (local day, field), the amount shared among them."""
    groups: dict[tuple[str, str], list[BilledPiece]] = {}
    for p in pieces:
        groups.setdefault((local_date(p.flight.start_ms, zone), p.field.field_id), []).append(p)
    keys = sorted(groups)
    exact = [sum((p.exact_vnd for p in groups[k]), Fraction(0)) for k in keys]
    amounts = share_vnd(exact, amount)
    out = []
    for (day, field_id), e, a in zip(keys, exact, amounts, strict=True):
        group = groups[(day, field_id)]
        out.append(
            InvoiceLine(
                day=date.fromisoformat(day),
                field_id=field_id,
                field_name=group[0].field.field_name or field_id,
                flights=len({p.flight.flight_id for p in group}),
                sprayed_ha=sum((p.sprayed_ha for p in group), Decimal(0)),
                tariff=group[0].period.tariff,
                exact_vnd=e,
                amount_vnd=a,
            )
        )
    return tuple(out)
