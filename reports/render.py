"""A usage report as JSON or as a CSV file that Excel opens correctly in Vietnam or in English.

CSV is UTF-8 with a byte-order mark (without it Excel guesses a legacy code page and
garbles Vietnamese). ``lang="vi"``: Vietnamese headers, dd/mm/yyyy, decimal comma and ``;``
between cells, which is what Excel expects under a Vietnamese locale. ``lang="en"``: English
headers, ISO dates, decimal point, ``,``. After the totals row, an empty line and one line per
tariff applied. docs/reports.md, "CSV". Each row also names the compliance flags of its
flights (``code: message`` in the report's language, joined by `` | ``, as the diary's CSV).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from reports.usage import UNASSIGNED, GroupBy, TariffUse, UsageReport, UsageRow

Lang = Literal["vi", "en"]

#: Decimal places shown in CSV cells (JSON carries more).
_CSV_PLACES: Final = {"hours": 2, "ha": 4, "sao": 2, "litres": 2, "l_per_ha": 1, "pct": 1}
#: Cells a spreadsheet would run as a formula get a leading apostrophe (OWASP CSV injection).
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class _Dialect:
    delimiter: str
    decimal: str
    key_headers: dict[str, tuple[str, ...]]
    figure_headers: tuple[str, ...]
    total: str
    unassigned: dict[str, str]
    #: Tariff footer lines: label by unit, "from" (a date or the beginning), "through".
    tariff: dict[str, str]
    tariff_from: str
    tariff_since_start: str
    tariff_through: str
    #: The last column: the compliance flags of the row's flights.
    flags: str = ""


_DIALECTS: Final[dict[str, _Dialect]] = {
    "vi": _Dialect(
        delimiter=";",
        decimal=",",
        key_headers={
            "member": ("Mã thành viên", "Thành viên"),
            "field": ("Mã thửa", "Thửa ruộng"),
            "drone": ("Máy bay",),
            "day": ("Ngày",),
        },
        figure_headers=(
            "Số chuyến bay",
            "Giờ bay",
            "Diện tích phun (ha)",
            "Diện tích phun (sào)",
            "Lượng thuốc (lít)",
            "Lít/ha trung bình",
            "Độ phủ trung bình (%)",
            "Thành tiền (VND)",
        ),
        total="Tổng cộng",
        unassigned={
            "member": "Chưa gán thành viên",
            "field": "Ngoài thửa ruộng đã đăng ký",
        },
        tariff={"ha": "Đơn giá (VND/ha)", "sao": "Đơn giá (VND/sào)"},
        tariff_from="từ {}",
        tariff_since_start="từ đầu",
        tariff_through=" đến hết {}",
        flags="Cảnh báo",
    ),
    "en": _Dialect(
        delimiter=",",
        decimal=".",
        key_headers={
            "member": ("Member ID", "Member"),
            "field": ("Field ID", "Field"),
            "drone": ("Drone",),
            "day": ("Date",),
        },
        figure_headers=(
            "Flights",
            "Flight hours",
            "Sprayed area (ha)",
            "Sprayed area (sào)",
            "Product (litres)",
            "Mean L/ha",
            "Mean coverage (%)",
            "Amount (VND)",
        ),
        total="Total",
        unassigned={
            "member": "No member assigned",
            "field": "Outside registered fields",
        },
        tariff={"ha": "Tariff (VND/ha)", "sao": "Tariff (VND/sào)"},
        tariff_from="from {}",
        tariff_since_start="from the start",
        tariff_through=" through {}",
        flags="Flags",
    ),
}


def to_json(report: UsageReport) -> dict[str, Any]:
    """JSON-ready: figures as numbers (``None`` → null), instants RFC 3339 in the report's zone."""
    zone = ZoneInfo(report.tz)
    return {
        "group_by": report.group_by,
        "coop": report.coop,
        "from": _instant(report.from_ms, zone),
        "to": _instant(report.to_ms, zone),
        "tz": report.tz,
        "tariffs": [_tariff_json(u) for u in report.tariffs],
        "rows": [_row_json(r, zone) | _flags_json(r) for r in report.rows],
        "totals": _row_json(report.totals, zone),
        "not_billed_ha": _rounded(report.not_billed_ha, 6),
    }


def to_csv(report: UsageReport, lang: Lang = "vi") -> bytes:
    """The report as CSV bytes: BOM, a header row, one row per group, the totals row, then an
    empty line and a line per tariff applied (price, and the days it was in force)."""
    if lang not in _DIALECTS:
        raise ValueError(f"lang {lang!r} unknown; use one of {', '.join(_DIALECTS)}")
    d = _DIALECTS[lang]
    keys = d.key_headers[report.group_by]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=d.delimiter, lineterminator="\r\n")
    writer.writerow([*keys, *d.figure_headers, d.flags])
    for row in report.rows:
        writer.writerow(
            [
                *_key_cells(row, report.group_by, len(keys), d, lang),
                *_figures(row, d),
                _flag_cell(row, report.group_by, lang),
            ]
        )
    writer.writerow([d.total, *[""] * (len(keys) - 1), *_figures(report.totals, d), ""])
    if report.tariffs:
        writer.writerow([])
        writer.writerows(_tariff_cells(u, d, lang) for u in report.tariffs)
    return out.getvalue().encode("utf-8-sig")


