"""``agridrone demo`` starts the whole service on embedded defaults and stops cleanly."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.mqtt_helpers import wait_until

pytestmark = pytest.mark.integration


def test_demo_shows_drones_arriving_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    out = tmp_path / "demo.out"
    argv = [sys.executable, "-m", "agridrone.cli", "demo", "--data-dir", str(tmp_path / "var")]
    with out.open("wb") as sink:
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "API" in out.read_text(), timeout=60, what="the demo banner")
        match = re.search(r"drones\s+(http://\S+)", out.read_text())
        assert match, out.read_text()
        started = time.monotonic()

        def drones_seen() -> bool:
            return len(httpx.get(match.group(1), timeout=5).json()) > 0

        wait_until(drones_seen, timeout=60, what="drones in the API")
        assert time.monotonic() - started < 30
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0, out.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in out.read_text()
