"""A job's re-fly list as CSV for Excel (the diary's conventions: UTF-8 with a byte-order
mark; ``vi``: Vietnamese headers, decimal comma, ``;``; ``en``: English, ``.``, ``,``):
one row per piece in flying order, with where to fly it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from reports.diary_render import Column, Lang, table_csv


def _at(*keys: str) -> Callable[[Mapping[str, Any]], Any]:
    def get(doc: Mapping[str, Any]) -> Any:
        value: Any = doc
        for key in keys:
            value = value.get(key) if isinstance(value, Mapping) else None
        return value

    return get


COLUMNS: tuple[Column, ...] = (
    Column("STT", "Order", _at("order"), "number", 0),
    Column("Mã thửa", "Field ID", _at("field_id")),
    Column("Thửa ruộng", "Field", _at("field_name")),
    Column("Diện tích sót (m²)", "Missed area (m²)", _at("area_m2"), "number", 1),
    Column("Diện tích sót (sào)", "Missed area (sào)", _at("area_sao"), "number", 3),
    Column("Vĩ độ tâm", "Centre latitude", _at("centroid", "lat"), "number", 7),
    Column("Kinh độ tâm", "Centre longitude", _at("centroid", "lon"), "number", 7),
    Column("Vĩ độ điểm đầu", "Start latitude", _at("line", "start", "lat"), "number", 7),
    Column("Kinh độ điểm đầu", "Start longitude", _at("line", "start", "lon"), "number", 7),
    Column("Vĩ độ điểm cuối", "End latitude", _at("line", "end", "lat"), "number", 7),
    Column("Kinh độ điểm cuối", "End longitude", _at("line", "end", "lon"), "number", 7),
    Column("Chiều dài đường bay (m)", "Line length (m)", _at("line", "length_m"), "number", 1),
    Column("Hướng bay (độ)", "Heading (°)", _at("line", "heading_deg"), "number", 0),
    Column("Chiều rộng (m)", "Width (m)", _at("width_m"), "number", 1),
)


def to_csv(pieces: Sequence[Mapping[str, Any]], lang: Lang) -> bytes:
    """The pieces (``ReflyPiece.to_dict()``) as CSV bytes."""
    return table_csv(COLUMNS, pieces, lang)


def to_text(answer: Mapping[str, Any], lang: Lang) -> str:
    """The list for a pilot to read: one line per piece, then a line per field without
    pieces; points as ``lat,lon`` with decimal points whatever the language (as map apps
    take them)."""
    vi = lang == "vi"
    lines = [
        (f"Công việc {answer['job']}: các vùng sót từ {answer['min_m2']:g} m² trở lên")
        if vi
        else f"Job {answer['job']}: missed areas of {answer['min_m2']:g} m² or more"
    ]
    for p in answer["pieces"]:
        line = p["line"]
        ends = f"{_point(line['start'])} → {_point(line['end'])}"
        area, length, width = (_num(v, vi) for v in (p["area_m2"], line["length_m"], p["width_m"]))
        figures = (
            f"{area} m², bay {ends}, dài {length} m, hướng {line['heading_deg']:.0f}°,"
            f" rộng {width} m"
            if vi
            else f"{area} m², fly {ends}, {length} m long, heading"
            f" {line['heading_deg']:.0f}°, {width} m wide"
        )
        lines.append(f"{p['order']}. {p['field_id']} {p['field_name']}: {figures}")
    for f in answer["fields"]:
        if not f["listed"]:
            lines.append(f"- {f['field_id']}: {f['reason']}")
        elif not f["pieces"]:
            lines.append(
                f"- {f['field_id']}: không có vùng sót nào đủ lớn"
                if vi
                else f"- {f['field_id']}: no missed area that large"
            )
    return "\n".join(lines) + "\n"


def _num(value: float, vi: bool) -> str:
    """One decimal; a decimal comma in Vietnamese."""
    text = f"{value:.1f}"
    return text.replace(".", ",") if vi else text


def _point(p: Mapping[str, Any]) -> str:
    return f"{p['lat']:.7f},{p['lon']:.7f}"
