"""``agridrone demo`` starts the whole service on embedded defaults and stops cleanly."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from agridrone.demo import DEMO_PRODUCT
from storage.metadata import MetadataDB
from tests.integration.mqtt_helpers import wait_until

pytestmark = pytest.mark.integration


def test_demo_shows_drones_arriving_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    out = tmp_path / "demo.out"
    argv = [sys.executable, "-m", "agridrone.cli", "demo", "--data-dir", str(tmp_path / "var")]
    with out.open("wb") as sink:
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "try:" in out.read_text(), timeout=60, what="the demo banner")
        banner = out.read_text()
        drones_url = re.search(r"drones\s+(http://\S+)", banner)
        coop_key = re.search(r"coop key\s+(\S+)", banner)
        farmer_key = re.search(r"farmer key\s+(\S+)\s+\((\S+)\)", banner)
        assert drones_url, banner
        assert coop_key, banner
        assert farmer_key, banner
        started = time.monotonic()
        coop = {"Authorization": f"Bearer {coop_key.group(1)}"}

        def drones_seen() -> bool:
            return len(httpx.get(drones_url.group(1), headers=coop, timeout=5).json()) > 0

        wait_until(drones_seen, timeout=60, what="drones in the API")
        assert time.monotonic() - started < 30

        def drone_ids() -> set[str]:
            answer = httpx.get(drones_url.group(1), headers=coop, timeout=5).json()
            return {d["drone"] for d in answer}

        # a mixed fleet: dt-01 speaks wire v1, dt-03 MAVLink through a built-in bridge
        wait_until(lambda: {"dt-01", "dt-03"} <= drone_ids(), timeout=90, what="both drones")
        fields_url = drones_url.group(1).replace("/drones", "/fields")
        farmer = {"Authorization": f"Bearer {farmer_key.group(1)}"}
        listed = httpx.get(fields_url, headers=farmer, timeout=5).json()
        owned = [f for f in listed if f["kind"] == "field"]
        assert owned
        assert {f["owner"] for f in owned} == {farmer_key.group(2)}
        # Besides their fields, every key lists the commune-wide no-spray zones (read-only).
        assert {(f["kind"], f["coop"]) for f in listed if f not in owned} == {("no_spray", "")}
        assert httpx.get(drones_url.group(1), timeout=5).status_code == 401
        # The web app: each printed login link signs its role in once, by cookie.
        web = re.search(r"web app\s+(http://\S+)", banner)
        assert web, banner
        for role, owner in (("farmer", farmer_key.group(2)), ("coop", None)):
            link = re.search(rf"{role} login\s+(http://\S+/login/\S+)", banner)
            assert link, banner
            opened = httpx.get(link.group(1), timeout=10)
            assert opened.status_code == 200
            home = httpx.get(web.group(1), cookies=opened.cookies, timeout=10)
            assert home.status_code == 200
            assert "Ruộng của tôi" in home.text
            me = httpx.get(
                web.group(1) + "api/v1/session", cookies=opened.cookies, timeout=10
            ).json()
            assert me["role"] == role
            if owner is not None:
                assert me["subject"] == owner
            assert httpx.get(link.group(1), timeout=10).status_code == 400  # once only
        metadata = MetadataDB(tmp_path / "var" / "agridrone.db")
        try:
            wait_until(
                lambda: len(metadata.flights(0, 2**62)) > 0,
                timeout=60,
                what="the backfilled flights summarized",
            )
            # The drones named the cooperative's product: the diary has it, with the
            # safe-harvest date 14 days after the job's last spraying.
            wait_until(
                lambda: bool(_entries_with_a_product(metadata)),
                timeout=60,
                what="a diary entry naming the demo's product",
            )
            entry = _entries_with_a_product(metadata)[0]
            assert entry["product"]["trade_name"] == DEMO_PRODUCT.trade_name
            assert entry["planned_dose_l_per_ha"] == DEMO_PRODUCT.dose_l_per_ha
            last = datetime.fromisoformat(entry["last_spray"]).date()
            assert entry["safe_harvest_date"] == (last + timedelta(days=14)).isoformat()
        finally:
            metadata.close()
        wait_until(lambda: "-o usage.csv" in out.read_text(), timeout=60, what="the curl lines")
        coverage, report = printed_request(out, "coverage"), printed_request(out, "usage report")
        answer = httpx.get(coverage[1], headers=coverage[0], timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["coverage"]["covered_ha"] > 0
        csv = httpx.get(report[1], headers=report[0], timeout=10)
        assert csv.status_code == 200, csv.text
        assert csv.content.startswith(b"\xef\xbb\xbf")
        assert "Diện tích phun (ha)" in csv.content.decode("utf-8-sig")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0, out.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = out.read_text()
    at = text.find("Traceback")
    assert at < 0, (
        f"{text.count('Traceback')} tracebacks; the first:\n{text[max(0, at - 2000) : at + 3000]}"
    )


def _entries_with_a_product(metadata: MetadataDB) -> list[dict[str, Any]]:
    docs = [r.doc() for f in metadata.diary_fields() for r in metadata.diary_rows(f)]
    return [d for d in docs if d.get("product")]


def printed_request(out: Path, heading: str) -> tuple[dict[str, str], str]:
    """The headers and URL of the curl line the demo printed under ``heading``."""
    text = out.read_text()
    block = text[text.index(heading) :]
    found = re.search(r'curl -H "(Authorization): (Bearer \S+)" "(\S+)"', block)
    assert found, block
    return {found.group(1): found.group(2)}, found.group(3)
