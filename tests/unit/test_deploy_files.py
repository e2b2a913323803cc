"""The shipped deployment files agree with each other and are private by default.

No Docker engine runs the compose file in the tests, so these read it: the paths Mosquitto,
``agridrone init`` and the ingest worker use must meet. (What the broker does with the
shipped configuration is tested on a real Mosquitto in test_shipped_broker.py and
test_init_broker.py.)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from agridrone.cli import build_parser
from agridrone.init import HEALTH_OPTIONS_NAME
from agridrone.settings import ConfigError, Settings, settings_from_args
from ingest.broker_acl import ACL_FILE_NAME, DEFAULT_INGEST_USER, PASSWORD_FILE_NAME
from tests.deployment import (
    COMPOSE_FILE,
    SHIPPED_CONF,
    compose_service,
    directives,
    unescape_compose,
)
from tests.servers import REPO, free_port

CONF = dict(directives(SHIPPED_CONF.read_text()))


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Mount target -> source (volume name or host path) of a compose service."""
    found = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        found[target] = source
    return found


def image_env() -> dict[str, str]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    env_lines = [line[4:] for line in text.splitlines() if line.startswith("ENV ")]
    return dict(pair.split("=", 1) for line in env_lines for pair in line.split())


def option(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


# --- deploy/mosquitto.conf ---------------------------------------------------------------------


def test_the_broker_lets_no_one_in_without_a_password() -> None:
    assert CONF["allow_anonymous"] == "false"


def test_the_broker_binds_client_ids_to_user_names_on_its_listener() -> None:
    names = [name for name, _ in directives(SHIPPED_CONF.read_text())]
    assert CONF["use_username_as_clientid"] == "true"
    assert names.index("use_username_as_clientid") > names.index("listener")


def test_the_broker_reads_the_files_init_and_broker_acl_write() -> None:
    assert PurePosixPath(CONF["password_file"]).name == PASSWORD_FILE_NAME
    assert PurePosixPath(CONF["acl_file"]).name == ACL_FILE_NAME
    assert PurePosixPath(CONF["password_file"]).parent == PurePosixPath(CONF["acl_file"]).parent


def test_the_broker_persists_and_queues_deliberately() -> None:
    assert CONF["persistence"] == "true"
    assert int(CONF["autosave_interval"]) <= 60
    assert int(CONF["max_queued_messages"]) >= 1_000_000  # default 1,000 drops silently
    assert int(CONF["max_queued_bytes"]) >= 2**30
    assert int(CONF["max_inflight_messages"]) >= 1000  # default 20 stalls batched acks


# --- docker-compose.yml and Dockerfile ---------------------------------------------------------


def test_mosquitto_runs_the_shipped_config() -> None:
    service = compose_service("mosquitto")
    assert mounts(service)["/mosquitto/config/mosquitto.conf"] == "./deploy/mosquitto.conf"


def test_mosquitto_reads_its_users_from_the_volume_init_writes() -> None:
    auth_dir = str(PurePosixPath(CONF["password_file"]).parent)
    volume = mounts(compose_service("mosquitto"))[auth_dir]
    init_mounts = mounts(compose_service("init"))
    assert init_mounts[image_env()["AGRIDRONE_BROKER_DIR"]] == volume
    assert f"{volume}:{auth_dir}:ro" in compose_service("mosquitto")["volumes"]


def test_mosquitto_starts_after_init_succeeded() -> None:
    depends = compose_service("mosquitto")["depends_on"]
    assert depends["init"] == {"condition": "service_completed_successfully"}


def test_the_broker_healthcheck_logs_in_with_the_options_init_writes() -> None:
    service = compose_service("mosquitto")
    auth_dir = str(PurePosixPath(CONF["password_file"]).parent)
    assert service["environment"]["XDG_CONFIG_HOME"] == auth_dir
    command = unescape_compose(service["healthcheck"]["test"])
    assert command[:2] == ["CMD", "mosquitto_sub"]
    assert "$SYS/broker/uptime" in command
    assert HEALTH_OPTIONS_NAME == "mosquitto_sub"  # the file name mosquitto_sub looks for


def test_the_ingest_worker_loads_the_login_init_writes_into_its_environment() -> None:
    ingest, init = compose_service("ingest"), compose_service("init")
    env_dir = option(init["command"], "--env-dir")
    script = unescape_compose(ingest["entrypoint"])
    assert script[:2] == ["sh", "-c"]
    assert f". {env_dir}/{DEFAULT_INGEST_USER}.env" in script[2]
    assert mounts(ingest)[env_dir] == mounts(init)[env_dir]
    assert f"{mounts(init)[env_dir]}:{env_dir}:ro" in ingest["volumes"]


def test_only_init_and_the_ingest_worker_see_the_workers_password() -> None:
    volume = mounts(compose_service("init"))[
        option(compose_service("init")["command"], "--env-dir")
    ]
    holders = {
        name
        for name in ("init", "mosquitto", "influxdb", "ingest", "api")
        if volume in mounts(compose_service(name)).values()
    }
    assert holders == {"init", "ingest"}


def test_the_image_user_is_mosquittos_uid_so_the_broker_can_read_init_s_files() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"useradd --system --uid 1883 ", text)
    assert re.search(r"groupadd --system --gid 1883 ", text)


