"""Overlapping fields and zone scopes over real HTTP: what an import may claim, what is
listed, and that nobody sees another cooperative's flights through a field drawn over its
fields (both stores).

The ground (metres on the Đông Triều plane): htx-a's field "fa" is 100 m by 60 m at
y 0..60; htx-b's "fb" (100 m by 60 m at y 30..90) overlaps it by 3,000 m².
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.times import rfc3339
from fields.synthetic import T0_MS, Flight, collection, feature, rectangle
from flights.service import rebuild
from storage.contract import TelemetryStore
from storage.keys import Role, generate_key
from storage.metadata import MetadataDB
from storage.records import Event, Sample
from storage.sqlite import SqliteStore
from tests.integration.api_server import serving

pytestmark = pytest.mark.integration

A, B, C = "htx-a", "htx-b", "htx-c"
DAY = {"from": "2025-11-28", "to": "2025-11-29"}
HOUR_MS = 3_600_000

FA = feature("fa", rectangle(100, 60), coop=A, owner="nd-a")
FB = feature("fb", rectangle(100, 60, 0, 30), coop=B, owner="nd-b")


class Api:
    """The running API and a way to make keys."""

    def __init__(self, url: str, metadata: MetadataDB) -> None:
        self.url = url
        self.metadata = metadata

    def key(self, role: Role, subject: str) -> dict[str, str]:
        new = generate_key(role, subject, "test", int(time.time() * 1000))
        self.metadata.add_api_key(new.record)
        return {"Authorization": f"Bearer {new.key}"}

    def post(self, who: dict[str, str], *features: dict[str, Any], **params: str) -> httpx.Response:
        return httpx.post(
            f"{self.url}/api/v1/fields",
            json=collection(*features),
            params=params,
            headers=who,
            timeout=30,
        )

    def get(self, who: dict[str, str], path: str, **params: str) -> httpx.Response:
        return httpx.get(f"{self.url}/api/v1{path}", params=params, headers=who, timeout=30)


def serve(store: TelemetryStore, folder: Path) -> Iterator[Api]:
    metadata = MetadataDB(folder / "agridrone.db")
    try:
        with serving(create_app(store, metadata)) as url:
            yield Api(url, metadata)
    finally:
        metadata.close()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    with SqliteStore(tmp_path / "telemetry.db") as store:
        yield from serve(store, tmp_path)


@pytest.fixture
def with_fa(api: Api) -> Api:
    assert api.post(api.key("coop", A), FA).status_code == 201
    return api


def field_ids(api: Api) -> list[str]:
    return sorted(f["id"] for f in api.get(api.key("operator", "ops"), "/fields").json())


# --- registering overlapping fields ----------------------------------------------------


def test_a_field_over_another_cooperatives_field_is_409_naming_the_area(with_fa: Api) -> None:
    response = with_fa.post(with_fa.key("coop", B), FB)
    assert response.status_code == 409
    detail = response.json()["detail"]
    (problem,) = detail["problems"]
    assert problem.endswith("by about 3000 m² (50 % of fb)")
    assert "force=true" in detail["message"]
    assert field_ids(with_fa) == ["fa"]


def test_the_409_area_is_rounded_so_shifted_probes_learn_nothing_more(with_fa: Api) -> None:
    coop_b = with_fa.key("coop", B)
    answers = set()
    for shift_m in (0.0, 0.03, 0.04):  # overlaps of 3000, 2997 and 2996 m²
        probe = feature("fb", rectangle(100, 60, 0, 30 + shift_m), coop=B, owner="nd-b")
        response = with_fa.post(coop_b, probe)
        assert response.status_code == 409
        answers.add(response.text)
    assert len(answers) == 1


def test_a_refused_overlap_is_logged_for_operators_with_key_fields_and_coop(
    with_fa: Api, caplog: pytest.LogCaptureFixture
) -> None:
    coop_b = with_fa.key("coop", B)
    key_id = coop_b["Authorization"].split("_")[1]
    with caplog.at_level(logging.WARNING, logger="agridrone.api"):
        assert with_fa.post(coop_b, FB).status_code == 409
    (line,) = [r.getMessage() for r in caplog.records if "field_overlap_refused" in r.getMessage()]
    assert line == (
        f"field_overlap_refused key={key_id} field=fb coop={B} other=fa other_coop={A} "
        "area_m2=3000.0"
    )


def test_the_409_does_not_name_the_other_field_or_its_cooperative(with_fa: Api) -> None:
    text = with_fa.post(with_fa.key("coop", B), FB).text
    assert re.search(r"\bfa\b", text) is None
    assert A not in text
    assert "nd-a" not in text


def test_a_cooperative_may_not_force(with_fa: Api) -> None:
    response = with_fa.post(with_fa.key("coop", B), FB, force="true")
    assert response.status_code == 403
    assert "force=true is for operators" in response.json()["detail"]
    assert field_ids(with_fa) == ["fa"]


def test_an_operator_is_refused_too_unless_it_forces(with_fa: Api) -> None:
    ops = with_fa.key("operator", "ops")
    assert with_fa.post(ops, FB).status_code == 409
    assert with_fa.post(ops, FB, force="true").status_code == 201
    assert field_ids(with_fa) == ["fa", "fb"]


def test_a_sliver_along_the_boundary_is_tolerated(with_fa: Api) -> None:
    # 100 m by 0.15 m = 15 m², 0.25 % of either field.
    sliver = feature("fb", rectangle(100, 60, 0, 59.85), coop=B, owner="nd-b")
    assert with_fa.post(with_fa.key("coop", B), sliver).status_code == 201


def test_overlaps_within_one_cooperative_are_allowed(with_fa: Api) -> None:
    fa2 = feature("fa2", rectangle(100, 60, 50, 0), coop=A, owner="nd-a2")
    assert with_fa.post(with_fa.key("coop", A), fa2).status_code == 201


def test_a_no_spray_zone_over_another_cooperatives_field_is_not_an_overlap(
    with_fa: Api,
) -> None:
    pond = feature("pond-b", rectangle(20, 20, 40, 20), coop=B, kind="no_spray")
    assert with_fa.post(with_fa.key("coop", B), pond).status_code == 201


def test_two_new_fields_of_different_cooperatives_in_one_import_conflict(api: Api) -> None:
    ops = api.key("operator", "ops")
    response = api.post(ops, FA, FB)
    assert response.status_code == 409
    assert "about 3000 m² (50 % of f" in response.text
    assert field_ids(api) == []


# --- listing overlaps ------------------------------------------------------------------


@pytest.fixture
def overlapping(with_fa: Api) -> Api:
    fa2 = feature("fa2", rectangle(100, 60, 50, 0), coop=A, owner="nd-a2")
    assert with_fa.post(with_fa.key("coop", A), fa2).status_code == 201
    assert with_fa.post(with_fa.key("operator", "ops"), FB, force="true").status_code == 201
    return with_fa


def pairs(api: Api, who: dict[str, str]) -> dict[tuple[str, str], Any]:
    response = api.get(who, "/fields", overlaps="true")
    assert response.status_code == 200
    return {(p["field_id"], p["other_field_id"]): p for p in response.json()}


def test_a_cooperative_lists_the_overlaps_among_its_fields(overlapping: Api) -> None:
    found = pairs(overlapping, overlapping.key("coop", A))
    assert list(found) == [("fa", "fa2")]
    pair = found["fa", "fa2"]
    assert pair["area_m2"] == pytest.approx(3000.0, abs=0.1)
    assert pair["field_pct"] == pytest.approx(50.0, abs=0.01)
    assert pair["same_coop"] is True


def test_a_cooperative_never_lists_a_pair_with_a_field_it_may_not_see(overlapping: Api) -> None:
    assert pairs(overlapping, overlapping.key("coop", B)) == {}
    assert pairs(overlapping, overlapping.key("farmer", "nd-b")) == {}


def test_an_operator_lists_every_overlap(overlapping: Api) -> None:
    found = pairs(overlapping, overlapping.key("operator", "ops"))
    assert sorted(found) == [("fa", "fa2"), ("fa", "fb"), ("fa2", "fb")]
    assert found["fa", "fb"]["same_coop"] is False
    assert found["fa", "fb"]["area_m2"] == pytest.approx(3000.0, abs=0.1)


# --- zone scopes -------------------------------------------------------------------------


def test_a_cooperative_may_not_register_a_commune_wide_zone(api: Api) -> None:
    school = feature("school", rectangle(20, 20), kind="no_spray", scope="commune")
    response = api.post(api.key("coop", A), school)
    assert response.status_code == 403
    assert "registered by an operator" in response.json()["detail"]["message"]
    assert field_ids(api) == []


def test_an_operator_registers_a_commune_wide_zone(api: Api) -> None:
    school = feature("school", rectangle(20, 20), kind="no_spray", scope="commune")
    assert api.post(api.key("operator", "ops"), school).status_code == 201
    got = api.get(api.key("operator", "ops"), "/fields/school").json()
    assert got["properties"]["scope"] == "commune"


def test_a_cooperative_registers_its_own_zone(api: Api) -> None:
    pond = feature("pond", rectangle(20, 20), kind="no_spray", coop=A)
    assert api.post(api.key("coop", A), pond).status_code == 201
    got = api.get(api.key("coop", A), "/fields/pond").json()
    assert got["properties"]["scope"] == "coop"


def test_a_contradictory_scope_is_422(api: Api) -> None:
    pond = feature("pond", rectangle(20, 20), kind="no_spray", coop=A, scope="commune")
    response = api.post(api.key("operator", "ops"), pond)
    assert response.status_code == 422
    assert "belongs to no cooperative" in response.json()["detail"]["problems"][0]


# --- nobody sees another cooperative's flights through an overlapping field ------------


def spray(coop: str, drone: str, lines: list[float], t0_ms: int) -> list[Sample]:
    """A drone spraying passes along ``lines`` (x 0..100 m), with take-off height."""
    s = Flight(flow_lpm=6.0, swath_m=6.0, t_ms=t0_ms).boustrophedon(0.0, 100.0, lines).samples()
    return [
        Sample(
            coop,
            drone,
            int(s.ts_ms[i]),
            float(s.lat[i]),
            float(s.lon[i]),
            spraying=bool(s.spraying[i]),
            seq=i,
            alt_m=3.0,
            flow_lpm=6.0 if s.spraying[i] else 0.0,
            swath_m=6.0,
            fix="rtk_fixed",
        )
        for i in range(len(s))
    ]


FA_LINES = [3.0 + 6.0 * k for k in range(10)]  # all of fa, and fb's lower half with it
FB_TOP = [63.0 + 6.0 * k for k in range(5)]  # fb's upper half only (y 60..90)


@pytest.fixture
def flown(store: TelemetryStore, tmp_path: Path) -> Iterator[tuple[Api, dict[str, str]]]:
    """fa, and fb forced over it; three flights: A's drone over fa (no job), A's drone over
    fa on a job naming fb, and C's hired drone over fb's upper half."""
    store.write_samples(spray(A, "d-a", FA_LINES, T0_MS))
    store.write_samples(spray(A, "d-a", FA_LINES, T0_MS + HOUR_MS))
    store.write_events([Event(A, "d-a", T0_MS + HOUR_MS - 60_000, "job_start", {"field": "fb"})])
    store.write_samples(spray(C, "d-c", FB_TOP, T0_MS + 2 * HOUR_MS))
    for api in serve(store, tmp_path):
        ops = api.key("operator", "ops")
        assert api.post(ops, FA, FB, force="true").status_code == 201
        rebuild(
            store, api.metadata, T0_MS - HOUR_MS, T0_MS + 4 * HOUR_MS, now_ms=T0_MS + 86_400_000
        )
        flights = api.get(ops, "/flights", **DAY).json()["flights"]
        ids = {(f["drone"], f["job_fields"] == ["fb"]): f["id"] for f in flights}
        assert len(ids) == 3, flights
        yield (
            api,
            {
                "a_own": ids["d-a", False],
                "a_named_fb": ids["d-a", True],
                "c_hired": ids["d-c", False],
            },
        )


@pytest.mark.parametrize(("role", "subject"), [("coop", B), ("farmer", "nd-b")])
def test_b_does_not_see_as_flight_over_its_own_field_through_the_overlap(
    flown: tuple[Api, dict[str, str]], role: Role, subject: str
) -> None:
    api, ids = flown
    who = api.key(role, subject)
    listed = {f["id"] for f in api.get(who, "/flights", **DAY).json()["flights"]}
    assert ids["a_own"] not in listed
    assert api.get(who, f"/flights/{ids['a_own']}").status_code == 404
    over_fb = {f["id"] for f in api.get(who, "/flights", field="fb", **DAY).json()["flights"]}
    assert ids["a_own"] not in over_fb


@pytest.mark.parametrize(("role", "subject"), [("coop", B), ("farmer", "nd-b")])
def test_more_never_counts_a_flight_hidden_by_the_overlap(
    flown: tuple[Api, dict[str, str]], role: Role, subject: str
) -> None:
    api, _ = flown
    who = api.key(role, subject)
    page = api.get(who, "/flights", limit="2", **DAY).json()
    assert (page["returned"], page["more"]) == (2, False)
    first = api.get(who, "/flights", limit="1", **DAY).json()
    assert (first["returned"], first["more"]) == (1, True)


@pytest.mark.parametrize(("role", "subject"), [("coop", B), ("farmer", "nd-b")])
def test_b_still_sees_a_flight_sent_for_its_field_and_a_hired_drone(
    flown: tuple[Api, dict[str, str]], role: Role, subject: str
) -> None:
    api, ids = flown
    who = api.key(role, subject)
    listed = {f["id"]: f for f in api.get(who, "/flights", **DAY).json()["flights"]}
    assert set(listed) == {ids["a_named_fb"], ids["c_hired"]}
    assert all(f["whole_flight"] is False for f in listed.values())
    assert [s["field_id"] for s in listed[ids["a_named_fb"]]["fields"]] == ["fb"]


def test_bs_coverage_leaves_out_as_flight_through_the_overlap(
    flown: tuple[Api, dict[str, str]],
) -> None:
    api, ids = flown
    as_b = api.get(api.key("coop", B), "/fields/fb/coverage", **DAY).json()
    as_ops = api.get(api.key("operator", "ops"), "/fields/fb/coverage", **DAY).json()
    assert [f["id"] for f in as_b["flights"]] == [ids["a_named_fb"], ids["c_hired"]]
    assert [f["id"] for f in as_ops["flights"]] == [ids["a_own"], ids["a_named_fb"], ids["c_hired"]]
    # A's two flights sprayed the same half of fb, so B's coverage is still all of fb...
    assert as_b["coverage"]["coverage_pct"] == pytest.approx(100.0, abs=0.5)
    # ...but its passes and litres leave out the flight B may not see.
    own = api.get(api.key("operator", "ops"), f"/flights/{ids['a_own']}").json()
    (share,) = [s for s in own["fields"] if s["field_id"] == "fb"]
    assert share["passes"] >= 5
    assert as_b["coverage"]["passes"] == as_ops["coverage"]["passes"] - share["passes"]
    assert as_b["coverage"]["applied_l"] == pytest.approx(
        as_ops["coverage"]["applied_l"] - share["applied_l"], abs=0.01
    )


def test_b_sees_no_coverage_from_as_own_flight(flown: tuple[Api, dict[str, str]]) -> None:
    api, ids = flown
    window = {"from": "2025-11-28T10:00:00+07:00", "to": "2025-11-28T11:00:00+07:00"}
    as_b = api.get(api.key("coop", B), "/fields/fb/coverage", **window).json()
    as_ops = api.get(api.key("operator", "ops"), "/fields/fb/coverage", **window).json()
    assert [f["id"] for f in as_ops["flights"]] == [ids["a_own"]]
    assert as_ops["coverage"]["covered_ha"] > 0.25
    assert as_b["flights"] == []
    assert as_b["coverage"]["covered_ha"] == 0.0


def test_a_sees_its_own_flights_whole(flown: tuple[Api, dict[str, str]]) -> None:
    api, ids = flown
    got = api.get(api.key("coop", A), f"/flights/{ids['a_own']}").json()
    assert got["whole_flight"] is True
    assert {s["field_id"] for s in got["fields"]} == {"fa", "fb"}


# --- field versions reach into the past: so does the overlap rule ----------------------


def delete(api: Api, who: dict[str, str], field_id: str) -> None:
    response = httpx.delete(f"{api.url}/api/v1/fields/{field_id}", headers=who, timeout=30)
    assert response.status_code == 200, response.text


def put(api: Api, who: dict[str, str], field_id: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.put(f"{api.url}/api/v1/fields/{field_id}", json=body, headers=who, timeout=30)


def test_a_new_field_over_a_deleted_field_of_another_cooperative_is_409(with_fa: Api) -> None:
    # fb's first version would be valid from the beginning of time, when fa held the ground.
    delete(with_fa, with_fa.key("coop", A), "fa")
    response = with_fa.post(with_fa.key("coop", B), FB)
    assert response.status_code == 409
    assert "about 3000 m²" in response.text
    assert re.search(r"\bfa\b", response.text) is None
    assert field_ids(with_fa) == []


def test_an_operator_may_force_a_field_over_a_deleted_one(with_fa: Api) -> None:
    delete(with_fa, with_fa.key("coop", A), "fa")
    ops = with_fa.key("operator", "ops")
    assert with_fa.post(ops, FB).status_code == 409
    assert with_fa.post(ops, FB, force="true").status_code == 201


def test_a_past_dated_redraw_onto_a_deleted_field_of_another_cooperative_is_409(
    with_fa: Api,
) -> None:
    b = with_fa.key("coop", B)
    away = feature("fb", rectangle(100, 60, 0, 200), coop=B, owner="nd-b")
    assert with_fa.post(b, away).status_code == 201
    delete(with_fa, with_fa.key("coop", A), "fa")
    yesterday = rfc3339(int(time.time() * 1000) - 86_400_000)
    back = put(with_fa, b, "fb", {"geometry": FB["geometry"], "valid_from": yesterday})
    assert back.status_code == 409, back.text
    assert "about 3000 m²" in back.text
    assert len(with_fa.get(b, "/fields/fb/versions").json()) == 1
    # From now on the ground is free: the same redraw without a past valid_from is taken.
    now = put(with_fa, b, "fb", {"geometry": FB["geometry"]})
    assert now.status_code == 200, now.text


def test_a_field_turned_into_a_zone_still_holds_its_past_ground(with_fa: Api) -> None:
    a = with_fa.key("coop", A)
    assert put(with_fa, a, "fa", {"properties": {"kind": "no_spray"}}).status_code == 200
    assert with_fa.post(with_fa.key("coop", B), FB).status_code == 409


def test_b_still_does_not_see_as_flight_after_a_deletes_its_field(
    flown: tuple[Api, dict[str, str]],
) -> None:
    api, ids = flown
    delete(api, api.key("coop", A), "fa")
    for who in (api.key("coop", B), api.key("farmer", "nd-b")):
        listed = {f["id"] for f in api.get(who, "/flights", **DAY).json()["flights"]}
        assert listed == {ids["a_named_fb"], ids["c_hired"]}
        assert api.get(who, f"/flights/{ids['a_own']}").status_code == 404
        over_fb = api.get(who, "/flights", field="fb", **DAY).json()["flights"]
        assert ids["a_own"] not in {f["id"] for f in over_fb}
    as_b = api.get(api.key("coop", B), "/fields/fb/coverage", **DAY).json()
    assert [f["id"] for f in as_b["flights"]] == [ids["a_named_fb"], ids["c_hired"]]
