"""Usage reports rendered: JSON for the API, CSV that Excel opens in Vietnamese or English."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from reports.render import to_csv, to_json
from reports.usage import FieldUsage, GroupBy, Tariff, UsageFlag, UsageReport, usage_report
from tests.unit.test_usage_report import (
    DOSE,
    DOSE3,
    FLIGHTS,
    NAMES,
    OFF,
    TARIFF,
    flight,
    report,
    utc_ms,
)

BOM = b"\xef\xbb\xbf"

VI_FIGURES = [
    "Số chuyến bay",
    "Giờ bay",
    "Diện tích phun (ha)",
    "Diện tích phun (sào)",
    "Lượng thuốc (lít)",
    "Lít/ha trung bình",
    "Độ phủ trung bình (%)",
    "Thành tiền (VND)",
]
EN_FIGURES = [
    "Flights",
    "Flight hours",
    "Sprayed area (ha)",
    "Sprayed area (sào)",
    "Product (litres)",
    "Mean L/ha",
    "Mean coverage (%)",
    "Amount (VND)",
]


def parse(data: bytes, delimiter: str) -> list[list[str]]:
    """Read the CSV back the way a spreadsheet would: BOM stripped, cells split."""
    assert data.startswith(BOM)
    return list(csv.reader(io.StringIO(data[len(BOM) :].decode("utf-8")), delimiter=delimiter))


def table(rows: list[list[str]]) -> list[list[str]]:
    """The header, group rows and totals row: everything before the empty line."""
    return rows[: rows.index([])] if [] in rows else rows


def footer(rows: list[list[str]]) -> list[list[str]]:
    """The lines after the empty line (the tariffs applied)."""
    return rows[rows.index([]) + 1 :]


def vi(group_by: GroupBy) -> list[list[str]]:
    return table(parse(to_csv(report(group_by), lang="vi"), ";"))


def en(group_by: GroupBy) -> list[list[str]]:
    return table(parse(to_csv(report(group_by), lang="en"), ","))


def test_csv_starts_with_a_utf8_byte_order_mark() -> None:
    for lang in ("vi", "en"):
        data = to_csv(report("member"), lang=lang)
        assert data[:3] == BOM
        assert data[3:6] != BOM  # exactly one


@pytest.mark.parametrize(
    ("group_by", "keys"),
    [
        ("member", ["Mã thành viên", "Thành viên"]),
        ("field", ["Mã thửa", "Thửa ruộng"]),
        ("drone", ["Máy bay"]),
        ("day", ["Ngày"]),
    ],
)
def test_vietnamese_headers_are_exact(group_by: GroupBy, keys: list[str]) -> None:
    assert vi(group_by)[0] == [*keys, *VI_FIGURES, "Cảnh báo"]


@pytest.mark.parametrize(
    ("group_by", "keys"),
    [
        ("member", ["Member ID", "Member"]),
        ("field", ["Field ID", "Field"]),
        ("drone", ["Drone"]),
        ("day", ["Date"]),
    ],
)
def test_english_headers_are_exact(group_by: GroupBy, keys: list[str]) -> None:
    assert en(group_by)[0] == [*keys, *EN_FIGURES, "Flags"]


def test_vietnamese_member_csv_reads_back_cell_by_cell() -> None:
    header, an, binh, unassigned, total = vi("member")
    assert len({len(header), len(an), len(binh), len(unassigned), len(total)}) == 1
    assert an == [
        "m-an",
        "Nguyễn Văn An",
        "2",
        "0,75",
        "0,7000",
        "19,44",  # 7,000 m² / 360
        "14,00",
        "20,0",
        "87,5",
        "210000",
        "",  # no flags
    ]
    assert binh[:2] == ["m-binh", "Trần Thị Bình"]
    # No hectares: no litres per hectare and no coverage (empty cells), nothing to bill.
    assert unassigned == [
        "",
        "Chưa gán thành viên",
        "1",
        "0,17",
        "0,0000",
        "0,00",
        "2,00",
        "",
        "",
        "0",
        "",
    ]


def test_vietnamese_totals_row_is_last_and_labelled() -> None:
    *_, total = vi("member")
    assert total[:2] == ["Tổng cộng", ""]
    assert total[2:6] == ["4", "2,42", "1,7000", "47,22"]
    assert total[-2:] == ["510000", ""]


def test_vietnamese_dates_are_day_month_year() -> None:
    rows = vi("day")
    assert [r[0] for r in rows[1:]] == ["01/06/2024", "02/06/2024", "Tổng cộng"]


def test_english_dates_are_iso_and_decimals_use_a_point() -> None:
    rows = en("day")
    assert [r[0] for r in rows[1:]] == ["2024-06-01", "2024-06-02", "Total"]
    assert rows[1][1:5] == ["2", "1.25", "1.3000", "36.11"]
    assert rows[1][-2] == "390000"


def test_vietnamese_cells_never_carry_a_decimal_point() -> None:
    for group_by in ("member", "field", "drone", "day"):
        for row in vi(group_by)[1:]:
            numbers = row[1:] if group_by in ("drone", "day") else row[2:]
            assert not any("." in cell for cell in numbers), row


def test_amounts_are_whole_dong_without_separators() -> None:
    for row in vi("field")[1:]:
        assert row[-2].isdigit()


def test_unassigned_field_row_is_named_in_each_language() -> None:
    assert vi("field")[-2][:2] == ["", "Ngoài thửa ruộng đã đăng ký"]
    assert en("field")[-2][:2] == ["", "Outside registered fields"]


def test_names_with_the_separator_or_quotes_survive_the_round_trip() -> None:
    odd = FieldUsage("f-9", 'Ruộng "Cây đa"; bờ tây', "m-an", 1.0, 0.5, 5.0, 50.0)
    r = usage_report(
        [flight("F9", "d1", "2024-06-01T07:00:00+07:00", 600, 5.0, odd)],
        group_by="field",
        tariff_vnd_per_ha=TARIFF,
    )
    rows = parse(to_csv(r, lang="vi"), ";")
    assert rows[1][:2] == ["f-9", 'Ruộng "Cây đa"; bờ tây']


def test_a_name_that_looks_like_a_formula_is_neutralised() -> None:
    evil = FieldUsage("f-9", '=HYPERLINK("http://x")', "m-an", 1.0, 0.5, 5.0, 50.0)
    r = usage_report(
        [flight("F9", "d1", "2024-06-01T07:00:00+07:00", 600, 5.0, evil)],
        group_by="field",
        tariff_vnd_per_ha=TARIFF,
    )
    assert parse(to_csv(r, lang="en"), ",")[1][1] == '\'=HYPERLINK("http://x")'


def test_an_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError, match="lang 'fr' unknown; use one of vi, en"):
        to_csv(report("member"), lang="fr")  # type: ignore[arg-type]


def test_json_carries_numbers_as_numbers() -> None:
    doc = to_json(report("member"))
    an = doc["rows"][0]
    assert an == {
        "key": "m-an",
        "label": "Nguyễn Văn An",
        "flights": 2,
        "flight_hours": 0.75,
        "sprayed_ha": 0.7,
        "sprayed_sao": 19.444,
        "litres": 14.0,
        "litres_on_fields": 14.0,
        "mean_l_per_ha": 20.0,
        "mean_coverage_pct": 87.5,
        "amount_vnd": 210_000,
        "first_start": "2024-06-01T07:00:00.000+07:00",
        "last_end": "2024-06-01T09:45:00.000+07:00",
        "flag_codes": [],
        "flag_counts": {},
    }
    assert doc["totals"]["amount_vnd"] == 510_000
    assert doc["rows"][-1]["mean_l_per_ha"] is None


def test_json_survives_serialization_unchanged() -> None:
    doc = to_json(report("day"))
    assert json.loads(json.dumps(doc)) == doc


def test_json_instants_carry_the_ho_chi_minh_offset() -> None:
    r = usage_report(
        FLIGHTS,
        group_by="drone",
        tariff_vnd_per_ha=TARIFF,
        member_names=NAMES,
        coop="htx-dt",
        from_ms=utc_ms("2024-05-31T17:00:00+00:00"),
        to_ms=utc_ms("2024-06-02T17:00:00+00:00") - 1,
    )
    doc = to_json(r)
    assert doc["from"] == "2024-06-01T00:00:00.000+07:00"
    assert doc["to"] == "2024-06-02T23:59:59.999+07:00"
    assert doc["coop"] == "htx-dt"
    assert doc["rows"][1]["first_start"] == "2024-06-02T10:00:00.000+07:00"


def test_json_of_an_open_period_has_null_bounds() -> None:
    doc = to_json(report("member"))
    assert (doc["from"], doc["to"], doc["coop"]) == (None, None, None)


def test_a_fractional_tariff_stays_a_json_number() -> None:
    r = usage_report(FLIGHTS, group_by="member", tariff_vnd_per_ha=Decimal("1500.5"))
    assert to_json(r)["tariffs"][0]["vnd"] == 1500.5
    assert to_json(report("member"))["tariffs"][0]["vnd"] == 300_000


def history_report() -> UsageReport:
    """FLIGHTS (1 and 2 June 2024) over a per-ha price, then a per-sào price from 2 June."""
    return usage_report(
        FLIGHTS,
        group_by="day",
        tariffs=[Tariff(Decimal(TARIFF)), Tariff(Decimal(9_000), "sao", date(2024, 6, 2))],
    )


def test_json_lists_the_tariff_periods_applied() -> None:
    assert to_json(history_report())["tariffs"] == [
        {
            "from": None,
            "until": "2024-06-02",
            "vnd": 300_000,
            "unit": "ha",
            "vnd_per_ha": 300_000,
            "flights": 2,
            "sprayed_ha": 1.3,
        },
        {
            "from": "2024-06-02",
            "until": None,
            "vnd": 9_000,
            "unit": "sao",
            "vnd_per_ha": 250_000,
            "flights": 1,
            "sprayed_ha": 0.4,
        },
    ]


def test_vietnamese_csv_ends_with_the_tariffs_after_an_empty_line() -> None:
    rows = parse(to_csv(history_report(), lang="vi"), ";")
    assert table(rows)[-1][0] == "Tổng cộng"
    assert footer(rows) == [
        ["Đơn giá (VND/ha)", "300000", "từ đầu đến hết 01/06/2024"],
        ["Đơn giá (VND/sào)", "9000", "từ 02/06/2024"],
    ]


def test_english_csv_ends_with_the_tariffs_after_an_empty_line() -> None:
    rows = parse(to_csv(history_report(), lang="en"), ",")
    assert footer(rows) == [
        ["Tariff (VND/ha)", "300000", "from the start through 2024-06-01"],
        ["Tariff (VND/sào)", "9000", "from 2024-06-02"],
    ]


def test_a_fractional_tariff_in_csv_uses_the_decimal_comma() -> None:
    r = usage_report(FLIGHTS, group_by="member", tariff_vnd_per_ha=Decimal("1500.5"))
    assert footer(parse(to_csv(r, lang="vi"), ";")) == [["Đơn giá (VND/ha)", "1500,5", "từ đầu"]]


def test_a_report_that_priced_nothing_has_no_tariff_lines() -> None:
    r = usage_report(FLIGHTS[3:], group_by="drone", tariff_vnd_per_ha=TARIFF)
    assert [] not in parse(to_csv(r, lang="en"), ",")


# --- compliance flags ------------------------------------------------------------------------


def test_the_flags_column_names_each_flag_in_the_report_s_language() -> None:
    flagged = usage_report(
        [*FLIGHTS[:1], replace(FLIGHTS[1], flags=(DOSE, DOSE3, OFF)), *FLIGHTS[2:]],
        group_by="member",
        tariff_vnd_per_ha=TARIFF,
        member_names=NAMES,
    )
    header, an, binh, *_ = table(parse(to_csv(flagged, lang="vi"), ";"))
    cells = dict(zip(header, binh, strict=True))
    # A member's row spans fields: each flag names its field first.
    assert cells["Cảnh báo"] == "f-3 dose_deviation: Liều lệch | f-3 off_target: Phun ra ngoài"
    assert dict(zip(header, an, strict=True))["Cảnh báo"] == "f-2 dose_deviation: Liều lệch"
    header_en, _, binh_en, *_ = table(parse(to_csv(flagged, lang="en"), ","))
    assert dict(zip(header_en, binh_en, strict=True))["Flags"] == (
        "f-3 dose_deviation: Dose off | f-3 off_target: Spray outside"
    )
    doc = to_json(flagged)
    assert doc["rows"][1]["flag_codes"] == ["dose_deviation", "off_target"]
    assert doc["rows"][1]["flag_counts"] == {"dose_deviation": 1, "off_target": 1}
    assert "flag_codes" not in doc["totals"]  # the totals row is unchanged
    assert doc["totals"] == to_json(report("member"))["totals"]


def test_a_field_row_names_its_own_flags_without_the_field_and_repeats_no_text() -> None:
    twice = UsageFlag("f-3", "htx-dt.d1.j-9", "dose_deviation", "Liều lệch", "Dose off")
    r = usage_report(
        [replace(FLIGHTS[1], flags=(DOSE3, twice, OFF)), *FLIGHTS[2:]],
        group_by="field",
        tariff_vnd_per_ha=TARIFF,
    )
    _, f2, f3, *_ = table(parse(to_csv(r, lang="vi"), ";"))
    # Two entries' dose flags read the same: the text is written once.
    assert f3[-1] == "dose_deviation: Liều lệch | off_target: Phun ra ngoài"
    assert f2[-1] == ""
    assert to_json(r)["rows"][1]["flag_counts"] == {"dose_deviation": 2, "off_target": 1}


def test_a_flag_message_that_looks_like_a_formula_is_neutralised() -> None:
    evil = UsageFlag("f-1", "e", "=cmd", "x", "x")
    r = usage_report(
        [replace(FLIGHTS[0], flags=(evil,))], group_by="field", tariff_vnd_per_ha=TARIFF
    )  # f-1's own flag: the cell starts with its code
    assert parse(to_csv(r, lang="vi"), ";")[1][-1] == "'=cmd: x"
