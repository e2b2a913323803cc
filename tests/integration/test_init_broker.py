"""A first run end to end: `agridrone init`, then a real Mosquitto with the shipped config, the
ingest worker started the way docker-compose.yml starts it, a drone added afterwards.

Every command runs as its own process through the real CLI, with no AGRIDRONE_* variables
but those a deployment would set.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from api.app import create_app
from ingest.wire import encode_sample
from storage.metadata import MetadataDB
from storage.sqlite import SqliteStore
from tests.deployment import compose_service, unescape_compose
from tests.integration.api_server import serving
from tests.integration.mqtt_helpers import sample_series, wait_until
from tests.integration.shipped_broker import ShippedBroker, running_shipped_mosquitto
from tests.servers import free_port

pytestmark = pytest.mark.integration

TIMEOUT: Final = 10.0
COOP, DRONE = "htx-a", "d1"


def deployment_env(folder: Path, **extra: str) -> dict[str, str]:
    """A deployment's environment: no AGRIDRONE_* but its paths and ``extra``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AGRIDRONE_")}
    return {
        **clean,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{clean.get('PATH', '')}",
        "AGRIDRONE_METADATA_PATH": str(folder / "agridrone.db"),
        "AGRIDRONE_BROKER_DIR": str(folder / "broker"),
        **extra,
    }


