"""Keys over HTTP, against both layouts: list without secrets, create (the key once, a login
link and its QR code), revoke (sessions end), new login links; a cooperative manages the
farmer keys made for it, and those keys see only its fields. The role matrix of these routes
is in test_api_roles.py."""

from __future__ import annotations

import base64
import io
import logging
import time
from datetime import datetime
from typing import Any, Final

import httpx
import pytest
import segno

from storage.keys import generate_key, key_matches, parse_key_id
from tests.integration.api_world import HP, THE_DAY, YT, World

pytestmark = pytest.mark.integration

COOKIE: Final = "agd_session"
KEYS: Final = "/api/v1/keys"


def _post(world: World, role: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.post(world.url + path, json=body, headers=world.headers[role], timeout=30)


def _create(world: World, caller: str, **body: Any) -> dict[str, Any]:
    answer = _post(world, caller, KEYS, body)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def _stored_keys(world: World) -> int:
    return len(world.metadata.api_keys())


def _links(world: World) -> int:
    return len(world.metadata._read("SELECT token_sha256 FROM login_links", ()))


def test_an_operator_creates_a_key_with_a_login_link_and_its_qr_code(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = _post(
        world,
        "operator",
        KEYS,
        {"role": "farmer", "subject": "nd-hp-00", "name": "Bà Hoa", "coop": HP, "login_link": True},
    )
    assert answer.status_code == 201, answer.text
    assert answer.headers["cache-control"] == "no-store"
    doc = answer.json()
    key, link = doc["key"], doc["login"]
    assert parse_key_id(key) == doc["key_id"]
    assert (doc["role"], doc["subject"], doc["name"], doc["coop"], doc["revoked"]) == (
        "farmer",
        "nd-hp-00",
        "Bà Hoa",
        HP,
        None,
    )
    record = world.metadata.api_key(doc["key_id"])
    assert record is not None
    assert key_matches(key, record)
    # The link points at this server, works once, and its QR codes say exactly the link.
    assert link["url"].startswith(f"{world.url}/login/")
    png = base64.b64decode(link["qr_png"].removeprefix("data:image/png;base64,"))
    expected = io.BytesIO()
    segno.make(link["url"], error="m").save(expected, kind="png", scale=8, border=4)
    assert png == expected.getvalue()
    assert link["qr_svg"].startswith("data:image/svg+xml")
    opened = httpx.get(link["url"], timeout=30)
    assert opened.status_code == 200
    me = httpx.get(
        f"{world.url}/api/v1/session", cookies={COOKIE: opened.cookies[COOKIE]}, timeout=30
    )
    assert (me.json()["key_id"], me.json()["coop"]) == (doc["key_id"], HP)
    assert httpx.get(link["url"], timeout=30).status_code == 400  # once only
    # Neither the key nor the link's token is ever logged.
    secret = key.split("_", 2)[2]
    token = link["url"].rsplit("/", 1)[1]
    server = ("agridrone", "uvicorn")  # (the test's own HTTP client logs the URLs it opens)
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(server))
    assert doc["key_id"] in logged
    assert secret not in logged
    assert token not in logged


def test_the_key_is_shown_once_and_listed_without_secrets(world: World) -> None:
    doc = _create(world, "operator", role="coop", subject=YT, name="kế toán")
    listed = httpx.get(world.url + KEYS, headers=world.headers["operator"], timeout=30)
    assert listed.status_code == 200
    assert listed.headers["cache-control"] == "no-store"
    secret = doc["key"].split("_", 2)[2]
    assert secret not in listed.text
    assert "sha256" not in listed.text
    mine = [k for k in listed.json() if k["key_id"] == doc["key_id"]]
    assert mine == [{k: v for k, v in doc.items() if k not in ("key", "login")}]
    assert "login" not in doc or doc["login"] is None


def test_a_link_may_point_at_another_address_of_the_app(world: World) -> None:
    doc = _create(
        world,
        "operator",
        role="farmer",
        subject="nd-hp-00",
        login_link=True,
        base_url="http://192.168.1.10:8000",
    )
    assert doc["login"]["url"].startswith("http://192.168.1.10:8000/login/")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"role": "farmer", "subject": " nd-1"}, "spaces"),
        ({"role": "coop", "subject": "htx a"}, "cooperative id"),
        ({"role": "pilot", "subject": "p"}, "role"),
        ({"role": "coop", "subject": HP, "coop": HP}, "only farmer keys"),
        ({"role": "farmer", "subject": "nd-1", "coop": "htx a"}, "cooperative id"),
        ({"role": "farmer", "subject": "nd-1", "name": "x" * 201}, "name"),
        ({"role": "farmer", "subject": "nd-1", "name": "a\u0007b"}, "control characters"),
        ({"role": "farmer", "subject": "nd-1", "owner": "x"}, "owner"),
        ({"role": "farmer", "subject": "nd-1", "login_link": True, "base_url": "ftp://x"}, "base"),
    ],
)
def test_bad_input_is_a_422_and_stores_nothing(
    world: World, body: dict[str, Any], fragment: str
) -> None:
    keys, links = _stored_keys(world), _links(world)
    answer = _post(world, "operator", KEYS, body)
    assert answer.status_code == 422, answer.text
    assert fragment in answer.text
    assert (_stored_keys(world), _links(world)) == (keys, links)


