"""The spray diary's PDF renderer as it was before the invoice work (issue 13, session 5):
kept unchanged as the baseline ``bench.invoices`` times beside ``reports.diary_render``.
Every wrapped cell is a ReportLab ``Paragraph`` (parsed as mark-up, then wrapped)."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from reports.diary_render import _LABELS, FONT_NAME, Lang, cell, columns, font_path, seasons

_WRAPPED: Final = frozenset((1, 2, 3, 4, 12))


def to_pdf(
    entries: Sequence[Mapping[str, Any]],
    field: Mapping[str, Any],
    lang: Lang,
    *,
    period: str,
    head_hash: str | None,
) -> bytes:
    """The printable diary: a header per page, one season per page, every entry a row."""
    from reportlab import rl_config
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.platypus import (
        PageBreak,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    # Binary (not ASCII85) streams: smaller and ~30 % faster to write; 7-bit transport of
    # PDFs is long gone.
    rl_config.useA85 = 0
    if FONT_NAME not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(FONT_NAME, str(font_path())))
    labels = _LABELS[lang]
    small = ParagraphStyle("cell", fontName=FONT_NAME, fontSize=6.2, leading=7.4)
    bold = ParagraphStyle("head", fontName=FONT_NAME, fontSize=6.4, leading=7.6)
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
        data = [[Paragraph(esc(vi if lang == "vi" else en), bold) for vi, en, _ in layout]]
        # Short cells are plain strings (ReportLab draws them ~10x faster than paragraphs);
        # only the columns whose text may need several lines wrap.
        data += [
            [
                Paragraph(esc(get(e)), small) if i in _WRAPPED else get(e)
                for i, (_, _, get) in enumerate(layout)
            ]
            for e in rows
        ]
        table = Table(data, colWidths=widths, repeatRows=1)
        table.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.9, 0.93, 0.88)),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("FONT", (0, 1), (-1, -1), FONT_NAME, 6.2, 7.4),
                ]
            )
        )
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
