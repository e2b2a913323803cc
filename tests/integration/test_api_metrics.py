"""``/metrics`` over real HTTP: an operator key unless the deployment makes it public.

(Every role's status is also in test_api_roles.py's matrix; here are the answers' shapes, the
public switch, and ``agridrone api`` reading ``AGRIDRONE_METRICS_PUBLIC``.)
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from storage.keys import Role, generate_key
from storage.metadata import MetadataDB
from storage.sqlite import SqliteStore
from tests.integration.api_server import serving
from tests.servers import free_port

pytestmark = pytest.mark.integration


def bearer(metadata: MetadataDB, role: Role, subject: str) -> dict[str, str]:
    new = generate_key(role, subject, "test", int(time.time() * 1000))
    metadata.add_api_key(new.record)
    return {"Authorization": f"Bearer {new.key}"}


@contextlib.contextmanager
def api(tmp_path: Path, *, metrics_public: bool = False) -> Iterator[tuple[str, MetadataDB]]:
    metadata = MetadataDB(tmp_path / "agridrone.db")
    with (
        SqliteStore(tmp_path / "t.db") as store,
        serving(create_app(store, metadata, metrics_public=metrics_public)) as url,
    ):
        yield url, metadata
    metadata.close()


def test_without_a_key_metrics_are_401_saying_how_to_send_one(tmp_path: Path) -> None:
    with api(tmp_path) as (url, _):
        response = httpx.get(f"{url}/metrics")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in response.json()["detail"]
    assert "agridrone_api_requests" not in response.text


@pytest.mark.parametrize(("role", "subject"), [("farmer", "nd-hp-00"), ("coop", "htx-a")])
def test_farmer_and_coop_keys_get_403_naming_the_operator_role(
    tmp_path: Path, role: Role, subject: str
) -> None:
    with api(tmp_path) as (url, metadata):
        response = httpx.get(f"{url}/metrics", headers=bearer(metadata, role, subject))
    assert response.status_code == 403
    assert "needs a operator key" in response.json()["detail"]


def test_an_operator_key_reads_the_metrics(tmp_path: Path) -> None:
    with api(tmp_path) as (url, metadata):
        response = httpx.get(f"{url}/metrics", headers=bearer(metadata, "operator", "ops"))
    assert response.status_code == 200
    assert "process_resident_memory_bytes" in response.text


def test_public_metrics_need_no_key(tmp_path: Path) -> None:
    with api(tmp_path, metrics_public=True) as (url, _):
        response = httpx.get(f"{url}/metrics")
    assert response.status_code == 200
    assert "agridrone_api_request_duration_seconds" in response.text


def test_public_metrics_do_not_open_the_data_routes(tmp_path: Path) -> None:
    with api(tmp_path, metrics_public=True) as (url, _):
        assert httpx.get(f"{url}/api/v1/drones").status_code == 401


@contextlib.contextmanager
def agridrone_api(tmp_path: Path, env: dict[str, str]) -> Iterator[str]:
    """``agridrone api`` as a process, with ``env`` laid over a clean AGRIDRONE_* set."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AGRIDRONE_")}
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "agridrone.cli", "api", "--port", str(port)),
            *("--sqlite-path", str(tmp_path / "t.db")),
            *("--metadata-path", str(tmp_path / "agridrone.db")),
        ],
        env={**clean, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"agridrone api exited with {proc.returncode}"
            assert time.monotonic() < deadline, "agridrone api did not answer in 60 s"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    ("env", "status"),
    [
        ({}, 401),
        ({"AGRIDRONE_METRICS_PUBLIC": "false"}, 401),
        ({"AGRIDRONE_METRICS_PUBLIC": "true"}, 200),
    ],
)
def test_agridrone_api_keeps_metrics_private_unless_the_setting_says_public(
    tmp_path: Path, env: dict[str, str], status: int
) -> None:
    with agridrone_api(tmp_path, env) as url:
        assert httpx.get(f"{url}/metrics").status_code == status
