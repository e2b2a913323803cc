"""Errors over real HTTP are JSON ``{"detail": ...}`` a person can act on; and ``/metrics``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from storage.influx import InfluxStore, RetryPolicy
from storage.keys import generate_key
from storage.metadata import MetadataDB
from storage.sqlite import SqliteStore
from tests.integration.api_server import serving
from tests.servers import free_port

pytestmark = pytest.mark.integration


class Api:
    """The running API with an operator key."""

    def __init__(self, url: str, metadata: MetadataDB) -> None:
        new = generate_key("operator", "ops", "test", int(time.time() * 1000))
        metadata.add_api_key(new.record)
        self.url = url
        self.headers = {"Authorization": f"Bearer {new.key}"}

    def get(self, path: str, **params: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", headers=self.headers, params=params)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    metadata = MetadataDB(tmp_path / "agridrone.db")
    with SqliteStore(tmp_path / "t.db") as store, serving(create_app(store, metadata)) as url:
        yield Api(url, metadata)
    metadata.close()


def test_an_unknown_route_is_a_json_404_pointing_at_the_docs(api: Api) -> None:
    response = api.get("/api/v1/tractors")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "detail": "no route GET /api/v1/tractors; the routes are listed at /docs"
        " (API routes start with /api/v1/)"
    }


def test_a_wrong_method_is_405_naming_the_allowed_ones(api: Api) -> None:
    response = httpx.delete(f"{api.url}/api/v1/rejected", headers=api.headers)
    assert response.status_code == 405
    assert response.json()["detail"] == "DELETE is not allowed on /api/v1/rejected; use GET"


def test_a_bad_time_is_422_naming_the_parameter_with_an_example(api: Api) -> None:
    response = api.get("/api/v1/rejected", **{"from": "2026-13-01"})
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "from: '2026-13-01' is not an RFC 3339 time or a date"
        " (example: 2026-11-28T07:00:00+07:00, or 2026-11-28 for local midnight)"
    )


def test_a_reversed_window_is_422_saying_how_to_ask_for_one_day(api: Api) -> None:
    response = api.get("/api/v1/rejected", **{"from": "2026-11-29", "to": "2026-11-28"})
    assert response.status_code == 422
    assert "must be after from" in response.json()["detail"]


def test_a_malformed_path_id_is_422_naming_the_path_parameter(api: Api) -> None:
    response = api.get("/api/v1/drones/htx a/dt-01")
    assert response.status_code == 422
    body = response.json()
    assert body["detail"].startswith("path parameter 'coop': String should match pattern")
    assert "(got 'htx a')" in body["detail"]
    assert body["problems"] == [body["detail"]]


def test_no_stack_trace_leaks_when_the_store_is_down(tmp_path: Path) -> None:
    down = InfluxStore(
        f"http://127.0.0.1:{free_port()}", "nowhere", timeout=1, retry=RetryPolicy(attempts=1)
    )
    metadata = MetadataDB(tmp_path / "agridrone.db")
    with serving(create_app(down, metadata)) as url:
        response = Api(url, metadata).get("/api/v1/drones")
    metadata.close()
    down.close()
    assert response.status_code == 503
    assert response.headers["retry-after"] == "30"
    detail = response.json()["detail"]
    assert detail.startswith("the data store is not answering (InfluxDB http://127.0.0.1:")
    assert "Traceback" not in detail


def test_metrics_count_requests_by_route_template(api: Api) -> None:
    api.get("/api/v1/drones/htx-a/dt-01")
    api.get("/api/v1/drones/htx-a/dt-02")
    api.get("/api/v1/no-such-thing")
    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert (
        'agridrone_api_requests_total{method="GET",route="/api/v1/drones/{coop}/{drone}",'
        'status="404"} 2.0'
    ) in text
    assert 'route="<unmatched>",status="404"} 1.0' in text
    assert "agridrone_api_request_duration_seconds_bucket{" in text
    assert "dt-01" not in text
    assert "process_resident_memory_bytes" in text
