"""The field page's first view (web/firstview.py): numbers and dates written as the page's
script writes them, the window a page asks for, the SVG drawing of the layers, the gzip of
the page. (Its data against the API's answers, in a browser: test_web_browser.py.)"""

from __future__ import annotations

import gzip
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi import Request
from fastapi.responses import HTMLResponse

from api.times import TimeInputError
from web.firstview import (
    LAYER_STYLE,
    asked_days,
    compressed,
    flights_html,
    legend_html,
    map_svg,
    num,
    show_day,
)
from web.i18n import catalogue

APP_JS = Path(__file__).resolve().parents[2] / "web" / "static" / "app.js"


@pytest.mark.parametrize(
    ("x", "digits", "lang", "shown"),
    [
        # What Chromium's Intl.NumberFormat writes (vi-VN, en-GB).
        (1234.5, 1, "vi", "1.234,5"),
        (1234.5, 1, "en", "1,234.5"),
        (1234567.891, 0, "vi", "1.234.568"),
        (0.125, 2, "vi", "0,13"),  # a half: away from zero
        (2.5, 0, "en", "3"),
        (1368.935, 2, "vi", "1.368,94"),  # the shortest decimal form, not the binary value
        (0.0005, 3, "vi", "0,001"),
        (99.778, 1, "vi", "99,8"),
        (0.0, 3, "en", "0.000"),
    ],
)
def test_numbers_are_written_as_intl_writes_them(
    x: float, digits: int, lang: Any, shown: str
) -> None:
    assert num(x, digits, lang) == shown


def test_days_are_written_dd_mm_yyyy() -> None:
    assert show_day("2025-11-28T10:21:50.504+07:00") == "28/11/2025"
    assert show_day("2025-11-28") == "28/11/2025"
    assert show_day("28/11/2025") == ""


def test_the_window_is_read_from_the_scripts_links_and_from_the_plain_form() -> None:
    assert asked_days({"from": "2025-11-28", "to": "2025-11-29"}) == (
        date(2025, 11, 28),
        date(2025, 11, 29),
    )
    # The form sent without the script: dd/mm/yyyy, the last day included.
    assert asked_days({"from": "1/11/2025", "to": "02/11/2025"}) == (
        date(2025, 11, 1),
        date(2025, 11, 3),
    )
    assert asked_days({}) is None
    assert asked_days({"from": "2025-11-28"}) is None
    assert asked_days({"from": "", "to": "2025-11-29"}) is None


@pytest.mark.parametrize(
    "query",
    [
        {"from": "yesterday", "to": "2025-11-29"},
        {"from": "31/02/2025", "to": "01/03/2025"},
        {"from": "2025-11-28T07:00:00+07:00", "to": "2025-11-29"},
        {"from": "2025-11-28" * 1000, "to": "2025-11-29"},
    ],
)
def test_a_window_that_is_not_two_dates_is_refused(query: dict[str, str]) -> None:
    with pytest.raises(TimeInputError, match="are not dates"):
        asked_days(query)


def _square(lon: float, lat: float, side: float) -> list[list[float]]:
    return [
        [lon, lat],
        [lon + side, lat],
        [lon + side, lat + side],
        [lon, lat + side],
        [lon, lat],
    ]


def _outline(lat: float = 0.0) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [_square(106.0, lat, 0.001)]}


def _layer(kind: str, geometry: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"kind": kind}, "geometry": geometry}


def _paths(svg: str) -> list[tuple[str, str]]:
    return re.findall(r'<path class="layer-([a-z_]+)" d="([^"]*)"', svg)


def test_the_drawing_fits_the_outline_on_a_local_plane() -> None:
    svg = map_svg(_outline(), {"features": []})
    assert 'viewBox="-36 -36 1072 1072"' in svg
    assert _paths(svg) == [("field", "M0 1000 1000 1000 1000 0 0 0Z")]
    # At 60° north a degree of longitude is half as long: the field is half as wide.
    north = map_svg(_outline(60.0), {"features": []})
    assert 'viewBox="-36 -36 572 1072"' in north


def test_the_drawing_drops_repeated_and_collinear_points() -> None:
    ring = [[106.0, 0.0], [106.0005, 0.0], [106.0005, 0.0], [106.001, 0.0], [106.001, 0.001]]
    svg = map_svg(
        _outline(),
        {"features": [_layer("covered", {"type": "Polygon", "coordinates": [[*ring, ring[0]]]})]},
    )
    assert _paths(svg)[0] == ("covered", "M0 1000 1000 1000 1000 0Z")


