"""Flights over real HTTP, summarized out of both real stores: who lists which flights, and
how much of a flight a caller sees when it is someone else's drone over their field."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.api_world import HP, THE_DAY, YT, World

pytestmark = pytest.mark.integration


def listing(world: World, who: str, **params: str) -> dict[str, Any]:
    response = httpx.get(
        f"{world.url}/api/v1/flights",
        params={**THE_DAY, **params},
        headers=world.headers[who],
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def detail(world: World, who: str, flight_id: str) -> httpx.Response:
    return httpx.get(
        f"{world.url}/api/v1/flights/{flight_id}", headers=world.headers[who], timeout=30
    )


def ids(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f["coop"], f["drone"]) for f in body["flights"]]


def test_an_operator_lists_every_flight_of_the_day_oldest_first(world: World) -> None:
    body = listing(world, "operator")
    assert sorted(ids(body)) == sorted([(HP, "d-hp-a")] * 3 + [(YT, "d-yt-a")] * 2)
    assert [f["start_ms"] for f in body["flights"]] == sorted(
        f["start_ms"] for f in body["flights"]
    )
    assert all(f["whole_flight"] for f in body["flights"])
    assert body["more"] is False


def test_a_coop_sees_its_drones_whole_and_a_hired_drone_only_over_its_fields(
    world: World,
) -> None:
    flights = listing(world, "coop_hp")["flights"]
    own = [f for f in flights if f["coop"] == HP]
    hired = [f for f in flights if f["coop"] == YT]
    assert len(own) == 3
    assert all(f["whole_flight"] and "distance_flown_m" in f for f in own)
    assert len(hired) == 1
    assert hired[0]["whole_flight"] is False
    assert "distance_flown_m" not in hired[0]
    # It sprayed past dt-hp-002 onto the neighbouring dt-hp-003, also a Hồng Phong field.
    assert [s["field_id"] for s in hired[0]["fields"]] == ["dt-hp-002", "dt-hp-003"]


def test_a_farmer_lists_only_the_flights_over_their_fields(world: World) -> None:
    assert ids(listing(world, "farmer_hp00")) == [(HP, "d-hp-a")] * 3
    hired = listing(world, "farmer_hp01")["flights"]
    assert ids({"flights": hired}) == [(YT, "d-yt-a")]
    # Not the neighbour's dt-hp-003 that the same flight touched.
    assert [s["field_id"] for s in hired[0]["fields"]] == ["dt-hp-002"]
    assert listing(world, "farmer_none")["flights"] == []


def test_filters_by_drone_and_by_field(world: World) -> None:
    assert ids(listing(world, "operator", drone="d-yt-a")) == [(YT, "d-yt-a")] * 2
    by_field = listing(world, "operator", field="dt-yt-004")["flights"]
    assert len(by_field) == 1
    assert "dt-yt-004" in {s["field_id"] for s in by_field[0]["fields"]}
    assert listing(world, "coop_hp", coop=YT, field="dt-yt-004")["flights"] == []


def test_limit_cuts_the_list_and_says_there_is_more(world: World) -> None:
    body = listing(world, "operator", limit="2")
    assert body["returned"] == 2
    assert body["more"] is True


def test_one_flight_has_its_whole_summary_for_its_cooperative(world: World) -> None:
    first = listing(world, "coop_yt", field="dt-yt-004")["flights"][0]
    response = detail(world, "coop_yt", first["id"])
    assert response.status_code == 200
    body = response.json()
    assert {k: v for k, v in body.items() if k != "flags"} == first  # the list: codes only
    assert body["end_reason"] == "landing"
    assert body["applied_l"] > 0
    assert body["sprayed_in_fields_ha"] > 0
    assert body["start"].endswith("+07:00")
    assert body["samples_received"] > 100


def test_a_flight_the_caller_may_not_see_answers_like_one_that_does_not_exist(
    world: World,
) -> None:
    elsewhere = listing(world, "operator", field="dt-yt-004")["flights"][0]["id"]
    hidden = detail(world, "farmer_hp01", elsewhere)
    missing = detail(world, "farmer_hp01", "htx-yen-tho.d-yt-a.1")
    assert hidden.status_code == missing.status_code == 404
    assert detail(world, "coop_hp", elsewhere).status_code == 404


def test_a_farmer_sees_the_hired_flight_without_the_other_cooperatives_figures(
    world: World,
) -> None:
    hired = listing(world, "operator", field="dt-hp-002")["flights"][0]
    body = detail(world, "farmer_hp01", hired["id"]).json()
    assert body["whole_flight"] is False
    assert "applied_l" not in body
    assert {s["field_id"] for s in body["fields"]} == {"dt-hp-002"}
    assert body["job_fields"] == ["dt-hp-002"]  # the drone was hired for this field
