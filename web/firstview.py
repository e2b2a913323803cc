"""The field page's first view: the answer to "was my field sprayed properly?" in the HTML.

On a slow connection every round trip costs the farmer most of a second, so the field page
does not wait for its scripts to ask the API: the server answers the questions they would
ask (the field, its last spraying's day, the coverage as JSON and as GeoJSON) through the
API's own route functions, with the caller's role, and writes the answers into the page
twice: as HTML the browser shows at once (the numbers written as the page's script writes
them, and a small SVG drawing of the layers), and as a JSON island the script draws the
interactive map from without asking again. A page opened without scripts shows the same.
"""

from __future__ import annotations

import functools
import gzip
import html
import json
import logging
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any, Final

from fastapi import HTTPException, Request
from fastapi.responses import Response

from api.auth import Principal
from api.catalog import FieldCatalog
from api.routes.coverage import FieldCoverageAnswer, coverage_with_geojson
from api.routes.fields import visible_field
from api.routes.flights import MAX_LIMIT, list_flights
from api.times import TimeInputError, Window, local_day, local_midnight, resolve_window
from fields.stored import UnusableFieldError
from storage.metadata import MetadataDB
from web.i18n import Lang

log = logging.getLogger("agridrone.web")

#: The coverage layers, in the order the map draws them (``KINDS`` in static/app.js).
KINDS: Final = ("covered", "overlap", "missed", "off_target", "no_spray")
#: Each layer's look as SVG presentation attributes: the options the script gives Leaflet
#: (``STYLE`` in static/app.js; the browser tests compare the two drawings' styles).
LAYER_STYLE: Final[Mapping[str, Mapping[str, str]]] = {
    "field": {"stroke": "#1b3a1b", "stroke-width": "2", "fill": "none"},
    "covered": {"stroke": "#2e7d32", "stroke-width": "0", "fill": "#43a047", "fill-opacity": ".55"},
    "overlap": {"stroke": "#e65100", "stroke-width": "0", "fill": "#fb8c00", "fill-opacity": ".7"},
    "missed": {"stroke": "#b71c1c", "stroke-width": "1", "fill": "#e53935", "fill-opacity": ".75"},
    "off_target": {
        "stroke": "#4a148c",
        "stroke-width": "0",
        "fill": "#8e24aa",
        "fill-opacity": ".6",
    },
    "no_spray": {
        "stroke": "#424242",
        "stroke-width": "1",
        "stroke-dasharray": "4 3",
        "fill": "#9e9e9e",
        "fill-opacity": ".5",
    },
}
#: The drawing's larger side in viewBox units (coordinates are whole units: at 1000 across,
#: a unit is under half a pixel on a phone's or a laptop's map).
SVG_SIZE: Final = 1000
#: The margin around the field's outline, in viewBox units (Leaflet's 12 px padding).
SVG_PAD: Final = 36
#: How far back the page looks for the field's last spraying: the API's longest window
#: (366 days), three times (``LOOKBACK_WINDOWS`` in static/app.js).
LOOKBACK_WINDOWS: Final = 3
LOOKBACK_DAYS: Final = 366
M2_PER_HA: Final = 10_000
M2_PER_SAO: Final = 360
#: The longest ``from``/``to`` value read (a date is at most 10 characters).
MAX_DAY_CHARS: Final = 32
#: The longest date shown back in the form (dd/mm/yyyy).
_TYPED_CHARS: Final = 10
#: Smaller pages are not worth compressing.
GZIP_MIN_BYTES: Final = 512

_ISO_DAY: Final = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_TYPED_DAY: Final = re.compile(r"\s*(\d{1,2})/(\d{1,2})/(\d{4})\s*")
_VI_MARKS: Final = str.maketrans(",.", ".,")
_WIDE: Final = Context(prec=400)


@dataclass(frozen=True, slots=True)
class FirstView:
    """The field page's parts as HTML (already escaped), and the page's HTTP status."""

    title: str  #: plain text: the field's name, or its id
    status: str
    status_class: str
    from_value: str
    to_value: str
    hidden: str  #: `` hidden`` when there is nothing to show but the status
    range_hidden: str  #: `` hidden`` when no other range can help (an unknown field)
    map_svg: str
    legend: str
    flights: str
    island: str
    flags: str = ""
    http_status: int = 200


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def num(x: float, digits: int, lang: Lang) -> str:
    """``x`` as the page's script writes it: ``Intl.NumberFormat`` of vi-VN (``1.234,5``)
    or en-GB (``1,234.5``): the float's shortest decimal form (``repr``, as ICU reads it:
    1368.935, not the binary 1368.93499…) rounded half away from zero."""
    if not math.isfinite(x):
        return "NaN" if math.isnan(x) else ("-∞" if x < 0 else "∞")
    step = Decimal(1).scaleb(-digits)
    text = f"{Decimal(repr(x)).quantize(step, rounding=ROUND_HALF_UP, context=_WIDE):,.{digits}f}"
    return text.translate(_VI_MARKS) if lang == "vi" else text


