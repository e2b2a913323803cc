"""The farmer's field page on a slow mobile connection: time until it answers, and until its
map is interactive.

Debian's chromium (Playwright) opens the field page of the test world's farmer
(tests/integration/api_world.py) at 360 x 740, a fresh browser context (empty cache, no
service worker) each run, signed in, with no throttling and with the network throttled by
the DevTools protocol to a "slow 3G" profile (400 ms round trip, 400 kbit/s down and up).
Two times from navigation start, taken in the page (``performance.now()`` in the frame after
the DOM holds them):

- **first view usable**: the field's outline drawn and the legend's numbers there (the
  server's first view, web/firstview.py; on a page without one, Leaflet's map and the
  legend the script fills);
- **interactive map**: Leaflet's map drawn, with the legend.

``--before TREE`` opens the same page of another source tree (e.g. ``git archive main``
unpacked, with its ``web/static/vendor`` built) served by a second world in its own
process, in the same runs, interleaved: the baseline.

    .venv/bin/python -m bench.web [--runs 5] [--before TREE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx
from playwright.sync_api import Browser, sync_playwright

from storage.keys import generate_key
from storage.logins import LOGIN_LINK_TTL_MS, hash_token, new_token
from storage.sqlite import SqliteStore
from tests.integration.api_world import World, running_world

FIELD: Final = "dt-hp-004"
FARMER: Final = "nd-hp-00"
SLOW_3G: Final = {
    "offline": False,
    "latency": 400,
    "downloadThroughput": 400 * 1000 / 8,
    "uploadThroughput": 400 * 1000 / 8,
}
#: The issue's goal: the field page usable within 2 s on slow 3G.
GOAL_S: Final = 2.0

#: Records, in the page, when the first view is usable and when the map is interactive:
#: checked on every DOM change and every frame, stamped in the frame after.
_MARKS_JS: Final = """(() => {
  const marks = (window.__agdMarks = {});
  const shown = sel => {
    const el = document.querySelector(sel);
    if (!el) return false;
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0;
  };
  const stamp = name => requestAnimationFrame(() => { marks[name] = performance.now(); });
  let usable = false, interactive = false;
  const check = () => {
    const legend = shown("#legend li.total");
    if (!usable && legend && shown("path.layer-field")) { usable = true; stamp("usable"); }
    if (!interactive && legend && shown(".leaflet-container path.layer-field")) {
      interactive = true; stamp("interactive");
    }
  };
  new MutationObserver(check).observe(document, {childList: true, subtree: true});
  const frame = () => { check(); if (!interactive) requestAnimationFrame(frame); };
  requestAnimationFrame(frame);
})();"""

#: Serves the world of another source tree (run with that tree first on the path): prints
#: its URL and a signed-in farmer's session cookie, then serves until stdin closes.
_SERVE_TREE: Final = f"""
import sys, tempfile, time
from pathlib import Path
import httpx
from storage.keys import generate_key
from storage.logins import LOGIN_LINK_TTL_MS, hash_token, new_token
from storage.sqlite import SqliteStore
from tests.integration.api_world import running_world
folder = Path(tempfile.mkdtemp(prefix="bench-web-before-"))
with SqliteStore(folder / "telemetry.db") as store, running_world(store, folder) as world:
    now = int(time.time() * 1000)
    new = generate_key("farmer", "{FARMER}", "bench", now)
    world.metadata.add_api_key(new.record)
    token = new_token()
    world.metadata.add_login_link(hash_token(token), new.record.key_id, now,
                                  now + LOGIN_LINK_TTL_MS)
    cookie = httpx.get(f"{{world.url}}/login/{{token}}", timeout=60).cookies["agd_session"]
    print(world.url, cookie, flush=True)
    sys.stdin.read()
"""


@dataclass(frozen=True, slots=True)
class Site:
    """A served tree: its name in the table, its URL and a farmer's session cookie."""

    name: str
    url: str
    cookie: str


@dataclass(frozen=True, slots=True)
class Run:
    """One opening of the page: seconds from navigation start, and the page's bytes."""

    usable_s: float
    interactive_s: float
    html_bytes: int


