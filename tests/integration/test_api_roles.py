"""Every route by every role by whose resource it is, over real HTTP, against both stores.

Callers: no key, two farmers of two cooperatives (nd-hp-00 owns dt-hp-004, nd-yt-02 owns
dt-yt-004), the two cooperatives (Hồng Phong, Yên Thọ) and an operator. Resources of both
cooperatives: their fields, drones, flights (``hp``: d-hp-a over dt-hp-004; ``yt``: d-yt-a
over dt-yt-004; ``hired``: Yên Thọ's d-yt-a over Hồng Phong's dt-hp-002, owned by a third
farmer) and reports. A thing a caller may not see answers exactly like one that does not
exist (same status, same body). Writes go to fresh fields made per case, and a refused
write must leave the stored field exactly as it was. What each caller sees inside a 200 is
specified route by route in test_api_*.py; the lists are checked here for ownership.
"""

from __future__ import annotations

import itertools
import re
from typing import Any, Final

import httpx
import orjson
import pytest

from fields.gis import KML_MEDIA_TYPE, export
from fields.registry import parse_fields
from fields.stored import to_stored
from fields.synthetic import T0_MS
from storage.drones import DroneRecord
from storage.keys import generate_key
from storage.metadata import JobRecord, job_key
from tests.integration.api_world import HP, THE_DAY, YT, World

pytestmark = pytest.mark.integration

ROLES: Final = ("none", "farmer_hp00", "farmer_yt02", "coop_hp", "coop_yt", "operator")
HP_DRONE: Final = f"/api/v1/drones/{HP}/d-hp-a"
YT_DRONE: Final = f"/api/v1/drones/{YT}/d-yt-a"
HP_FIELD: Final = "dt-hp-004"
YT_FIELD: Final = "dt-yt-004"
ZONE: Final = "dt-ns-01"  # a commune-wide no-spray zone of the packaged fields
NO_KEY: Final = "zzzzzzzzz0"  # a key id no key has

#: Who may see a thing of Hồng Phong's member nd-hp-00, of Yên Thọ's member nd-yt-02, of a
#: cooperative alone (its drones), and routes for operators only.
SEES_HP_FIELD: Final = (401, 200, 404, 200, 404, 200)
SEES_YT_FIELD: Final = (401, 404, 200, 404, 200, 200)
SEES_HP_DRONE: Final = (401, 404, 404, 200, 404, 200)
SEES_YT_DRONE: Final = (401, 404, 404, 404, 200, 200)
ANY_KEY: Final = (401, 200, 200, 200, 200, 200)
OPERATOR: Final = (401, 403, 403, 403, 403, 200)
EVERYONE: Final = (200,) * 6

