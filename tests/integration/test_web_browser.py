"""The web app in a real browser: Debian's chromium driven by Playwright for Python against
the real API server over the world's simulated flights (tests/integration/api_world.py).

Sign-in by login link and by pasted key, "Ruộng của tôi" with the API's numbers, a field's
coverage map (one outline, the coverage layers, a legend) and flights, a field of another
cooperative denied in the user's language, the language switch remembered, sign-out; on a
360 x 740 phone screen without horizontal scrolling and on a desktop, with no request leaving
the origin and no console error. Screenshots go to test-artifacts/web/ (not committed).
"""

from __future__ import annotations

import gzip
import json
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Request,
    ViewportSize,
    sync_playwright,
)

from fields.synthetic import T0_MS
from storage.keys import Role, generate_key
from storage.logins import LOGIN_LINK_TTL_MS, hash_token, new_token
from storage.metadata import RejectedMessage
from storage.sqlite import SqliteStore
from tests.integration.api_world import HP, THE_DAY, World, running_world
from web.firstview import num
from web.i18n import Lang
from web.pages import STATIC_DIR

pytestmark = pytest.mark.integration

CHROMIUM: Final = Path("/usr/bin/chromium")
ARTIFACTS: Final = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
PHONE: Final = ViewportSize(width=360, height=740)
DESKTOP: Final = ViewportSize(width=1280, height=860)
#: The issue's budget for the field page's compressed JS and CSS.
FIELD_PAGE_BUDGET: Final = 300 * 1024
FARMER_FIELD: Final = "dt-hp-004"  # nd-hp-00's field, sprayed by d-hp-a
OTHER_COOP_FIELD: Final = "dt-yt-004"
LOCAL: Final = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.fixture(scope="module")
def web_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The API and web app over the world's flights (SQLite; the sign-in rules run on both
    metadata stores in test_web_sessions.py)."""
    folder = tmp_path_factory.mktemp("web-world")
    with SqliteStore(folder / "telemetry.db") as store, running_world(store, folder) as w:
        yield w


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium (``make browser`` installs it), headless."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (scripts/install-browser.sh)")
    if not (STATIC_DIR / "vendor" / "leaflet" / "leaflet.js").exists():
        pytest.fail("the web app's Leaflet is not built: run `make web` (scripts/build-web.sh)")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


@dataclass
class Watched:
    """A page with every request it made and every console error it logged."""

    page: Page
    origin: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def check_clean(self) -> None:
        """No request left the origin, nothing went wrong in the console."""
        foreign = [u for u in self.requests if not u.startswith((self.origin, "data:", "blob:"))]
        assert foreign == []
        assert self.errors == []


def _open(
    browser: Browser, world: World, viewport: ViewportSize, *, scripts: bool = True
) -> Watched:
    context = browser.new_context(viewport=viewport, locale="vi-VN", java_script_enabled=scripts)
    page = context.new_page()
    watched = Watched(page, world.url)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watched.errors.append(message.text)

    def on_request(request: Request) -> None:
        watched.requests.append(request.url)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: watched.errors.append(str(exc)))
    page.on("request", on_request)
    page.on(
        "response",
        lambda r: watched.errors.append(f"{r.status} {r.url}") if r.status == 401 else None,
    )
    return watched


def _login_link(world: World, role: Role, subject: str) -> str:
    new = generate_key(role, subject, "browser test", time.time_ns() // 1_000_000)
    world.metadata.add_api_key(new.record)
    token = new_token()
    now = time.time_ns() // 1_000_000
    world.metadata.add_login_link(
        hash_token(token), new.record.key_id, now, now + LOGIN_LINK_TTL_MS
    )
    return f"{world.url}/login/{token}"


def _no_horizontal_scroll(page: Page) -> None:
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"page is {widths[0]} px wide in a {widths[1]} px window"


#: Every element with text of its own whose WCAG 2 contrast ratio against its background
#: (the first opaque one up its ancestors) is below 4.5, or 3 for large text.
_CONTRAST_JS: Final = """() => {
  const rgb = c => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const bad = [];
  for (const el of document.querySelectorAll('body *')) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.offsetParent) continue;
    const style = getComputedStyle(el);
    const a = lum(rgb(style.color).slice(0, 3)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight) >= 700;
    const large = size >= 24 || (bold && size >= 18.66);
    if (ratio < (large ? 3 : 4.5)) {
      bad.push(`${el.tagName} ${el.textContent.trim().slice(0, 30)} ${ratio.toFixed(2)}`);
    }
  }
  return bad;
}"""


def _readable(page: Page) -> None:
    """Accessibility basics: text contrast (WCAG AA), every input labelled."""
    assert page.evaluate(_CONTRAST_JS) == []
    unlabelled = page.evaluate(
        "() => [...document.querySelectorAll('input:not([type=hidden])')]"
        ".filter(i => !i.labels || !i.labels.length).map(i => i.id || i.name)"
    )
    assert unlabelled == []


def _interactive(page: Page) -> None:
    """Wait for the field page's interactive map: Leaflet's, in place of the server's
    drawing of the first view (web/firstview.py), with the legend."""
    page.wait_for_selector("#map.leaflet-container path.layer-field", timeout=30_000)
    page.wait_for_selector("#legend li.total", timeout=30_000)


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _vi(x: float, digits: int) -> str:
    """A number as the Vietnamese page writes it (decimal comma; our values are < 1000)."""
    return f"{x:.{digits}f}".replace(".", ",")


def _api(world: World, path: str, headers: dict[str, str], **params: str) -> Any:
    answer = httpx.get(world.url + path, params=params, headers=headers, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_farmer_signs_in_by_link_and_sees_their_fields(
    browser: Browser, web_world: World
) -> None:
    w = _open(browser, web_world, PHONE)
    page = w.page
    page.goto(_login_link(web_world, "farmer", "nd-hp-00"))
    page.wait_for_url(f"{web_world.url}/")
    page.wait_for_selector(".field-card .coverage-pct", timeout=30_000)
    assert page.evaluate("document.documentElement.lang") == "vi"
    assert page.inner_text("h1") == "Ruộng của tôi"

    # The numbers on the page are the API's, written the Vietnamese way.
    key = web_world.headers["farmer_hp00"]
    fields = [f for f in _api(web_world, "/api/v1/fields", key) if f["kind"] == "field"]
    cards = page.locator(".field-card")
    assert cards.count() == len(fields)
    card = page.locator(f'.field-card[data-field="{FARMER_FIELD}"]')
    api_field = next(f for f in fields if f["id"] == FARMER_FIELD)
    area = card.locator(".area").inner_text()
    assert area == f"{_vi(api_field['area_ha'], 2)} ha · {_vi(api_field['area_sao'], 1)} sào"
    coverage = _api(web_world, f"/api/v1/fields/{FARMER_FIELD}/coverage", key, **THE_DAY)
    assert card.locator(".date").inner_text() == "28/11/2025"
    pct = card.locator(".coverage-pct").inner_text()
    assert pct == f"{_vi(coverage['coverage']['coverage_pct'], 1)} %"
    _no_horizontal_scroll(page)
    _readable(page)
    _shot(page, "fields-phone")
    w.check_clean()


def test_the_field_page_draws_the_coverage_map_and_lists_the_flights(
    browser: Browser, web_world: World
) -> None:
    for name, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        w = _open(browser, web_world, viewport)
        page = w.page
        page.goto(_login_link(web_world, "farmer", "nd-hp-00"))
        page.wait_for_url(f"{web_world.url}/")
        page.goto(f"{web_world.url}/fields/{FARMER_FIELD}")
        _interactive(page)
        # One outline of the field, and the layers the API's GeoJSON holds.
        assert page.locator("path.layer-field").count() == 1
        key = web_world.headers["farmer_hp00"]
        geo = _api(
            web_world,
            f"/api/v1/fields/{FARMER_FIELD}/coverage",
            key,
            format="geojson",
            **THE_DAY,
        )
        kinds = {f["properties"]["kind"] for f in geo["features"]}
        assert "covered" in kinds
        for kind in kinds:
            assert page.locator(f"path.layer-{kind}").count() >= 1, kind
        legend = page.locator("#legend li")
        assert legend.count() == 7  # outline, five layers, coverage
        answer = _api(web_world, f"/api/v1/fields/{FARMER_FIELD}/coverage", key, **THE_DAY)
        assert page.locator("#legend .coverage-pct").inner_text() == (
            f"{_vi(answer['coverage']['coverage_pct'], 1)} %"
        )
        assert page.locator("table.flights tbody tr").count() == len(answer["flights"])
        first = answer["flights"][0]
        row = page.locator(f'tr[data-flight="{first["id"]}"] td')
        assert row.nth(1).inner_text() == first["drone"]
        assert row.nth(2).inner_text() == _vi(first["applied_l"], 1)
        assert page.input_value("#from") == "28/11/2025"
        _no_horizontal_scroll(page)
        _readable(page)
        _shot(page, f"field-{name}")
        w.check_clean()


def _local_clock(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, LOCAL).strftime("%H:%M:%S")


def test_a_farmer_replays_a_flight_over_their_field(browser: Browser, web_world: World) -> None:
    key = web_world.headers["farmer_hp00"]
    answer = _api(web_world, f"/api/v1/fields/{FARMER_FIELD}/coverage", key, **THE_DAY)
    flight = answer["flights"][0]
    track = _api(web_world, f"/api/v1/flights/{flight['id']}/track", key, max_points="2000")
    spraying = [f for f in track["features"] if f["properties"]["spraying"]]
    assert spraying
    last_ms = max(t for f in track["features"] for t in f["properties"]["t_ms"])
    for name, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        w = _open(browser, web_world, viewport)
        page = w.page
        page.goto(_login_link(web_world, "farmer", "nd-hp-00"))
        page.wait_for_url(f"{web_world.url}/")
        page.goto(f"{web_world.url}/fields/{FARMER_FIELD}")
        _interactive(page)
        assert not page.is_visible("#replay")
        # Keyboard only: the row's replay button, then the play/pause button and the slider.
        page.focus(f'tr[data-flight="{flight["id"]}"] .replay-btn')
        page.keyboard.press("Enter")
        page.wait_for_selector("#replay[data-points]", timeout=30_000)
        # The track drawn is the API's: one shape per feature, every position, spray on and off.
        assert int(page.get_attribute("#replay", "data-points") or 0) == track["points"]
        shapes = page.locator("#map path.replay-on, #map path.replay-off, #map path.replay-point")
        assert shapes.count() == len(track["features"])
        assert page.locator("#map path.replay-on").count() == len(spraying)
        assert page.inner_text("#replay-note").startswith("Chỉ hiện đường bay trên ruộng của bạn")
        # It plays by itself: the local clock moves on; Enter on the focused button pauses.
        start_clock = _local_clock(track["start_ms"])
        page.wait_for_function(
            "t => document.getElementById('replay-clock').textContent > t",
            arg=start_clock,
            timeout=30_000,
        )
        assert page.evaluate("document.activeElement.id") == "replay-play"
        page.keyboard.press("Enter")
        assert page.inner_text("#replay-play") == "▶ Phát"
        paused = page.input_value("#replay-time")
        page.wait_for_timeout(500)
        assert page.input_value("#replay-time") == paused
        # The slider: Home is the take-off's local time, End the last position's, an arrow
        # a second; the drone marker moves with it (it lands where it took off).
        page.focus("#replay-time")
        page.keyboard.press("End")
        assert page.inner_text("#replay-clock") == _local_clock(track["start_ms"] + last_ms)
        page.keyboard.press("Home")
        assert page.inner_text("#replay-clock") == start_clock
        marker = page.locator("#map path.replay-marker")
        at_start = marker.bounding_box()
        for _ in range(20):
            page.keyboard.press("ArrowRight")
        assert page.inner_text("#replay-clock") == _local_clock(track["start_ms"] + 20_000)
        assert marker.bounding_box() != at_start
        assert page.get_attribute("#replay-time", "aria-valuetext")
        assert page.get_attribute(f'tr[data-flight="{flight["id"]}"]', "class") == "replaying"
        # The screenshot halfway through.
        page.evaluate(
            """() => {
                const s = document.getElementById('replay-time');
                s.value = String(Math.round(s.max / 2));
                s.dispatchEvent(new Event('input'));
                s.blur();
            }"""
        )
        _no_horizontal_scroll(page)
        _readable(page)
        _shot(page, f"replay-{name}")
        w.check_clean()


def test_another_cooperatives_field_is_denied_in_vietnamese(
    browser: Browser, web_world: World
) -> None:
    w = _open(browser, web_world, PHONE)
    page = w.page
    page.goto(_login_link(web_world, "farmer", "nd-hp-00"))
    page.wait_for_url(f"{web_world.url}/")
    w.errors.clear()
    page.goto(f"{web_world.url}/fields/{OTHER_COOP_FIELD}")
    alert = page.locator("#status.alert")
    alert.wait_for(timeout=30_000)
    assert "không có quyền xem" in alert.inner_text()
    assert page.locator("path.layer-covered").count() == 0
    assert not page.is_visible("#map")
    _shot(page, "field-denied-phone")
    # The browser logs the API's 404 itself; nothing else went wrong.
    assert all("404" in e for e in w.errors)


def test_sign_in_with_a_pasted_key_english_remembered_and_sign_out(
    browser: Browser, web_world: World
) -> None:
    new = generate_key("coop", HP, "browser test", time.time_ns() // 1_000_000)
    web_world.metadata.add_api_key(new.record)
    w = _open(browser, web_world, PHONE)
    page = w.page
    page.goto(f"{web_world.url}/")
    page.wait_for_url(f"{web_world.url}/login")
    # Accessibility basics: the input has its label, keyboard alone signs in.
    assert page.locator("label[for=key]").inner_text() == "Khóa truy cập"
    _no_horizontal_scroll(page)
    _readable(page)
    _shot(page, "login-phone")
    page.keyboard.press("Tab")  # brand link
    page.keyboard.press("Tab")  # language switch
    page.keyboard.press("Tab")  # the key
    assert page.evaluate("document.activeElement.id") == "key"
    page.keyboard.type(new.key)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{web_world.url}/")
    page.wait_for_selector(".field-card", timeout=30_000)
    coop_fields = [
        f
        for f in _api(web_world, "/api/v1/fields", web_world.headers["coop_hp"])
        if f["kind"] == "field"
    ]
    assert page.locator(".field-card").count() == len(coop_fields)

    page.click("a.lang")
    page.wait_for_selector("html[lang=en]")
    assert page.inner_text("h1") == "My fields"
    page.wait_for_selector(".field-card .coverage-pct", timeout=30_000)
    page.reload()
    assert page.evaluate("document.documentElement.lang") == "en"
    # Every card has its last spraying (no request is still out when signing out).
    page.wait_for_function(
        """n => {
            const cards = [...document.querySelectorAll('.field-card')];
            return cards.length === n && !cards.some(c => c.innerText.includes('Loading'));
        }""",
        arg=len(coop_fields),
        timeout=120_000,
    )
    _shot(page, "fields-en-phone")
    page.click(".signout button")
    page.wait_for_url(f"{web_world.url}/login")
    page.goto(f"{web_world.url}/")
    page.wait_for_url(f"{web_world.url}/login")
    assert page.inner_text("h1") == "Sign in to agridrone"
    w.check_clean()


def test_a_used_login_link_says_what_to_do(browser: Browser, web_world: World) -> None:
    link = _login_link(web_world, "farmer", "nd-hp-00")
    assert httpx.get(link, timeout=30).status_code == 200  # someone opened it first
    w = _open(browser, web_world, PHONE)
    w.page.goto(link)
    assert "Liên kết không dùng được" in w.page.inner_text("h1")
    assert "hỏi hợp tác xã một liên kết mới" in w.page.inner_text("main")
    _no_horizontal_scroll(w.page)
    _shot(w.page, "link-used-phone")


def test_the_field_page_weighs_at_most_300_kb_of_compressed_js_and_css(
    web_world: World,
) -> None:
    cookie = httpx.get(_login_link(web_world, "farmer", "nd-hp-00"), timeout=30).cookies
    page = httpx.get(f"{web_world.url}/fields/{FARMER_FIELD}", cookies=cookie, timeout=30)
    assets = re.findall(r'(?:src|href)="(/static/[^"]+\.(?:js|css))"', page.text)
    assert any(a.endswith("leaflet.js") for a in assets)
    total = 0
    with httpx.Client(base_url=web_world.url, timeout=30) as client:
        for asset in assets:
            with client.stream("GET", asset, headers={"Accept-Encoding": "gzip"}) as answer:
                assert answer.status_code == 200
                assert answer.headers["content-encoding"] == "gzip"
                raw = b"".join(answer.iter_raw())
            assert gzip.decompress(raw)
            total += len(raw)
        total += len(client.get("/sw.js").content)  # the service worker, fetched too
        # The page's own styles are in the page (web/firstview.py): count the whole page.
        assert "<style>" in page.text
        with client.stream(
            "GET",
            f"/fields/{FARMER_FIELD}",
            cookies=cookie,
            headers={"Accept-Encoding": "gzip"},
        ) as answer:
            assert answer.headers["content-encoding"] == "gzip"
            html = len(b"".join(answer.iter_raw()))
    print(
        f"field page JS+CSS: {total} bytes gzip-compressed over {len(assets) + 1} files,"
        f" and the page with its inline styles and data: {html} bytes"
    )
    assert total + html <= FIELD_PAGE_BUDGET


def test_the_date_range_picker_reads_dd_mm_yyyy(browser: Browser, web_world: World) -> None:
    w = _open(browser, web_world, PHONE)
    page = w.page
    page.goto(_login_link(web_world, "farmer", "nd-hp-00"))
    page.wait_for_url(f"{web_world.url}/")
    page.goto(f"{web_world.url}/fields/{FARMER_FIELD}")
    _interactive(page)
    page.fill("#from", "01/11/2025")
    page.fill("#to", "02/11/2025")
    page.click("#range button")
    page.wait_for_url(f"{web_world.url}/fields/{FARMER_FIELD}?from=2025-11-01&to=2025-11-03")
    _interactive(page)
    assert page.inner_text("#flights") == "Không có chuyến bay nào trong khoảng ngày này."
    assert page.inner_text("#status").startswith("01/11/2025 \N{EN DASH} 02/11/2025")
    assert page.locator("path.layer-field").count() == 1
    assert page.locator("path.layer-covered").count() == 0
    w.check_clean()


def _a_field_with_missed_strips(world: World, headers: dict[str, str]) -> tuple[str, Any]:
    """A field flown over on THE_DAY whose coverage has missed strips, and that feature."""
    flights = _api(world, "/api/v1/flights", headers, **THE_DAY)["flights"]
    touched = sorted({part["field_id"] for f in flights for part in f.get("fields") or []})
    for field_id in touched:
        geo = _api(
            world, f"/api/v1/fields/{field_id}/coverage", headers, format="geojson", **THE_DAY
        )
        for feature in geo["features"]:
            if feature["properties"]["kind"] == "missed":
                return field_id, feature
    raise AssertionError(f"no field with missed strips among {touched}")


def test_a_cooperative_taps_a_missed_strip_for_its_area(browser: Browser, web_world: World) -> None:
    """A field of Hồng Phong's members crossed by a flight: its missed strips, one shape
    each, tapped for their area."""
    field_id, missed = _a_field_with_missed_strips(web_world, web_world.headers["coop_hp"])
    w = _open(browser, web_world, DESKTOP)
    page = w.page
    page.goto(_login_link(web_world, "coop", HP))
    page.wait_for_url(f"{web_world.url}/")
    page.goto(f"{web_world.url}/fields/{field_id}?from=2025-11-28&to=2025-11-29")
    _interactive(page)
    geometry = missed["geometry"]
    polygons = 1 if geometry["type"] == "Polygon" else len(geometry["coordinates"])
    strips = page.locator("path.layer-missed")
    assert strips.count() == polygons  # one shape per missed strip, each tappable
    box = strips.first.bounding_box()
    assert box is not None
    centre = {"clientX": box["x"] + box["width"] / 2, "clientY": box["y"] + box["height"] / 2}
    strips.first.dispatch_event("click", {**centre, "bubbles": True})
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for(timeout=10_000)
    found = re.fullmatch(r"Dải bị sót: ([\d.,]+) ha \(([\d.]+) m²\)", popup.inner_text())
    assert found is not None, popup.inner_text()
    strip_m2 = int(found.group(2).replace(".", ""))
    assert 0 < strip_m2 <= missed["properties"]["area_ha"] * 10_000 * 1.01
    _shot(page, "field-coop-missed-desktop")
    w.check_clean()


def test_without_signal_the_last_answers_stay_readable_with_their_age(
    browser: Browser, web_world: World
) -> None:
    w = _open(browser, web_world, PHONE)
    page = w.page
    page.goto(_login_link(web_world, "farmer", "nd-hp-00"))
    page.wait_for_url(f"{web_world.url}/")
    page.wait_for_function("() => navigator.serviceWorker.ready.then(() => true)")
    page.goto(f"{web_world.url}/fields/{FARMER_FIELD}")
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    page.reload()  # now through the service worker, which keeps each answer
    _interactive(page)
    online_legend = page.inner_text("#legend")
    assert page.locator("#offline").count() == 0

    page.context.set_offline(True)
    page.reload()
    _interactive(page)
    assert page.inner_text("#legend") == online_legend
    assert page.locator("path.layer-field").count() == 1
    banner = page.inner_text("#offline")
    assert re.fullmatch(
        r"Không có mạng\. Đang xem dữ liệu lúc \d\d/\d\d/\d{4} \d\d:\d\d \(\d+ phút trước\)\.",
        banner,
    ), banner
    _no_horizontal_scroll(page)
    _readable(page)
    _shot(page, "field-offline-phone")
    page.context.set_offline(False)

    # Signing out forgets the kept answers: the next person on this phone sees none of them.
    page.click(".signout button")
    page.wait_for_url(f"{web_world.url}/login")
    page.wait_for_function("() => caches.has('agd-data').then(has => !has)")


def test_a_cooperatives_month_equals_its_usage_report(browser: Browser, web_world: World) -> None:
    report = _api(
        web_world,
        "/api/v1/reports/usage",
        web_world.headers["coop_hp"],
        **{"from": "2025-11-01", "to": "2025-12-01"},
    )
    by_drone = _api(
        web_world,
        "/api/v1/reports/usage",
        web_world.headers["coop_hp"],
        group_by="drone",
        **{"from": "2025-11-01", "to": "2025-12-01"},
    )
    for name, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        w = _open(browser, web_world, viewport)
        page = w.page
        page.goto(_login_link(web_world, "coop", HP))
        page.wait_for_url(f"{web_world.url}/")
        page.click("a.coop-link")
        page.wait_for_url(f"{web_world.url}/coop")
        page.fill("#month", "11/2025")
        page.click("#month-form button")
        page.wait_for_url(f"{web_world.url}/coop?month=2025-11")
        page.wait_for_selector("#members tbody tr", timeout=30_000)
        page.wait_for_selector("#drones li", timeout=30_000)
        totals = report["totals"]
        assert page.inner_text('[data-total="flights"] dd') == str(totals["flights"])
        amount = f"{totals['amount_vnd']:,}".replace(",", ".")
        assert page.inner_text('[data-total="amount"] dd') == f"{amount} đ"
        assert page.inner_text('[data-total="sprayed"] dd') == (
            f"{_vi(totals['sprayed_ha'], 2)} ha · {_vi(totals['sprayed_sao'], 1)} sào"
        )
        assert page.locator("#members tbody tr").count() == len(report["rows"])
        assert page.locator("#per-drone .bar-row").count() == len(by_drone["rows"])
        assert page.inner_text('#drones li[data-drone="d-hp-a"]')
        # The fleet map of the month's last day with flights: each drone's track, spray on
        # and off.
        page.wait_for_selector("#fleet-map path.track-on", timeout=30_000)
        assert page.inner_text("#fleet-title") == "Bản đồ đội bay ngày 28/11/2025"
        assert page.locator("#fleet-map path.track-off").count() >= 1
        # Under the tracks, one outline per field of the cooperative.
        coop_fields = [
            f
            for f in _api(web_world, "/api/v1/fields", web_world.headers["coop_hp"])
            if f["kind"] == "field" and f["coop"] == HP
        ]
        assert coop_fields
        page.wait_for_function(
            "n => document.querySelectorAll('#fleet-map path.fleet-field').length >= n",
            arg=len(coop_fields),
            timeout=30_000,
        )
        outlines = page.locator("#fleet-map .leaflet-fields-pane path.fleet-field")
        assert outlines.count() == len(coop_fields)
        assert page.locator("#fleet-map .leaflet-overlay-pane path.fleet-field").count() == 0
        csv = page.evaluate("() => fetch(document.getElementById('csv').href).then(r => r.text())")
        assert csv.startswith("Mã thành viên;Thành viên;")  # fetch drops the BOM
        invoices = page.evaluate(
            "() => fetch(document.getElementById('invoices').href)"
            ".then(r => r.headers.get('content-type'))"
        )
        assert invoices == "application/pdf"
        _no_horizontal_scroll(page)
        _readable(page)
        _shot(page, f"coop-{name}")
        w.check_clean()


def _plot(field_id: str, lon: float, *, owner: str = "nd-hp-00") -> dict[str, Any]:
    lat = 21.13
    ring = [[lon, lat], [lon + 0.0004, lat], [lon + 0.0004, lat + 0.0004], [lon, lat + 0.0004]]
    return {
        "type": "Feature",
        "properties": {"id": field_id, "name": "Thửa mới", "owner": owner, "coop": HP},
        "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
    }


def test_a_cooperative_imports_a_file_and_sees_every_problem(
    browser: Browser, web_world: World, tmp_path: Path
) -> None:
    bad = {
        "type": "FeatureCollection",
        "features": [_plot("dt-web-ok", 106.63), _plot("bad id!", 106.64), {"type": "Feature"}],
    }
    good = {"type": "FeatureCollection", "features": [_plot("dt-web-ok", 106.63)]}
    (tmp_path / "bad.geojson").write_text(json.dumps(bad), encoding="utf-8")
    (tmp_path / "good.geojson").write_text(json.dumps(good), encoding="utf-8")
    w = _open(browser, web_world, PHONE)
    page = w.page
    page.goto(_login_link(web_world, "coop", HP))
    page.wait_for_url(f"{web_world.url}/")
    page.goto(f"{web_world.url}/coop/import")
    assert page.locator("label[for=file]").inner_text() == "Tệp GeoJSON"

    page.set_input_files("#file", str(tmp_path / "bad.geojson"))
    page.click("#import-form button")
    page.wait_for_selector("#problems li.problem", timeout=30_000)
    assert page.inner_text("#status").startswith("Tệp có lỗi ở 2 chỗ; không thửa nào được nhập.")
    # Every problem of every refused feature, in Vietnamese; the good one not named.
    problems = page.locator("#problems li.problem").all_inner_texts()
    assert problems == [
        (
            "Thửa thứ 2 (bad id!): mã 'bad id!' không hợp lệ: dùng 1 đến 64 chữ cái không dấu,"
            " chữ số, '_' hoặc '-' (không có dấu cách, '/' hay '.')"
        ),
        "Thửa thứ 3: thiếu thuộc tính 'id' (mã thửa)",
        "Thửa thứ 3: không có hình (geometry)",
    ]
    _no_horizontal_scroll(page)
    _readable(page)
    _shot(page, "import-refused-phone")
    coop = web_world.headers["coop_hp"]
    missing = httpx.get(f"{web_world.url}/api/v1/fields/dt-web-ok", headers=coop, timeout=30)
    assert missing.status_code == 404  # nothing of a file with problems is stored

    page.set_input_files("#file", str(tmp_path / "good.geojson"))
    page.click("#import-form button")
    page.wait_for_selector("#problems li.imported", timeout=30_000)
    assert page.inner_text("#status") == "Đã nhập 1 thửa."
    assert _api(web_world, "/api/v1/fields/dt-web-ok", coop)["properties"]["name"] == "Thửa mới"
    httpx.delete(
        f"{web_world.url}/api/v1/fields/dt-web-ok", headers=coop, timeout=30
    ).raise_for_status()
    # The browser's 422 for the refused file is the only console line.
    assert all("422" in e for e in w.errors)


def test_a_cooperative_imports_only_the_valid_features_of_a_file(
    browser: Browser, web_world: World, tmp_path: Path
) -> None:
    mixed = {
        "type": "FeatureCollection",
        "features": [
            _plot("dt-web-valid", 106.65),
            _plot("dt-web-swapped", 106.66) | {"geometry": _swapped(106.66)},
        ],
    }
    (tmp_path / "mixed.geojson").write_text(json.dumps(mixed), encoding="utf-8")
    for name, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        w = _open(browser, web_world, viewport)
        page = w.page
        page.goto(_login_link(web_world, "coop", HP))
        page.wait_for_url(f"{web_world.url}/")
        page.goto(f"{web_world.url}/coop/import")
        page.set_input_files("#file", str(tmp_path / "mixed.geojson"))
        page.check("#valid-only")
        page.click("#import-form button")
        page.wait_for_selector("#problems li.imported", timeout=30_000)
        assert page.inner_text("#status") == (
            "Đã nhập 1 thửa; 1 thửa có lỗi dưới đây không được nhập."
        )
        imported = page.locator("#problems li.imported").all_inner_texts()
        assert imported == ["dt-web-valid · Thửa mới"]
        (problem,) = page.locator("#problems li.problem").all_inner_texts()
        assert problem == (
            "Thửa thứ 2 (dt-web-swapped), đường bao ngoài: đỉnh thứ 1 [21.13, 106.66] có vẻ"
            " ghi [vĩ độ, kinh độ] (bị đảo); GeoJSON ghi [kinh độ, vĩ độ], ví dụ [106.66, 21.13]"
        )
        coop = web_world.headers["coop_hp"]
        assert _api(web_world, "/api/v1/fields/dt-web-valid", coop)["properties"]["id"]
        swapped = f"{web_world.url}/api/v1/fields/dt-web-swapped"
        assert httpx.get(swapped, headers=coop, timeout=30).status_code == 404
        _no_horizontal_scroll(page)
        _readable(page)
        _shot(page, f"import-valid-only-{name}")
        httpx.delete(
            f"{web_world.url}/api/v1/fields/dt-web-valid", headers=coop, timeout=30
        ).raise_for_status()
        w.check_clean()


def _swapped(lon: float) -> dict[str, Any]:
    """A square written [lat, lon], as a spreadsheet export may swap them."""
    lat = 21.13
    ring = [[lat, lon], [lat, lon + 0.0004], [lat + 0.0004, lon + 0.0004], [lat + 0.0004, lon]]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def test_an_operator_sees_rejected_messages_by_reason_and_every_drone(
    browser: Browser, web_world: World
) -> None:
    received = T0_MS + 3_600_000  # on THE_DAY
    web_world.metadata.record_rejections(
        [
            RejectedMessage(received, f"agri/v1/{HP}/d-hp-x/telemetry", "bad_json", "…", b"{"),
            RejectedMessage(
                received + 1000,
                f"agri/v1/{HP}/d-hp-a/telemetry",
                "out_of_range",
                "sample 0: lat 91.5",
                b"[]",
                count=5,
                by_reason={"out_of_range": 4, "wrong_type": 1},
            ),
        ]
    )
    ops = web_world.headers["operator"]
    answer = _api(web_world, "/api/v1/rejected", ops, limit="1000", **THE_DAY)
    drones = _api(web_world, "/api/v1/drones", ops, limit="1000")
    w = _open(browser, web_world, PHONE)
    page = w.page
    page.goto(_login_link(web_world, "operator", "ops"))
    page.wait_for_url(f"{web_world.url}/")
    page.click("a.ops-link")
    page.wait_for_url(f"{web_world.url}/ops")
    page.fill("#day", "28/11/2025")
    page.click("#day-form button")
    page.wait_for_url(f"{web_world.url}/ops?day=2025-11-28")
    page.wait_for_selector("#rejected-latest table", timeout=30_000)
    page.wait_for_selector("#drones-last table", timeout=30_000)
    shown = {
        row.get_attribute("data-key"): row.locator(".bar-value").inner_text()
        for row in page.locator("#rejected-day .bar-row").all()
    }
    assert shown == {k: str(v) for k, v in answer["returned_by_reason"].items()}
    assert shown == {"bad_json": "1", "out_of_range": "4", "wrong_type": "1"}
    assert page.locator("#rejected-latest tbody tr").count() == len(answer["messages"])
    assert page.locator("#drones-last tbody tr").count() == len(drones)
    _no_horizontal_scroll(page)
    _readable(page)
    _shot(page, "ops-phone")
    w.check_clean()


def test_an_operator_creates_a_key_whose_link_signs_in_then_revokes_it(
    browser: Browser, web_world: World
) -> None:
    """Create a farmer key with its login link; the link opened elsewhere signs in as that
    key; revoking the key on the page ends that session."""
    w = _open(browser, web_world, PHONE)
    page = w.page
    page.goto(_login_link(web_world, "operator", "ops"))
    page.wait_for_url(f"{web_world.url}/")
    page.goto(f"{web_world.url}/ops")
    page.click('a[href="/keys"]')
    page.wait_for_url(f"{web_world.url}/keys")
    page.wait_for_selector("#keys .key-card", timeout=30_000)
    page.select_option("#key-role", "farmer")
    page.fill("#key-subject", "nd-hp-00")
    page.fill("#key-name", "Bà Hoa, thôn 3")
    page.fill("#key-coop", HP)
    page.click("#key-form button")
    page.wait_for_selector("#link-box:not([hidden])", timeout=30_000)
    assert page.inner_text("#link-title") == "Khóa mới của Bà Hoa, thôn 3"
    key = page.input_value("#key-value")
    key_id = key.split("_")[1]
    link = page.input_value("#login-url")
    assert link.startswith(f"{web_world.url}/login/")
    assert (page.get_attribute("#login-qr", "src") or "").startswith("data:image/svg+xml")
    png = page.get_attribute("#login-qr-png", "href") or ""
    assert png.startswith("data:image/png;base64,")
    record = web_world.metadata.api_key(key_id)
    assert record is not None
    assert (record.role, record.subject, record.coop) == ("farmer", "nd-hp-00", HP)
    card = page.locator(f'.key-card[data-key="{key_id}"]')
    assert card.locator("h3").inner_text() == "Bà Hoa, thôn 3"
    assert card.locator(".key-status").inner_text() == "Đang dùng"
    _no_horizontal_scroll(page)
    _readable(page)
    _shot(page, "keys-operator-phone")

    # The link, opened on the farmer's phone, signs in as the new key: their field.
    farmer = _open(browser, web_world, PHONE)
    farmer.page.goto(link)
    farmer.page.wait_for_url(f"{web_world.url}/")
    farmer.page.wait_for_selector(f'.field-card[data-field="{FARMER_FIELD}"]', timeout=30_000)

    page.once("dialog", lambda dialog: dialog.accept())
    card.locator("button.revoke").click()
    revoked = page.locator(f'.key-card.revoked[data-key="{key_id}"]')
    revoked.wait_for(timeout=30_000)
    assert revoked.locator(".key-status").inner_text().startswith("Đã thu hồi ngày ")
    assert page.inner_text("#status") == (
        "Đã thu hồi khóa của Bà Hoa, thôn 3; 1 phiên đăng nhập đã kết thúc."
    )
    assert page.is_hidden("#link-box")
    farmer.page.reload()
    farmer.page.wait_for_url(f"{web_world.url}/login")
    w.check_clean()


def test_a_cooperative_gives_its_member_a_login_link(browser: Browser, web_world: World) -> None:
    for name, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        w = _open(browser, web_world, viewport)
        page = w.page
        page.goto(_login_link(web_world, "coop", HP))
        page.wait_for_url(f"{web_world.url}/")
        page.goto(f"{web_world.url}/coop?month=2025-11")
        page.click('a[href="/keys"]')
        page.wait_for_url(f"{web_world.url}/keys")
        assert page.inner_text("h1") == "Liên kết đăng nhập của thành viên"
        assert page.locator("#key-role").count() == 0  # farmer keys only
        # The members it may name: the owners of its fields.
        page.wait_for_function("() => document.querySelectorAll('#owners option').length > 0")
        owners = page.eval_on_selector_all("#owners option", "os => os.map(o => o.value)")
        coop_fields = _api(web_world, "/api/v1/fields", web_world.headers["coop_hp"])
        assert owners == sorted({f["owner"] for f in coop_fields if f["owner"]})
        page.fill("#key-subject", "nd-hp-01")
        page.fill("#key-name", "Chị Lan")
        page.click("#key-form button")
        page.wait_for_selector("#link-box:not([hidden])", timeout=30_000)
        first = page.input_value("#login-url")
        key_id = page.input_value("#key-value").split("_")[1]
        card = page.locator(f'.key-card[data-key="{key_id}"]')
        assert card.locator(".key-who").inner_text() == "Nông dân · nd-hp-01"
        # A new link for the same key replaces the one shown; both work once.
        card.locator("button.new-link").click()
        page.wait_for_function(
            "first => document.getElementById('login-url').value !== first", arg=first
        )
        assert page.inner_text("#link-title") == "Liên kết đăng nhập mới cho Chị Lan"
        assert page.is_hidden("#new-key")
        record = web_world.metadata.api_key(key_id)
        assert record is not None
        assert (record.role, record.coop) == ("farmer", HP)
        _no_horizontal_scroll(page)
        _readable(page)
        _shot(page, f"keys-coop-{name}")
        w.check_clean()


def _points(where: dict[str, Any] | None) -> int:
    if where is None:
        return 0
    return {"Point": 1, "MultiPoint": len(where["coordinates"])}.get(where["type"], 0)


def test_a_farmer_sees_the_compliance_flags_of_the_shown_days(
    browser: Browser, web_world: World
) -> None:
    key = web_world.headers["farmer_hp00"]
    answer = _api(web_world, f"/api/v1/fields/{FARMER_FIELD}/coverage", key, **THE_DAY)
    flags = answer["flags"]
    assert flags  # the world's drone sprays by the canal and past the field's ends
    w = _open(browser, web_world, PHONE)
    page = w.page
    page.goto(_login_link(web_world, "farmer", "nd-hp-00"))
    page.wait_for_url(f"{web_world.url}/")
    # "Ruộng của tôi": a warning badge on the field's card, with the last day's flags.
    badge = page.locator(f'.field-card[data-field="{FARMER_FIELD}"] .flag-badge')
    badge.wait_for(timeout=30_000)
    assert badge.get_attribute("data-flags") == str(len(flags))
    assert badge.inner_text().startswith(f"⚠ {len(flags)} cảnh báo: ")
    _no_horizontal_scroll(page)
    _shot(page, "fields-flags-phone")

    page.goto(f"{web_world.url}/fields/{FARMER_FIELD}")
    page.wait_for_selector("#flags li", timeout=30_000)
    items = page.locator("#flags li.flag")
    assert items.count() == len(flags)
    for i, flag in enumerate(flags):
        item = items.nth(i)
        assert item.get_attribute("data-code") == flag["code"]
        y, m, d = flag["date"].split("-")
        assert item.locator(".flag-date").inner_text() == f"{d}/{m}/{y}"
        assert item.locator(".flag-text").inner_text() == flag["message_vi"]
    # Each flag with a place is drawn on the map: one shape per polygonal place, a dot per
    # position sprayed during a return-to-home.
    polygonal = [f for f in flags if f["where"] and f["where"]["type"].endswith("Polygon")]
    assert polygonal
    assert page.locator("path.flag-where").count() == len(polygonal)
    assert page.locator("path.flag-point").count() == sum(_points(f["where"]) for f in flags)
    _no_horizontal_scroll(page)
    _readable(page)
    page.locator("#flags-box").scroll_into_view_if_needed()
    _shot(page, "field-flags-phone")
    w.check_clean()


def test_a_cooperatives_month_counts_the_flags_per_member_and_drone(
    browser: Browser, web_world: World
) -> None:
    month = {"from": "2025-11-01", "to": "2025-12-01"}
    coop = web_world.headers["coop_hp"]
    members = _api(web_world, "/api/v1/reports/usage", coop, **month)["rows"]
    drones = _api(web_world, "/api/v1/reports/usage", coop, group_by="drone", **month)["rows"]
    assert any(r["flag_counts"] for r in drones)
    w = _open(browser, web_world, PHONE)
    page = w.page
    page.goto(_login_link(web_world, "coop", HP))
    page.wait_for_url(f"{web_world.url}/")
    page.goto(f"{web_world.url}/coop?month=2025-11")
    page.wait_for_selector("#flags-drones tbody tr", timeout=30_000)
    for box, rows in (("#flags-members", members), ("#flags-drones", drones)):
        shown = page.locator(f"{box} tbody tr")
        assert shown.count() == len(rows)
        for i, row in enumerate(rows):
            n = sum(row["flag_counts"].values())
            cells = shown.nth(i).locator("td")
            assert shown.nth(i).get_attribute("data-key") == row["key"]
            assert cells.nth(1).inner_text() == (f"⚠ {n}" if n else "0")
    _no_horizontal_scroll(page)
    _readable(page)
    page.locator("#flags-members").scroll_into_view_if_needed()
    _shot(page, "coop-flags-phone")


def _island(html: str) -> Any:
    found = re.search(r'<script id="first-view" type="application/json">(.*?)</script>', html)
    assert found is not None
    return json.loads(found.group(1))


def test_the_field_pages_own_answers_are_the_apis(web_world: World) -> None:
    """The first view's data (web/firstview.py) is what the API answers the same key: the
    field, the last spraying's day, the coverage and its polygons, for a farmer, for a
    cooperative looking at a member's field sprayed by a hired drone, and a chosen range."""
    cases: tuple[tuple[str, Role, str, str, str], ...] = (
        ("farmer_hp00", "farmer", "nd-hp-00", FARMER_FIELD, ""),
        ("coop_hp", "coop", HP, "dt-hp-002", ""),
        ("farmer_hp00", "farmer", "nd-hp-00", FARMER_FIELD, "?from=2025-11-27&to=2025-11-29"),
    )
    for name, role, subject, field_id, query in cases:
        key = web_world.headers[name]
        cookie = httpx.get(_login_link(web_world, role, subject), timeout=30).cookies
        page = httpx.get(f"{web_world.url}/fields/{field_id}{query}", cookies=cookie, timeout=60)
        assert page.status_code == 200
        assert page.headers["content-encoding"] == "gzip"
        data = _island(page.text)
        window = {"from": "2025-11-27" if query else THE_DAY["from"], "to": THE_DAY["to"]}
        assert (data["from"], data["to"]) == (window["from"], window["to"])
        assert data["field"] == _api(web_world, f"/api/v1/fields/{field_id}", key)
        path = f"/api/v1/fields/{field_id}/coverage"
        assert data["coverage"] == _api(web_world, path, key, **window)
        assert data["geojson"] == _api(web_world, path, key, format="geojson", **window)