def _signed_in_cookie(world: World) -> str:
    now = int(time.time() * 1000)
    new = generate_key("farmer", FARMER, "bench", now)
    world.metadata.add_api_key(new.record)
    token = new_token()
    world.metadata.add_login_link(
        hash_token(token), new.record.key_id, now, now + LOGIN_LINK_TTL_MS
    )
    return httpx.get(f"{world.url}/login/{token}", timeout=30).cookies["agd_session"]


def _one(browser: Browser, site: Site, *, throttled: bool) -> Run:
    context = browser.new_context(viewport={"width": 360, "height": 740}, service_workers="block")
    host = site.url.split("//")[1].split(":")[0]
    context.add_cookies(
        [{"name": "agd_session", "value": site.cookie, "domain": host, "path": "/"}]
    )
    context.add_init_script(_MARKS_JS)
    page = context.new_page()
    if throttled:
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", SLOW_3G)
    page.goto(f"{site.url}/fields/{FIELD}", wait_until="commit")
    page.wait_for_function(
        "() => window.__agdMarks && window.__agdMarks.interactive", timeout=60_000
    )
    marks = page.evaluate("() => window.__agdMarks")
    html_bytes = page.evaluate(
        "() => performance.getEntriesByType('navigation')[0].encodedBodySize"
    )
    context.close()
    return Run(marks["usable"] / 1000, marks["interactive"] / 1000, int(html_bytes))


def _serve_tree(tree: Path) -> tuple[subprocess.Popen[str], Site]:
    if not (tree / "web" / "static" / "vendor" / "leaflet" / "leaflet.js").exists():
        sys.exit(f"{tree}: its Leaflet is not built (copy web/static/vendor or run make web)")
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVE_TREE],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().split()
    if len(line) != 2:
        process.kill()
        sys.exit(f"{tree}: its world did not start")
    return process, Site("before", line[0], line[1])


def main() -> None:
    """Print the medians of each page, without and with throttling, and the goal."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--before", type=Path, help="a source tree to serve as the baseline")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-web-"))
    before = _serve_tree(args.before.resolve()) if args.before else None
    try:
        with (
            SqliteStore(folder / "telemetry.db") as store,
            running_world(store, folder) as world,
            sync_playwright() as p,
        ):
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            sites = [Site("after", world.url, _signed_in_cookie(world))]
            if before is not None:
                sites.insert(0, before[1])
            _report(browser, sites, args.runs)
            browser.close()
    finally:
        if before is not None:
            assert before[0].stdin is not None
            before[0].stdin.close()
            before[0].wait(timeout=60)


def _report(browser: Browser, sites: list[Site], runs: int) -> None:
    print(f"field page {FIELD}, 360 x 740, fresh cache, median of {runs} (interleaved)")
    heads = f"{'first view usable':>18} {'interactive map':>16} {'HTML on the wire':>17}"
    print(f"{'network':30} {'page':7} {heads}")
    slow: dict[str, float] = {}
    for throttled in (False, True):
        found: dict[str, list[Run]] = {s.name: [] for s in sites}
        for _ in range(runs):
            for site in sites:
                found[site.name].append(_one(browser, site, throttled=throttled))
        network = "slow 3G (400 ms, 400 kbit/s)" if throttled else "no throttling"
        for site in sites:
            usable = statistics.median(r.usable_s for r in found[site.name])
            interactive = statistics.median(r.interactive_s for r in found[site.name])
            size = statistics.median(r.html_bytes for r in found[site.name])
            print(
                f"{network:30} {site.name:7} {usable:16.2f} s {interactive:14.2f} s"
                f" {size / 1000:14.1f} kB"
            )
            if throttled:
                slow[site.name] = usable
    met = slow["after"] <= GOAL_S
    print(
        f"goal: the field page usable within {GOAL_S:.0f} s on slow 3G: "
        f"{'met' if met else 'NOT met'} ({slow['after']:.2f} s)"
    )


if __name__ == "__main__":
    main()