#: (method, path, query, expected status per role in ROLES order) of the reading routes.
#: ``{hp}``, ``{yt}``, ``{hired}`` are flights (see the module docstring); ``{gone}`` is a
#: flight id that does not exist.
READS: Final[tuple[tuple[str, str, dict[str, str], tuple[int, ...]], ...]] = (
    ("GET", "/healthz", {}, EVERYONE),
    ("GET", "/readyz", {}, EVERYONE),
    ("GET", "/metrics", {}, OPERATOR),
    ("GET", "/api/v1/fields", {}, ANY_KEY),
    ("GET", "/api/v1/fields", {"overlaps": "true"}, ANY_KEY),
    ("GET", "/api/v1/fields", {"format": "geojson"}, ANY_KEY),
    ("GET", f"/api/v1/fields/{HP_FIELD}", {}, SEES_HP_FIELD),
    ("GET", f"/api/v1/fields/{YT_FIELD}", {}, SEES_YT_FIELD),
    ("GET", "/api/v1/fields/dt-gone", {}, (401, 404, 404, 404, 404, 404)),
    # A commune-wide no-spray zone binds everyone's fields, so every key reads it (and its
    # versions); it has no coverage of its own (422 for every key); writes: operators only.
    ("GET", f"/api/v1/fields/{ZONE}", {}, ANY_KEY),
    ("GET", f"/api/v1/fields/{ZONE}/versions", {}, ANY_KEY),
    ("GET", f"/api/v1/fields/{ZONE}/coverage", THE_DAY, (401, 422, 422, 422, 422, 422)),
    # A malformed id tells nothing about data: 422 for every key.
    ("GET", "/api/v1/fields/a.b", {}, (401, 422, 422, 422, 422, 422)),
    ("GET", f"/api/v1/fields/{HP_FIELD}/coverage", THE_DAY, SEES_HP_FIELD),
    ("GET", f"/api/v1/fields/{YT_FIELD}/coverage", THE_DAY, SEES_YT_FIELD),
    ("GET", f"/api/v1/fields/{HP_FIELD}/versions", {}, SEES_HP_FIELD),
    ("GET", f"/api/v1/fields/{YT_FIELD}/versions", {}, SEES_YT_FIELD),
    # GIS files (docs/gis.md): the same callers as the JSON they stand for.
    ("GET", "/api/v1/fields", {"format": "shp"}, ANY_KEY),
    ("GET", "/api/v1/fields", {"format": "isoxml", "limit": "1"}, ANY_KEY),
    ("GET", f"/api/v1/fields/{HP_FIELD}", {"format": "kml"}, SEES_HP_FIELD),
    ("GET", f"/api/v1/fields/{YT_FIELD}", {"format": "isoxml"}, SEES_YT_FIELD),
    ("GET", f"/api/v1/fields/{ZONE}", {"format": "kml"}, ANY_KEY),
    ("GET", f"/api/v1/fields/{HP_FIELD}/coverage", {**THE_DAY, "format": "kml"}, SEES_HP_FIELD),
    ("GET", f"/api/v1/fields/{YT_FIELD}/coverage", {**THE_DAY, "format": "shp"}, SEES_YT_FIELD),
    ("GET", f"/api/v1/fields/{HP_FIELD}/coverage", {**THE_DAY, "format": "isoxml"}, SEES_HP_FIELD),
    (
        "GET",
        f"/api/v1/fields/{ZONE}/coverage",
        {**THE_DAY, "format": "kml"},
        (401, 422, 422, 422, 422, 422),
    ),
    ("GET", "/api/v1/drones", {}, ANY_KEY),
    ("GET", HP_DRONE, {}, SEES_HP_DRONE),
    ("GET", YT_DRONE, {}, SEES_YT_DRONE),
    ("GET", f"{HP_DRONE}/track", THE_DAY, SEES_HP_DRONE),
    ("GET", f"{YT_DRONE}/track", THE_DAY, SEES_YT_DRONE),
    ("GET", f"{HP_DRONE}/track", {**THE_DAY, "max_points": "10"}, SEES_HP_DRONE),
    ("GET", f"{YT_DRONE}/track", {**THE_DAY, "max_points": "10"}, SEES_YT_DRONE),
    ("GET", "/api/v1/flights", THE_DAY, ANY_KEY),
    ("GET", "/api/v1/flights/{hp}", {}, SEES_HP_FIELD),
    ("GET", "/api/v1/flights/{yt}", {}, SEES_YT_FIELD),
    # A hired drone's flight: its cooperative, the field's cooperative (that field's part).
    ("GET", "/api/v1/flights/{hired}", {}, (401, 404, 404, 200, 200, 200)),
    ("GET", "/api/v1/flights/{gone}", {}, (401, 404, 404, 404, 404, 404)),
    # A flight's track: whoever sees the flight (a farmer and a hired drone's field
    # cooperative only the part near their fields: test_api_flight_track.py).
    ("GET", "/api/v1/flights/{hp}/track", {}, SEES_HP_FIELD),
    ("GET", "/api/v1/flights/{yt}/track", {}, SEES_YT_FIELD),
    ("GET", "/api/v1/flights/{hired}/track", {}, (401, 404, 404, 200, 200, 200)),
    ("GET", "/api/v1/flights/{gone}/track", {}, (401, 404, 404, 404, 404, 404)),
    ("GET", "/api/v1/flights/{hp}/track", {"max_points": "10"}, SEES_HP_FIELD),
    ("GET", "/api/v1/flights/{hired}/track", {"max_points": "10"}, (401, 404, 404, 200, 200, 200)),
    ("GET", "/api/v1/flights/{hp}/track", {"max_points": "3"}, (401, 422, 422, 422, 422, 422)),
    ("GET", "/api/v1/flights/a.b/track", {}, (401, 422, 422, 422, 422, 422)),
    ("GET", "/api/v1/reports/usage", {**THE_DAY, "coop": HP}, (401, 403, 403, 200, 404, 200)),
    ("GET", "/api/v1/reports/usage", {**THE_DAY, "coop": YT}, (401, 403, 403, 404, 200, 200)),
    # Invoices (the same report as one PDF of a bill per member): the same rules.
    (
        "GET",
        "/api/v1/reports/usage",
        {**THE_DAY, "coop": HP, "format": "pdf"},
        (401, 403, 403, 200, 404, 200),
    ),
    (
        "GET",
        "/api/v1/reports/usage",
        {**THE_DAY, "coop": YT, "format": "pdf"},
        (401, 403, 403, 404, 200, 200),
    ),
    ("GET", "/api/v1/rejected", THE_DAY, OPERATOR),
    ("GET", "/api/v1/session", {}, ANY_KEY),
    # Pages: the same rules page by page; a bad cursor is 422 for whoever may call the route.
    ("GET", "/api/v1/fields", {"limit": "1"}, ANY_KEY),
    ("GET", "/api/v1/fields", {"cursor": "!!"}, (401, 422, 422, 422, 422, 422)),
    ("GET", "/api/v1/drones", {"limit": "1"}, ANY_KEY),
    ("GET", "/api/v1/drones", {"cursor": "!!"}, (401, 422, 422, 422, 422, 422)),
    ("GET", "/api/v1/flights", {**THE_DAY, "limit": "1"}, ANY_KEY),
    ("GET", "/api/v1/flights", {**THE_DAY, "cursor": "!!"}, (401, 422, 422, 422, 422, 422)),
    ("GET", f"/api/v1/fields/{HP_FIELD}/versions", {"limit": "1"}, SEES_HP_FIELD),
    ("GET", f"/api/v1/fields/{YT_FIELD}/versions", {"limit": "1"}, SEES_YT_FIELD),
    ("GET", "/api/v1/rejected", {**THE_DAY, "limit": "1"}, OPERATOR),
    ("GET", "/api/v1/rejected", {**THE_DAY, "cursor": "!!"}, (401, 403, 403, 403, 403, 422)),
    # The spray diary: the field's farmer, its cooperative, operators; a zone has none.
    ("GET", f"/api/v1/fields/{HP_FIELD}/diary", {}, SEES_HP_FIELD),
    ("GET", f"/api/v1/fields/{YT_FIELD}/diary", {}, SEES_YT_FIELD),
    ("GET", f"/api/v1/fields/{HP_FIELD}/diary", {"format": "csv"}, SEES_HP_FIELD),
    ("GET", f"/api/v1/fields/{YT_FIELD}/diary", {"format": "pdf"}, SEES_YT_FIELD),
    ("GET", f"/api/v1/fields/{ZONE}/diary", {}, (401, 404, 404, 404, 404, 404)),
    # Products: a cooperative's own (and operators); farmers read them in their diary.
    ("GET", "/api/v1/products", {}, ANY_KEY),
    ("GET", f"/api/v1/products/{HP}/validan", {}, SEES_HP_DRONE),
    ("GET", f"/api/v1/products/{YT}/anvil", {}, SEES_YT_DRONE),
    # Writes without a body: refused for farmers by role, else for the missing body.
    ("POST", "/api/v1/products", {}, (401, 403, 403, 422, 422, 422)),
    ("PUT", f"/api/v1/products/{HP}/validan", {}, (401, 403, 403, 422, 422, 422)),
    # Jobs: the drone's cooperative and operators (test_api_diary.py: by owner).
    ("GET", "/api/v1/jobs", THE_DAY, (401, 403, 403, 200, 200, 200)),
    ("GET", f"/api/v1/jobs/{HP}.d-hp-a.j-none", {}, (401, 404, 404, 404, 404, 404)),
    ("PUT", f"/api/v1/jobs/{HP}.d-hp-a.j-none", {}, (401, 422, 422, 422, 422, 422)),
    # A job's re-fly list: who reads the job (``flights`` records a job of each drone).
    ("GET", f"/api/v1/jobs/{HP}.d-hp-a.j-roles/refly", {}, SEES_HP_DRONE),
    ("GET", f"/api/v1/jobs/{YT}.d-yt-a.j-roles/refly", {"format": "csv"}, SEES_YT_DRONE),
    ("GET", f"/api/v1/jobs/{HP}.d-hp-a.j-roles/refly", {"format": "geojson"}, SEES_HP_DRONE),
    ("GET", f"/api/v1/jobs/{HP}.d-hp-a.j-none/refly", {}, (401, 404, 404, 404, 404, 404)),
    # A min_m2 out of bounds tells nothing about data: 422 for every key.
    (
        "GET",
        f"/api/v1/jobs/{HP}.d-hp-a.j-roles/refly",
        {"min_m2": "0"},
        (401, 422, 422, 422, 422, 422),
    ),
    # Flight-log upload (an empty body: 415 for who may upload, nothing stored; the drones
    # are registered by the ``flights`` fixture). tests/integration/test_api_logs.py imports.
    ("POST", f"{HP_DRONE}/logs", {}, (401, 404, 404, 415, 404, 415)),
    ("POST", f"{YT_DRONE}/logs", {}, (401, 404, 404, 404, 415, 415)),
    # Keys: operators every key, a cooperative the farmer keys made for it (KEY_WRITES);
    # farmers none. A bodiless create is 422, an unknown key 404, a malformed id 422.
    ("GET", "/api/v1/keys", {}, (401, 403, 403, 200, 200, 200)),
    ("GET", "/api/v1/keys", {"active": "true"}, (401, 403, 403, 200, 200, 200)),
    ("POST", "/api/v1/keys", {}, (401, 403, 403, 422, 422, 422)),
    ("DELETE", f"/api/v1/keys/{NO_KEY}", {}, (401, 403, 403, 404, 404, 404)),
    ("DELETE", "/api/v1/keys/a.b", {}, (401, 403, 403, 422, 422, 422)),
    ("POST", f"/api/v1/keys/{NO_KEY}/login-link", {}, (401, 403, 403, 404, 404, 404)),
)

