"""Invoices from a usage report (reports/invoices.py) and their PDF (reports/invoice_pdf.py):
one per member billing exactly the member's row, lines per field and local day, a stable
number and reference, and a VietQR code scanned back out of the PDF."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction

import pypdf
import pytest
import zxingcpp
from hypothesis import given, settings

from reports.invoice_pdf import to_pdf
from reports.invoices import (
    InvoiceBook,
    Payee,
    invoice_book,
    invoice_number,
    period_code,
    transfer_reference,
)
from reports.usage import (
    FieldUsage,
    FlightUsage,
    Tariff,
    billed_pieces,
    usage_report,
)
from reports.vietqr import VietQR, decode
from tests.unit.test_usage_report import flight_usages
from tests.unit.test_usage_tariffs import HCM, price_on, tariff_histories

COOP = "htx-hong-phong"
PAYEE = Payee("970405", "1500201234567", "HTX HONG PHONG")
NOV = (
    int(datetime(2025, 11, 1, tzinfo=HCM).timestamp() * 1000),
    int(datetime(2025, 12, 1, tzinfo=HCM).timestamp() * 1000),
)
TARIFFS = [Tariff(Decimal(300_000)), Tariff(Decimal(10_000), "sao", date(2025, 11, 15))]
NAMES = {"nd-an": "Nguyễn Văn An", "nd-binh": "Trần Thị Bình"}


def on(field_id: str, owner: str, covered_ha: float, name: str = "") -> FieldUsage:
    return FieldUsage(field_id, name or f"Ruộng {field_id}", owner, 0.5, covered_ha, 1.0, 50.0)


def flight(fid: str, local: str, *fields: FieldUsage) -> FlightUsage:
    start = int(datetime.fromisoformat(local).replace(tzinfo=HCM).timestamp() * 1000)
    return FlightUsage(fid, COOP, "d1", start, start + 600_000, 600.0, 2.0, fields)


FLIGHTS = (
    # Two flights on An's field the same day make one line; a third after the price change.
    flight("F1", "2025-11-03T07:00", on("f-an", "nd-an", 0.100005, "Ruộng Đồng Cói")),
    flight("F2", "2025-11-03T09:00", on("f-an", "nd-an", 0.2)),
    flight("F3", "2025-11-20T07:00", on("f-an", "nd-an", 0.036)),
    # One flight over Bình's field and a field with no owner.
    flight("F4", "2025-11-20T08:00", on("f-binh", "nd-binh", 0.100005), on("f-x", "", 0.05)),
)


def book(
    flights: Sequence[FlightUsage] = FLIGHTS,
    tariffs: Sequence[Tariff] = TARIFFS,
    payee: Payee | None = PAYEE,
    window: tuple[int, int] = NOV,
) -> InvoiceBook:
    report = usage_report(
        flights,
        group_by="member",
        tariffs=tariffs,
        member_names=NAMES,
        coop=COOP,
        from_ms=window[0],
        to_ms=window[1],
    )
    pieces = billed_pieces(flights, tariffs)
    return invoice_book(report, pieces, coop_name="HTX Hồng Phong", payee=payee)


def test_each_member_is_billed_exactly_their_row_of_the_report() -> None:
    b = book()
    report = usage_report(FLIGHTS, group_by="member", tariffs=TARIFFS, coop=COOP)
    rows = {r.key: r.amount_vnd for r in report.rows}
    assert {i.member: i.amount_vnd for i in b.invoices} == {
        "nd-an": rows["nd-an"],
        "nd-binh": rows["nd-binh"],
    }
    assert b.unassigned is not None
    assert b.unassigned.amount_vnd == rows[""]
    assert b.total_vnd == report.totals.amount_vnd


def test_lines_are_per_field_and_local_day_at_that_days_price() -> None:
    an = book().invoices[0]
    assert [(line.day, line.field_id, line.flights) for line in an.lines] == [
        (date(2025, 11, 3), "f-an", 2),
        (date(2025, 11, 20), "f-an", 1),
    ]
    first, second = an.lines
    assert first.field_name == "Ruộng Đồng Cói"
    assert first.sprayed_ha == Decimal("0.300005")
    assert first.exact_vnd == Fraction(300_005, 1_000_000) * 300_000  # 90,001.5
    assert (second.tariff.vnd, second.tariff.unit) == (Decimal(10_000), "sao")
    assert second.exact_vnd == 10_000  # 0.036 ha is exactly one sào
    assert [line.amount_vnd for line in an.lines] == [90_002, 10_000]
    assert an.amount_vnd == 100_002


def test_the_lines_of_every_invoice_add_up_to_it() -> None:
    for invoice in book().invoices:
        assert sum(line.amount_vnd for line in invoice.lines) == invoice.amount_vnd


@settings(max_examples=100, deadline=None)
@given(flight_usages(), tariff_histories())
def test_lines_are_exact_and_share_the_members_amount(
    flights: list[FlightUsage], tariffs: list[Tariff]
) -> None:
    window = (1_700_000_000_000, 1_700_000_000_000 + 8 * 86_400_000)
    b = book(flights, tariffs, window=window)
    oracle: dict[tuple[str, date, str], Fraction] = {}
    for f in flights:
        day = datetime.fromtimestamp(f.start_ms / 1000, tz=HCM).date()
        for p in f.fields:
            ha = Fraction(Decimal(repr(p.covered_ha)).quantize(Decimal("0.000001")))
            key = (p.owner, day, p.field_id)
            oracle[key] = oracle.get(key, Fraction(0)) + ha * price_on(tariffs, f.start_ms)
    invoices = [*b.invoices, *([b.unassigned] if b.unassigned else [])]
    got = {(i.member, line.day, line.field_id): line for i in invoices for line in i.lines}
    assert {k: line.exact_vnd for k, line in got.items()} == oracle
    for invoice in invoices:
        assert sum(line.amount_vnd for line in invoice.lines) == invoice.amount_vnd
        assert all(abs(line.amount_vnd - line.exact_vnd) < 1 for line in invoice.lines)
    assert sum(i.amount_vnd for i in invoices) == b.total_vnd


def test_a_whole_month_or_day_is_named_by_it_and_any_other_window_by_its_days() -> None:
    assert period_code(*NOV) == (date(2025, 11, 1), date(2025, 11, 30), "2025-11")
    half = (NOV[0], NOV[0] + 15 * 86_400_000)
    assert period_code(*half) == (date(2025, 11, 1), date(2025, 11, 15), "20251101-20251115")
    day = (NOV[0], NOV[0] + 86_400_000)
    assert period_code(*day) == (date(2025, 11, 1), date(2025, 11, 1), "20251101")
    morning = (NOV[0], NOV[0] + 43_200_000)
    assert period_code(*morning)[2] == "20251101-20251101"


def test_numbers_and_references_name_one_invoice() -> None:
    an = book().invoices[0]
    assert an.number == invoice_number(COOP, "2025-11", "nd-an") == "htx-hong-phong/2025-11/nd-an"
    assert re.fullmatch(r"HD2511 NDAN [A-Z2-7]{8}", an.reference)
    assert an.reference == book().invoices[0].reference  # stable
    others = {
        transfer_reference(
            invoice_number(COOP, "20251101-20251115", "nd-an"), date(2025, 11, 1), "nd-an"
        ),
        transfer_reference(invoice_number(COOP, "2025-11", "nd_an"), date(2025, 11, 1), "nd_an"),
        transfer_reference(
            invoice_number("htx-yen-tho", "2025-11", "nd-an"), date(2025, 11, 1), "nd-an"
        ),
    }
    assert an.reference not in others
    assert len(others) == 3
    long = transfer_reference("c/2025-11/" + "m" * 64, date(2025, 11, 1), "m" * 64)
    assert len(long) == 25


def pdf_pages(b: InvoiceBook, lang: str = "vi") -> list[pypdf.PageObject]:
    return list(pypdf.PdfReader(io.BytesIO(to_pdf(b, lang))).pages)  # type: ignore[arg-type]


def scanned(page: pypdf.PageObject) -> list[str]:
    """The text of every QR code in the page's images, read by an independent decoder."""
    return [
        code.text
        for image in page.images
        for code in zxingcpp.read_barcodes(image.image)
        if code.format == zxingcpp.BarcodeFormat.QRCode
    ]