def show_day(iso: str) -> str:
    """``2025-11-28…`` as ``28/11/2025`` (``showDay`` in static/app.js)."""
    found = _ISO_DAY.match(iso)
    return f"{found[3]}/{found[2]}/{found[1]}" if found else ""


def _day_of(text: str) -> date | None:
    """A day typed as ``yyyy-mm-dd`` (the script's links) or ``dd/mm/yyyy`` (the form
    submitted without the script), else ``None``."""
    try:
        if found := _ISO_DAY.fullmatch(text):
            return date(int(found[1]), int(found[2]), int(found[3]))
        if found := _TYPED_DAY.fullmatch(text):
            return date(int(found[3]), int(found[2]), int(found[1]))
    except ValueError:
        return None
    return None


def asked_days(query: Mapping[str, str]) -> tuple[date, date] | None:
    """The page's window as [from, to) days: ``from``/``to`` in ISO form (``to`` exclusive,
    the script's links), or typed dd/mm/yyyy (``to`` inclusive: the date form sent without
    the script); ``None`` when the query names no window. ``TimeInputError`` when they are
    not dates."""
    given = query.get("from"), query.get("to")
    if not all(given):
        return None
    start_text, end_text = (g[:MAX_DAY_CHARS] for g in given if g is not None)
    start, end = _day_of(start_text), _day_of(end_text)
    if start is None or end is None:
        raise TimeInputError(f"from/to: {start_text!r}, {end_text!r} are not dates")
    if _TYPED_DAY.fullmatch(end_text):
        end += timedelta(days=1)
    return start, end


def last_flight_day(
    field_id: str,
    principal: Principal,
    metadata: MetadataDB,
    catalog: FieldCatalog,
    today: date,
) -> date | None:
    """The local day of the field's last flight the caller may see, looking back three
    366-day windows from today (``lastFlightDay`` in static/app.js), through the flight
    list's own rules (``GET /api/v1/flights?field=``); newest window first."""
    end = today + timedelta(days=1)
    for _ in range(LOOKBACK_WINDOWS):
        start = end - timedelta(days=LOOKBACK_DAYS)
        window = Window(local_midnight(start), local_midnight(end))
        last: dict[str, Any] | None = None
        cursor: str | None = None
        while True:
            page = list_flights(
                principal, metadata, catalog, window, field=field_id, limit=MAX_LIMIT, cursor=cursor
            )
            if page.flights:
                last = page.flights[-1]
            if not page.more:
                break
            cursor = page.next_cursor
        if last is not None:
            return date.fromisoformat(str(last["start"])[:10])
        end = start
    return None


def _polygons(geometry: Mapping[str, Any]) -> list[Sequence[Sequence[Sequence[float]]]]:
    coords = geometry.get("coordinates") or []
    return list(coords) if geometry.get("type") == "MultiPolygon" else [coords]


def _points(geometry: Mapping[str, Any]) -> Iterator[Sequence[float]]:
    for polygon in _polygons(geometry):
        for ring in polygon:
            yield from ring