def test_a_field_the_key_may_not_see_is_refused_by_the_page_itself(web_world: World) -> None:
    cookie = httpx.get(_login_link(web_world, "farmer", "nd-hp-00"), timeout=30).cookies
    for field_id in (OTHER_COOP_FIELD, "dt-no-such-field"):
        page = httpx.get(f"{web_world.url}/fields/{field_id}", cookies=cookie, timeout=30)
        assert page.status_code == 404
        assert "hoặc bạn không có quyền xem" in page.text
        assert _island(page.text) == {"error": 404}
        assert "<svg" not in page.text
        assert '<form id="range" class="range" hidden>' in page.text
        assert "dt-yt" not in page.text.replace(field_id, "")  # nothing of the field shown
    bad = httpx.get(
        f"{web_world.url}/fields/{FARMER_FIELD}?from=31/02/2025&to=01/03/2025",
        cookies=cookie,
        timeout=30,
    )
    assert bad.status_code == 422
    assert "Không tải được dữ liệu (422)" in bad.text
    assert 'value="31/02/2025"' in bad.text  # the form, to try again
    assert '<form id="range" class="range">' in bad.text


def test_numbers_are_written_as_the_pages_script_writes_them(browser: Browser) -> None:
    """``web.firstview.num`` against the browser's own ``Intl.NumberFormat`` (vi-VN and
    en-GB), on halves, thousands and random values."""
    rng = random.Random(12)
    values = [0.0, 0.5, 2.5, 0.125, 0.0005, 99.778, 1234.5, 1234567.891, 0.05, 10.25, 1e9]
    values += [round(rng.uniform(0, 5000), rng.randint(0, 6)) for _ in range(300)]
    page = browser.new_page()
    try:
        shown = page.evaluate(
            """values => ['vi-VN', 'en-GB'].map(l => values.map(x => [0, 1, 2, 3].map(d =>
                new Intl.NumberFormat(l, {minimumFractionDigits: d, maximumFractionDigits: d})
                    .format(x))))""",
            values,
        )
    finally:
        page.close()
    langs: tuple[Lang, ...] = ("vi", "en")
    for lang, by_value in zip(langs, shown, strict=True):
        ours = [[num(x, d, lang) for d in range(4)] for x in values]
        assert ours == by_value