#: (name, method, expected status per role) of the writes. Each targets a fresh field of
#: Hồng Phong's member nd-hp-00 made for the case (``target``).
#: - ``import``: POST a new Hồng Phong field; ``import-kml``: the same as a KML file;
#: - ``take``: POST the target's id as a Yên Thọ field (another cooperative's id);
#: - ``rename`` / ``move``: PUT a new name / PUT ``coop`` Yên Thọ;
#: - ``delete``: DELETE the target.
WRITES: Final[tuple[tuple[str, str, tuple[int, ...]], ...]] = (
    ("import", "POST", (401, 403, 403, 201, 422, 201)),
    ("import-kml", "POST", (401, 403, 403, 201, 422, 201)),
    ("take", "POST", (401, 403, 403, 422, 409, 201)),
    ("rename", "PUT", (401, 403, 403, 200, 404, 200)),
    ("move", "PUT", (401, 403, 403, 403, 404, 200)),
    ("delete", "DELETE", (401, 403, 403, 200, 404, 200)),
)

#: (name, method, path, body, expected status per role) of the key writes. Each case
#: targets a fresh key (``{target}``), made by an operator:
#: - ``member``: a farmer key made for Hồng Phong; ``unscoped``: a farmer key of no
#:   cooperative; ``coop``: a Hồng Phong cooperative key.
KEY_WRITES: Final[tuple[tuple[str, str, str, dict[str, Any] | None, tuple[int, ...]], ...]] = (
    ("revoke member", "DELETE", "/{member}", None, (401, 403, 403, 200, 404, 200)),
    ("revoke unscoped", "DELETE", "/{unscoped}", None, (401, 403, 403, 404, 404, 200)),
    ("revoke coop", "DELETE", "/{coop}", None, (401, 403, 403, 404, 404, 200)),
    ("link member", "POST", "/{member}/login-link", {}, (401, 403, 403, 201, 404, 201)),
    ("link unscoped", "POST", "/{unscoped}/login-link", {}, (401, 403, 403, 404, 404, 201)),
    ("link coop", "POST", "/{coop}/login-link", None, (401, 403, 403, 404, 404, 201)),
    (
        "create own farmer",
        "POST",
        "",
        {"role": "farmer", "subject": "nd-hp-00"},
        (401, 403, 403, 201, 201, 201),
    ),
    (
        "create hp farmer",
        "POST",
        "",
        {"role": "farmer", "subject": "nd-hp-00", "coop": HP},
        (401, 403, 403, 201, 422, 201),
    ),
    ("create coop", "POST", "", {"role": "coop", "subject": HP}, (401, 403, 403, 403, 403, 201)),
    (
        "create operator",
        "POST",
        "",
        {"role": "operator", "subject": "ops"},
        (401, 403, 403, 403, 403, 201),
    ),
)

