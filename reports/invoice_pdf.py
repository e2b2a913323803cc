"""Invoices as one printable PDF: one invoice per member (a new page each), then a summary.

Each invoice shows the cooperative and its bank account, the member, one line per field and
local day (flights, ha, sào, price, amount), the total in VND and a VietQR code of exactly
that total with the invoice's transfer reference, so any Vietnamese banking app pays it by
scanning. Without a bank account the invoice says so and has no code. A4 portrait, DejaVu
Sans embedded (reports/diary_render.py registers it). docs/reports.md, "Invoices".
"""

from __future__ import annotations

import io
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final, Literal

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from reports.diary_render import register_font, wrap_text
from reports.invoices import Invoice, InvoiceBook, Payee
from reports.usage import Tariff

Lang = Literal["vi", "en"]

#: Pixels per QR module in the embedded image: 8 px x ~53 modules drawn 44 mm wide is
#: ~250 dpi, sharp on paper and on screen whatever the viewer does to scaled images.
QR_SCALE: Final = 8
QR_BORDER: Final = 4  # the quiet zone the QR standard asks for, in modules
QR_SIZE_MM: Final = 44
_SMALL: Final = 8.5  # points: the tables' text

_LABELS: Final[dict[str, dict[str, str]]] = {
    "vi": {
        "title": "PHIẾU THANH TOÁN DỊCH VỤ PHUN THUỐC BẰNG MÁY BAY",
        "number": "Số phiếu",
        "period": "Kỳ",
        "coop": "Hợp tác xã",
        "bank": "Tài khoản nhận tiền",
        "bin": "Ngân hàng (mã BIN)",
        "account": "Số tài khoản",
        "holder": "Chủ tài khoản",
        "member": "Thành viên",
        "total": "Tổng cộng",
        "scan": "Quét mã VietQR bằng ứng dụng ngân hàng bất kỳ để thanh toán",
        "amount": "Số tiền",
        "reference": "Nội dung chuyển khoản",
        "no_bank": "Hợp tác xã chưa đăng ký tài khoản ngân hàng nên phiếu này không có mã"
        " VietQR: xin thanh toán trực tiếp tại hợp tác xã.",
        "nothing": "Không có khoản nào phải thanh toán.",
        "unassigned": "DIỆN TÍCH TRÊN THỬA CHƯA GÁN CHỦ HỘ (KHÔNG LẬP PHIẾU)",
        "unassigned_note": "Các thửa này chưa có chủ hộ nên chưa lập phiếu thu; gán chủ hộ cho"
        " thửa rồi xuất lại phiếu.",
        "summary": "BẢNG TỔNG HỢP PHIẾU THANH TOÁN",
        "unassigned_row": "Thửa chưa gán chủ hộ (không lập phiếu)",
        "report_total": "Tổng cộng theo báo cáo sử dụng",
        "page": "Trang",
    },
    "en": {
        "title": "INVOICE: DRONE SPRAYING SERVICE",
        "number": "Invoice no.",
        "period": "Period",
        "coop": "Cooperative",
        "bank": "Pay to",
        "bin": "Bank (BIN)",
        "account": "Account no.",
        "holder": "Account holder",
        "member": "Member",
        "total": "Total",
        "scan": "Scan the VietQR code with any Vietnamese banking app to pay",
        "amount": "Amount",
        "reference": "Transfer content",
        "no_bank": "The cooperative has not registered a bank account, so this invoice has no"
        " VietQR code: please pay at the cooperative.",
        "nothing": "Nothing to pay.",
        "unassigned": "AREA ON FIELDS WITH NO OWNER (NOT INVOICED)",
        "unassigned_note": "These fields have no owner, so nobody was invoiced for them; give"
        " the fields an owner and make the invoices again.",
        "summary": "SUMMARY OF INVOICES",
        "unassigned_row": "Fields with no owner (not invoiced)",
        "report_total": "Total of the usage report",
        "page": "Page",
    },
}


#: Column headers of an invoice's lines and of the summary.
_HEADS: Final = {
    "vi": (
        (
            *("Ngày", "Thửa ruộng", "Số chuyến bay", "Diện tích (ha)", "Diện tích (sào)"),
            *("Đơn giá", "Thành tiền (VND)"),
        ),
        ("Thành viên", "Số phiếu", "Nội dung chuyển khoản", "Số tiền (VND)"),
    ),
    "en": (
        ("Date", "Field", "Flights", "Area (ha)", "Area (sào)", "Price", "Amount (VND)"),
        ("Member", "Invoice no.", "Transfer content", "Amount (VND)"),
    ),
}