def test_the_field_page_answers_without_scripts(browser: Browser, web_world: World) -> None:
    """JavaScript off: the field's name, the legend and coverage %, the flights and the
    drawing of the outline and each layer are in the page; the date range still works."""
    key = web_world.headers["farmer_hp00"]
    answer = _api(web_world, f"/api/v1/fields/{FARMER_FIELD}/coverage", key, **THE_DAY)
    geo = _api(
        web_world, f"/api/v1/fields/{FARMER_FIELD}/coverage", key, format="geojson", **THE_DAY
    )
    field_ = _api(web_world, f"/api/v1/fields/{FARMER_FIELD}", key)
    for name, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        w = _open(browser, web_world, viewport, scripts=False)
        page = w.page
        page.goto(_login_link(web_world, "farmer", "nd-hp-00"))  # moves on by <meta refresh>
        page.wait_for_url(f"{web_world.url}/")
        page.goto(f"{web_world.url}/fields/{FARMER_FIELD}")
        assert page.inner_text("h1") == field_["properties"]["name"]
        assert page.inner_text("#status") == (
            f"28/11/2025 · Lúa · {_vi(field_['properties']['area_ha'], 2)} ha"
            f" · {_vi(field_['properties']['area_sao'], 1)} sào"
        )
        assert page.inner_text("#legend .coverage-pct") == (
            f"{_vi(answer['coverage']['coverage_pct'], 1)} %"
        )
        assert page.locator("#legend li").count() == 7
        assert page.locator(".leaflet-container").count() == 0
        drawing = page.locator("#map svg.first-view")
        assert drawing.is_visible()
        assert drawing.locator("path.layer-field").count() == 1
        for feature in geo["features"]:
            kind, geometry = feature["properties"]["kind"], feature["geometry"]
            parts = len(geometry["coordinates"]) if geometry["type"] == "MultiPolygon" else 1
            expected = parts if kind == "missed" else 1
            assert drawing.locator(f"path.layer-{kind}").count() == expected, kind
        rows = page.locator("table.flights tbody tr")
        assert rows.count() == len(answer["flights"])
        first = answer["flights"][0]
        row = page.locator(f'tr[data-flight="{first["id"]}"] td')
        assert row.nth(1).inner_text() == first["drone"]
        assert row.nth(2).inner_text() == _vi(first["applied_l"], 1)
        assert not page.locator(".replay-btn").first.is_visible()  # nothing to replay with
        _no_horizontal_scroll(page)
        _readable(page)
        _shot(page, f"field-first-view-{name}")
        w.check_clean()
    # The date form, sent as it is (dd/mm/yyyy, the last day included).
    page.fill("#from", "01/11/2025")
    page.fill("#to", "02/11/2025")
    page.click("#range button")
    page.wait_for_url(re.compile(r".*from=01%2F11%2F2025&to=02%2F11%2F2025$"))
    assert page.inner_text("#status").startswith("01/11/2025 \N{EN DASH} 02/11/2025")
    assert page.inner_text("#flights") == "Không có chuyến bay nào trong khoảng ngày này."
    assert page.locator("svg.first-view path.layer-field").count() == 1
    assert page.locator("svg.first-view path.layer-covered").count() == 0