#: Each write case gets its own square, 60 m apart, far from the world's fields.
_SQUARES = itertools.count()


def _square(field_id: str, coop: str, owner: str, name: str = "Thửa thử") -> dict[str, Any]:
    n = next(_SQUARES)
    lon, lat = 106.59 + 0.0006 * (n % 40), 21.11 + 0.0006 * (n // 40)
    ring = [[lon, lat], [lon + 0.0004, lat], [lon + 0.0004, lat + 0.0004], [lon, lat + 0.0004]]
    return {
        "type": "Feature",
        "properties": {"id": field_id, "name": name, "owner": owner, "coop": coop},
        "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
    }


@pytest.fixture(scope="module")
def flights(world: World) -> dict[str, str]:
    """The ids of the flights the matrix names (and the world's two drones registered, so
    that their owners may upload flight logs, and a job ``j-roles`` of each drone on its
    cooperative's field, for the re-fly list)."""
    for coop, drone in ((HP, "d-hp-a"), (YT, "d-yt-a")):
        if world.metadata.drone(coop, drone) is None:
            world.metadata.add_drone(DroneRecord(coop, drone, None, 0, "$7$not-a-real-hash"))
    world.metadata.record_jobs(
        [
            JobRecord(job_key(coop, drone, "j-roles"), coop, drone, "j-roles", T0_MS, None, (f,))
            for coop, drone, f in ((HP, "d-hp-a", HP_FIELD), (YT, "d-yt-a", YT_FIELD))
        ]
    )

    def first(field_id: str, coop: str) -> str:
        body = httpx.get(
            f"{world.url}/api/v1/flights",
            params={**THE_DAY, "field": field_id, "coop": coop},
            headers=world.headers["operator"],
            timeout=30,
        ).json()
        flight_id: str = body["flights"][0]["id"]
        return flight_id

    return {
        "hp": first(HP_FIELD, HP),
        "yt": first(YT_FIELD, YT),
        "hired": first("dt-hp-002", YT),
        "gone": f"{YT}.d-yt-a.1",
    }


def _routes_served(world: World) -> set[tuple[str, str]]:
    paths = httpx.get(f"{world.url}/openapi.json", timeout=30).json()["paths"]
    return {(method.upper(), path) for path, item in paths.items() for method in item}


def _template(path: str) -> str:
    for concrete, template in (
        (HP_DRONE, "/api/v1/drones/{coop}/{drone}"),
        (YT_DRONE, "/api/v1/drones/{coop}/{drone}"),
        (f"/api/v1/fields/{HP_FIELD}", "/api/v1/fields/{field_id}"),
        (f"/api/v1/fields/{YT_FIELD}", "/api/v1/fields/{field_id}"),
        ("/api/v1/fields/dt-gone", "/api/v1/fields/{field_id}"),
        (f"/api/v1/fields/{ZONE}", "/api/v1/fields/{field_id}"),
        ("/api/v1/fields/a.b", "/api/v1/fields/{field_id}"),
        (f"/api/v1/products/{HP}/validan", "/api/v1/products/{coop}/{product_id}"),
        (f"/api/v1/products/{YT}/anvil", "/api/v1/products/{coop}/{product_id}"),
        (f"/api/v1/jobs/{HP}.d-hp-a.j-none", "/api/v1/jobs/{job_id}"),
        ("/api/v1/flights/a.b/", "/api/v1/flights/{flight_id}/"),
        (f"/api/v1/jobs/{HP}.d-hp-a.j-roles", "/api/v1/jobs/{job_id}"),
        (f"/api/v1/jobs/{YT}.d-yt-a.j-roles", "/api/v1/jobs/{job_id}"),
        (f"/api/v1/keys/{NO_KEY}", "/api/v1/keys/{key_id}"),
        ("/api/v1/keys/a.b", "/api/v1/keys/{key_id}"),
    ):
        path = path.replace(concrete, template)
    for name in ("{hp}", "{yt}", "{hired}", "{gone}"):
        path = path.replace(name, "{flight_id}")
    return path


def test_every_route_is_in_the_matrix(world: World) -> None:
    write_paths = {"POST": "/api/v1/fields", "PUT": "/api/v1/fields/{field_id}"}
    write_paths["DELETE"] = write_paths["PUT"]
    tested = {(m, _template(p)) for m, p, _, _ in READS}
    tested |= {(m, write_paths[m]) for _, m, _ in WRITES}
    tested |= {
        (m, "/api/v1/keys" + re.sub(r"\{\w+\}", "{key_id}", p)) for _, m, p, _, _ in KEY_WRITES
    }
    assert _routes_served(world) == tested


@pytest.mark.parametrize(
    ("method", "path", "query", "expected", "role"),
    [
        pytest.param(m, p, q, status, role, id=f"{m} {p} {q.get('coop', '')} as {role}")
        for m, p, q, statuses in READS
        for role, status in zip(ROLES, statuses, strict=True)
    ],
)
def test_reading_answers_by_role_and_owner(  # noqa: PLR0917 -- one parametrized case per row
    world: World,
    flights: dict[str, str],
    method: str,
    path: str,
    query: dict[str, str],
    expected: int,
    role: str,
) -> None:
    headers = {} if role == "none" else world.headers[role]
    for name, flight_id in flights.items():
        path = path.replace("{" + name + "}", flight_id)
    response = httpx.request(method, world.url + path, params=query, headers=headers, timeout=30)
    assert response.status_code == expected, response.text
    if expected >= 400:
        assert response.json()["detail"]


#: What the twin of a hidden request names instead: things that do not exist.
_UNKNOWN: Final = (
    (HP_FIELD, "dt-none"),
    (YT_FIELD, "dt-none"),
    ("/d-hp-a", "/d-none"),
    ("/d-yt-a", "/d-none"),
    ("'d-hp-a'", "'d-none'"),
    ("'d-yt-a'", "'d-none'"),
    ("/validan", "/p-none"),
    ("/anvil", "/p-none"),
    ("'validan'", "'p-none'"),
    ("'anvil'", "'p-none'"),
    (".j-roles", ".j-none"),
)


def _unknown(text: str, flight_ids: dict[str, str]) -> str:
    for concrete, unknown in _UNKNOWN:
        text = text.replace(concrete, unknown)
    for name in ("hp", "yt", "hired"):
        text = text.replace(flight_ids[name], flight_ids["gone"])
    return text


@pytest.mark.parametrize(
    ("method", "path", "query", "role"),
    [
        pytest.param(m, p, q, role, id=f"{m} {p} {q.get('coop', '')} as {role}")
        for m, p, q, statuses in READS
        for role, status in zip(ROLES, statuses, strict=True)
        if status == 404 and "gone" not in p
    ],
)
def test_what_a_key_may_not_see_answers_like_what_does_not_exist(  # noqa: PLR0917 -- a case
    world: World,
    flights: dict[str, str],
    method: str,
    path: str,
    query: dict[str, str],
    role: str,
) -> None:
    """The same request naming things that do not exist gets the same answer, word for word
    once the names are swapped (a coop= of a cooperative that was never set up is 404 too)."""
    for name, flight_id in flights.items():
        path = path.replace("{" + name + "}", flight_id)
    headers = world.headers[role]
    hidden = httpx.request(method, world.url + path, params=query, headers=headers, timeout=30)
    twin_query = {**query, "coop": "htx-none"} if "coop" in query else query
    missing = httpx.request(
        method, world.url + _unknown(path, flights), params=twin_query, headers=headers, timeout=30
    )
    assert hidden.status_code == missing.status_code == 404
    swapped = _unknown(hidden.json()["detail"], flights)
    if "coop" in query:
        swapped = swapped.replace(query["coop"], "htx-none")
    assert swapped == missing.json()["detail"]
    assert hidden.headers.get("content-type") == missing.headers.get("content-type")


def _stored(world: World, field_id: str) -> tuple[str, str, int] | None:
    current = world.metadata.stored_field(field_id)
    versions = len(world.metadata.field_versions(field_id))
    return None if current is None else (current.coop, current.feature, versions)


@pytest.mark.parametrize(
    ("name", "method", "expected", "role"),
    [
        pytest.param(n, m, status, role, id=f"{n} as {role}")
        for n, m, statuses in WRITES
        for role, status in zip(ROLES, statuses, strict=True)
    ],
)
def test_writing_answers_by_role_and_owner_and_refusals_change_nothing(
    world: World, name: str, method: str, expected: int, role: str
) -> None:
    target = f"dt-w-{name}-{role.replace('_', '-')}"
    registry = parse_fields(_square(target, HP, "nd-hp-00"))
    world.metadata.save_fields(to_stored(registry.fields))
    before = _stored(world, target)
    body: dict[str, Any] | None = None
    path = f"/api/v1/fields/{target}"
    if name == "import":
        fresh = f"{target}-new"
        body, path = {"type": "FeatureCollection", "features": [_square(fresh, HP, "nd-hp-00")]}, ""
    elif name == "take":
        body, path = _square(target, YT, "nd-yt-02"), ""
    elif name == "rename":
        body = {"type": "Feature", "properties": {"name": "Tên mới"}}
    elif name == "move":
        body = {"type": "Feature", "properties": {"coop": YT, "owner": "nd-yt-02"}}
    elif name == "import-kml":
        fresh = f"{target}-new"
        body, path = {"type": "FeatureCollection", "features": [_square(fresh, HP, "nd-hp-00")]}, ""
    headers = {} if role == "none" else world.headers[role]
    content, content_type = None if body is None else orjson.dumps(body), "application/json"
    if name == "import-kml" and body is not None:
        content, content_type = export(body, "kml", name="fields").content, KML_MEDIA_TYPE
    response = httpx.request(
        method,
        f"{world.url}/api/v1/fields{path.removeprefix('/api/v1/fields')}",
        content=content,
        headers={**headers, "Content-Type": content_type},
        timeout=30,
    )
    assert response.status_code == expected, response.text
    if expected >= 400:
        assert response.json()["detail"]
        assert _stored(world, target) == before
        if name.startswith("import"):
            assert world.metadata.stored_field(f"{target}-new") is None
    if name == "take" and expected == 409:
        assert HP not in response.text
        assert "nd-hp-00" not in response.text


@pytest.mark.parametrize(
    ("name", "method", "path", "body", "expected", "role"),
    [
        pytest.param(n, m, p, b, status, role, id=f"{n} as {role}")
        for n, m, p, b, statuses in KEY_WRITES
        for role, status in zip(ROLES, statuses, strict=True)
    ],
)
def test_key_writes_answer_by_role_and_refusals_change_nothing(  # noqa: PLR0917 -- a case
    world: World,
    name: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    expected: int,
    role: str,
) -> None:
    targets = {
        "member": generate_key("farmer", "nd-hp-00", name, 0, coop=HP).record,
        "unscoped": generate_key("farmer", "nd-hp-00", name, 0).record,
        "coop": generate_key("coop", HP, name, 0).record,
    }
    for label, record in targets.items():
        world.metadata.add_api_key(record)
        path = path.replace("{" + label + "}", record.key_id)
    keys_before = world.metadata.api_keys()
    links_before = world.metadata._read("SELECT token_sha256 FROM login_links", ())
    headers = {} if role == "none" else world.headers[role]
    response = httpx.request(
        method,
        f"{world.url}/api/v1/keys{path}",
        content=None if body is None else orjson.dumps(body),
        headers={**headers, "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == expected, response.text
    if expected >= 400:
        assert response.json()["detail"]
        assert world.metadata.api_keys() == keys_before
        assert world.metadata._read("SELECT token_sha256 FROM login_links", ()) == links_before


def _ids(world: World, role: str, route: str) -> set[str]:
    response = httpx.get(
        f"{world.url}/api/v1/{route}",
        params=THE_DAY if route == "flights" else {},
        headers=world.headers[role],
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    if route == "fields":
        return {f["id"] for f in body if f["id"] in (HP_FIELD, YT_FIELD, "dt-hp-002")}
    if route == "drones":
        return {f"{d['coop']}/{d['drone']}" for d in body}
    return {f"{f['coop']}/{f['drone']}" for f in body["flights"]}


@pytest.mark.parametrize(
    ("role", "fields", "drones", "flown_by"),
    [
        ("farmer_hp00", {HP_FIELD}, set(), {f"{HP}/d-hp-a"}),
        ("farmer_yt02", {YT_FIELD}, set(), {f"{YT}/d-yt-a"}),
        (
            "coop_hp",
            {HP_FIELD, "dt-hp-002"},
            {f"{HP}/d-hp-a"},
            {f"{HP}/d-hp-a", f"{YT}/d-yt-a"},
        ),
        ("coop_yt", {YT_FIELD}, {f"{YT}/d-yt-a"}, {f"{YT}/d-yt-a"}),
        (
            "operator",
            {HP_FIELD, YT_FIELD, "dt-hp-002"},
            {f"{HP}/d-hp-a", f"{YT}/d-yt-a"},
            {f"{HP}/d-hp-a", f"{YT}/d-yt-a"},
        ),
    ],
)
def test_lists_hold_exactly_what_the_key_may_see(
    world: World, role: str, fields: set[str], drones: set[str], flown_by: set[str]
) -> None:
    assert _ids(world, role, "fields") == fields
    assert _ids(world, role, "drones") == drones
    assert _ids(world, role, "flights") == flown_by