class _Plane:
    """Longitude/latitude to the drawing's units: a local plane (equirectangular at the
    outline's middle latitude: at a field's size, the shape Leaflet's Web Mercator draws),
    the outline's box fitted into ``SVG_SIZE`` with ``SVG_PAD`` around."""

    def __init__(self, outline: Mapping[str, Any]) -> None:
        lons = [p[0] for p in _points(outline)]
        lats = [p[1] for p in _points(outline)]
        if not lons:
            lons, lats = [0.0], [0.0]
        self.west, self.north = min(lons), max(lats)
        self.kx = math.cos(math.radians((min(lats) + max(lats)) / 2))
        width = (max(lons) - self.west) * self.kx
        height = self.north - min(lats)
        self.scale = SVG_SIZE / max(width, height) if max(width, height) > 0 else 1.0
        self.width = round(width * self.scale)
        self.height = round(height * self.scale)

    def view_box(self) -> str:
        return f"{-SVG_PAD} {-SVG_PAD} {self.width + 2 * SVG_PAD} {self.height + 2 * SVG_PAD}"

    def ring(self, ring: Sequence[Sequence[float]]) -> str:
        """One ring as a closed path: whole units, repeated and collinear points dropped."""
        kept: list[tuple[int, int]] = []
        for point in ring:
            xy = (
                round((point[0] - self.west) * self.kx * self.scale),
                round((self.north - point[1]) * self.scale),
            )
            if kept and xy == kept[-1]:
                continue
            if len(kept) >= 2 and _collinear(kept[-2], kept[-1], xy):
                kept[-1] = xy
                continue
            kept.append(xy)
        if len(kept) > 1 and kept[0] == kept[-1]:
            kept.pop()
        if len(kept) < 3:
            return ""
        return "M" + " ".join(f"{x} {y}" for x, y in kept) + "Z"

    def path(self, polygons: Sequence[Sequence[Sequence[Sequence[float]]]]) -> str:
        return "".join(self.ring(ring) for polygon in polygons for ring in polygon)


def _collinear(a: tuple[int, int], b: tuple[int, int], c: tuple[int, int]) -> bool:
    return (b[0] - a[0]) * (c[1] - a[1]) == (b[1] - a[1]) * (c[0] - a[0])


def _path(kind: str, d: str) -> str:
    attrs = "".join(f' {k}="{v}"' for k, v in LAYER_STYLE[kind].items())
    return f'<path class="layer-{kind}" d="{d}"{attrs}/>' if d else ""


def map_svg(outline: Mapping[str, Any], layers: Mapping[str, Any]) -> str:
    """The field's outline over its coverage layers (a GeoJSON FeatureCollection) as an
    SVG fitted to the outline, drawn in the order and the look of the script's map: one
    path per layer, one per strip for the missed strips (the map's tappable shapes)."""
    plane = _Plane(outline)
    paths: list[str] = []
    for kind in KINDS:
        for feature in layers.get("features") or []:
            if (feature.get("properties") or {}).get("kind") != kind:
                continue
            polygons = _polygons(feature.get("geometry") or {})
            if kind == "missed":
                paths.extend(_path(kind, plane.path([p])) for p in polygons)
            else:
                paths.append(_path(kind, plane.path(polygons)))
    paths.append(_path("field", plane.path(_polygons(outline))))
    return (
        f'<svg class="first-view" viewBox="{plane.view_box()}" preserveAspectRatio="xMidYMid'
        f' meet" aria-hidden="true" focusable="false">{"".join(paths)}</svg>'
    )


def _t(m: Mapping[str, str], key: str, **values: str) -> str:
    text = m.get(key, key)
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    return text


def area_text(ha: float, sao: float, m: Mapping[str, str], lang: Lang) -> str:
    """``0,17 ha · 4,7 sào`` (``areaText`` in static/app.js)."""
    return f"{num(ha, 2, lang)} {m['ha']} · {num(sao, 1, lang)} {m['sao']}"


def crop_name(crop: str, m: Mapping[str, str]) -> str:
    """The crop in the page's language (``cropName`` in static/app.js)."""
    return m.get(f"crop_{crop}", crop) if crop else "—"


def legend_html(c: Mapping[str, Any], m: Mapping[str, str], lang: Lang) -> str:
    """The legend's rows: each layer's area in ha and sào, then the coverage % (``legend``
    in static/app.js)."""
    rows = []
    for kind in ("field", *KINDS):
        ha = float(c.get(f"{kind}_ha") or 0)
        value = (
            f"{num(ha, 3, lang)} {m['ha']} · {num(ha * M2_PER_HA / M2_PER_SAO, 1, lang)} {m['sao']}"
        )
        rows.append(
            f'<li data-kind="{kind}"><span class="swatch swatch-{kind}" aria-hidden="true">'
            f'</span><span class="label">{_e(m[f"layer_{kind}"])}</span>'
            f'<span class="value">{_e(value)}</span></li>'
        )
    pct = f"{num(float(c.get('coverage_pct') or 0), 1, lang)} %"
    rows.append(
        f'<li class="total"><span class="label">{_e(m["coverage"])}</span>'
        f'<span class="value coverage-pct">{_e(pct)}</span></li>'
    )
    return "".join(rows)


def _flag_name(code: str, m: Mapping[str, str]) -> str:
    return m.get("flag_" + ("bad_detail" if code.startswith("bad_") else code), code)