def _tariff_json(use: TariffUse) -> dict[str, Any]:
    t, until = use.period.tariff, use.period.until
    return {
        "from": None if t.effective_from is None else t.effective_from.isoformat(),
        "until": None if until is None else until.isoformat(),
        "vnd": _number(t.vnd),
        "unit": t.unit,
        "vnd_per_ha": _rounded(Decimal(t.vnd_per_ha.numerator) / t.vnd_per_ha.denominator, 3),
        "flights": use.flights,
        "sprayed_ha": _rounded(use.sprayed_ha, 6),
    }


def _tariff_cells(use: TariffUse, d: _Dialect, lang: Lang) -> list[str]:
    t, until = use.period.tariff, use.period.until

    def day(value: date) -> str:
        return value.strftime("%d/%m/%Y") if lang == "vi" else value.isoformat()

    since = (
        d.tariff_since_start
        if t.effective_from is None
        else d.tariff_from.format(day(t.effective_from))
    )
    through = "" if until is None else d.tariff_through.format(day(until - timedelta(days=1)))
    return [d.tariff[t.unit], f"{t.vnd:f}".replace(".", d.decimal), since + through]


def _row_json(row: UsageRow, zone: ZoneInfo) -> dict[str, Any]:
    l_per_ha = row.mean_l_per_ha
    return {
        "key": row.key,
        "label": row.label,
        "flights": row.flights,
        "flight_hours": _rounded(row.flight_hours, 4),
        "sprayed_ha": _rounded(row.sprayed_ha, 6),
        "sprayed_sao": _rounded(row.sprayed_sao, 3),
        "litres": _rounded(row.litres, 3),
        "litres_on_fields": _rounded(row.litres_on_fields, 3),
        "mean_l_per_ha": None if l_per_ha is None else _rounded(l_per_ha, 3),
        "mean_coverage_pct": (
            None if row.mean_coverage_pct is None else round(row.mean_coverage_pct, 3)
        ),
        "amount_vnd": row.amount_vnd,
        "first_start": _instant(row.first_start_ms, zone),
        "last_end": _instant(row.last_end_ms, zone),
    }


def _flags_json(row: UsageRow) -> dict[str, Any]:
    """The row's flags: their distinct codes, and how many flags of each (a flag counts once
    per diary entry, however many of the job's flights it concerns)."""
    counts: dict[str, int] = {}
    for f in row.flags:
        counts[f.code] = counts.get(f.code, 0) + 1
    return {"flag_codes": sorted(counts), "flag_counts": dict(sorted(counts.items()))}


def _flag_cell(row: UsageRow, group_by: GroupBy, lang: Lang) -> str:
    """``code: message`` of each flag in the report's language, the same text once; a flag
    of another field than the row's own (every flag of a member, drone or day row) starts
    with that field's id."""
    texts = []
    for f in row.flags:
        own = group_by == "field" and f.field_id == row.key
        text = f"{f.code}: {f.message_vi if lang == 'vi' else f.message_en}"
        texts.append(text if own else f"{f.field_id} {text}")
    return _safe_text(" | ".join(dict.fromkeys(texts)))


def _key_cells(row: UsageRow, group_by: GroupBy, n: int, d: _Dialect, lang: Lang) -> list[str]:
    if row.key == UNASSIGNED:
        label = d.unassigned.get(group_by, "")
        return ["", label] if n == 2 else [label]
    if group_by == "day":
        day = date.fromisoformat(row.key)
        return [day.strftime("%d/%m/%Y") if lang == "vi" else day.isoformat()]
    cells = [row.key, row.label][:n]
    return [_safe_text(c) for c in cells]


def _figures(row: UsageRow, d: _Dialect) -> list[str]:
    p = _CSV_PLACES

    def num(value: Decimal | float | None, places: int) -> str:
        if value is None:
            return ""
        text = str(_quantize(Decimal(repr(value)) if isinstance(value, float) else value, places))
        return text.replace(".", d.decimal)

    return [
        str(row.flights),
        num(row.flight_hours, p["hours"]),
        num(row.sprayed_ha, p["ha"]),
        num(row.sprayed_sao, p["sao"]),
        num(row.litres, p["litres"]),
        num(row.mean_l_per_ha, p["l_per_ha"]),
        num(row.mean_coverage_pct, p["pct"]),
        str(row.amount_vnd),
    ]


def _safe_text(text: str) -> str:
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def _quantize(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _rounded(value: Decimal, places: int) -> float:
    return float(_quantize(value, places))


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _instant(ms: int | None, zone: ZoneInfo) -> str | None:
    """RFC 3339 with the zone's offset (``+07:00`` for Asia/Ho_Chi_Minh), to the millisecond."""
    if ms is None:
        return None
    t = datetime.fromtimestamp(ms // 1000, tz=zone) + timedelta(milliseconds=ms % 1000)
    return t.isoformat(timespec="milliseconds")
