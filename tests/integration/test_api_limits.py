"""Over real HTTP the API says no to bad input with a 4xx a person can act on, changes
nothing it refused, never echoes a key, and documents itself without the internet."""

from __future__ import annotations

import json
import logging
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from api.app import create_app
from api.limits import MAX_BODY_BYTES, MAX_JSON_DEPTH
from fields.registry import MAX_FEATURES, MAX_TEXT_CHARS
from storage.influx import InfluxStore, RetryPolicy
from storage.keys import generate_key
from storage.metadata import MetadataDB
from storage.sqlite import SqliteStore
from tests.integration.api_server import serving
from tests.servers import free_port

pytestmark = pytest.mark.integration


class Api:
    """The running API, an operator key and a cooperative key."""

    def __init__(self, url: str, metadata: MetadataDB) -> None:
        self.url = url
        self.metadata = metadata
        self.operator_key = self._key("operator", "ops")
        self.coop_key = self._key("coop", "htx-a")
        self.operator = {"Authorization": f"Bearer {self.operator_key}"}

    def _key(self, role: Any, subject: str) -> str:
        new = generate_key(role, subject, "test", int(time.time() * 1000))
        self.metadata.add_api_key(new.record)
        return new.key

    def post_fields(self, body: Any, **headers: str) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.post(
            f"{self.url}/api/v1/fields",
            content=content,
            headers={**self.operator, "Content-Type": "application/json", **headers},
            timeout=60,
        )

    def stored_ids(self) -> list[str]:
        return [f.id for f in self.metadata.stored_fields()]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    metadata = MetadataDB(tmp_path / "agridrone.db")
    with SqliteStore(tmp_path / "t.db") as store, serving(create_app(store, metadata)) as url:
        yield Api(url, metadata)
    metadata.close()


def paddy(fid: Any = "f-1", **props: Any) -> dict[str, Any]:
    ring = [[106.52, 21.08], [106.5205, 21.08], [106.5205, 21.0804], [106.52, 21.0804]]
    return {
        "type": "Feature",
        "properties": {"id": fid, "owner": "nd-1", "coop": "htx-a", **props},
        "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
    }