def qr_image(text: str) -> Any:
    """The QR code of ``text`` (error correction M or better) as a greyscale PIL image with
    its quiet zone, ``QR_SCALE`` pixels per module."""
    import segno
    from PIL import Image

    matrix = segno.make(text, error="m", micro=False).matrix
    n = len(matrix) + 2 * QR_BORDER
    side, blank = b"\xff" * QR_BORDER, b"\xff" * n
    rows = [blank] * QR_BORDER
    rows += [side + bytes(0 if dark else 255 for dark in row) + side for row in matrix]
    rows += [blank] * QR_BORDER
    image = Image.frombytes("L", (n, n), b"".join(rows))
    return image.resize((n * QR_SCALE, n * QR_SCALE), Image.Resampling.NEAREST)


def to_pdf(book: InvoiceBook, lang: Lang = "vi") -> bytes:
    """Every invoice of ``book`` (a page or more each), then the summary page."""
    return _Renderer(book, lang).pdf()


class _QRCode(Flowable):  # type: ignore[misc]
    """A VietQR code drawn ``QR_SIZE_MM`` wide from its image."""

    def __init__(self, payload: str) -> None:
        super().__init__()
        self.image = ImageReader(qr_image(payload))
        self.side = QR_SIZE_MM * mm

    def wrap(self, *_: Any) -> tuple[float, float]:
        return self.side, self.side

    def draw(self) -> None:
        self.canv.drawImage(self.image, 0, 0, self.side, self.side)


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _Renderer:
    """The styles and the parts of one book's PDF."""

    def __init__(self, book: InvoiceBook, lang: Lang) -> None:
        font = register_font()
        self.book, self.lang, self.font = book, lang, font
        self.labels = _LABELS[lang]
        self.title = ParagraphStyle("title", fontName=font, fontSize=13, leading=16)
        self.text = ParagraphStyle("text", fontName=font, fontSize=9, leading=12)
        self.big = ParagraphStyle("big", fontName=font, fontSize=11, leading=14)
        self.width = A4[0] - 30 * mm
        self.grid = TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), font, _SMALL, _SMALL + 2),
                ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.9, 0.93, 0.88)),
                ("BACKGROUND", (0, -1), (-1, -1), colors.Color(0.95, 0.95, 0.95)),
                ("ALIGN", (2, 1), (-1, -1), "RIGHT"),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
        self.period = f"{_day(book.first_day, lang)} - {_day(book.last_day, lang)}"

    def p(self, s: str, style: ParagraphStyle | None = None) -> Paragraph:
        return Paragraph(_esc(s), style or self.text)

    def header(self, heads: tuple[str, ...], widths: list[float]) -> list[str]:
        """Column headers wrapped to their columns (plain strings draw fast)."""
        return [wrap_text(h, w, _SMALL) for h, w in zip(heads, widths, strict=True)]

    def vnd(self, amount: int) -> str:
        return _num(Decimal(amount), 0, self.lang)

    def pdf(self) -> bytes:
        book, labels = self.book, self.labels
        story: list[Any] = []
        for invoice in book.invoices:
            story += [*self.heading(invoice), self.lines(invoice), Spacer(1, 6 * mm)]
            story += [self.payment(invoice), PageBreak()]
        if book.unassigned is not None:
            story += [self.p(labels["unassigned"], self.title), Spacer(1, 2 * mm)]
            story += [self.p(f"{labels['period']}: {self.period}")]
            story += [self.p(labels["unassigned_note"]), Spacer(1, 3 * mm)]
            story += [self.lines(book.unassigned), PageBreak()]
        story += [self.p(labels["summary"], self.title), Spacer(1, 2 * mm)]
        story += [self.p(f"{labels['coop']}: {book.coop_name} ({book.coop})   ·   {self.period}")]
        story += [Spacer(1, 3 * mm), self.summary()]

        def footer(canvas: Any, doc: Any) -> None:
            canvas.saveState()
            canvas.setFont(self.font, 7)
            canvas.drawRightString(A4[0] - 15 * mm, 8 * mm, f"{labels['page']} {doc.page}")
            canvas.restoreState()

        out = io.BytesIO()
        doc = SimpleDocTemplate(
            out,
            pagesize=A4,
            leftMargin=15 * mm,
            rightMargin=15 * mm,
            topMargin=14 * mm,
            bottomMargin=14 * mm,
            title=f"{labels['title']} {book.coop} {book.period}",
            author="agridrone",
            invariant=1,
        )
        doc.build(story, onFirstPage=footer, onLaterPages=footer)
        return out.getvalue()

    def heading(self, invoice: Invoice) -> list[Any]:
        book, labels = self.book, self.labels
        lines = [
            f"{labels['number']}: {invoice.number}   ·   {labels['period']}: {self.period}",
            f"{labels['coop']}: {book.coop_name} ({book.coop})",
            *([] if book.payee is None else [_payee(book.payee, labels)]),
        ]
        return [
            self.p(labels["title"], self.title),
            Spacer(1, 2 * mm),
            Paragraph("<br/>".join(_esc(line) for line in lines), self.text),
            self.p(
                f"{labels['member']}: {invoice.member_name or invoice.member} ({invoice.member})",
                self.big,
            ),
            Spacer(1, 3 * mm),
        ]

    def lines(self, invoice: Invoice) -> Table:
        lang = self.lang
        widths = [w * mm for w in (20, 46, 16, 18, 18, 32, 30)]
        field = widths[1]
        data: list[list[Any]] = [self.header(_HEADS[lang][0], widths)]
        data += [
            [
                _day(line.day, lang),
                wrap_text(f"{line.field_name} ({line.field_id})", field, _SMALL),
                str(line.flights),
                _num(line.sprayed_ha, 4, lang),
                _num(line.sprayed_sao, 2, lang),
                _price(line.tariff, lang),
                self.vnd(line.amount_vnd),
            ]
            for line in invoice.lines
        ]
        data.append(
            [
                self.labels["total"],
                "",
                str(invoice.flights),
                _num(invoice.sprayed_ha, 4, lang),
                _num(invoice.sprayed_sao, 2, lang),
                "",
                self.vnd(invoice.amount_vnd),
            ]
        )
        table = Table(data, colWidths=widths, repeatRows=1)
        table.setStyle(self.grid)
        table.setStyle([("SPAN", (0, -1), (1, -1))])
        return table

    def payment(self, invoice: Invoice) -> Flowable:
        labels, big, payee = self.labels, self.big, self.book.payee
        amount = f"{labels['amount']}: {self.vnd(invoice.amount_vnd)} VND"
        payload = invoice.qr_payload(payee)
        if invoice.amount_vnd <= 0:
            return self.p(labels["nothing"], big)
        if payload is None or payee is None:
            return KeepTogether(
                [self.p(amount, big), Spacer(1, 2 * mm), self.p(labels["no_bank"], big)]
            )
        words = [
            self.p(labels["scan"], big),
            Spacer(1, 2 * mm),
            self.p(amount, big),
            self.p(f"{labels['reference']}: {invoice.reference}", big),
            Spacer(1, 2 * mm),
            *(self.p(s) for s in _payee_lines(payee, labels)),
        ]
        side = QR_SIZE_MM * mm + 6 * mm
        box = Table([[_QRCode(payload), words]], colWidths=[side, self.width - side])
        box.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))
        return KeepTogether([box])

    def summary(self) -> Table:
        book, labels = self.book, self.labels
        widths = [w * mm for w in (46, 56, 52, 26)]
        data: list[list[Any]] = [self.header(_HEADS[self.lang][1], widths)]
        data += [
            [
                wrap_text(f"{i.member_name or i.member} ({i.member})", widths[0], _SMALL),
                wrap_text(i.number, widths[1], _SMALL),
                i.reference,
                self.vnd(i.amount_vnd),
            ]
            for i in book.invoices
        ]
        if book.unassigned is not None:
            unbilled = self.vnd(book.unassigned.amount_vnd)
            data.append([wrap_text(labels["unassigned_row"], widths[0], _SMALL), "", "", unbilled])
        data.append([labels["report_total"], "", "", self.vnd(book.total_vnd)])
        table = Table(data, colWidths=widths, repeatRows=1)
        table.setStyle(self.grid)
        table.setStyle([("ALIGN", (2, 1), (2, -1), "LEFT"), ("SPAN", (0, -1), (2, -1))])
        return table


def _payee_lines(payee: Payee, labels: dict[str, str]) -> list[str]:
    return [
        f"{labels['bin']}: {payee.bank_bin}",
        f"{labels['account']}: {payee.account}",
        f"{labels['holder']}: {payee.account_name}",
    ]


def _payee(payee: Payee, labels: dict[str, str]) -> str:
    return f"{labels['bank']}: " + " · ".join(_payee_lines(payee, labels))


def _day(day: date, lang: Lang) -> str:
    return f"{day:%d/%m/%Y}" if lang == "vi" else day.isoformat()


def _num(value: Decimal, places: int, lang: Lang) -> str:
    """Grouped thousands: ``1.234.567,5`` in Vietnamese, ``1,234,567.5`` in English."""
    q = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    text = f"{q:,.{places}f}"
    if lang == "vi":
        text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return text


def _price(tariff: Tariff, lang: Lang) -> str:
    unit = "ha" if tariff.unit == "ha" else "sào"
    return f"{_num(tariff.vnd, 0, lang)} VND/{unit}"
