"""The farmer's field page on a slow mobile connection: time until the coverage map is drawn.

Debian's chromium (Playwright) opens the field page of the test world's farmer
(tests/integration/api_world.py) with the network throttled by the DevTools protocol to a
"slow 3G" profile (400 ms round trip, 400 kbit/s down and up), a fresh cache each run, and
measures from navigation start to the legend being filled (map, layers and flights drawn),
and to the field outline alone. Baseline: the same page with no throttling.

    .venv/bin/python -m bench.web [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

from storage.keys import generate_key
from storage.logins import LOGIN_LINK_TTL_MS, hash_token, new_token
from storage.sqlite import SqliteStore
from tests.integration.api_world import World, running_world

FIELD = "dt-hp-004"
SLOW_3G = {
    "offline": False,
    "latency": 400,
    "downloadThroughput": 400 * 1000 / 8,
    "uploadThroughput": 400 * 1000 / 8,
}


def _signed_in_cookie(world: World) -> str:
    new = generate_key("farmer", "nd-hp-00", "bench", int(time.time() * 1000))
    world.metadata.add_api_key(new.record)
    token = new_token()
    now = int(time.time() * 1000)
    world.metadata.add_login_link(
        hash_token(token), new.record.key_id, now, now + LOGIN_LINK_TTL_MS
    )
    import httpx

    return httpx.get(f"{world.url}/login/{token}", timeout=30).cookies["agd_session"]


def _one(browser: Browser, world: World, cookie: str, *, throttled: bool) -> tuple[float, float]:
    context = browser.new_context(viewport={"width": 360, "height": 740})
    host = world.url.split("//")[1].split(":")[0]
    context.add_cookies([{"name": "agd_session", "value": cookie, "domain": host, "path": "/"}])
    page = context.new_page()
    if throttled:
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", SLOW_3G)
    started = time.perf_counter()
    page.goto(f"{world.url}/fields/{FIELD}", wait_until="commit")
    page.wait_for_selector("path.layer-field", timeout=60_000)
    outline = time.perf_counter() - started
    page.wait_for_selector("#legend li.total", timeout=60_000)
    done = time.perf_counter() - started
    context.close()
    return outline, done


def main() -> None:
    """Print the medians with and without throttling."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-web-"))
    with (
        SqliteStore(folder / "telemetry.db") as store,
        running_world(store, folder) as world,
        sync_playwright() as p,
    ):
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        cookie = _signed_in_cookie(world)
        for throttled in (False, True):
            runs = [_one(browser, world, cookie, throttled=throttled) for _ in range(args.runs)]
            outline = statistics.median(r[0] for r in runs)
            done = statistics.median(r[1] for r in runs)
            name = "slow 3G (400 ms, 400 kbit/s)" if throttled else "no throttling"
            print(
                f"{name:30} field outline {outline:6.2f} s   map+legend+flights {done:6.2f} s"
                f"   (median of {args.runs})"
            )
        browser.close()


if __name__ == "__main__":
    main()