def problems_of(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    found: list[str] = response.json()["detail"]["problems"]
    return found


# --- Field imports: every rule refuses the whole import and stores nothing --------------


@pytest.mark.parametrize("kind", ["no-spray", "nospray", "exclusion"])
def test_an_unknown_kind_is_422_listing_the_kinds_and_stores_nothing(api: Api, kind: str) -> None:
    response = api.post_fields(
        {"type": "FeatureCollection", "features": [paddy("ok"), paddy(kind=kind)]}
    )
    (problem,) = problems_of(response)
    assert problem == (
        f"feature 1 (f-1): unknown kind {kind!r}; the kinds are 'field', 'no_spray'"
        " (leave 'kind' out for a field to spray)"
    )
    assert api.stored_ids() == []


@pytest.mark.parametrize("fid", ["a/b", "..", "a b", "a\x00b", "x" * 65])
def test_an_id_outside_the_pattern_is_422_and_stores_nothing(api: Api, fid: str) -> None:
    (problem,) = problems_of(api.post_fields(paddy(fid)))
    assert "is not a valid id: use 1 to 64 letters, digits, '_' or '-'" in problem
    assert api.stored_ids() == []


def test_a_long_name_is_422_naming_the_limit(api: Api) -> None:
    (problem,) = problems_of(api.post_fields(paddy(name="x" * (MAX_TEXT_CHARS + 1))))
    assert f"at most {MAX_TEXT_CHARS}" in problem
    assert api.stored_ids() == []


def test_too_many_features_is_422_naming_the_limit(api: Api) -> None:
    doc = {
        "type": "FeatureCollection",
        "features": [paddy(f"f{i}") for i in range(MAX_FEATURES + 1)],
    }
    (problem,) = problems_of(api.post_fields(doc))
    assert f"at most {MAX_FEATURES} per document" in problem
    assert api.stored_ids() == []


def test_a_deeply_nested_property_is_422_not_500(api: Api) -> None:
    # Reproduced before the limits: 900 levels inside a property answered 500.
    deep = "[" * 900 + "]" * 900
    body = json.dumps(paddy(junk="HOLE")).replace('"HOLE"', deep).encode()
    response = api.post_fields(body)
    assert response.status_code == 422
    assert response.json() == {
        "detail": f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels of arrays and"
        " objects; flatten it (GeoJSON of fields needs 7)"
    }
    assert api.stored_ids() == []


def test_nesting_deeper_than_any_parser_allows_is_the_same_422(api: Api) -> None:
    response = api.post_fields(b"[" * 200_000 + b"]" * 200_000)
    assert response.status_code == 422
    assert f"deeper than {MAX_JSON_DEPTH} levels" in response.json()["detail"]


def test_a_valid_import_still_passes_the_limits(api: Api) -> None:
    response = api.post_fields(paddy("ok", irrigation="canal", note={"by": ["ops"]}))
    assert response.status_code == 201, response.text
    assert api.stored_ids() == ["ok"]


# --- Body size: refused while reading, honest about Content-Length ----------------------


def test_a_body_over_the_limit_is_413_naming_the_limit(api: Api) -> None:
    body = json.dumps(paddy(junk="x" * MAX_BODY_BYTES)).encode()
    response = api.post_fields(body)
    assert response.status_code == 413
    detail = response.json()["detail"]
    assert f"larger than the limit of {MAX_BODY_BYTES} bytes (8 MiB)" in detail
    assert "split it into several requests" in detail
    assert api.stored_ids() == []


def test_a_chunked_body_over_the_limit_is_413_too(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(MAX_BODY_BYTES // 65_536 + 2):
            yield b" " * 65_536

    response = httpx.post(
        f"{api.url}/api/v1/fields",
        content=chunks(),
        headers={**api.operator, "Content-Type": "application/json"},
        timeout=60,
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert api.stored_ids() == []


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_read(api: Api) -> None:
    parts = urlsplit(api.url)
    request = (
        f"POST /api/v1/fields HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Bearer {api.operator_key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {MAX_BODY_BYTES + 1}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request + b"{")  # one byte of the promised 8 MiB, then wait
        answer = b""
        while b"}" not in answer.partition(b"\r\n\r\n")[2]:
            chunk = sock.recv(65_536)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413")
    answer_text = answer.decode()
    assert f"Content-Length says {MAX_BODY_BYTES + 1} bytes" in answer_text


# --- Secrets: no answer or log line holds the key ---------------------------------------


NOT_BEARER = "the Authorization header is not a bearer key"


@pytest.mark.parametrize(
    ("header", "said"),
    [
        ("{key}", f"{NOT_BEARER} (it looks like a key sent without the word Bearer)"),
        ("Basic {key}", f"{NOT_BEARER} (it uses the 'Basic' scheme)"),
        ("Token {key}", f"{NOT_BEARER} (it uses the 'Token' scheme)"),
        ("{key} Bearer", f"{NOT_BEARER} (it looks like a key sent without the word Bearer)"),
        ("Bearer{key}", f"{NOT_BEARER} (it does not start with the word Bearer)"),
        ("Bearer {key}x", "the API key is malformed"),
        ("Bearer x{key}", "the API key is malformed"),
        ("bearer  {key}  trailing", "the API key is malformed"),
    ],
)
def test_no_answer_or_log_line_echoes_a_key(
    api: Api, header: str, said: str, caplog: pytest.LogCaptureFixture
) -> None:
    secret = api.coop_key.split("_", 2)[2]
    with caplog.at_level(logging.DEBUG):
        response = httpx.get(
            f"{api.url}/api/v1/fields", headers={"Authorization": header.format(key=api.coop_key)}
        )
    assert response.status_code == 401
    assert response.json()["detail"].startswith(said)
    assert secret not in response.text
    assert secret not in json.dumps(dict(response.headers))
    assert secret not in caplog.text


def test_a_bare_key_is_told_to_add_bearer_without_being_repeated(api: Api) -> None:
    response = httpx.get(f"{api.url}/api/v1/fields", headers={"Authorization": api.coop_key})
    assert response.json() == {
        "detail": "the Authorization header is not a bearer key (it looks like a key sent"
        " without the word Bearer); send `Authorization: Bearer <key>`"
    }


def test_a_malformed_body_is_422_without_repeating_it(api: Api) -> None:
    response = api.post_fields(b'{"type": "Feature", "password": "hunter2"')
    assert response.status_code == 422
    assert "hunter2" not in response.text


# --- OpenAPI and /docs -------------------------------------------------------------------


def test_openapi_declares_the_bearer_scheme_on_api_routes(api: Api) -> None:
    doc = httpx.get(f"{api.url}/openapi.json").json()
    (scheme,) = doc["components"]["securitySchemes"].values()
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    name = next(iter(doc["components"]["securitySchemes"]))
    assert doc["paths"]["/api/v1/fields"]["get"]["security"] == [{name: []}]
    assert "security" not in doc["paths"]["/healthz"]["get"]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_load_everything_from_the_app_itself(api: Api, page: str) -> None:
    response = httpx.get(f"{api.url}{page}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", response.text)
    assert any(u.endswith(".js") for u in urls)
    assert all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    assert "://" not in "".join(re.findall(r"url\s*:\s*['\"]([^'\"]+)", response.text))
    for url in urls:
        assert httpx.get(f"{api.url}{url}").status_code == 200, url


def test_a_store_outage_is_503_without_the_password_in_the_store_url(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    down = InfluxStore(
        f"http://ops:pw-s3cret@127.0.0.1:{free_port()}",
        "nowhere",
        timeout=1,
        retry=RetryPolicy(attempts=1),
    )
    metadata = MetadataDB(tmp_path / "agridrone.db")
    with caplog.at_level(logging.INFO), serving(create_app(down, metadata)) as url:
        response = httpx.get(f"{url}/api/v1/drones", headers=Api(url, metadata).operator)
    metadata.close()
    down.close()
    assert response.status_code == 503
    assert response.json()["detail"].startswith(
        "the data store is not answering (InfluxDB http://127.0.0.1:"
    )
    assert "pw-s3cret" not in response.text
    assert "pw-s3cret" not in caplog.text
