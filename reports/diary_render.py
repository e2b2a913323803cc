"""The spray diary as CSV (Excel, Vietnamese intact) and as a printable PDF.

CSV follows the usage report's conventions (reports/render.py): UTF-8 with a byte-order
mark; ``lang="vi"``: Vietnamese headers, dd/mm/yyyy, decimal comma, ``;`` between cells;
``lang="en"``: English headers, ISO dates, decimal point, ``,``.

The PDF has one page per season (continued on more pages only when a season holds more
entries than one page takes), landscape A4, with DejaVu Sans embedded (Debian's
``fonts-dejavu-core``, which ``scripts/install-servers.sh`` installs) so Vietnamese prints
with its diacritics. Seasons are the northern crop seasons by local date of the spraying:
Vụ Xuân (January-June), Vụ Mùa (July-October), Vụ Đông (November-December).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Final, Literal

Lang = Literal["vi", "en"]

#: Where DejaVu Sans is looked for (Debian/Ubuntu's fonts-dejavu-core, then others).
FONT_PATHS: Final = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/TTF/DejaVuSans.ttf"),
)
FONT_NAME: Final = "DejaVuSans"
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


class DiaryFontError(RuntimeError):
    """No font with Vietnamese glyphs to embed in the PDF."""


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the diary: its headers and how a cell is read from an entry."""

    vi: str
    en: str
    value: Callable[[Mapping[str, Any]], Any]
    kind: Literal["text", "date", "number", "time"] = "text"
    places: int = 2


def _product(key: str) -> Callable[[Mapping[str, Any]], Any]:
    def get(e: Mapping[str, Any]) -> Any:
        p = e.get("product")
        return p.get(key) if isinstance(p, Mapping) else None

    return get


def _flags(lang: Lang) -> Callable[[Mapping[str, Any]], Any]:
    key = "message_vi" if lang == "vi" else "message_en"
    return lambda e: " | ".join(
        f"{f.get('code')}: {f.get(key)}" for f in e.get("flags") or [] if isinstance(f, Mapping)
    )


def columns(lang: Lang) -> list[Column]:
    """Every column the diary has, in order (CSV holds all; the PDF folds some)."""
    return [
        Column("Ngày", "Date", lambda e: e.get("date"), "date"),
        Column("Bắt đầu", "Start", lambda e: e.get("start"), "time"),
        Column("Kết thúc", "End", lambda e: e.get("end"), "time"),
        Column("Mã thửa", "Field ID", lambda e: e.get("field_id")),
        Column("Thửa ruộng", "Field", lambda e: e.get("field_name")),
        Column("Hợp tác xã", "Cooperative", lambda e: e.get("coop_name")),
        Column("Máy bay", "Drone", lambda e: e.get("drone")),
        Column("Số đăng ký máy bay", "Drone registration", lambda e: e.get("drone_registration")),
        Column("Người lái", "Pilot", lambda e: e.get("pilot_name")),
        Column("Số giấy phép", "Pilot licence", lambda e: e.get("pilot_licence")),
        Column("Công việc", "Job", lambda e: e.get("job")),
        Column("Tên thuốc", "Product", _product("trade_name")),
        Column("Hoạt chất", "Active ingredient", _product("active_ingredient")),
        Column("Hàm lượng", "Concentration", _product("concentration")),
        Column("Số đăng ký thuốc", "Product registration", _product("registration_no")),
        Column("Đối tượng phòng trừ", "Target", _product("target")),
        Column(
            "Liều dự kiến (L/ha)",
            "Planned dose (L/ha)",
            lambda e: e.get("planned_dose_l_per_ha"),
            "number",
            1,
        ),
        Column(
            "Liều thực tế (L/ha)",
            "Applied (L/ha)",
            lambda e: e.get("applied_l_per_ha"),
            "number",
            1,
        ),
        Column(
            "Lượng thuốc trên thửa (lít)",
            "Litres on the field",
            lambda e: e.get("applied_l_on_field"),
            "number",
            2,
        ),
        Column(
            "Lượng phun các lượt qua thửa (lít)",
            "Litres of the passes",
            lambda e: e.get("applied_l"),
            "number",
            2,
        ),
        Column("Diện tích phun (ha)", "Sprayed (ha)", lambda e: e.get("sprayed_ha"), "number", 4),
        Column(
            "Diện tích phun (sào)", "Sprayed (sào)", lambda e: e.get("sprayed_sao"), "number", 2
        ),
        Column("Độ phủ (%)", "Coverage (%)", lambda e: e.get("coverage_pct"), "number", 1),
        Column("Gió (m/s)", "Wind (m/s)", lambda e: e.get("wind_mps"), "number", 1),
        Column("Thời gian cách ly (ngày)", "PHI (days)", lambda e: e.get("phi_days"), "number", 0),
        Column(
            "Ngày thu hoạch an toàn",
            "Safe-harvest date",
            lambda e: e.get("safe_harvest_date"),
            "date",
        ),
        Column("Cảnh báo", "Flags", _flags(lang)),
        Column("Phiên bản", "Version", lambda e: e.get("version"), "number", 0),
        Column("Mã băm", "Entry hash", lambda e: e.get("entry_hash")),
    ]


