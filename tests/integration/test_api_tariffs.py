"""Tariff history over real HTTP: a cooperative's price changes, and its report prices each
flight at the tariff of the day it flew. This module changes its own world's tariffs (each
test a different cooperative), so it does not share the world of test_api_reports."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import pytest

from tests.integration.api_world import HP, TARIFF, THE_DAY, YT, World

pytestmark = pytest.mark.integration

#: The world's flights all fly on 2025-11-28 (local).
FLIGHT_DAY = date(2025, 11, 28)


def report(world: World, coop: str, **params: str) -> httpx.Response:
    return httpx.get(
        f"{world.url}/api/v1/reports/usage",
        params={**THE_DAY, "coop": coop, **params},
        headers=world.headers["operator"],
        timeout=30,
    )


def body(world: World, coop: str, **params: str) -> dict[str, Any]:
    response = report(world, coop, **params)
    assert response.status_code == 200, response.text
    doc: dict[str, Any] = response.json()
    return doc


def vnd(ha: Decimal, per_ha: Decimal) -> int:
    return int((ha * per_ha).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def test_a_new_price_reprices_only_flights_from_its_first_day(world: World) -> None:
    before = body(world, HP, group_by="field")
    ha = Decimal(str(before["totals"]["sprayed_ha"]))
    assert before["totals"]["amount_vnd"] == vnd(ha, Decimal(TARIFF))

    world.metadata.add_tariff(HP, 999_999, effective_from=date(2025, 11, 29))
    after_change = body(world, HP, group_by="field")
    assert after_change["rows"] == before["rows"]
    assert after_change["totals"] == before["totals"]
    assert [(t["from"], t["until"], t["vnd"]) for t in after_change["tariffs"]] == [
        (None, "2025-11-29", TARIFF)
    ]

    world.metadata.add_tariff(HP, 9_000, unit="sao", effective_from=FLIGHT_DAY)
    repriced = body(world, HP, group_by="field")
    # 9,000 VND per sào is 9,000 x 250/9 = 250,000 VND per hectare.
    assert repriced["totals"]["amount_vnd"] == vnd(ha, Decimal(250_000))
    assert [(t["from"], t["until"], t["vnd"], t["unit"]) for t in repriced["tariffs"]] == [
        ("2025-11-28", "2025-11-29", 9_000, "sao")
    ]
    assert {
        body(world, HP, group_by=g)["totals"]["amount_vnd"] for g in ("member", "drone", "day")
    } == {repriced["totals"]["amount_vnd"]}


def test_a_flight_before_the_first_tariff_is_409_naming_its_day(world: World) -> None:
    # A cooperative whose only tariff was set from a day after its flights (as
    # `agridrone coops set htx-yen-tho --tariff-vnd-per-ha N --from 2025-12-01` leaves it):
    # the world's own from-the-beginning tariff is removed first.
    with world.metadata._write() as tx:  # behind the API's back, on either metadata store
        tx.execute("DELETE FROM coop_tariffs WHERE coop = ?", (YT,))
    world.metadata.add_tariff(YT, TARIFF, effective_from=date(2025, 12, 1))
    response = report(world, YT)
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert "flew on 2025-11-28 (Asia/Ho_Chi_Minh)" in detail
    assert "first tariff (from 2025-12-01)" in detail
    assert f"agridrone coops set {YT} --tariff-vnd-per-ha N --from 2025-11-28" in detail