def test_a_cooperative_creates_farmer_keys_for_itself_only(world: World) -> None:
    doc = _create(world, "coop_hp", role="farmer", subject="nd-hp-00", login_link=True)
    assert doc["coop"] == HP
    keys = _stored_keys(world)
    other = _post(world, "coop_hp", KEYS, {"role": "farmer", "subject": "nd-1", "coop": YT})
    assert other.status_code == 422
    assert f"your key is for cooperative {HP!r}" in other.json()["detail"]
    for role in ("coop", "operator"):
        refused = _post(world, "coop_hp", KEYS, {"role": role, "subject": HP})
        assert refused.status_code == 403
        assert "farmer keys" in refused.json()["detail"]
    assert _stored_keys(world) == keys


def _field_ids(world: World, key: str) -> set[str]:
    headers = {"Authorization": f"Bearer {key}"}
    answer = httpx.get(f"{world.url}/api/v1/fields", headers=headers, timeout=30)
    assert answer.status_code == 200
    return {f["id"] for f in answer.json() if f["kind"] == "field"}


def test_a_farmer_key_made_for_a_cooperative_sees_only_its_fields(world: World) -> None:
    """nd-hp-00 owns dt-hp-004 of Hồng Phong: a key of Hồng Phong sees it, with its flights;
    one that Yên Thọ made for the same farmer id sees nothing of Hồng Phong."""
    by_hp = _create(world, "coop_hp", role="farmer", subject="nd-hp-00")["key"]
    by_yt = _create(world, "coop_yt", role="farmer", subject="nd-hp-00")["key"]
    assert _field_ids(world, by_hp) == {"dt-hp-004"}
    assert _field_ids(world, by_yt) == set()
    for key, status in ((by_hp, 200), (by_yt, 404)):
        headers = {"Authorization": f"Bearer {key}"}
        one = httpx.get(f"{world.url}/api/v1/fields/dt-hp-004", headers=headers, timeout=30)
        assert one.status_code == status
        coverage = httpx.get(
            f"{world.url}/api/v1/fields/dt-hp-004/coverage",
            params=THE_DAY,
            headers=headers,
            timeout=30,
        )
        assert coverage.status_code == status
        flights = httpx.get(
            f"{world.url}/api/v1/flights", params=THE_DAY, headers=headers, timeout=30
        ).json()["flights"]
        assert bool(flights) is (status == 200)


def test_a_cooperative_lists_only_the_farmer_keys_made_for_it(world: World) -> None:
    mine = _create(world, "coop_hp", role="farmer", subject="nd-hp-01")["key_id"]
    by_operator = _create(world, "operator", role="farmer", subject="nd-hp-01", coop=HP)["key_id"]
    unscoped = _create(world, "operator", role="farmer", subject="nd-hp-01")["key_id"]
    theirs = _create(world, "coop_yt", role="farmer", subject="nd-yt-02")["key_id"]
    listed = httpx.get(world.url + KEYS, headers=world.headers["coop_hp"], timeout=30).json()
    ids = {k["key_id"] for k in listed}
    assert {mine, by_operator} <= ids
    assert not ids & {unscoped, theirs}
    assert {(k["role"], k["coop"]) for k in listed} == {("farmer", HP)}


