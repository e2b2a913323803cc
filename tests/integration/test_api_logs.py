"""``POST /api/v1/drones/{coop}/{drone}/logs`` over real HTTP (uvicorn, tests/integration/
api_server.py) on both telemetry stores: the drone's cooperative and operators import, with
the counts the log holds; everyone else gets the 404 of an unknown drone; the body limit,
other kinds of file and bad spray rules are refused before anything is stored."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx
import pytest

from api.app import create_app
from storage.contract import TelemetryStore
from storage.drones import DroneRecord
from storage.keys import Role, generate_key
from storage.metadata import MetadataDB
from tests.integration.api_server import serving
from tests.realdata import needs_realdata, realdata
from tests.unit.test_log_readers import independent_tlog

pytestmark = needs_realdata

A, B = "htx-a", "htx-b"
DRONE = "px-01"
#: Between the two real tlogs' sizes (1.17 MB and 1.98 MB).
LIMIT: Final = 1_500_000
ALL = (0, 2**62)


@dataclass
class Api:
    url: str
    store: TelemetryStore
    metadata: MetadataDB
    keys: dict[str, dict[str, str]]

    def upload(
        self, coop: str, drone: str, body: object, who: str | None, **params: str
    ) -> httpx.Response:
        headers = self.keys[who] if who else {}
        return httpx.post(
            f"{self.url}/api/v1/drones/{coop}/{drone}/logs",
            content=body,  # type: ignore[arg-type]
            params=params,
            headers=headers,
            timeout=120,
        )


@pytest.fixture
def api(store: TelemetryStore, tmp_path: Path) -> Iterator[Api]:
    metadata = MetadataDB(tmp_path / "agridrone.db")
    now = int(time.time() * 1000)
    metadata.add_drone(DroneRecord(A, DRONE, None, now, "$7$not-a-real-hash"))
    metadata.add_drone(DroneRecord(B, "other", None, now, "$7$not-a-real-hash"))
    keys: dict[str, dict[str, str]] = {}
    who: dict[str, tuple[Role, str]] = {
        "coop_a": ("coop", A),
        "coop_b": ("coop", B),
        "farmer": ("farmer", "nd-a-00"),
        "operator": ("operator", "ops"),
    }
    for name, (role, subject) in who.items():
        new = generate_key(role, subject, "test", now)
        metadata.add_api_key(new.record)
        keys[name] = {"Authorization": f"Bearer {new.key}"}
    try:
        with serving(create_app(store, metadata, log_upload_max_bytes=LIMIT)) as url:
            yield Api(url, store, metadata, keys)
    finally:
        metadata.close()


def test_the_drones_cooperative_imports_a_real_tlog_once(api: Api) -> None:
    path = realdata("raw", "phoenix_ubc_2018-09-17.tlog")
    truth = independent_tlog(path)
    first = api.upload(A, DRONE, path.read_bytes(), "coop_a", name=path.name)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["kind"] == "tlog"
    assert body["name"] == path.name
    assert body["samples_stored"] == len(truth["fixes"])
    assert body["rejected"] == {"no_fix": truth["no_fix"]}
    assert body["flights_found"] == len(truth["arms"]) == 6
    assert body["complete"] is True
    assert body["already_imported"] is False
    assert len(api.store.drone_samples(A, DRONE, *ALL)) == len(truth["fixes"])
    flights = httpx.get(
        f"{api.url}/api/v1/flights",
        params={"from": "2018-09-17", "to": "2018-09-19", "drone": DRONE},
        headers=api.keys["coop_a"],
    )
    assert flights.status_code == 200, flights.text
    listed = flights.json()
    assert listed["returned"] == 6  # the 2018 flights, summarized at upload
    assert [f["id"] for f in listed["flights"]] == [f["id"] for f in body["flights"]]

    again = api.upload(A, DRONE, path.read_bytes(), "coop_a")
    assert again.status_code == 200
    repeat = again.json()
    assert repeat["already_imported"] is True
    assert repeat["samples_stored"] == 0
    assert repeat["imported_ms"] is not None
    assert [f["id"] for f in repeat["flights"]] == [f["id"] for f in body["flights"]]
    assert len(api.store.drone_samples(A, DRONE, *ALL)) == len(truth["fixes"])


def test_an_operator_imports_a_real_airdata_track(api: Api) -> None:
    path = realdata("tracks", "dji_mini2_2021-09-06_airdata.csv")
    rows = path.read_text().count("\n") - 1
    response = api.upload(A, DRONE, path.read_bytes(), "operator", spray="all")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["kind"] == "csv"
    assert body["rejected"] == {"duplicate": 1}
    assert body["samples_stored"] == rows - 1
    stored = api.store.drone_samples(A, DRONE, *ALL)
    assert len(stored) == rows - 1
    assert all(s.spraying for s in stored)


@pytest.mark.parametrize("who", ["coop_b", "farmer"])
def test_others_get_the_404_of_an_unknown_drone_and_nothing_is_stored(api: Api, who: str) -> None:
    data = realdata("raw", "phoenix_ubc_2018-09-17.tlog").read_bytes()
    hidden = api.upload(A, DRONE, data, who)
    ghost = f"ghost-{uuid.uuid4().hex[:6]}"
    missing = api.upload(A, ghost, data, who)
    unregistered = api.upload(A, ghost, data, "operator")
    assert hidden.status_code == missing.status_code == unregistered.status_code == 404
    assert hidden.json()["detail"] == missing.json()["detail"].replace(ghost, DRONE)
    assert hidden.json()["detail"] == unregistered.json()["detail"].replace(ghost, DRONE)
    get = httpx.get(f"{api.url}/api/v1/drones/{A}/{DRONE}", headers=api.keys[who])
    assert get.status_code == 404
    assert hidden.json() == get.json()
    assert api.store.drone_samples(A, DRONE, *ALL) == []


def test_no_key_is_401(api: Api) -> None:
    response = api.upload(A, DRONE, b"ts,lat,lon\n", None)
    assert response.status_code == 401


def test_a_log_over_the_limit_is_413_with_or_without_a_length(api: Api) -> None:
    data = realdata("raw", "phoenix_ubc_2018-09-25.tlog").read_bytes()
    assert len(data) > LIMIT
    declared = api.upload(A, DRONE, data, "coop_a")
    assert declared.status_code == 413
    assert f"{LIMIT} bytes" in declared.json()["detail"]
    streamed = api.upload(A, DRONE, chunks_of(data), "coop_a")  # chunked: no length
    assert streamed.status_code == 413
    assert api.store.drone_samples(A, DRONE, *ALL) == []
    small = realdata("raw", "phoenix_ubc_2018-09-17.tlog").read_bytes()
    assert api.upload(A, DRONE, chunks_of(small), "coop_a").status_code == 201


def chunks_of(data: bytes) -> Iterator[bytes]:
    """``data`` as a chunked request body (no Content-Length)."""
    for i in range(0, len(data), 65_536):
        yield data[i : i + 65_536]


@pytest.mark.parametrize(
    "body",
    [b"# agridrone\n\nnot a log\n", b"\x89PNG\r\n\x1a\n" + bytes(100), b'{"type": "Feature"}', b""],
)
def test_another_kind_of_file_is_415_naming_the_accepted_kinds(api: Api, body: bytes) -> None:
    response = api.upload(A, DRONE, body, "coop_a")
    assert response.status_code == 415
    detail = response.json()["detail"]
    for kind in (".tlog", ".bin", ".ulg", "Airdata"):
        assert kind in detail
    assert api.store.drone_samples(A, DRONE, *ALL) == []


def test_a_bad_spray_rule_is_422(api: Api) -> None:
    data = realdata("raw", "phoenix_ubc_2018-09-17.tlog").read_bytes()
    response = api.upload(A, DRONE, data, "coop_a", spray="rc7")
    assert response.status_code == 422
    assert "spray" in response.json()["detail"]
    csv_rule = api.upload(A, DRONE, b"ts,lat,lon\n1600000000,1,2\n", "coop_a", spray="rc7>1500")
    assert csv_rule.status_code == 422
    assert api.store.drone_samples(A, DRONE, *ALL) == []
