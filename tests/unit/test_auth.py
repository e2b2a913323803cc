"""Bearer keys become a Principal over real HTTP; the visibility rules, role by ownership."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterator

import pytest
from fastapi import FastAPI

from api.auth import (
    CoopOrOperatorDep,
    OperatorDep,
    Principal,
    PrincipalDep,
    can_read_field,
    can_see_coop,
    can_see_drone,
    can_see_field,
    can_see_flight,
    can_see_rejected,
    require_role,
)
from storage.keys import ROLES, Role, generate_key
from storage.metadata import MetadataDB

with warnings.catch_warnings():
    # Starlette 1.x asks for the httpx2 package behind its TestClient; httpx 0.28 still works.
    warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")
    from fastapi.testclient import TestClient

T0 = 1_764_300_000_000
FARMER = Principal("farmer", "nd-hp-13", "k000000001")
OTHER_FARMER = Principal("farmer", "nd-hp-14", "k000000002")
COOP = Principal("coop", "htx-hong-phong", "k000000003")
OTHER_COOP = Principal("coop", "htx-an-sinh", "k000000004")
OPERATOR = Principal("operator", "ops", "k000000005")


def build_app(metadata: MetadataDB) -> FastAPI:
    """The smallest app that uses each dependency the routes will use."""
    app = FastAPI()
    app.state.metadata = metadata

    @app.get("/whoami")
    def whoami(principal: PrincipalDep) -> dict[str, str]:
        return {"role": principal.role, "subject": principal.subject, "key_id": principal.key_id}

    @app.get("/rejected")
    def rejected(principal: OperatorDep) -> dict[str, str]:
        return {"subject": principal.subject}

    @app.get("/reports")
    def reports(principal: CoopOrOperatorDep) -> dict[str, str]:
        return {"subject": principal.subject}

    return app


@pytest.fixture
def metadata(metadata_url: str) -> Iterator[MetadataDB]:
    db = MetadataDB(metadata_url)
    yield db
    db.close()


@pytest.fixture
def client(metadata: MetadataDB) -> Iterator[TestClient]:
    with TestClient(build_app(metadata)) as c:
        yield c


def make_key(metadata: MetadataDB, role: Role, subject: str) -> tuple[str, str]:
    new = generate_key(role, subject, "", T0)
    metadata.add_api_key(new.record)
    return new.key, new.record.key_id


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# --- the dependency, through HTTP ------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_a_valid_key_yields_its_role_subject_and_key_id(
    client: TestClient, metadata: MetadataDB, role: Role
) -> None:
    key, key_id = make_key(metadata, role, "htx-hong-phong")
    response = client.get("/whoami", headers=bearer(key))
    assert response.status_code == 200
    assert response.json() == {"role": role, "subject": "htx-hong-phong", "key_id": key_id}


def test_no_key_is_401_with_a_bearer_challenge_and_a_hint(client: TestClient) -> None:
    response = client.get("/whoami")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in response.json()["detail"]


def test_another_scheme_is_401_naming_the_scheme(client: TestClient, metadata: MetadataDB) -> None:
    key, _ = make_key(metadata, "operator", "ops")
    response = client.get("/whoami", headers={"Authorization": f"Basic {key}"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "'Basic'" in response.json()["detail"]


def test_the_scheme_name_is_case_insensitive(client: TestClient, metadata: MetadataDB) -> None:
    key, _ = make_key(metadata, "farmer", "nd-hp-13")
    response = client.get("/whoami", headers={"Authorization": f"bearer {key}"})
    assert response.status_code == 200


@pytest.mark.parametrize("header", ["Bearer", "Bearer    "])
def test_an_empty_bearer_is_401(client: TestClient, header: str) -> None:
    response = client.get("/whoami", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_malformed_key_is_401_saying_how_keys_look(client: TestClient) -> None:
    response = client.get("/whoami", headers=bearer("hunter2"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert "malformed" in response.json()["detail"]


def test_an_unknown_key_is_401(client: TestClient) -> None:
    unknown = generate_key("operator", "ops", "", T0)
    response = client.get("/whoami", headers=bearer(unknown.key))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert unknown.record.key_id in response.json()["detail"]


def test_a_known_key_id_with_the_wrong_secret_is_401(
    client: TestClient, metadata: MetadataDB
) -> None:
    key, _ = make_key(metadata, "operator", "ops")
    forged = key[:-1] + ("A" if key[-1] != "A" else "B")
    response = client.get("/whoami", headers=bearer(forged))
    assert response.status_code == 401
    assert "not valid" in response.json()["detail"]


def test_a_revoked_key_is_401_saying_it_was_revoked(
    client: TestClient, metadata: MetadataDB
) -> None:
    key, key_id = make_key(metadata, "coop", "htx-hong-phong")
    assert client.get("/whoami", headers=bearer(key)).status_code == 200
    metadata.revoke_api_key(key_id, T0 + 1)
    response = client.get("/whoami", headers=bearer(key))
    assert response.status_code == 401
    assert response.json() == {
        "detail": f"API key {key_id} has been revoked; ask an operator for a new key"
    }


@pytest.mark.parametrize(
    ("route", "allowed"),
    [("/rejected", {"operator"}), ("/reports", {"coop", "operator"})],
)
@pytest.mark.parametrize("role", ROLES)
def test_role_restricted_routes_admit_only_their_roles(
    client: TestClient, metadata: MetadataDB, route: str, allowed: set[str], role: Role
) -> None:
    key, key_id = make_key(metadata, role, "htx-hong-phong")
    response = client.get(route, headers=bearer(key))
    if role in allowed:
        assert response.status_code == 200
        assert response.json() == {"subject": "htx-hong-phong"}
    else:
        assert response.status_code == 403
        detail = response.json()["detail"]
        assert key_id in detail
        assert f"is a {role} key" in detail


def test_role_restricted_routes_still_answer_401_without_a_key(client: TestClient) -> None:
    assert client.get("/rejected").status_code == 401
    assert client.get("/reports").status_code == 401


def test_require_role_refuses_unknown_or_missing_roles() -> None:
    with pytest.raises(ValueError, match="pilot"):
        require_role("pilot")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="roles among"):
        require_role()


def test_the_principal_is_frozen() -> None:
    with pytest.raises(AttributeError):
        FARMER.subject = "someone-else"  # type: ignore[misc]


# --- the visibility rules, every role against every ownership ---------------------------------

# (owner, coop) of a field: the farmer's own in their coop, the farmer's own in another coop,
# a neighbour's in the same coop, a stranger's elsewhere, and an unassigned field.
FIELDS = {
    "own": ("nd-hp-13", "htx-hong-phong"),
    "own_elsewhere": ("nd-hp-13", "htx-an-sinh"),
    "neighbour": ("nd-hp-14", "htx-hong-phong"),
    "stranger": ("nd-as-02", "htx-an-sinh"),
    "unassigned": ("", ""),
}
FIELD_EXPECTED = {
    "farmer": {"own", "own_elsewhere"},
    "coop": {"own", "neighbour"},
    "operator": set(FIELDS),
}
PRINCIPALS = {"farmer": FARMER, "coop": COOP, "operator": OPERATOR}


@pytest.mark.parametrize(("role", "kind"), list(itertools.product(PRINCIPALS, FIELDS)))
def test_field_visibility(role: str, kind: str) -> None:
    owner, coop = FIELDS[kind]
    assert can_see_field(PRINCIPALS[role], owner, coop) is (kind in FIELD_EXPECTED[role])


#: A farmer key made for Hồng Phong (by it, or by an operator naming it).
MEMBER_KEY = Principal("farmer", "nd-hp-13", "k000000011", coop="htx-hong-phong")


@pytest.mark.parametrize("kind", FIELDS)
def test_a_farmer_key_made_for_a_cooperative_sees_only_its_fields(kind: str) -> None:
    owner, coop = FIELDS[kind]
    assert can_see_field(MEMBER_KEY, owner, coop) is (kind == "own")


def test_a_cooperative_farmer_key_sees_through_it_only_its_flights() -> None:
    own, elsewhere = FIELDS["own"], FIELDS["own_elsewhere"]
    assert can_see_flight(MEMBER_KEY, "htx-an-sinh", [own])
    assert not can_see_flight(MEMBER_KEY, "htx-an-sinh", [elsewhere])


def test_an_empty_subject_never_matches_an_unassigned_field() -> None:
    blank_farmer = Principal("farmer", "", "k000000009")
    blank_coop = Principal("coop", "", "k000000010")
    assert not can_see_field(blank_farmer, "", "")
    assert not can_see_field(blank_coop, "", "")
    assert not can_see_drone(blank_coop, "")


@pytest.mark.parametrize(
    ("principal", "coop", "expected"),
    [
        (FARMER, "htx-hong-phong", False),
        (FARMER, "nd-hp-13", False),
        (COOP, "htx-hong-phong", True),
        (COOP, "htx-an-sinh", False),
        (OTHER_COOP, "htx-hong-phong", False),
        (OPERATOR, "htx-hong-phong", True),
        (OPERATOR, "htx-an-sinh", True),
    ],
)
def test_drone_and_coop_visibility(principal: Principal, coop: str, expected: bool) -> None:
    assert can_see_drone(principal, coop) is expected
    assert can_see_coop(principal, coop) is expected


@pytest.mark.parametrize(
    ("principal", "drone_coop", "fields", "expected"),
    [
        (FARMER, "htx-hong-phong", [FIELDS["own"]], True),
        (FARMER, "htx-hong-phong", [FIELDS["neighbour"], FIELDS["own"]], True),
        (FARMER, "htx-hong-phong", [FIELDS["neighbour"]], False),
        (FARMER, "htx-hong-phong", [], False),
        (OTHER_FARMER, "htx-an-sinh", [FIELDS["neighbour"]], True),
        (COOP, "htx-hong-phong", [], True),
        (COOP, "htx-an-sinh", [FIELDS["neighbour"]], True),
        (COOP, "htx-an-sinh", [FIELDS["stranger"], FIELDS["own_elsewhere"]], False),
        (OTHER_COOP, "htx-hong-phong", [FIELDS["own"]], False),
        (OPERATOR, "htx-an-sinh", [], True),
    ],
)
def test_flight_visibility(
    principal: Principal, drone_coop: str, fields: list[tuple[str, str]], expected: bool
) -> None:
    assert can_see_flight(principal, drone_coop, fields) is expected


@pytest.mark.parametrize("principal", [FARMER, COOP, OPERATOR])
def test_only_operators_read_the_rejected_log(principal: Principal) -> None:
    assert can_see_rejected(principal) is (principal.role == "operator")


# --- reading outlines: commune-wide zones are everyone's to read ---------------------------

ALL_KEYS = (FARMER, OTHER_FARMER, COOP, OTHER_COOP, OPERATOR)


@pytest.mark.parametrize("principal", ALL_KEYS)
def test_every_key_reads_a_commune_wide_zone(principal: Principal) -> None:
    assert can_read_field(principal, "no_spray", "", "")


@pytest.mark.parametrize(
    ("kind", "owner", "coop", "readers"),
    [
        ("field", "nd-hp-13", "htx-hong-phong", {FARMER, COOP, OPERATOR}),
        ("field", "", "", {OPERATOR}),  # a field with no cooperative is not a zone
        ("no_spray", "", "htx-hong-phong", {COOP, OPERATOR}),  # a cooperative's own zone
        ("no_spray", "nd-hp-13", "htx-hong-phong", {FARMER, COOP, OPERATOR}),
    ],
)
def test_other_outlines_are_read_as_they_are_seen(
    kind: str, owner: str, coop: str, readers: set[Principal]
) -> None:
    for principal in ALL_KEYS:
        assert can_read_field(principal, kind, owner, coop) is (principal in readers)
        assert can_see_field(principal, owner, coop) is (principal in readers)