def test_revoking_a_key_ends_its_sessions_at_once(world: World) -> None:
    doc = _create(world, "coop_hp", role="farmer", subject="nd-hp-00", login_link=True)
    cookie = httpx.get(doc["login"]["url"], timeout=30).cookies[COOKIE]
    me = f"{world.url}/api/v1/session"
    assert httpx.get(me, cookies={COOKIE: cookie}, timeout=30).status_code == 200
    revoked = httpx.delete(
        f"{world.url}{KEYS}/{doc['key_id']}", headers=world.headers["coop_hp"], timeout=30
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["sessions_ended"] == 1
    assert revoked.json()["revoked"] is not None
    assert httpx.get(me, cookies={COOKIE: cookie}, timeout=30).status_code == 401
    bearer = {"Authorization": f"Bearer {doc['key']}"}
    assert httpx.get(me, headers=bearer, timeout=30).status_code == 401
    # Revoking again changes nothing; a revoked key gets no new login link.
    again = httpx.delete(
        f"{world.url}{KEYS}/{doc['key_id']}", headers=world.headers["coop_hp"], timeout=30
    )
    assert (again.status_code, again.json()["revoked"]) == (200, revoked.json()["revoked"])
    links = _links(world)
    refused = _post(world, "coop_hp", f"{KEYS}/{doc['key_id']}/login-link")
    assert refused.status_code == 409
    assert "revoked" in refused.json()["detail"]
    assert _links(world) == links


def test_a_new_login_link_signs_in_as_the_key(world: World) -> None:
    doc = _create(world, "coop_hp", role="farmer", subject="nd-hp-00")
    answer = _post(world, "coop_hp", f"{KEYS}/{doc['key_id']}/login-link", {})
    assert answer.status_code == 201, answer.text
    assert answer.headers["cache-control"] == "no-store"
    link = answer.json()
    opened = httpx.get(link["url"], timeout=30)
    me = httpx.get(
        f"{world.url}/api/v1/session", cookies={COOKIE: opened.cookies[COOKIE]}, timeout=30
    ).json()
    assert me["key_id"] == doc["key_id"]
    # The link lasts 7 days.
    left = datetime.fromisoformat(link["expires"]).timestamp() - time.time()
    assert 7 * 86_400 - 120 < left <= 7 * 86_400


#: Keys a cooperative may not manage, made fresh per case: (maker, body).
_HIDDEN: Final = {
    "unscoped farmer": ("operator", {"role": "farmer", "subject": "nd-hp-00"}),
    "own coop key": ("operator", {"role": "coop", "subject": HP}),
    "other coop's farmer": ("coop_yt", {"role": "farmer", "subject": "nd-yt-02"}),
    "operator": ("operator", {"role": "operator", "subject": "ops"}),
}


@pytest.mark.parametrize("hidden", list(_HIDDEN))
@pytest.mark.parametrize("action", ["revoke", "link"])
def test_a_key_a_cooperative_may_not_manage_answers_like_an_unknown_one(
    world: World, hidden: str, action: str
) -> None:
    maker, body = _HIDDEN[hidden]
    key_id = _create(world, maker, **body)["key_id"]
    unknown = generate_key("farmer", "nd-x", "", 0).record.key_id  # never stored

    def ask(target: str) -> httpx.Response:
        url = f"{world.url}{KEYS}/{target}"
        if action == "revoke":
            return httpx.delete(url, headers=world.headers["coop_hp"], timeout=30)
        return httpx.post(f"{url}/login-link", headers=world.headers["coop_hp"], timeout=30)

    links = _links(world)
    seen, missing = ask(key_id), ask(unknown)
    assert seen.status_code == missing.status_code == 404
    assert seen.json()["detail"].replace(key_id, unknown) == missing.json()["detail"]
    record = world.metadata.api_key(key_id)
    assert record is not None
    assert not record.revoked
    assert _links(world) == links


def test_keys_are_no_farmers_business(world: World) -> None:
    target = _create(world, "operator", role="farmer", subject="nd-hp-00", coop=HP)["key_id"]
    farmer = world.headers["farmer_hp00"]
    answers = [
        httpx.get(world.url + KEYS, headers=farmer, timeout=30),
        httpx.post(
            world.url + KEYS, json={"role": "farmer", "subject": "x"}, headers=farmer, timeout=30
        ),
        httpx.delete(f"{world.url}{KEYS}/{target}", headers=farmer, timeout=30),
        httpx.post(f"{world.url}{KEYS}/{target}/login-link", headers=farmer, timeout=30),
    ]
    assert [a.status_code for a in answers] == [403] * 4
    record = world.metadata.api_key(target)
    assert record is not None
    assert not record.revoked


def test_a_write_by_cookie_needs_the_csrf_token(world: World) -> None:
    doc = _create(world, "operator", role="coop", subject=HP, login_link=True)
    cookie = httpx.get(doc["login"]["url"], timeout=30).cookies[COOKIE]
    keys = _stored_keys(world)
    body = {"role": "farmer", "subject": "nd-hp-00"}
    forged = httpx.post(world.url + KEYS, json=body, cookies={COOKIE: cookie}, timeout=30)
    assert forged.status_code == 403
    assert _stored_keys(world) == keys
    csrf = httpx.get(f"{world.url}/api/v1/session", cookies={COOKIE: cookie}, timeout=30).json()[
        "csrf"
    ]
    made = httpx.post(
        world.url + KEYS,
        json=body,
        cookies={COOKIE: cookie},
        headers={"X-CSRF-Token": csrf},
        timeout=30,
    )
    assert made.status_code == 201
    assert made.json()["coop"] == HP
