"""Seeing a flight through one field: a field drawn over a field of the drone's own
cooperative shows that cooperative's flights only when the flight's job named it."""

from __future__ import annotations

import pytest

from api.auth import Principal, can_see_flight_on_field

COOP_A = Principal("coop", "htx-a", "k000000001")
COOP_B = Principal("coop", "htx-b", "k000000002")
FARMER_B = Principal("farmer", "nd-b", "k000000003")
OPERATOR = Principal("operator", "ops", "k000000004")

#: (owner, coop) of field F of cooperative B.
FIELD_B = ("nd-b", "htx-b")
OVER_A = frozenset({"htx-a"})


@pytest.mark.parametrize("principal", [COOP_B, FARMER_B])
def test_a_field_over_the_drones_cooperatives_field_hides_its_flights(
    principal: Principal,
) -> None:
    assert not can_see_flight_on_field(principal, "htx-a", FIELD_B, overlapped_coops=OVER_A)


@pytest.mark.parametrize("principal", [COOP_B, FARMER_B])
def test_the_job_naming_the_field_shows_the_flight_through_it(principal: Principal) -> None:
    assert can_see_flight_on_field(
        principal, "htx-a", FIELD_B, overlapped_coops=OVER_A, named_by_job=True
    )


@pytest.mark.parametrize("principal", [COOP_B, FARMER_B])
def test_a_hired_drone_of_a_cooperative_whose_fields_it_does_not_overlap_is_seen(
    principal: Principal,
) -> None:
    assert can_see_flight_on_field(principal, "htx-c", FIELD_B, overlapped_coops=OVER_A)
    assert can_see_flight_on_field(principal, "htx-a", FIELD_B)


def test_the_drones_cooperative_and_operators_see_their_flights_whole() -> None:
    assert can_see_flight_on_field(COOP_A, "htx-a", FIELD_B, overlapped_coops=OVER_A)
    assert can_see_flight_on_field(OPERATOR, "htx-a", FIELD_B, overlapped_coops=OVER_A)


def test_the_cooperatives_own_drone_is_seen_through_its_own_field() -> None:
    assert can_see_flight_on_field(
        FARMER_B, "htx-b", FIELD_B, overlapped_coops=frozenset({"htx-a"})
    )


def test_a_field_the_caller_may_not_see_shows_nothing_even_when_named() -> None:
    other = ("nd-x", "htx-x")
    assert not can_see_flight_on_field(COOP_B, "htx-a", other, named_by_job=True)
    assert not can_see_flight_on_field(FARMER_B, "htx-a", other, named_by_job=True)