def cell(col: Column, entry: Mapping[str, Any], lang: Lang) -> str:
    """One cell as text: dates dd/mm/yyyy and decimal comma in Vietnamese."""
    value = col.value(entry)
    if value is None:
        return ""
    if col.kind == "date":
        return _date(str(value), lang)
    if col.kind == "time":
        text = str(value)  # RFC 3339 local, e.g. 2025-11-28T23:30:00+07:00
        day, _, rest = text.partition("T")
        return f"{_date(day, lang)} {rest[:5]}"
    if col.kind == "number" and isinstance(value, (int, float)):
        text = f"{value:.{col.places}f}"
        return text.replace(".", ",") if lang == "vi" else text
    return str(value)


def _date(iso: str, lang: Lang) -> str:
    if lang != "vi":
        return iso
    try:
        d = date.fromisoformat(iso)
    except ValueError:
        return iso
    return d.strftime("%d/%m/%Y")


def _safe(text: str) -> str:
    """A cell a spreadsheet would run as a formula gets a leading apostrophe."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def to_csv(entries: Sequence[Mapping[str, Any]], lang: Lang) -> bytes:
    """The diary as CSV bytes (UTF-8 with BOM)."""
    return table_csv(columns(lang), entries, lang)


def table_csv(cols: Sequence[Column], entries: Sequence[Mapping[str, Any]], lang: Lang) -> bytes:
    """Rows as CSV bytes for Excel (UTF-8 with BOM; ``vi``: ``;`` and decimal comma), one
    column per ``Column``; a text cell a spreadsheet would run as a formula is quoted."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";" if lang == "vi" else ",", lineterminator="\r\n")
    writer.writerow([c.vi if lang == "vi" else c.en for c in cols])
    for e in entries:
        writer.writerow([_cell_text(c, e, lang) for c in cols])
    return out.getvalue().encode("utf-8-sig")


def _cell_text(col: Column, entry: Mapping[str, Any], lang: Lang) -> str:
    """A number cell as written (a negative one is no formula); other text made safe."""
    text = cell(col, entry, lang)
    return text if col.kind == "number" else _safe(text)


# --- seasons and the PDF -------------------------------------------------------------------


def season_of(day: date, lang: Lang) -> tuple[tuple[int, int], str]:
    """(sort key, label) of the crop season holding a local date."""
    if day.month <= 6:
        order, vi, en = 0, "Vụ Xuân", "Spring crop"
    elif day.month <= 10:
        order, vi, en = 1, "Vụ Mùa", "Summer crop"
    else:
        order, vi, en = 2, "Vụ Đông", "Winter crop"
    return (day.year, order), f"{vi if lang == 'vi' else en} {day.year}"


def seasons(
    entries: Sequence[Mapping[str, Any]], lang: Lang
) -> list[tuple[str, list[Mapping[str, Any]]]]:
    """Entries by season, seasons in time order, entries in time order."""
    found: dict[tuple[int, int], tuple[str, list[Mapping[str, Any]]]] = {}
    for e in sorted(entries, key=lambda e: str(e.get("start", ""))):
        key, label = season_of(date.fromisoformat(str(e["date"])), lang)
        found.setdefault(key, (label, []))[1].append(e)
    return [found[k] for k in sorted(found)]


