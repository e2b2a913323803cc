"""Every route by every role over real HTTP, against both stores: the status each caller gets.

Roles: no key, a farmer who owns dt-hp-004 (sprayed by Hồng Phong's d-hp-a), the Hồng Phong
cooperative, the Yên Thọ cooperative (neither the field's nor the drone's), an operator.
What each may see inside a 200 is specified route by route in test_api_*.py.
"""

from __future__ import annotations

from typing import Any, Final

import httpx
import pytest

from tests.integration.api_world import HP, THE_DAY, World

pytestmark = pytest.mark.integration

ROLES: Final = ("none", "farmer_hp00", "coop_hp", "coop_yt", "operator")
DRONE: Final = f"/api/v1/drones/{HP}/d-hp-a"

#: (method, path, query, expected status per role in ROLES order). ``{flight}`` is a flight
#: of d-hp-a over dt-hp-004.
MATRIX: Final[tuple[tuple[str, str, dict[str, str], tuple[int, ...]], ...]] = (
    ("GET", "/healthz", {}, (200, 200, 200, 200, 200)),
    ("GET", "/readyz", {}, (200, 200, 200, 200, 200)),
    ("GET", "/metrics", {}, (401, 403, 403, 403, 200)),
    ("GET", "/api/v1/fields", {}, (401, 200, 200, 200, 200)),
    ("POST", "/api/v1/fields", {}, (401, 403, 201, 422, 201)),
    ("GET", "/api/v1/fields/dt-hp-004", {}, (401, 200, 200, 404, 200)),
    ("GET", "/api/v1/fields/dt-hp-004/coverage", THE_DAY, (401, 200, 200, 404, 200)),
    ("GET", "/api/v1/fields/dt-hp-004/versions", {}, (401, 200, 200, 404, 200)),
    ("PUT", "/api/v1/fields/dt-hp-004", {}, (401, 403, 200, 404, 200)),  # {}: no change
    # DELETE would remove the world's field; test_api_fields.py covers it role by role.
    ("DELETE", "/api/v1/fields/dt-unknown", {}, (401, 403, 404, 404, 404)),
    ("GET", "/api/v1/drones", {}, (401, 200, 200, 200, 200)),
    ("GET", DRONE, {}, (401, 404, 200, 404, 200)),
    ("GET", f"{DRONE}/track", THE_DAY, (401, 404, 200, 404, 200)),
    ("GET", "/api/v1/flights", THE_DAY, (401, 200, 200, 200, 200)),
    ("GET", "/api/v1/flights/{flight}", {}, (401, 200, 200, 404, 200)),
    ("GET", "/api/v1/reports/usage", {**THE_DAY, "coop": HP}, (401, 403, 200, 404, 200)),
    ("GET", "/api/v1/rejected", THE_DAY, (401, 403, 403, 403, 200)),
)

#: A Hồng Phong field far from the others, for the import route.
NEW_FIELD: Final = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {"id": "dt-roles-1", "name": "Thửa thử", "owner": "nd-hp-00", "coop": HP},
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [[106.59, 21.11], [106.5905, 21.11], [106.5905, 21.1104], [106.59, 21.11]]
                ],
            },
        }
    ],
}


def test_every_route_is_in_the_matrix(world: World) -> None:
    served = {
        (method, path)
        for path, item in httpx.get(f"{world.url}/openapi.json").json()["paths"].items()
        for method in (m.upper() for m in item)
    }
    path_of = {
        "/api/v1/flights/{flight}": "/api/v1/flights/{flight_id}",
        "/api/v1/fields/dt-unknown": "/api/v1/fields/{field_id}",
    }
    tested = {
        (
            m,
            path_of.get(p, p)
            .replace(DRONE, "/api/v1/drones/{coop}/{drone}")
            .replace("dt-hp-004", "{field_id}"),
        )
        for m, p, _, _ in MATRIX
    }
    assert served == tested


@pytest.fixture(scope="module")
def hp_flight(world: World) -> str:
    flights = httpx.get(
        f"{world.url}/api/v1/flights",
        params={**THE_DAY, "field": "dt-hp-004"},
        headers=world.headers["operator"],
    ).json()["flights"]
    flight_id: str = flights[0]["id"]
    return flight_id


@pytest.mark.parametrize(
    ("method", "path", "query", "expected", "role"),
    [
        pytest.param(m, p, q, status, role, id=f"{m} {p} as {role}")
        for m, p, q, statuses in MATRIX
        for role, status in zip(ROLES, statuses, strict=True)
    ],
)
def test_route_answers_the_role(  # noqa: PLR0917 -- one parametrized case per row
    world: World,
    hp_flight: str,
    method: str,
    path: str,
    query: dict[str, str],
    expected: int,
    role: str,
) -> None:
    headers = {} if role == "none" else world.headers[role]
    kwargs: dict[str, Any] = {"params": query, "headers": headers, "timeout": 30}
    if method == "POST":
        kwargs["json"] = NEW_FIELD
    if method == "PUT":
        kwargs["json"] = {}
    url = world.url + path.replace("{flight}", hp_flight)
    response = httpx.request(method, url, **kwargs)
    assert response.status_code == expected, response.text
    if expected >= 400:
        assert response.json()["detail"]