def flags_html(flags: Sequence[Mapping[str, Any]], m: Mapping[str, str], lang: Lang) -> str:
    """The compliance flags of the shown days: date, name and message, a swatch for those
    with a place (``flagList`` in static/app.js, which draws the places on the map)."""
    if not flags:
        return f'<li class="none">{_e(m["no_flags"])}</li>'
    items = []
    for f in flags:
        message = str(f.get("message_vi" if lang == "vi" else "message_en") or "")
        code = str(f.get("code") or "")
        placed = f.get("where") is not None
        swatch = (
            f'<span class="swatch swatch-flag" title="{_e(m["flag_place"])}" aria-hidden="true">'
            "</span>"
            if placed
            else ""
        )
        items.append(
            f'<li class="flag{" placed" if placed else ""}" data-code="{_e(code)}">{swatch}'
            f'<span class="flag-date">{_e(show_day(str(f.get("date") or "")))}</span>'
            f'<strong class="flag-name">{_e(_flag_name(code, m))}</strong>'
            f'<span class="flag-text">{_e(message)}</span></li>'
        )
    return "".join(items)


def _when(flight: Mapping[str, Any]) -> str:
    start = str(flight["start"])
    return f"{show_day(start)} {start[11:16]}"


def flights_html(parts: Sequence[Mapping[str, Any]], m: Mapping[str, str], lang: Lang) -> str:
    """The flights table: date and time, drone, litres, L/ha and the replay button
    (``flights`` in static/app.js)."""
    if not parts:
        return f"<p>{_e(m['no_flights'])}</p>"
    rows = []
    for f in parts:
        covered, litres = float(f["covered_ha"]), float(f["applied_l"])
        lpha = litres / covered if covered > 0 else 0.0
        label = _t(m, "replay_flight", time=_when(f))
        rows.append(
            f'<tr data-flight="{_e(str(f["id"]))}"><td>{_e(_when(f))}</td>'
            f"<td>{_e(str(f['drone']))}</td>"
            f'<td class="num">{num(litres, 1, lang)}</td><td class="num">{num(lpha, 1, lang)}</td>'
            f'<td class="act"><button type="button" class="replay-btn" aria-label="{_e(label)}">'
            "▶</button></td></tr>"
        )
    head = (
        f'<tr><th scope="col">{_e(m["date"])}</th><th scope="col">{_e(m["drone"])}</th>'
        f'<th scope="col" class="num">{_e(m["litres"])}</th>'
        f'<th scope="col" class="num">{_e(m["l_per_ha"])}</th>'
        f'<th scope="col" class="act"><span class="sr-only">{_e(m["replay_col"])}</span></th></tr>'
    )
    return f'<table class="flights"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def island(data: Mapping[str, Any]) -> str:
    """The data as a JSON island the page's script reads (``first-view``)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    return f'<script id="first-view" type="application/json">{text}</script>'


def shell(m: Mapping[str, str], field_id: str) -> FirstView:
    """The page without a first view: the script asks the API as it always did."""
    return FirstView(
        title=f"{m['fields']} {field_id}",
        status=_e(m["loading"]),
        status_class="status",
        from_value="",
        to_value="",
        hidden="",
        range_hidden="",
        map_svg="",
        legend="",
        flights="",
        island="",
    )


def _refused(
    m: Mapping[str, str], field_id: str, status: int, query: Mapping[str, str]
) -> FirstView:
    """The page of a field the caller may not see (or that does not exist) or whose
    coverage the API refuses: the message the script would show, and nothing else but,
    unless the field is unknown, the date range to try another (as typed)."""
    text = m["field_not_found"] if status == 404 else _t(m, "error_load", status=str(status))
    return FirstView(
        title=f"{m['fields']} {field_id}",
        status=_e(text),
        status_class="status alert",
        from_value=_e(query.get("from", "")[:_TYPED_CHARS]),
        to_value=_e(query.get("to", "")[:_TYPED_CHARS]),
        hidden=" hidden",
        range_hidden=" hidden" if status == 404 else "",
        map_svg="",
        legend="",
        flights="",
        island=island({"error": status}),
        http_status=status,
    )


def _answers(  # noqa: PLR0917 -- who asks, the stores, what
    field_id: str,
    principal: Principal,
    metadata: MetadataDB,
    catalog: FieldCatalog,
    query: Mapping[str, str],
    now_ms: int,
) -> tuple[dict[str, Any], tuple[date, date], FieldCoverageAnswer, dict[str, Any]]:
    """The field, the window's days and the coverage (JSON, GeoJSON) the script asks for,
    through the API's route functions; their errors (``HTTPException``,
    ``UnusableFieldError``) and ``TimeInputError`` for a window that is no window."""
    feature = visible_field(field_id, principal, catalog)
    days = asked_days(query)
    if days is None:
        day = last_flight_day(field_id, principal, metadata, catalog, local_day(now_ms))
        start = day or local_day(now_ms)
        days = (start, start + timedelta(days=1))
    window = resolve_window(days[0].isoformat(), days[1].isoformat(), now_ms)
    answer, layers = coverage_with_geojson(field_id, principal, metadata, catalog, window)
    return feature, days, answer, layers


def first_view(  # noqa: PLR0917 -- who asks, the stores, what, in which language
    field_id: str,
    principal: Principal,
    metadata: MetadataDB,
    catalog: FieldCatalog,
    query: Mapping[str, str],
    m: Mapping[str, str],
    lang: Lang,
    now_ms: int,
) -> FirstView:
    """The field page's answer for ``principal``: the questions the page's script asks the
    API, answered by the API's own route functions (so by the same role rules). Without a
    first view (an unexpected failure, logged) the script asks the API itself."""
    try:
        feature, (start, end), answer, layers = _answers(
            field_id, principal, metadata, catalog, query, now_ms
        )
    except HTTPException as exc:
        return _refused(m, field_id, exc.status_code, query)
    except TimeInputError:
        return _refused(m, field_id, 422, query)
    except UnusableFieldError:
        return _refused(m, field_id, 409, query)
    except Exception:
        log.exception("web_first_view_failed field=%s", field_id)
        return shell(m, field_id)
    coverage = answer.model_dump(mode="json", by_alias=True)
    props = feature["properties"]
    last = end - timedelta(days=1)
    days = show_day(start.isoformat())
    if last != start:
        days += f" \N{EN DASH} {show_day(last.isoformat())}"
    status = " · ".join(
        (
            days,
            crop_name(str(props.get("crop") or ""), m),
            area_text(float(props["area_ha"]), float(props["area_sao"]), m, lang),
        )
    )
    data = {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "field": feature,
        "coverage": coverage,
        "geojson": layers,
    }
    return FirstView(
        title=str(props.get("name") or props.get("id") or field_id),
        status=_e(status),
        status_class="status",
        from_value=show_day(start.isoformat()),
        to_value=show_day(last.isoformat()),
        hidden="",
        range_hidden="",
        map_svg=map_svg(feature["geometry"], layers),
        legend=legend_html(coverage["coverage"], m, lang),
        flights=flights_html(coverage["flights"], m, lang),
        island=island(data),
        flags=flags_html(coverage.get("flags") or [], m, lang),
    )


@functools.cache
def _minified(css: str) -> str:
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.DOTALL)
    css = re.sub(r"\s+", " ", css)
    return re.sub(r"\s*([{};,>])\s*", r"\1", css).replace(";}", "}").strip()


def head_assets(app_css: str) -> str:
    """What the field page's head loads: the drawing held until the header is parsed,
    Leaflet's styles without blocking the drawing
    (``media=print`` until loaded; the map waits for them), then the app's own styles inline
    (nothing to wait for before the first view is drawn; after Leaflet's, as on the other
    pages, so they win where both style the map), the scripts deferred; and, without
    scripts, no replay buttons that could not work."""
    return (
        # Not drawn before the header is whole: on a slow link a half-received header
        # (the sign-out button still on its way) is painted, then moves.
        '<link rel="expect" href="#title" blocking="render">\n'
        '<link rel="stylesheet" href="/static/vendor/leaflet/leaflet.css" media="print"'
        " onload=\"this.media='all'\" data-async-css>\n"
        f"<style>{_minified(app_css)}</style>\n"
        '<script src="/static/vendor/leaflet/leaflet.js" defer></script>\n'
        '<script src="/static/app.js" defer></script>\n'
        "<noscript><style>.replay-btn{visibility:hidden}</style></noscript>"
    )


def compressed(request: Request, response: Response) -> Response:
    """``response`` gzip-compressed when the browser accepts it (the field page carries its
    data: a third of the bytes over a slow link)."""
    body = bytes(response.body)
    if "gzip" not in request.headers.get("accept-encoding", "") or len(body) < GZIP_MIN_BYTES:
        return response
    response.body = gzip.compress(body, compresslevel=6)
    response.headers["Content-Length"] = str(len(response.body))
    response.headers["Content-Encoding"] = "gzip"
    response.headers["Vary"] = "Accept-Encoding"
    return response