def font_path() -> Path:
    """The TrueType font embedded in PDFs; ``DiaryFontError`` naming the fix if absent."""
    for p in FONT_PATHS:
        if p.is_file():
            return p
    raise DiaryFontError(
        "no DejaVu Sans font to embed in the PDF (looked in "
        + ", ".join(str(p) for p in FONT_PATHS)
        + "); install Debian's fonts-dejavu-core (scripts/install-servers.sh does)"
    )


#: ReportLab's default padding of a table cell, left and right (points).
CELL_PADDING: Final = 6


def wrap_text(text: str, column: float, size: float) -> str:
    """``text`` in lines that fit a table column ``column`` points wide at ``size`` points of
    DejaVu Sans (words broken only when one alone is too wide), joined by newlines: a table
    cell holding it draws the lines as they are."""
    from reportlab.lib.utils import simpleSplit
    from reportlab.pdfbase.pdfmetrics import stringWidth

    register_font()
    width = column - 2 * CELL_PADDING
    out: list[str] = []
    for paragraph in text.split("\n"):
        for line in simpleSplit(paragraph, FONT_NAME, size, width) or [""]:
            rest = line
            while len(rest) > 1 and stringWidth(rest, FONT_NAME, size) > width:
                cut = len(rest) - 1
                while cut > 1 and stringWidth(rest[:cut], FONT_NAME, size) > width:
                    cut -= 1
                out.append(rest[:cut])
                rest = rest[cut:]
            out.append(rest)
    return "\n".join(out)


def register_font() -> str:
    """Register DejaVu Sans with ReportLab once per process (every PDF embeds the subset of
    glyphs it uses) and switch to binary streams; the font's name for styles."""
    from reportlab import rl_config
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    # Binary (not ASCII85) streams: smaller and ~30 % faster to write; 7-bit transport of
    # PDFs is long gone.
    rl_config.useA85 = 0
    if FONT_NAME not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(FONT_NAME, str(font_path())))
    return FONT_NAME


#: Columns of the PDF's table (by position in its layout) whose text wraps: drone, pilot,
#: product, target, flags; the rest are short and drawn as plain strings.
_WRAPPED: Final = frozenset((1, 2, 3, 4, 12))

_LABELS: Final = {
    "vi": {
        "title": "NHẬT KÝ PHUN THUỐC BẢO VỆ THỰC VẬT",
        "field": "Thửa ruộng",
        "owner": "Chủ hộ",
        "coop": "Hợp tác xã",
        "area": "Diện tích",
        "none": "Không có lần phun nào trong khoảng thời gian này.",
        "head": "Mã băm cuối chuỗi",
        "cont": "(tiếp)",
        "page": "Trang",
    },
    "en": {
        "title": "PLANT PROTECTION SPRAY DIARY",
        "field": "Field",
        "owner": "Owner",
        "coop": "Cooperative",
        "area": "Area",
        "none": "No spraying in this period.",
        "head": "Chain head hash",
        "cont": "(continued)",
        "page": "Page",
    },
}


