"""The usage report over real HTTP, from flights summarized out of both real stores: what a
cooperative's own drones did, billed at its tariff, as JSON and as CSV for Excel."""

from __future__ import annotations

import csv
import io
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import pytest

from reports.usage import GROUP_BYS
from tests.integration.api_world import HP, TARIFF, THE_DAY, YT, World

pytestmark = pytest.mark.integration


def report(world: World, who: str, **params: str) -> httpx.Response:
    return httpx.get(
        f"{world.url}/api/v1/reports/usage",
        params={**THE_DAY, **params},
        headers=world.headers[who],
        timeout=30,
    )


def body(world: World, who: str, **params: str) -> dict[str, Any]:
    response = report(world, who, **params)
    assert response.status_code == 200, response.text
    doc: dict[str, Any] = response.json()
    return doc


def test_a_coop_reports_its_own_drones_flights_by_member_with_names(world: World) -> None:
    doc = body(world, "coop_hp")
    assert doc["coop"] == HP
    assert doc["coop_name"] == "HTX Hồng Phong"
    assert doc["totals"]["flights"] == 3  # its d-hp-a; the hired Yên Thọ drone bills Yên Thọ
    member = {r["key"]: r for r in doc["rows"]}
    assert member["nd-hp-00"]["label"] == "Nguyễn Văn Hưng"
    assert member["nd-hp-00"]["flights"] == 3


def test_a_neighbour_the_passes_ran_onto_is_not_billed(world: World) -> None:
    doc = body(world, "coop_hp", group_by="field")
    assert [r["key"] for r in doc["rows"]] == ["dt-hp-004"]  # the field the job named
    assert doc["not_billed_ha"] > 0


def test_the_amount_is_sprayed_hectares_times_the_tariff_rounded_once(world: World) -> None:
    doc = body(world, "coop_hp", group_by="field")
    exact = Decimal(str(doc["totals"]["sprayed_ha"])) * TARIFF
    assert doc["totals"]["amount_vnd"] == int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    assert doc["totals"]["amount_vnd"] == sum(r["amount_vnd"] for r in doc["rows"])
    assert doc["totals"]["amount_vnd"] > 0
    for row in doc["rows"]:
        assert abs(row["amount_vnd"] - Decimal(str(row["sprayed_ha"])) * TARIFF) < 1
    assert [(t["from"], t["vnd"], t["unit"]) for t in doc["tariffs"]] == [(None, TARIFF, "ha")]


@pytest.mark.parametrize("coop", ["coop_hp", "coop_yt"])
def test_every_grouping_bills_the_same_total(world: World, coop: str) -> None:
    totals = {g: body(world, coop, group_by=g)["totals"]["amount_vnd"] for g in GROUP_BYS}
    assert len(set(totals.values())) == 1, totals


def test_the_report_agrees_with_the_flights_it_counts(world: World) -> None:
    flights = httpx.get(
        f"{world.url}/api/v1/flights",
        params={**THE_DAY, "coop": YT},
        headers=world.headers["coop_yt"],
        timeout=30,
    ).json()["flights"]
    doc = body(world, "coop_yt", group_by="drone")
    (row,) = doc["rows"]
    assert row["key"] == "d-yt-a"
    assert row["flights"] == len(flights) == 2
    assert row["litres"] == pytest.approx(sum(f["applied_l"] for f in flights), abs=0.002)
    # Billed: the fields each flight's job named, not the neighbours its passes ran onto.
    assert sorted(f for fl in flights for f in fl["job_fields"]) == ["dt-hp-002", "dt-yt-004"]
    billed = [s for f in flights for s in f["fields"] if s["field_id"] in f["job_fields"]]
    spilled = [s for f in flights for s in f["fields"] if s["field_id"] not in f["job_fields"]]
    assert row["sprayed_ha"] == pytest.approx(sum(s["covered_ha"] for s in billed), abs=2e-6)
    assert spilled
    assert doc["not_billed_ha"] == pytest.approx(sum(s["covered_ha"] for s in spilled), abs=2e-6)


def test_grouping_by_day_gives_the_local_date(world: World) -> None:
    doc = body(world, "coop_hp", group_by="day")
    assert [r["key"] for r in doc["rows"]] == ["2025-11-28"]


def test_csv_in_vietnamese_opens_in_excel(world: World) -> None:
    response = report(world, "coop_hp", format="csv", lang="vi")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["content-disposition"]
    raw = response.content
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:2] == ["Mã thành viên", "Thành viên"]
    assert "Diện tích phun (ha)" in rows[0]
    assert rows[1][1] == "Nguyễn Văn Hưng"
    assert rows[-3][0] == "Tổng cộng"
    assert rows[-2:] == [[], ["Đơn giá (VND/ha)", str(TARIFF), "từ đầu"]]


def test_csv_in_english_uses_points_and_commas(world: World) -> None:
    response = report(world, "coop_hp", format="csv", lang="en", group_by="drone")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:2] == ["Drone", "Flights"]
    assert rows[1][0] == "d-hp-a"
    assert rows[-3][0] == "Total"
    assert rows[-1] == ["Tariff (VND/ha)", str(TARIFF), "from the start"]


def test_farmers_cannot_read_reports(world: World) -> None:
    response = report(world, "farmer_hp00")
    assert response.status_code == 403
    assert "coop or operator" in response.json()["detail"]


def test_a_coop_cannot_read_another_coops_report(world: World) -> None:
    response = report(world, "coop_hp", coop=YT)
    assert response.status_code == 404
    assert response.json()["detail"] == f"no cooperative {YT!r}"


def test_an_operator_names_the_coop(world: World) -> None:
    assert report(world, "operator").status_code == 422
    assert body(world, "operator", coop=YT)["totals"]["flights"] == 2


def test_a_coop_without_a_tariff_is_told_how_to_set_one(world: World) -> None:
    world.metadata.set_coop("htx-not-set-up", name="HTX chưa có giá")
    response = report(world, "operator", coop="htx-not-set-up")
    assert response.status_code == 409
    assert "agridrone coops set htx-not-set-up --tariff-vnd-per-ha" in response.json()["detail"]


def test_an_unknown_grouping_is_422(world: World) -> None:
    response = report(world, "coop_hp", group_by="province")
    assert response.status_code == 422
    assert "group_by" in response.json()["detail"]
