"""The harness itself: the fixtures start real servers that answer on their own ports."""

from __future__ import annotations

import httpx
import pytest

from tests.servers import Influxd, Mosquitto

pytestmark = pytest.mark.integration


def test_influxd_answers_ping_off_the_default_port(influxd: Influxd) -> None:
    assert httpx.get(f"{influxd.url}/ping").status_code == 204
    assert influxd.port != 8086


def test_mosquitto_listens_off_the_default_port(mosquitto: Mosquitto) -> None:
    assert mosquitto.port != 1883
    assert mosquitto.proc.poll() is None