def to_pdf(
    entries: Sequence[Mapping[str, Any]],
    field: Mapping[str, Any],
    lang: Lang,
    *,
    period: str,
    head_hash: str | None,
) -> bytes:
    """The printable diary: a header per page, one season per page, every entry a row."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        PageBreak,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    register_font()
    labels = _LABELS[lang]
    small = ParagraphStyle("cell", fontName=FONT_NAME, fontSize=6.2, leading=7.4)
    title = ParagraphStyle("title", fontName=FONT_NAME, fontSize=13, leading=16)
    text = ParagraphStyle("text", fontName=FONT_NAME, fontSize=8.5, leading=11)
    cols = {c.en: c for c in columns(lang)}

    def c(name: str, e: Mapping[str, Any]) -> str:
        return cell(cols[name], e, lang)

    def esc(s: str) -> str:
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    layout: list[tuple[str, str, Callable[[Mapping[str, Any]], str]]] = [
        ("Ngày / giờ", "Date / time", lambda e: f"{c('Start', e)}\n- {c('End', e)[-5:]}"),
        (
            "Máy bay (số ĐK)",
            "Drone (registration)",
            lambda e: f"{c('Drone', e)} ({c('Drone registration', e) or '—'})",
        ),
        (
            "Người lái (giấy phép)",
            "Pilot (licence)",
            lambda e: f"{c('Pilot', e) or '—'} ({c('Pilot licence', e) or '—'})",
        ),
        (
            "Thuốc; hoạt chất, hàm lượng; số ĐK",
            "Product; active ingredient; registration",
            lambda e: (
                f"{c('Product', e) or e.get('product_id') or '—'}; "
                f"{c('Active ingredient', e)} {c('Concentration', e)}; "
                f"{c('Product registration', e)}"
            ),
        ),
        ("Đối tượng", "Target", lambda e: c("Target", e)),
        (
            "Liều dự kiến / thực tế (L/ha)",
            "Dose planned / applied (L/ha)",
            lambda e: f"{c('Planned dose (L/ha)', e) or '—'} / {c('Applied (L/ha)', e) or '—'}",
        ),
        (
            "Diện tích ha (sào)",
            "Area ha (sào)",
            lambda e: f"{c('Sprayed (ha)', e)} ({c('Sprayed (sào)', e)})",
        ),
        ("Độ phủ %", "Coverage %", lambda e: c("Coverage (%)", e)),
        ("Lít", "Litres", lambda e: c("Litres on the field", e)),
        ("Gió m/s", "Wind m/s", lambda e: c("Wind (m/s)", e)),
        ("PHI (ngày)", "PHI (days)", lambda e: c("PHI (days)", e)),
        ("Thu hoạch an toàn từ", "Safe harvest from", lambda e: c("Safe-harvest date", e)),
        ("Cảnh báo", "Flags", lambda e: c("Flags", e)),
    ]
    widths = [x * mm for x in (24, 24, 26, 46, 20, 20, 20, 12, 11, 11, 11, 18, 44)]
    heads = list(zip(layout, widths, strict=True))
    style = TableStyle(
        [
            ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
            ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.9, 0.93, 0.88)),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("FONT", (0, 0), (-1, 0), FONT_NAME, 6.4, 7.6),
            ("FONT", (0, 1), (-1, -1), FONT_NAME, 6.2, 7.4),
        ]
    )

    def number(value: Any, places: int) -> str:
        text = f"{float(value or 0):.{places}f}"
        return text.replace(".", ",") if lang == "vi" else text

    area = f"{number(field.get('area_ha'), 4)} ha ({number(field.get('area_sao'), 2)} sào)"

    def header() -> list[Any]:
        name = field.get("name") or field.get("id")
        return [
            Paragraph(esc(labels["title"]), title),
            Paragraph(
                esc(
                    f"{labels['field']}: {name} ({field.get('id')}) · {labels['owner']}: "
                    f"{field.get('owner_name') or field.get('owner') or '—'} · {labels['coop']}: "
                    f"{field.get('coop_name') or field.get('coop') or '—'} · {labels['area']}: "
                    f"{area} · {period}"
                ),
                text,
            ),
        ]

    story: list[Any] = []
    groups = seasons(entries, lang)
    if not groups:
        story += [*header(), Spacer(1, 6 * mm), Paragraph(esc(labels["none"]), text)]
    for i, (label, rows) in enumerate(groups):
        if i:
            story.append(PageBreak())
        story += [*header(), Spacer(1, 2 * mm), Paragraph(esc(label), title), Spacer(1, 2 * mm)]
        # Cells are plain strings, wrapped here to their column (ReportLab draws a string
        # ~10x faster than a paragraph, which it parses as mark-up and wraps itself).
        data = [[wrap_text(vi if lang == "vi" else en, w, 6.4) for (vi, en, _), w in heads]]
        data += [
            [
                wrap_text(get(e), w, 6.2) if i in _WRAPPED else get(e)
                for i, ((_, _, get), w) in enumerate(heads)
            ]
            for e in rows
        ]
        table = Table(data, colWidths=widths, repeatRows=1)
        table.setStyle(style)
        story.append(table)
    if head_hash:
        story += [Spacer(1, 3 * mm), Paragraph(esc(f"{labels['head']}: {head_hash}"), small)]

    def footer(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(FONT_NAME, 7)
        canvas.drawRightString(landscape(A4)[0] - 10 * mm, 7 * mm, f"{labels['page']} {doc.page}")
        canvas.restoreState()

    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=landscape(A4),
        leftMargin=8 * mm,
        rightMargin=8 * mm,
        topMargin=10 * mm,
        bottomMargin=12 * mm,
        title=labels["title"],
        author="agridrone",
        invariant=1,
    )
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()