#: Every layout shift of the page (the Layout Instability API), kept from its start.
_SHIFTS_JS: Final = """window.__shifts = [];
new PerformanceObserver(list => {
  for (const e of list.getEntries()) if (!e.hadRecentInput) window.__shifts.push(e.value);
}).observe({type: "layout-shift", buffered: true});"""

#: The boxes of the field page's parts, and the look of each drawn layer's first shape.
_BOXES_JS: Final = """() => Object.fromEntries(
  ["title", "status", "range", "map", "legend-box", "flights-box"].map(id => {
    const r = document.getElementById(id).getBoundingClientRect();
    return [id, [r.x, r.y, r.width, r.height]];
  }))"""
_LOOKS_JS: Final = """() => Object.fromEntries(
  ["field", "covered", "overlap", "missed", "off_target", "no_spray"].map(kind => {
    const path = document.querySelector(`#map path.layer-${kind}`);
    if (!path) return [kind, null];
    const s = getComputedStyle(path);
    return [kind, ["fill", "fill-opacity", "fill-rule", "stroke", "stroke-width",
                   "stroke-dasharray", "stroke-linecap", "stroke-linejoin"]
                  .map(p => s.getPropertyValue(p))];
  }))"""


def test_the_first_view_comes_before_the_scripts_and_the_map_takes_its_place(
    browser: Browser, web_world: World
) -> None:
    """On a slow 3G profile the first view is there before Leaflet has arrived; the map then
    replaces the drawing in the same box, drawn the same, and nothing on the page moves."""
    w = _open(browser, web_world, PHONE)
    page = w.page
    # Signed in without opening a page: no service worker answers (nor speeds) this page.
    cookie = httpx.get(_login_link(web_world, "farmer", "nd-hp-00"), timeout=30).cookies
    host = web_world.url.split("//")[1].split(":")[0]
    page.context.add_cookies(
        [{"name": "agd_session", "value": cookie["agd_session"], "domain": host, "path": "/"}]
    )
    page.add_init_script(_SHIFTS_JS)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 400,
            "downloadThroughput": 400 * 1000 / 8,
            "uploadThroughput": 400 * 1000 / 8,
        },
    )
    page.goto(f"{web_world.url}/fields/{FARMER_FIELD}", wait_until="commit")
    page.wait_for_selector("svg.first-view path.layer-field", timeout=30_000)
    assert page.evaluate("typeof window.L") == "undefined"  # Leaflet is still on its way
    assert page.is_visible("#legend .coverage-pct")
    before, drawn = page.evaluate(_BOXES_JS), page.evaluate(_LOOKS_JS)
    _interactive(page)
    assert page.locator("svg.first-view").count() == 0
    assert page.evaluate(_BOXES_JS) == before
    assert page.evaluate(_LOOKS_JS) == drawn
    assert drawn["field"] is not None
    assert drawn["covered"] is not None
    assert page.evaluate("window.__shifts") == []
    w.check_clean()