def test_the_layers_are_drawn_in_the_maps_order_and_each_missed_strip_alone() -> None:
    strips = {
        "type": "MultiPolygon",
        "coordinates": [[_square(106.0, 0.0, 0.0001)], [_square(106.0005, 0.0, 0.0001)]],
    }
    layers = {
        "features": [
            _layer("missed", strips),
            _layer(
                "off_target", {"type": "Polygon", "coordinates": [_square(105.9995, 0, 0.0004)]}
            ),
            _layer("covered", {"type": "Polygon", "coordinates": [_square(106.0, 0.0, 0.0009)]}),
            _layer("no_spray", {"type": "Polygon", "coordinates": [_square(106.0, 0, 1e-9)]}),
        ]
    }
    kinds = [kind for kind, _ in _paths(map_svg(_outline(), layers))]
    # A shape under a unit across (here the no-spray zone) has nothing to draw.
    assert kinds == ["covered", "missed", "missed", "off_target", "field"]


def test_each_layer_looks_as_the_scripts_map_draws_it() -> None:
    """``LAYER_STYLE`` says what ``STYLE`` in static/app.js gives Leaflet."""
    script = APP_JS.read_text(encoding="utf-8")
    block = re.search(r"var STYLE = \{(.*?)\n  \};", script, re.DOTALL)
    assert block is not None
    names = {"color": "stroke", "weight": "stroke-width", "fillColor": "fill"}
    names |= {"fillOpacity": "fill-opacity", "dashArray": "stroke-dasharray"}
    found = {}
    for kind, options in re.findall(r"(\w+): \{([^}]*)\}", block.group(1)):
        look = {}
        for name, value in re.findall(r'(\w+): ("[^"]*"|[\w.]+)', options):
            if name == "fill":
                assert value == "false"
                look["fill"] = "none"
            else:
                look[names[name]] = value.strip('"')
        found[kind] = look
    ours = {
        kind: {k: (str(float(v)) if k.endswith("opacity") else v) for k, v in look.items()}
        for kind, look in LAYER_STYLE.items()
    }
    assert found == ours


def test_the_legend_and_the_flights_are_written_as_the_script_writes_them() -> None:
    m = catalogue("vi")
    coverage = {"field_ha": 0.167418, "covered_ha": 0.167046, "coverage_pct": 99.778}
    legend = legend_html(coverage | {"off_target_ha": 0.010747, "missed_ha": None}, m, "vi")
    assert '<span class="value">0,167 ha · 4,7 sào</span>' in legend  # the field
    assert '<span class="value">0,011 ha · 0,3 sào</span>' in legend  # off target
    assert '<span class="value coverage-pct">99,8 %</span>' in legend
    assert legend.count("<li") == 7
    flight = {
        "id": "hp.d-hp-a.1",
        "drone": "d-hp-a",
        "start": "2025-11-28T10:21:50.504+07:00",
        "covered_ha": 0.069591,
        "applied_l": 3.0,
    }
    table = flights_html([flight, flight | {"covered_ha": 0.0}], m, "vi")
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", table)
    assert cells[:4] == ["28/11/2025 10:21", "d-hp-a", "3,0", "43,1"]
    assert cells[4:8] == ["28/11/2025 10:21", "d-hp-a", "3,0", "0,0"]  # nothing covered
    assert 'aria-label="Xem lại chuyến bay lúc 28/11/2025 10:21"' in table
    assert flights_html([], catalogue("en"), "en") == "<p>No flight in these dates.</p>"


def _request(accept: str) -> Request:
    return Request({"type": "http", "headers": [(b"accept-encoding", accept.encode())]})


def test_the_page_is_gzipped_for_a_browser_that_accepts_it() -> None:
    body = "<p>Ruộng của tôi</p>" * 100
    packed = compressed(_request("gzip, deflate, br"), HTMLResponse(body))
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.headers["vary"] == "Accept-Encoding"
    assert int(packed.headers["content-length"]) == len(packed.body) < len(body)
    assert gzip.decompress(packed.body).decode() == body
    plain = compressed(_request("identity"), HTMLResponse(body))
    assert "content-encoding" not in plain.headers
    assert bytes(plain.body).decode() == body
