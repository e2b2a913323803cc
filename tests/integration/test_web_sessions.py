"""Signing in to the web app, over real HTTP, against both layouts (SQLite, PostgreSQL).

One-time login links, the sign-in form with a pasted key, sign-out, the session cookie's
attributes, CSRF on writes by cookie, expiry and revocation, and the role matrix: every
reading route answers a session cookie exactly as it answers the key it was opened with.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

from api.app import create_app
from storage.keys import Role, generate_key, parse_key_id
from storage.logins import LOGIN_LINK_TTL_MS, SessionRecord, hash_token, new_token
from storage.metadata import MetadataDB
from storage.sqlite import SqliteStore
from tests.integration.api_server import serving
from tests.integration.api_world import HP, PRINCIPALS, THE_DAY, YT, World
from tests.integration.test_api_roles import READS, ROLES

pytestmark = pytest.mark.integration

COOKIE: Final = "agd_session"


def _now() -> int:
    return time.time_ns() // 1_000_000


def _key(world: World, role: Role, subject: str) -> tuple[str, str]:
    """(key, key id) of a new key."""
    new = generate_key(role, subject, "web test", _now())
    world.metadata.add_api_key(new.record)
    return new.key, new.record.key_id


def _link(world: World, key_id: str, *, expires_in_ms: int = LOGIN_LINK_TTL_MS) -> str:
    token = new_token()
    now = _now()
    world.metadata.add_login_link(hash_token(token), key_id, now, now + expires_in_ms)
    return f"{world.url}/login/{token}"


def _session_by_link(world: World, role: Role, subject: str) -> tuple[str, str]:
    """(cookie value, key id) of a session opened by a new login link."""
    _, key_id = _key(world, role, subject)
    answer = httpx.get(_link(world, key_id), timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.cookies[COOKIE], key_id


def _session_by_key(world: World, key: str) -> str:
    answer = httpx.post(
        f"{world.url}/login",
        data={"key": key},
        headers={"Origin": world.url},
        timeout=30,
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/"
    return answer.cookies[COOKIE]


def _get(world: World, path: str, cookie: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(world.url + path, cookies={COOKIE: cookie}, timeout=30, **kwargs)


def test_a_login_link_signs_in_once(world: World) -> None:
    _, key_id = _key(world, "farmer", "nd-hp-00")
    link = _link(world, key_id)
    first = httpx.get(link, timeout=30)
    assert first.status_code == 200
    set_cookie = first.headers["set-cookie"]
    assert set_cookie.startswith(f"{COOKIE}=")
    attributes = {a.strip().split("=")[0].lower() for a in set_cookie.split(";")[1:]}
    assert {"httponly", "samesite", "path", "max-age"} <= attributes
    assert "samesite=strict" in set_cookie.lower()
    assert "secure" not in attributes  # served over plain http (docs/web.md)
    # The page moves on to / by itself (a same-site navigation; see web.pages).
    assert '<meta http-equiv="refresh" content="0;url=/">' in first.text
    assert '<html lang="vi">' in first.text
    cookie = first.cookies[COOKIE]
    me = _get(world, "/api/v1/session", cookie).json()
    assert (me["role"], me["subject"], me["key_id"], me["via"]) == (
        "farmer",
        "nd-hp-00",
        key_id,
        "cookie",
    )
    assert me["csrf"]
    assert me["expires"]
    # Only the token's hash is stored.
    token = link.rsplit("/", 1)[1]
    rows = world.metadata._read("SELECT token_sha256 FROM login_links", ())
    stored = {bytes(r[0]) for r in rows}
    assert hash_token(token) in stored
    assert token.encode() not in stored

    again = httpx.get(link, timeout=30)
    assert again.status_code == 400
    assert COOKIE not in again.cookies
    assert "Liên kết không dùng được" in again.text
    assert "hỏi hợp tác xã một liên kết mới" in again.text


def test_expired_wrong_and_malformed_links_answer_the_same_page(world: World) -> None:
    _, key_id = _key(world, "farmer", "nd-hp-00")
    expired = _link(world, key_id, expires_in_ms=-1)
    never_made = f"{world.url}/login/{new_token()}"
    malformed = f"{world.url}/login/not-a-token"
    answers = [httpx.get(u, timeout=30) for u in (expired, never_made, malformed)]
    assert {a.status_code for a in answers} == {400}
    assert len({a.text for a in answers}) == 1
    assert all(COOKIE not in a.cookies for a in answers)
    assert "<pre" not in answers[0].text
    assert "Traceback" not in answers[0].text


def test_a_revoked_keys_link_does_not_sign_in(world: World) -> None:
    _, key_id = _key(world, "farmer", "nd-hp-00")
    link = _link(world, key_id)
    world.metadata.revoke_api_key(key_id, _now())
    answer = httpx.get(link, timeout=30)
    assert answer.status_code == 400
    assert COOKIE not in answer.cookies


def test_the_sign_in_form_takes_a_pasted_key(world: World) -> None:
    form = httpx.get(f"{world.url}/login", timeout=30)
    assert form.status_code == 200
    assert '<label for="key">Khóa truy cập</label>' in form.text
    key, key_id = _key(world, "coop", HP)
    cookie = _session_by_key(world, key)
    me = _get(world, "/api/v1/session", cookie).json()
    assert (me["role"], me["subject"], me["key_id"]) == ("coop", HP, key_id)

    wrong = key[:-3] + ("AAA" if not key.endswith("AAA") else "BBB")
    for bad in (wrong, "agd_nothing", ""):
        refused = httpx.post(
            f"{world.url}/login", data={"key": bad}, headers={"Origin": world.url}, timeout=30
        )
        assert refused.status_code == 401
        assert COOKIE not in refused.cookies
        assert "Khóa không đúng hoặc đã bị thu hồi" in refused.text
        assert bad not in refused.text or not bad

    # A form posted from another site's page signs nobody in (login CSRF).
    forged = httpx.post(
        f"{world.url}/login",
        data={"key": key},
        headers={"Origin": "http://evil.example"},
        timeout=30,
    )
    assert forged.status_code == 403
    assert COOKIE not in forged.cookies


def test_sign_out_ends_the_session_on_the_server(world: World) -> None:
    cookie, _ = _session_by_link(world, "farmer", "nd-hp-00")
    csrf = _get(world, "/api/v1/session", cookie).json()["csrf"]
    # Without the session's CSRF token, sign-out is refused and the session lives on.
    refused = httpx.post(
        f"{world.url}/logout", cookies={COOKIE: cookie}, data={"csrf": "nope"}, timeout=30
    )
    assert refused.status_code == 403
    assert _get(world, "/api/v1/session", cookie).status_code == 200

    out = httpx.post(
        f"{world.url}/logout",
        cookies={COOKIE: cookie},
        data={"csrf": csrf},
        headers={"Origin": world.url},
        timeout=30,
    )
    assert out.status_code == 303
    assert out.headers["location"] == "/login"
    assert re.search(rf"{COOKIE}=\"?\"?;", out.headers["set-cookie"])  # the browser forgets it
    # The old cookie, kept by a thief, no longer works: ended on the server.
    after = _get(world, "/api/v1/session", cookie)
    assert after.status_code == 401
    assert "sign in again" in after.json()["detail"]
    assert _get(world, "/", cookie, follow_redirects=False).headers["location"] == "/login"


def test_sessions_expire_and_die_with_their_key(world: World) -> None:
    _, key_id = _key(world, "farmer", "nd-hp-00")
    token = new_token()
    now = _now()
    world.metadata.add_session(
        SessionRecord(hash_token(token), key_id, new_token(), now - 10_000, now - 1)
    )
    assert _get(world, "/api/v1/fields", token).status_code == 401

    key, key_id = _key(world, "farmer", "nd-hp-00")
    cookie = _session_by_key(world, key)
    assert _get(world, "/api/v1/fields", cookie).status_code == 200
    world.metadata.revoke_api_key(key_id, _now())
    gone = _get(world, "/api/v1/fields", cookie)
    assert gone.status_code == 401
    assert key not in gone.text
    assert _get(world, "/api/v1/fields", "x" * 43).status_code == 401


def test_writes_by_cookie_need_the_csrf_token(world: World) -> None:
    key, _ = _key(world, "coop", HP)
    cookie = _session_by_key(world, key)
    csrf = _get(world, "/api/v1/session", cookie).json()["csrf"]
    feature = {
        "type": "Feature",
        "properties": {"id": "dt-web-csrf", "name": "Thửa web", "owner": "nd-hp-00", "coop": HP},
        "geometry": {
            "type": "Polygon",
            "coordinates": [
                [[106.62, 21.12], [106.6204, 21.12], [106.6204, 21.1204], [106.62, 21.12]]
            ],
        },
    }
    body = {"type": "FeatureCollection", "features": [feature]}

    def post(headers: dict[str, str]) -> httpx.Response:
        return httpx.post(
            f"{world.url}/api/v1/fields",
            json=body,
            cookies={COOKIE: cookie},
            headers=headers,
            timeout=30,
        )

    assert post({}).status_code == 403
    assert post({"X-CSRF-Token": "wrong"}).status_code == 403
    assert post({"X-CSRF-Token": csrf, "Origin": "http://evil.example"}).status_code == 403
    assert _get(world, "/api/v1/fields/dt-web-csrf", cookie).status_code == 404  # nothing stored
    made = post({"X-CSRF-Token": csrf, "Origin": world.url})
    assert made.status_code == 201, made.text
    deleted = httpx.delete(
        f"{world.url}/api/v1/fields/dt-web-csrf",
        cookies={COOKIE: cookie},
        headers={"X-CSRF-Token": csrf},
        timeout=30,
    )
    assert deleted.status_code == 200, deleted.text


def test_the_authorization_header_alone_judges_a_request_that_has_one(world: World) -> None:
    operator_cookie, _ = _session_by_link(world, "operator", "ops")
    farmer = world.headers["farmer_hp00"]
    both = httpx.get(
        f"{world.url}/api/v1/session",
        headers=farmer,
        cookies={COOKIE: operator_cookie},
        timeout=30,
    )
    assert both.json()["role"] == "farmer"
    assert both.json()["csrf"] is None
    bad_header = httpx.get(
        f"{world.url}/api/v1/rejected",
        params=THE_DAY,
        headers={"Authorization": "Bearer agd_nope"},
        cookies={COOKIE: operator_cookie},
        timeout=30,
    )
    assert bad_header.status_code == 401


@pytest.fixture(scope="module")
def sessions(world: World) -> dict[str, tuple[str, str]]:
    """(cookie, key id) of a session per principal of the world, each opened by a login
    link for a key of its own."""
    return {name: _session_by_link(world, *who) for name, who in PRINCIPALS.items()}


@pytest.fixture(scope="module")
def flight_ids(world: World) -> dict[str, str]:
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
        "hp": first("dt-hp-004", HP),
        "yt": first("dt-yt-004", YT),
        "hired": first("dt-hp-002", YT),
        "gone": f"{YT}.d-yt-a.1",
    }


@pytest.mark.parametrize("role", [r for r in ROLES if r != "none"])
def test_a_session_sees_exactly_what_its_key_sees(
    world: World, sessions: dict[str, tuple[str, str]], flight_ids: dict[str, str], role: str
) -> None:
    """Every reading route of the role matrix, by cookie and by another key of the same
    principal: same status, same body but for the key id a 403 names (the session never
    gives more, nor less, than its key)."""
    cookie, session_key_id = sessions[role]
    bearer_key_id = parse_key_id(world.headers[role]["Authorization"].removeprefix("Bearer "))
    assert bearer_key_id is not None
    for method, template, query, _ in READS:
        path = template
        for name, flight_id in flight_ids.items():
            path = path.replace("{" + name + "}", flight_id)
        if path in ("/api/v1/session", "/metrics", "/api/v1/keys"):
            continue  # who-am-I and the key list name the keys; /metrics counts requests
        if method != "GET":
            continue  # the matrix's bodiless writes: by cookie they need the CSRF token
        by_key = httpx.request(
            method, world.url + path, params=query, headers=world.headers[role], timeout=30
        )
        by_cookie = httpx.request(
            method, world.url + path, params=query, cookies={COOKIE: cookie}, timeout=30
        )
        assert by_cookie.status_code == by_key.status_code, (path, query)
        same = by_cookie.content.replace(session_key_id.encode(), bearer_key_id.encode())
        assert same == by_key.content, (path, query)


def test_pages_need_a_session_and_speak_vietnamese_first(world: World) -> None:
    bare = httpx.get(f"{world.url}/", timeout=30)
    assert bare.status_code == 303
    assert bare.headers["location"] == "/login"
    cookie, _ = _session_by_link(world, "farmer", "nd-hp-00")
    home = _get(world, "/", cookie)
    assert home.status_code == 200
    assert '<html lang="vi">' in home.text
    assert "Ruộng của tôi" in home.text
    switched = httpx.get(
        f"{world.url}/lang/en", params={"next": "/"}, cookies={COOKIE: cookie}, timeout=30
    )
    assert switched.status_code == 303
    assert switched.headers["location"] == "/"
    lang = switched.cookies["agd_lang"]
    english = httpx.get(f"{world.url}/", cookies={COOKIE: cookie, "agd_lang": lang}, timeout=30)
    assert '<html lang="en">' in english.text
    assert "My fields" in english.text
    # Only local paths: the switch never sends the browser to another site.
    away = httpx.get(f"{world.url}/lang/en", params={"next": "//evil.example/"}, timeout=30)
    assert away.headers["location"] == "/"


@pytest.mark.parametrize(
    ("role", "subject", "status", "title"),
    [
        ("farmer", "nd-hp-00", 404, "Không có trang này"),
        ("coop", HP, 200, "Liên kết đăng nhập của thành viên"),
        ("operator", "ops", 200, "Khóa truy cập"),
    ],
)
def test_the_keys_page_is_for_operators_and_cooperatives(
    world: World, role: Role, subject: str, status: int, title: str
) -> None:
    assert httpx.get(f"{world.url}/keys", timeout=30).headers["location"] == "/login"
    cookie, _ = _session_by_link(world, role, subject)
    page = _get(world, "/keys", cookie)
    assert page.status_code == status
    assert f"<h1>{title}</h1>" in page.text
    assert ('id="key-role"' in page.text) is (role == "operator")


def test_a_browser_gets_a_page_for_a_missing_page_and_api_clients_keep_json(
    world: World,
) -> None:
    html = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    for path in ("/no-such-page", "/fields/a.b"):
        page = httpx.get(world.url + path, headers=html, timeout=30)
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")
        assert '<html lang="vi">' in page.text
        assert "Không có trang này" in page.text
    for path in ("/no-such-page", "/api/v1/tractors"):
        for headers in ({}, html if path.startswith("/api/") else {"Accept": "application/json"}):
            answer = httpx.get(world.url + path, headers=headers, timeout=30)
            assert answer.status_code == 404
            assert answer.json()["detail"].startswith(f"no route GET {path}")


def test_the_tile_url_setting_reaches_the_field_page(tmp_path: Path) -> None:
    tiles = "https://tiles.example.vn/{z}/{x}/{y}.png"
    metadata = MetadataDB(tmp_path / "meta.db")
    try:
        with (
            SqliteStore(tmp_path / "telemetry.db") as store,
            serving(create_app(store, metadata, tile_url=tiles)) as url,
        ):
            new = generate_key("farmer", "nd-1", "", _now())
            metadata.add_api_key(new.record)
            signed_in = httpx.post(
                f"{url}/login", data={"key": new.key}, headers={"Origin": url}, timeout=30
            )
            page = httpx.get(f"{url}/fields/dt-1", cookies=signed_in.cookies, timeout=30)
            assert f'data-tiles="{tiles}"' in page.text
    finally:
        metadata.close()