def test_no_service_serves_metrics_publicly() -> None:
    ingest = compose_service("ingest")
    assert "--metrics-host" not in ingest["command"]
    api_env = compose_service("api").get("environment", {})
    assert str(api_env.get("AGRIDRONE_METRICS_PUBLIC", "false")).lower() == "false"
    assert "9100" not in str(ingest.get("ports", []))


def test_the_compose_file_names_every_volume_it_mounts() -> None:
    doc = yaml.safe_load(COMPOSE_FILE.read_text())
    named = {
        source
        for service in doc["services"].values()
        for source in mounts(service).values()
        if not source.startswith(".")
    }
    assert named <= set(doc["volumes"])


# --- private defaults ---------------------------------------------------------------------------


def test_the_ingest_workers_metrics_listen_on_loopback_by_default() -> None:
    args = build_parser().parse_args(["ingest", "--metrics-port", "9100"])
    assert args.metrics_host == "127.0.0.1"


def test_api_metrics_are_private_unless_the_setting_says_public(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    args = build_parser().parse_args(["api"])
    monkeypatch.delenv("AGRIDRONE_METRICS_PUBLIC", raising=False)
    assert settings_from_args(args).metrics_public is False
    monkeypatch.setenv("AGRIDRONE_METRICS_PUBLIC", "true")
    assert settings_from_args(args).metrics_public is True


def test_a_metrics_setting_that_is_not_a_boolean_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGRIDRONE_METRICS_PUBLIC", "perhaps")
    with pytest.raises(ConfigError, match="AGRIDRONE_METRICS_PUBLIC"):
        settings_from_args(build_parser().parse_args(["api"]))


# --- the scaled layout (profile "scaled", docs/deploy.md) -----------------------------------

SCALED = ("postgres", "init-scaled", "mosquitto-scaled", "ingest-a", "ingest-b", "api-a", "api-b")
SCALED_AGRIDRONE = ("init-scaled", "ingest-a", "ingest-b", "api-a", "api-b")
WORKERS = ("ingest-a", "ingest-b")
APIS = ("api-a", "api-b")
HAPROXY_CFG = REPO / "deploy" / "haproxy.cfg"
#: Where scripts/install-servers.sh unpacks HAProxy when the machine has none.
LOCAL_HAPROXY = REPO / ".servers" / "haproxy"


def services() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    found: dict[str, Any] = doc["services"]
    return found


def depends(name: str) -> set[str]:
    return set(compose_service(name).get("depends_on", {}))


def haproxy_servers() -> list[tuple[str, str]]:
    """(name, host:port) of each ``server`` line of the API backend."""
    lines = [line.split() for line in HAPROXY_CFG.read_text().splitlines()]
    return [(w[1], w[2]) for w in lines if w and w[0] == "server"]


def test_the_scaled_services_run_only_with_the_scaled_profile() -> None:
    for name, service in services().items():
        if name in (*SCALED, "proxy"):
            assert service.get("profiles") == ["scaled"], name
        else:
            assert "profiles" not in service, f"{name} would leave `docker compose up`"


def test_the_scaled_layout_starts_none_of_the_single_process_services() -> None:
    single = {"init", "mosquitto", "ingest", "api"}
    reachable, todo = set(), ["proxy", *WORKERS]
    while todo:
        name = todo.pop()
        if name not in reachable:
            reachable.add(name)
            todo += depends(name)
    assert reachable.isdisjoint(single)
    assert reachable >= {*SCALED, "proxy", "influxdb"}


def test_every_scaled_process_reads_one_postgresql_metadata_store() -> None:
    urls = {compose_service(n)["environment"]["AGRIDRONE_METADATA_URL"] for n in SCALED_AGRIDRONE}
    (url,) = urls
    parts = urlsplit(url)
    pg_env = compose_service("postgres")["environment"]
    assert parts.scheme == "postgresql"
    assert (parts.hostname, parts.port) == ("postgres", 5432)
    assert parts.username == pg_env["POSTGRES_USER"]
    assert parts.path == f"/{pg_env['POSTGRES_DB']}"
    assert parts.password == pg_env["POSTGRES_PASSWORD"] == "${POSTGRES_PASSWORD:-}"
    for name in SCALED_AGRIDRONE:
        assert "postgres" in depends(name) or "init-scaled" in depends(name), name


def test_the_scaled_processes_use_the_shared_broker_and_store() -> None:
    for name in SCALED_AGRIDRONE:
        env = compose_service(name)["environment"]
        assert env["AGRIDRONE_MQTT_URL"] == "mqtt://mosquitto-scaled:1883"
        assert env["AGRIDRONE_STORE"] == "influx"
        assert (
            env["AGRIDRONE_INFLUX_URL"]
            == compose_service("ingest")["environment"]["AGRIDRONE_INFLUX_URL"]
        )


def test_the_workers_share_one_group_under_logins_of_their_own() -> None:
    init = compose_service("init-scaled")["command"]
    users = [init[i + 1] for i, word in enumerate(init) if word == "--ingest-user"]
    env_dir = option(init, "--env-dir")
    client_ids = []
    for name in WORKERS:
        worker = compose_service(name)
        command = worker["command"]
        assert command[0] == "ingest"
        assert option(command, "--share-group") == "agridrone"
        assert "--summarize-flights" in command
        client_id = option(command, "--client-id")
        script = unescape_compose(worker["entrypoint"])
        assert f". {env_dir}/{client_id}.env" in script[2]
        assert mounts(worker)[env_dir] == mounts(compose_service("init-scaled"))[env_dir]
        assert worker["restart"] == "unless-stopped"  # its queued share waits for it
        client_ids.append(client_id)
    assert sorted(client_ids) == sorted(users)
    assert len(set(client_ids)) == len(WORKERS)


def test_exactly_one_scaled_worker_takes_the_unshared_mavproxy_and_dji_topics() -> None:
    # Their translation keeps per-drone state, so they are never shared (docs/integrations.md).
    def switched_off(command: list[str], flag: str) -> bool:
        return flag in command and option(command, flag) == ""

    takers = [
        name
        for name in WORKERS
        if not all(
            switched_off(compose_service(name)["command"], flag)
            for flag in ("--mavproxy-prefix", "--dji-topic")
        )
    ]
    assert takers == ["ingest-a"]


def test_the_scaled_broker_is_the_shipped_one_with_init_scaled_s_logins() -> None:
    broker = compose_service("mosquitto-scaled")
    assert mounts(broker)["/mosquitto/config/mosquitto.conf"] == "./deploy/mosquitto.conf"
    auth_dir = str(PurePosixPath(CONF["password_file"]).parent)
    init_mounts = mounts(compose_service("init-scaled"))
    assert mounts(broker)[auth_dir] == init_mounts[image_env()["AGRIDRONE_BROKER_DIR"]]
    assert broker["depends_on"] == {"init-scaled": {"condition": "service_completed_successfully"}}


def test_every_scaled_service_has_a_healthcheck() -> None:
    for name in (*SCALED, "proxy"):
        if name != "init-scaled":
            assert compose_service(name)["healthcheck"]["test"][0] == "CMD", name


def test_the_proxy_sends_its_port_to_both_api_replicas_checked_by_their_readiness() -> None:
    proxy = compose_service("proxy")
    cfg = HAPROXY_CFG.read_text()
    (published,) = proxy["ports"]
    assert f"bind :{published.split(':')[1]}" in cfg
    assert mounts(proxy)["/usr/local/etc/haproxy/haproxy.cfg"] == "./deploy/haproxy.cfg"
    upstreams = dict(haproxy_servers())
    assert set(upstreams) == set(APIS)
    for name in APIS:
        command = compose_service(name)["command"]
        assert upstreams[name] == f"{name}:{option(command, '--port')}"
        assert option(command, "--host") == "0.0.0.0"
        assert "ports" not in compose_service(name)  # only through the proxy, so that
        assert option(command, "--forwarded-allow-ips") == "*"  # it may believe the proxy
        assert "/readyz" in " ".join(compose_service(name)["healthcheck"]["test"])
    assert "option httpchk GET /readyz" in cfg
    assert "monitor-uri /proxy-health" in cfg
    assert "http://127.0.0.1:8000/proxy-health" in proxy["healthcheck"]["test"]


def test_the_proxy_replaces_the_forwarded_headers_the_replicas_believe() -> None:
    # The replicas trust X-Forwarded-* from any peer: a header a client sent must not survive
    # (``option forwardfor`` appends to it, and uvicorn reads the forged first entry).
    directives = [" ".join(line.split()) for line in HAPROXY_CFG.read_text().splitlines()]
    assert "option forwardfor" not in directives
    assert "http-request set-header X-Forwarded-For %[src]" in directives
    assert "http-request set-header X-Forwarded-Proto https if { ssl_fc }" in directives
    assert "http-request set-header X-Forwarded-Proto http unless { ssl_fc }" in directives
    for name in APIS:
        assert option(compose_service(name)["command"], "--forwarded-allow-ips") == "*"


def test_every_agridrone_variable_in_the_compose_file_is_a_known_setting() -> None:
    known = {f"AGRIDRONE_{name.upper()}" for name in Settings.model_fields}
    for name, service in services().items():
        env = service.get("environment") or {}
        used = {k for k in env if k.startswith("AGRIDRONE_")}
        assert used <= known, f"{name}: {sorted(used - known)}"
    # Variables the compose file reads from the shell that runs it: agridrone, run in that
    # shell, would refuse an AGRIDRONE_ one it does not know.
    interpolated = set(re.findall(r"\$\{(\w+)", COMPOSE_FILE.read_text(encoding="utf-8")))
    assert {v for v in interpolated if v.startswith("AGRIDRONE_")} <= known
    assert "POSTGRES_PASSWORD" in interpolated


def haproxy_command() -> tuple[list[str], dict[str, str]] | None:
    """The HAProxy binary and its environment: the machine's, or the unpacked one."""
    found = shutil.which("haproxy")
    if found:
        return [found], dict(os.environ)
    local = LOCAL_HAPROXY / "usr" / "sbin" / "haproxy"
    if local.exists():
        libs = LOCAL_HAPROXY / "usr" / "lib" / "x86_64-linux-gnu"
        return [str(local)], {**os.environ, "LD_LIBRARY_PATH": str(libs)}
    return None


def test_haproxy_accepts_the_shipped_configuration() -> None:
    command = haproxy_command()
    if command is None:
        pytest.skip("no haproxy here: scripts/install-servers.sh unpacks it when apt has it")
    exe, env = command
    result = subprocess.run(
        [*exe, "-c", "-f", str(HAPROXY_CFG)],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Configuration file is valid" in result.stdout + result.stderr


# --- worker health ------------------------------------------------------------------------------


@pytest.mark.parametrize(("subscribed", "healthy"), [(False, False), (True, True)])
def test_the_ingest_healthcheck_passes_only_once_the_worker_is_subscribed(
    subscribed: bool,
    healthy: bool,
) -> None:
    """Before its first SUBACK a worker loses what the broker accepts: it is not healthy yet."""
    from prometheus_client import start_http_server

    from ingest.metrics import IngestMetrics

    metrics = IngestMetrics()
    metrics.watch(queue_depth=lambda: 0.0, lag_s=lambda: 0.0, connected=lambda: float(subscribed))
    port = free_port()
    server, thread = start_http_server(port, "127.0.0.1", registry=metrics.registry)
    try:
        for name in ("ingest", "ingest-a"):
            _cmd, program, *args = unescape_compose(compose_service(name)["healthcheck"]["test"])
            assert program == "python"
            args = [a.replace(":9100/", f":{port}/") for a in args]
            run = subprocess.run([sys.executable, *args], capture_output=True, check=False)
            assert (run.returncode == 0) is healthy, (name, run.stderr)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_image_copies_every_package_the_project_installs() -> None:
    """``pip install .`` in the Dockerfile finds only what was copied before it."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    copied = set(re.findall(r"^COPY (\w+) \./\1$", dockerfile, flags=re.MULTILINE))
    assert packages <= copied, sorted(packages - copied)
