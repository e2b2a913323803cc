"""The diary's CSV and PDF from made-up entries (reports/diary_render.py)."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import pypdf
import pytest

from reports.diary_render import season_of, to_csv, to_pdf

FIELD = {"id": "f1", "name": "Ruộng bà Lan", "owner_name": "Trần Thị Lan", "area_ha": 0.2}


def entry(day: str, pilot: str = "Nguyễn Văn Hưng", **over: Any) -> dict[str, Any]:
    return {
        "date": day,
        "start": f"{day}T07:10:00+07:00",
        "end": f"{day}T07:40:00+07:00",
        "field_id": "f1",
        "drone": "d-1",
        "pilot_name": pilot,
        "product": {"trade_name": "Validan 5SL", "target": "Bệnh khô vằn"},
        "applied_l_per_ha": 15.25,
        "safe_harvest_date": "2026-02-17",
        "flags": [],
        **over,
    }


@pytest.mark.parametrize(
    ("day", "label"),
    [
        (date(2026, 1, 5), "Vụ Xuân 2026"),
        (date(2026, 6, 30), "Vụ Xuân 2026"),
        (date(2026, 7, 1), "Vụ Mùa 2026"),
        (date(2026, 10, 31), "Vụ Mùa 2026"),
        (date(2026, 11, 1), "Vụ Đông 2026"),
    ],
)
def test_seasons_of_the_north(day: date, label: str) -> None:
    assert season_of(day, "vi")[1] == label


def test_one_page_per_season_in_time_order() -> None:
    entries = [entry("2026-08-02"), entry("2026-02-10", pilot="Lê Văn Tư"), entry("2026-08-20")]
    reader = pypdf.PdfReader(
        io.BytesIO(to_pdf(entries, FIELD, "vi", period="2026", head_hash="ab"))
    )
    assert len(reader.pages) == 2
    first, second = (p.extract_text() for p in reader.pages)
    assert "Vụ Xuân 2026" in first
    assert "Lê Văn Tư" in first
    assert "Vụ Mùa 2026" in second
    assert second.count("Nguyễn Văn Hưng") == 2
    assert "Trần Thị Lan" in first
    assert "0,2000 ha" in first  # the Vietnamese decimal mark


def test_a_season_longer_than_a_page_continues_on_the_next() -> None:
    entries = [entry(f"2026-03-{d:02d}") for d in range(1, 29)] * 2
    reader = pypdf.PdfReader(io.BytesIO(to_pdf(entries, FIELD, "en", period="x", head_hash=None)))
    assert len(reader.pages) >= 2
    assert "Date / time" in reader.pages[1].extract_text()  # the header row repeats


def test_an_empty_diary_says_so() -> None:
    reader = pypdf.PdfReader(io.BytesIO(to_pdf([], FIELD, "vi", period="x", head_hash=None)))
    assert "Không có lần phun nào" in reader.pages[0].extract_text()


def test_csv_cells_cannot_run_as_formulas() -> None:
    rows = list(
        csv.reader(
            io.StringIO(
                to_csv([entry("2026-02-10", pilot="=HYPERLINK(1)")], "en").decode("utf-8-sig")
            )
        )
    )
    cells = dict(zip(rows[0], rows[1], strict=True))
    assert cells["Pilot"] == "'=HYPERLINK(1)"
    assert cells["Applied (L/ha)"] == "15.2"
    vi = to_csv([entry("2026-02-10")], "vi").decode("utf-8-sig")
    assert "15,2" in vi
    assert "17/02/2026" in vi


def test_wrapped_cells_fit_their_column_and_keep_every_character() -> None:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    from reports.diary_render import CELL_PADDING, FONT_NAME, wrap_text

    text = "Validan 5SL; Validamycin 5% SL; VN-1234/BVTV " + "x" * 80 + " Bệnh khô vằn"
    lines = wrap_text(text, 60.0, 6.2).split("\n")
    assert len(lines) > 3
    assert all(stringWidth(line, FONT_NAME, 6.2) <= 60.0 - 2 * CELL_PADDING for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
