"""The rejected-message log over real HTTP: operators read it, everyone else gets 403.

The log lives in the metadata database only, so one telemetry store (SQLite) is enough.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.times import parse_time, rfc3339
from storage.keys import Role, generate_key
from storage.metadata import MetadataDB, RejectedMessage
from storage.sqlite import SqliteStore
from tests.integration.api_server import serving

pytestmark = pytest.mark.integration

DAY = {"from": "2026-11-28", "to": "2026-11-29"}
T = parse_time("t", "2026-11-28T08:00:00+07:00")
BROKEN = b'{"ts": 1, "lat": "\xff\xfe'

LOG = [
    RejectedMessage(T, "agri/v1/htx-a/dt-01/telemetry", "bad_json", "unterminated", BROKEN),
    RejectedMessage(
        T + 1,
        "agri/v1/htx-a/dt-01/telemetry",
        "out_of_range",
        "sample 0: lat 91 (and 499 more)",
        b"{}",
        count=500,
        by_reason={"out_of_range": 498, "wrong_type": 2},
    ),
    RejectedMessage(T + 2, "agri/v1/htx-b/x/telemetry", "unknown_drone", "not registered", b"1"),
    RejectedMessage(T + 3, "agri/v1/htx-b/x/telemetry", "unknown_drone", "not registered", b"2"),
    RejectedMessage(T - 86_400_000, "agri/v1/htx-a/dt-01/event", "bad_json", "day before", b""),
]


class Api:
    """The running API plus a way to mint keys."""

    def __init__(self, url: str, metadata: MetadataDB) -> None:
        self.url, self.metadata = url, metadata

    def get(self, role: Role | None, subject: str = "", **params: str | int) -> httpx.Response:
        headers = {}
        if role is not None:
            new = generate_key(role, subject, "test", int(time.time() * 1000))
            self.metadata.add_api_key(new.record)
            headers["Authorization"] = f"Bearer {new.key}"
        return httpx.get(f"{self.url}/api/v1/rejected", headers=headers, params=params)


@pytest.fixture
def api(tmp_path: Path, metadata_url: str) -> Iterator[Api]:
    metadata = MetadataDB(metadata_url)
    metadata.record_rejections(LOG)
    with SqliteStore(tmp_path / "t.db") as store, serving(create_app(store, metadata)) as url:
        yield Api(url, metadata)
    metadata.close()


@pytest.mark.parametrize(
    ("role", "subject", "status"),
    [(None, "", 401), ("farmer", "nd-hung", 403), ("coop", "htx-a", 403), ("operator", "ops", 200)],
)
def test_only_operators_read_the_log(
    api: Api, role: Role | None, subject: str, status: int
) -> None:
    response = api.get(role, subject, **DAY)
    assert response.status_code == status
    if status == 403:
        assert "operator key" in response.json()["detail"]


def test_the_window_holds_the_days_rejections_oldest_first(api: Api) -> None:
    body = api.get("operator", "ops", **DAY).json()
    assert [m["received"] for m in body["messages"]] == [rfc3339(T + i) for i in range(4)]
    assert (body["from"], body["to"]) == (
        "2026-11-28T00:00:00.000+07:00",
        "2026-11-29T00:00:00.000+07:00",
    )
    assert (body["returned"], body["more"]) == (4, False)


def test_payloads_are_shown_as_text_and_as_exact_base64(api: Api) -> None:
    [first, *_] = api.get("operator", "ops", **DAY).json()["messages"]
    assert first["payload_text"] == '{"ts": 1, "lat": "\ufffd\ufffd'
    assert base64.b64decode(first["payload_base64"]) == BROKEN
    assert first["payload_bytes"] == len(BROKEN)
    assert (first["topic"], first["reason"], first["detail"]) == (
        "agri/v1/htx-a/dt-01/telemetry",
        "bad_json",
        "unterminated",
    )


def test_a_message_shows_how_many_samples_it_lost_and_why(api: Api) -> None:
    second = api.get("operator", "ops", **DAY).json()["messages"][1]
    assert (second["reason"], second["count"]) == ("out_of_range", 500)
    assert second["by_reason"] == {"out_of_range": 498, "wrong_type": 2}
    first = api.get("operator", "ops", **DAY).json()["messages"][0]
    assert (first["count"], first["by_reason"]) == (1, {"bad_json": 1})


def test_counts_by_reason_cover_the_shown_messages_and_the_whole_log(api: Api) -> None:
    body = api.get("operator", "ops", **DAY).json()
    assert body["returned_by_reason"] == {
        "bad_json": 1,
        "out_of_range": 498,
        "unknown_drone": 2,
        "wrong_type": 2,
    }
    assert body["all_time_by_reason"] == {
        "bad_json": 2,
        "out_of_range": 498,
        "unknown_drone": 2,
        "wrong_type": 2,
    }


def test_limit_cuts_the_list_and_says_there_is_more(api: Api) -> None:
    body = api.get("operator", "ops", limit=2, **DAY).json()
    assert [m["reason"] for m in body["messages"]] == ["bad_json", "out_of_range"]
    assert (body["limit"], body["returned"], body["more"]) == (2, 2, True)


@pytest.mark.parametrize("limit", [0, 1001, "many"])
def test_a_limit_out_of_range_is_422_naming_it(api: Api, limit: str | int) -> None:
    response = api.get("operator", "ops", limit=limit, **DAY)
    assert response.status_code == 422
    assert response.json()["detail"].startswith("query parameter 'limit'")
