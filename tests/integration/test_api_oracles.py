"""No existence oracles, over real HTTP against both stores: asking about something the key
may not see gets exactly the answer for something that does not exist; and the flights and
report routes stay 4xx, never 500, on odd stored data and oversized asks."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from api.routes import reports
from storage.metadata import StoredFlight
from tests.integration.api_world import HP, THE_DAY, YT, World

pytestmark = pytest.mark.integration


def get(world: World, who: str, path: str, **params: str) -> httpx.Response:
    return httpx.get(
        f"{world.url}/api/v1{path}", params=params, headers=world.headers[who], timeout=30
    )


def flights_over(world: World, who: str, field: str) -> httpx.Response:
    return get(world, who, "/flights", **THE_DAY, field=field)


def test_a_field_the_farmer_may_not_see_lists_no_flights_like_a_missing_one(
    world: World,
) -> None:
    # The hired flight over nd-hp-01's dt-hp-002 also ran onto the neighbour's dt-hp-003:
    # listing by dt-hp-003 must not tell nd-hp-01 that it exists.
    touched = flights_over(world, "operator", "dt-hp-003").json()["flights"]
    assert any(f["coop"] == YT for f in touched)
    hidden = flights_over(world, "farmer_hp01", "dt-hp-003")
    missing = flights_over(world, "farmer_hp01", "dt-nowhere")
    assert hidden.status_code == missing.status_code == 200
    assert hidden.json() == missing.json()
    assert hidden.json()["flights"] == []


def test_a_field_of_another_coop_lists_no_flights_even_for_its_own_drone(world: World) -> None:
    # Yên Thọ's own drone flew Hồng Phong's dt-hp-002; the field is still not Yên Thọ's.
    hidden = flights_over(world, "coop_yt", "dt-hp-002")
    missing = flights_over(world, "coop_yt", "dt-nowhere")
    assert hidden.json() == missing.json()
    assert hidden.json()["flights"] == []
    assert flights_over(world, "coop_hp", "dt-hp-002").json()["flights"]


@pytest.mark.parametrize("param", ["field", "drone", "coop"])
@pytest.mark.parametrize("value", ["a/b", "..", "a b", "x" * 65])
def test_a_malformed_filter_is_422_naming_it(world: World, param: str, value: str) -> None:
    response = get(world, "operator", "/flights", **THE_DAY, **{param: value})
    assert response.status_code == 422
    assert response.json()["detail"].startswith(f"query parameter {param!r}: String should match")


def test_another_coops_drone_lists_like_a_missing_drone(world: World) -> None:
    # Hồng Phong's d-hp-a never flew over a Yên Thọ field, so Yên Thọ may see none of it.
    missing_drone = get(world, "coop_yt", "/flights", **THE_DAY, drone="d-nowhere")
    missing_coop = get(world, "coop_yt", "/flights", **THE_DAY, coop="htx-nowhere")
    assert missing_drone.json()["flights"] == missing_coop.json()["flights"] == []
    assert get(world, "coop_yt", "/flights", **THE_DAY, drone="d-hp-a").json() == (
        missing_drone.json()
    )
    assert get(world, "coop_yt", "/flights", **THE_DAY, coop=HP).json() == missing_coop.json()


def test_an_unknown_coop_report_is_404_like_a_hidden_one(world: World) -> None:
    hidden = get(world, "coop_hp", "/reports/usage", **THE_DAY, coop=YT)
    missing = get(world, "coop_hp", "/reports/usage", **THE_DAY, coop="htx-nowhere")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == {"detail": f"no cooperative {YT!r}"}
    assert missing.json() == {"detail": "no cooperative 'htx-nowhere'"}
    unknown = get(world, "operator", "/reports/usage", **THE_DAY, coop="htx-nowhere")
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": "no cooperative 'htx-nowhere'"}


def test_a_coop_key_without_a_tariff_yet_is_still_told_to_set_one(world: World) -> None:
    # The cooperative exists (a key was issued for it) even before `agridrone coops set`.
    newcomer = world.key("coop", "htx-newcomer")
    response = httpx.get(
        f"{world.url}/api/v1/reports/usage", params=THE_DAY, headers=newcomer, timeout=30
    )
    assert response.status_code == 409
    assert "agridrone coops set htx-newcomer --tariff-vnd-per-ha" in response.json()["detail"]


def test_a_report_over_the_flight_cap_is_422_saying_how_to_narrow(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reports, "MAX_FLIGHTS", 2)  # Hồng Phong flew 3 that day
    response = get(world, "coop_hp", "/reports/usage", **THE_DAY)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert f"holds more than 2 flights of cooperative {HP!r}" in detail
    assert "ask for a shorter window" in detail
    monkeypatch.setattr(reports, "MAX_FLIGHTS", 3)
    assert get(world, "coop_hp", "/reports/usage", **THE_DAY).status_code == 200


@pytest.fixture(scope="module")
def bare_flight(world: World) -> str:
    """A stored flight of d-hp-a whose summary has no ``fields`` (an old or odd summary),
    in 2020 so the day's listings are unchanged."""
    start = 1_577_836_800_000
    summary: dict[str, Any] = {"id": f"{HP}.d-hp-a.{start}", "coop": HP, "drone": "d-hp-a"}
    flight = StoredFlight(
        id=summary["id"],
        coop=HP,
        drone="d-hp-a",
        start_ms=start,
        end_ms=start + 60_000,
        open=False,
        summary=json.dumps(summary),
        computed_ms=start + 120_000,
    )
    world.metadata.save_flight(flight, [])
    return flight.id


@pytest.mark.parametrize(("who", "status"), [("operator", 200), ("coop_hp", 200)])
def test_a_flight_summary_without_fields_is_answered_not_500(
    world: World, bare_flight: str, who: str, status: int
) -> None:
    response = get(world, who, f"/flights/{bare_flight}")
    assert response.status_code == status, response.text
    assert response.json()["id"] == bare_flight


@pytest.mark.parametrize("who", ["farmer_hp00", "coop_yt"])
def test_a_flight_summary_without_fields_is_hidden_like_a_missing_one(
    world: World, bare_flight: str, who: str
) -> None:
    response = get(world, who, f"/flights/{bare_flight}")
    assert response.status_code == 404
    assert response.json() == {"detail": f"no flight {bare_flight!r}"}
