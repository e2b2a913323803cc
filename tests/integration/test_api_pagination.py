"""Cursor pagination of every list route, over real HTTP against both stores.

For every role, walking a list page by page gives exactly the unpaginated list (nothing the
role may not see, nothing twice, nothing missed); a cursor that is not one the list handed
out is a 422 naming ``cursor``; ``limit`` outside its bounds is a 422; items added between
two pages neither repeat nor hide the items that remain.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import httpx
import orjson
import pytest

from api.app import create_app
from api.pagination import MAX_CURSOR_INT, encode_cursor
from api.routes.drones import MAX_DRONES_PAGE
from api.routes.fields import MAX_FIELDS_PAGE
from api.routes.flights import MAX_LIMIT as MAX_FLIGHTS_PAGE
from api.routes.rejected import MAX_LIMIT as MAX_REJECTED_PAGE
from api.routes.rejected import MAX_SKIP
from api.times import parse_time
from storage.keys import generate_key
from storage.metadata import MetadataDB, RejectedMessage
from storage.sqlite import SqliteStore
from tests.integration.api_server import serving
from tests.integration.api_world import PRINCIPALS, THE_DAY, World

pytestmark = pytest.mark.integration

ZONE: Final = "dt-ns-01"

#: (name, path, query, how to get the items out of a page's body, page size to walk with).
LISTS: Final[tuple[tuple[str, str, dict[str, str], str | None, int], ...]] = (
    ("fields", "/api/v1/fields", {}, None, 7),
    ("overlaps", "/api/v1/fields", {"overlaps": "true"}, None, 1),
    ("versions", f"/api/v1/fields/{ZONE}/versions", {}, None, 1),
    ("drones", "/api/v1/drones", {}, None, 1),
    ("flights", "/api/v1/flights", THE_DAY, "flights", 1),
)


def get(url: str, headers: dict[str, str], **params: Any) -> httpx.Response:
    return httpx.get(url, headers=headers, params=params, timeout=60)


def items_and_next(response: httpx.Response, items_key: str | None) -> tuple[list[Any], str | None]:
    body = response.json()
    if items_key is None:
        return body, response.headers.get("X-Next-Cursor")
    next_cursor = body["next_cursor"]
    assert body["more"] is (next_cursor is not None)
    assert body["returned"] == len(body[items_key])
    return body[items_key], next_cursor


def walk(
    url: str, headers: dict[str, str], query: dict[str, str], items_key: str | None, limit: int
) -> list[Any]:
    """Every item of a list, page by page."""
    out: list[Any] = []
    cursor: str | None = None
    for _ in range(10_000):
        params = {**query, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = get(url, headers, **params)
        assert response.status_code == 200, response.text
        page, cursor = items_and_next(response, items_key)
        assert len(page) <= limit
        out += page
        if cursor is None:
            return out
        assert page, "a page with a next cursor is never empty"
    raise AssertionError("the pages never ended")


@pytest.mark.parametrize(("name", "path", "query", "items_key", "limit"), LISTS)
@pytest.mark.parametrize("who", sorted(PRINCIPALS))
def test_the_pages_of_every_list_concatenate_to_the_whole_list_for_every_role(  # noqa: PLR0917
    world: World,
    who: str,
    name: str,
    path: str,
    query: dict[str, str],
    items_key: str | None,
    limit: int,
) -> None:
    headers = world.headers[who]
    whole = get(world.url + path, headers, **query)
    assert whole.status_code in {200, 404}, whole.text
    if whole.status_code == 404:  # versions of a field the role may not see
        return
    everything, next_cursor = items_and_next(whole, items_key)
    assert next_cursor is None
    assert walk(world.url + path, headers, query, items_key, limit) == everything


def test_a_bare_list_page_links_to_the_next(world: World) -> None:
    response = get(world.url + "/api/v1/fields", world.headers["operator"], limit=2)
    cursor = response.headers["X-Next-Cursor"]
    assert response.headers["Link"].endswith('; rel="next"')
    assert f"cursor={cursor}" in response.headers["Link"]


def test_the_last_page_has_no_next_cursor(world: World) -> None:
    response = get(world.url + "/api/v1/drones", world.headers["operator"], limit=1000)
    assert "X-Next-Cursor" not in response.headers
    assert "Link" not in response.headers


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


GARBAGE: Final = (
    "!!!",
    "%%%",
    _b64(b"not json"),
    _b64(b'{"a": 1}'),
    _b64(b"[]"),
    _b64(orjson.dumps(["elsewhere", 1, "x"])),
    _b64(orjson.dumps(["fields", "0", "x"])),
    _b64(orjson.dumps(["flights", 1, "x", 3])),
    _b64(orjson.dumps(["drones", 1.5, "x"])),
    _b64(orjson.dumps(["flights", True, "x"])),
    "A" * 2000,
)


@pytest.mark.parametrize(("name", "path", "query", "items_key", "limit"), LISTS)
@pytest.mark.parametrize("cursor", GARBAGE)
def test_a_cursor_this_list_did_not_hand_out_is_a_422(  # noqa: PLR0917
    world: World,
    name: str,
    path: str,
    query: dict[str, str],
    items_key: str | None,
    limit: int,
    cursor: str,
) -> None:
    response = get(world.url + path, world.headers["operator"], **query, cursor=cursor)
    assert response.status_code == 422, response.text
    assert "cursor" in response.json()["detail"]


def _in_the_day_ms() -> int:
    """A time inside THE_DAY's window (a rejected cursor's skip counts only there)."""
    return parse_time("from", THE_DAY["from"]) + 3_600_000


OUT_OF_RANGE: Final = (
    ("/api/v1/flights", _b64(b'["flights",18446744073709551615,"x"]')),  # 2^64-1: JSON's most
    ("/api/v1/flights", _b64(orjson.dumps(["flights", MAX_CURSOR_INT + 1, "x"]))),
    ("/api/v1/flights", _b64(orjson.dumps(["flights", -MAX_CURSOR_INT - 1, "x"]))),
    ("/api/v1/rejected", _b64(orjson.dumps(["rejected", 2**63 - 1, 0]))),
    ("/api/v1/rejected", _b64(orjson.dumps(["rejected", _in_the_day_ms(), MAX_SKIP + 1]))),
    ("/api/v1/rejected", _b64(orjson.dumps(["rejected", _in_the_day_ms(), 2**62]))),
    ("/api/v1/rejected", _b64(orjson.dumps(["rejected", _in_the_day_ms(), -1]))),
)


@pytest.mark.parametrize(("path", "cursor"), OUT_OF_RANGE)
def test_a_cursor_with_integers_out_of_range_is_the_same_422_as_any_bad_cursor(
    world: World, path: str, cursor: str
) -> None:
    response = get(world.url + path, world.headers["operator"], **THE_DAY, cursor=cursor)
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("cursor: not a cursor of this list")
    assert "malformed key" in response.json()["detail"]


def test_a_rejected_cursor_at_its_bounds_is_answered(world: World) -> None:
    for seen in (0, MAX_SKIP):
        cursor = encode_cursor("rejected", (_in_the_day_ms(), seen))
        response = get(
            world.url + "/api/v1/rejected", world.headers["operator"], **THE_DAY, cursor=cursor
        )
        assert response.status_code == 200, response.text


def test_a_cursor_of_another_list_is_a_422(world: World) -> None:
    drones = get(world.url + "/api/v1/drones", world.headers["operator"], limit=1)
    cursor = drones.headers["X-Next-Cursor"]
    response = get(
        world.url + "/api/v1/flights", world.headers["operator"], cursor=cursor, **THE_DAY
    )
    assert response.status_code == 422
    assert "not a cursor of this list" in response.json()["detail"]


@pytest.mark.parametrize(
    ("path", "query", "most"),
    [
        ("/api/v1/fields", {}, MAX_FIELDS_PAGE),
        (f"/api/v1/fields/{ZONE}/versions", {}, MAX_FIELDS_PAGE),
        ("/api/v1/drones", {}, MAX_DRONES_PAGE),
        ("/api/v1/flights", THE_DAY, MAX_FLIGHTS_PAGE),
        ("/api/v1/rejected", THE_DAY, MAX_REJECTED_PAGE),
    ],
)
def test_limit_outside_one_to_its_most_is_a_422(
    world: World, path: str, query: dict[str, str], most: int
) -> None:
    for bad in (0, -1, most + 1):
        response = get(world.url + path, world.headers["operator"], **query, limit=bad)
        assert response.status_code == 422, (bad, response.text)
        assert "limit" in response.json()["detail"]
    assert get(world.url + path, world.headers["operator"], **query, limit=most).status_code == 200


# --- lists that change between pages ----------------------------------------------------

COOP: Final = "htx-a"


class Service:
    """A fresh API over an empty store and metadata database, one key per role."""

    def __init__(self, url: str, metadata: MetadataDB) -> None:
        self.url, self.metadata = url, metadata

    def headers(self, role: str, subject: str) -> dict[str, str]:
        new = generate_key(role, subject, "test", int(time.time() * 1000))  # type: ignore[arg-type]
        self.metadata.add_api_key(new.record)
        return {"Authorization": f"Bearer {new.key}"}


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    metadata = MetadataDB(tmp_path / "agridrone.db")
    with SqliteStore(tmp_path / "t.db") as store, serving(create_app(store, metadata)) as url:
        yield Service(url, metadata)
    metadata.close()


def square(field_id: str, n: int, owner: str = "nd-a") -> dict[str, Any]:
    lon, lat = 106.50 + 0.001 * n, 21.08
    ring = [[lon, lat], [lon + 0.0004, lat], [lon + 0.0004, lat + 0.0004], [lon, lat + 0.0004]]
    return {
        "type": "Feature",
        "properties": {"id": field_id, "name": field_id, "owner": owner, "coop": COOP},
        "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
    }


def post_fields(service: Service, headers: dict[str, str], *features: dict[str, Any]) -> None:
    response = httpx.post(
        f"{service.url}/api/v1/fields",
        headers=headers,
        json={"type": "FeatureCollection", "features": list(features)},
        timeout=60,
    )
    assert response.status_code == 201, response.text


def test_fields_added_between_pages_neither_repeat_nor_hide_the_rest(service: Service) -> None:
    coop = service.headers("coop", COOP)
    post_fields(service, coop, *(square(f"f-{i:02d}", i) for i in range(0, 10, 2)))
    first = get(f"{service.url}/api/v1/fields", coop, limit=3)
    assert [f["id"] for f in first.json()] == ["f-00", "f-02", "f-04"]
    post_fields(service, coop, square("f-01", 1), square("f-05", 5), square("f-99", 20))
    rest = walk(
        f"{service.url}/api/v1/fields", coop, {"cursor": first.headers["X-Next-Cursor"]}, None, 2
    )
    assert [f["id"] for f in rest] == ["f-05", "f-06", "f-08", "f-99"]


def test_a_farmers_pages_hold_only_the_farmers_fields(service: Service) -> None:
    coop = service.headers("coop", COOP)
    post_fields(service, coop, *(square(f"f-{i:02d}", i, f"nd-{i % 3}") for i in range(12)))
    farmer = service.headers("farmer", "nd-1")
    pages = walk(f"{service.url}/api/v1/fields", farmer, {}, None, 1)
    assert [f["id"] for f in pages] == ["f-01", "f-04", "f-07", "f-10"]


T: Final = parse_time("t", "2026-11-28T08:00:00+07:00")
DAY: Final = {"from": "2026-11-28", "to": "2026-11-29"}


def rejection(ms: int, n: int) -> RejectedMessage:
    return RejectedMessage(ms, f"agri/v1/htx-a/dt-{n:02d}/telemetry", "bad_json", f"#{n}", b"")


def test_rejected_pages_through_messages_of_the_same_millisecond(service: Service) -> None:
    service.metadata.record_rejections([rejection(T + (i // 3), i) for i in range(10)])
    ops = service.headers("operator", "ops")
    whole = get(f"{service.url}/api/v1/rejected", ops, **DAY).json()["messages"]
    for limit in (1, 2, 4):
        assert walk(f"{service.url}/api/v1/rejected", ops, DAY, "messages", limit) == whole


def test_rejections_logged_between_pages_come_after_the_rest(service: Service) -> None:
    service.metadata.record_rejections([rejection(T, i) for i in range(4)])
    ops = service.headers("operator", "ops")
    first = get(f"{service.url}/api/v1/rejected", ops, limit=2, **DAY).json()
    service.metadata.record_rejections([rejection(T, 4), rejection(T + 5, 5)])
    rest = walk(
        f"{service.url}/api/v1/rejected",
        ops,
        {**DAY, "cursor": first["next_cursor"]},
        "messages",
        2,
    )
    assert [m["detail"] for m in first["messages"] + rest] == [f"#{i}" for i in range(6)]


def test_a_hand_made_cursor_only_moves_the_start_of_what_the_caller_may_see(
    service: Service,
) -> None:
    coop = service.headers("coop", COOP)
    post_fields(service, coop, *(square(f"f-{i:02d}", i, f"nd-{i % 2}") for i in range(6)))
    farmer = service.headers("farmer", "nd-0")
    cursor = encode_cursor("fields", (0, "f-01"))
    page = get(f"{service.url}/api/v1/fields", farmer, cursor=cursor).json()
    assert [f["id"] for f in page] == ["f-02", "f-04"]