def agridrone(folder: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """One ``agridrone`` command as its own process, in the deployment's environment."""
    return subprocess.run(
        [sys.executable, "-m", "agridrone.cli", *argv],
        env=deployment_env(folder),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@dataclass
class FirstRun:
    """A folder after `agridrone init`, and the shipped broker reading its files."""

    folder: Path
    operator_key: str
    init_stderr: str
    broker: ShippedBroker

    @property
    def env_file(self) -> Path:
        return self.folder / "secrets" / "agridrone-ingest.env"

    def agridrone(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return agridrone(self.folder, *argv)


def login(env_file: Path) -> tuple[str, str]:
    pairs = dict(
        line.split("=", 1) for line in env_file.read_text().splitlines() if line[:1] != "#"
    )
    return pairs["AGRIDRONE_MQTT_USERNAME"], pairs["AGRIDRONE_MQTT_PASSWORD"]


def connack(port: int, credentials: tuple[str, str] | None) -> ReasonCode:
    """The broker's answer to an MQTT 5 CONNECT with these credentials."""
    answers: list[ReasonCode] = []
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="probe", protocol=paho.MQTTv5)
    if credentials is not None:
        client.username_pw_set(*credentials)
    client.on_connect = lambda _c, _u, _f, code, _p: answers.append(code)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        wait_until(lambda: bool(answers), TIMEOUT, "a CONNACK")
    finally:
        client.disconnect()
        client.loop_stop()
    return answers[0]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirstRun]:
    folder = tmp_path_factory.mktemp("first-run")
    done = agridrone(folder, "init", "--env-dir", str(folder / "secrets"))
    assert done.returncode == 0, done.stderr
    with running_shipped_mosquitto(folder / "broker", folder / "mosquitto") as broker:
        yield FirstRun(folder, done.stdout.strip(), done.stderr, broker)


def test_the_shipped_broker_refuses_anonymous_clients(first_run: FirstRun) -> None:
    assert connack(first_run.broker.port, None).getName() == "Not authorized"


def test_the_shipped_broker_accepts_the_ingest_login_init_wrote(first_run: FirstRun) -> None:
    assert not connack(first_run.broker.port, login(first_run.env_file)).is_failure


def test_the_shipped_broker_refuses_the_ingest_user_with_another_password(
    first_run: FirstRun,
) -> None:
    user, _ = login(first_run.env_file)
    assert connack(first_run.broker.port, (user, "not-the-password")).is_failure


def test_the_operator_key_init_printed_reads_the_api_metrics(first_run: FirstRun) -> None:
    metadata = MetadataDB(first_run.folder / "agridrone.db")
    with (
        SqliteStore(first_run.folder / "api.db") as store,
        serving(create_app(store, metadata)) as url,
    ):
        headers = {"Authorization": f"Bearer {first_run.operator_key}"}
        assert httpx.get(f"{url}/metrics", headers=headers).status_code == 200
        assert httpx.get(f"{url}/metrics").status_code == 401
    metadata.close()


@contextlib.contextmanager
def compose_ingest(first_run: FirstRun, sqlite_path: Path, metrics_port: int) -> Iterator[None]:
    """The worker as docker-compose.yml starts it: its entrypoint script loads the env file
    init wrote, then runs its command (paths and ports moved to this test's)."""
    service = compose_service("ingest")
    entrypoint = unescape_compose(service["entrypoint"])
    entrypoint[2] = entrypoint[2].replace("/secrets/", f"{first_run.folder / 'secrets'}/")
    command = [
        str(metrics_port) if word == "9100" else word
        for word in unescape_compose(service["command"])
    ]
    env = deployment_env(
        first_run.folder,
        AGRIDRONE_MQTT_URL=f"mqtt://127.0.0.1:{first_run.broker.port}",
        AGRIDRONE_STORE="sqlite",
        AGRIDRONE_SQLITE_PATH=str(sqlite_path),
    )
    log = first_run.folder / "ingest.log"
    with log.open("ab") as out:
        proc = subprocess.Popen([*entrypoint, *command], env=env, stdout=out, stderr=out)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_drone_added_after_init_reaches_the_store_through_the_compose_started_worker(
    first_run: FirstRun,
) -> None:
    added = first_run.agridrone("drones", "add", "--coop", COOP, "--drone", DRONE)
    assert added.returncode == 0, added.stderr
    drone_login = (f"{COOP}.{DRONE}", added.stdout.strip())
    rewritten = first_run.agridrone("broker-acl")
    assert rewritten.returncode == 0, rewritten.stderr
    assert rewritten.stdout == ""  # the ingest and health users kept their hashes
    first_run.broker.reload()
    wait_until(
        lambda: not connack(first_run.broker.port, drone_login).is_failure,
        TIMEOUT,
        "the broker to let the new drone in after SIGHUP",
    )
    samples = sample_series(COOP, DRONE, 100)
    sqlite_path = first_run.folder / "telemetry.db"
    metrics_port = free_port()
    with compose_ingest(first_run, sqlite_path, metrics_port):
        wait_until(
            lambda: _healthy(metrics_port),
            60,
            "compose's ingest healthcheck (subscribed to the broker)",
            state=lambda: (first_run.folder / "ingest.log").read_text()[-2000:],
        )
        assert login(first_run.env_file)[1] not in (first_run.folder / "ingest.log").read_text()
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=DRONE, protocol=paho.MQTTv5)
        client.username_pw_set(*drone_login)
        client.connect("127.0.0.1", first_run.broker.port)
        client.loop_start()
        try:
            topic = f"agri/v1/{COOP}/{DRONE}/telemetry"
            for s in samples:
                client.publish(topic, encode_sample(s), qos=1).wait_for_publish(TIMEOUT)
        finally:
            client.disconnect()
            client.loop_stop()
        with SqliteStore(sqlite_path) as store:
            wait_until(
                lambda: len(store.drone_samples(COOP, DRONE, 0, 2**62)) == len(samples),
                60,
                "the drone's samples in the store",
                state=lambda: (first_run.folder / "ingest.log").read_text()[-2000:],
            )
            assert store.drone_samples(COOP, DRONE, 0, 2**62) == samples


def _healthy(metrics_port: int) -> bool:
    """Run compose's own ingest healthcheck command against this test's worker."""
    _cmd, program, *args = unescape_compose(compose_service("ingest")["healthcheck"]["test"])
    assert program == "python"
    args = [a.replace(":9100/", f":{metrics_port}/") for a in args]
    return subprocess.run([sys.executable, *args], capture_output=True, check=False).returncode == 0


def test_init_said_what_to_do_next(first_run: FirstRun) -> None:
    assert f"set -a; . {first_run.env_file}; set +a" in first_run.init_stderr
    assert "agridrone drones add --coop COOP --drone DRONE" in first_run.init_stderr


def test_a_second_init_keeps_the_broker_working(first_run: FirstRun) -> None:
    again = first_run.agridrone("init", "--env-dir", str(first_run.folder / "secrets"))
    assert again.returncode == 0, again.stderr
    assert again.stdout == ""
    assert not connack(first_run.broker.port, login(first_run.env_file)).is_failure