def test_the_pdf_has_an_invoice_per_member_in_vietnamese_then_the_summary() -> None:
    pages = pdf_pages(book())
    texts = [page.extract_text() for page in pages]
    assert len(pages) == 4  # An, Bình, the fields with no owner, the summary
    an, binh, unassigned, summary = texts
    assert "PHIẾU THANH TOÁN DỊCH VỤ PHUN THUỐC BẰNG MÁY BAY" in an
    assert "Nguyễn Văn An" in an
    assert "Ruộng Đồng Cói" in an
    assert "HTX Hồng Phong" in an
    assert "Số tài khoản: 1500201234567" in an
    assert "HTX HONG PHONG" in an
    assert "Số phiếu: htx-hong-phong/2025-11/nd-an" in an
    assert "03/11/2025" in an
    assert "20/11/2025" in an
    assert "300.000 VND/ha" in an
    assert "10.000 VND/sào" in an
    assert "0,3000" in an  # ha, decimal comma
    assert "90.002" in an
    assert "Số tiền: 100.002 VND" in an
    assert "Trần Thị Bình" in binh
    assert "CHƯA GÁN CHỦ HỘ" in unassigned
    assert "Tổng cộng theo báo cáo sử dụng" in summary


def test_each_invoices_qr_code_pays_exactly_its_total_with_its_reference() -> None:
    b = book()
    pages = pdf_pages(b)
    for invoice, page in zip(b.invoices, pages, strict=False):
        [text] = scanned(page)
        assert decode(text) == VietQR(
            "970405", "1500201234567", invoice.amount_vnd, invoice.reference
        )
    assert scanned(pages[2]) == []  # the fields with no owner are billed to nobody


def test_without_a_bank_account_the_invoice_says_so_and_has_no_code() -> None:
    pages = pdf_pages(book(payee=None))
    assert not [img for page in pages for img in page.images]
    text = pages[0].extract_text()
    assert "chưa đăng ký tài khoản ngân hàng" in text
    assert "Số tiền: 100.002 VND" in text


def test_the_pdf_in_english() -> None:
    text = pdf_pages(book(), "en")[0].extract_text()
    assert "INVOICE: DRONE SPRAYING SERVICE" in text
    assert "Amount: 100,002 VND" in text
    assert "2025-11-03" in text
    assert "Nguyễn Văn An" in text


def test_a_member_with_nothing_to_pay_gets_no_code() -> None:
    free = [Tariff(Decimal(0))]
    pages = pdf_pages(book(tariffs=free))
    assert "Không có khoản nào phải thanh toán." in pages[0].extract_text()
    assert scanned(pages[0]) == []


def test_only_a_report_by_member_makes_invoices() -> None:
    report = usage_report(FLIGHTS, group_by="field", tariffs=TARIFFS, coop=COOP, from_ms=1, to_ms=2)
    with pytest.raises(ValueError, match="by member"):
        invoice_book(report, billed_pieces(FLIGHTS, TARIFFS), coop_name="x", payee=None)
