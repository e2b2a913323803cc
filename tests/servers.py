"""Start real Mosquitto and InfluxDB servers on free loopback ports, for tests and benchmarks.

Each server gets its own config and data folder, is polled until it answers, and is
stopped by the PID we started (never by name: the machine runs its own instances).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
#: Where ``scripts/install-servers.sh`` unpacks Debian's influxdb when apt has no candidate.
LOCAL_INFLUXD = REPO / ".servers" / "influxdb" / "usr" / "bin" / "influxd"


class ServerStartError(RuntimeError):
    """A test server did not become ready."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerStartError(f"server exited with {proc.returncode}: {log.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise ServerStartError(f"port {port} not open after {timeout} s: {log.read_text()}")


@dataclass
class Mosquitto:
    """A running Mosquitto we started; ``restart``/``kill`` act on its PID only."""

    port: int
    folder: Path
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def stop(self) -> None:
        _stop(self.proc)

    def start(self) -> None:
        self.proc = _spawn_mosquitto(self.folder, self.port)


def _mosquitto_config(folder: Path, port: int) -> str:
    # The queue limits are raised on purpose: at Mosquitto's default of 1,000 queued QoS 1
    # messages per client a slow consumer silently loses the rest (see docs/architecture.md).
    # ``user`` keeps the broker under the test's own user, so it can write the temp folder.
    return (
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        f"user {getpass.getuser()}\n"
        "persistence true\n"
        f"persistence_location {folder}/\n"
        "autosave_interval 10\n"
        "max_queued_messages 1000000\n"
        "max_queued_bytes 1073741824\n"
        "max_inflight_messages 1000\n"
        f"log_dest file {folder}/mosquitto.log\n"
        "log_type error\nlog_type warning\nlog_type notice\n"
    )


def _spawn_mosquitto(folder: Path, port: int) -> subprocess.Popen[bytes]:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    conf = folder / "mosquitto.conf"
    conf.write_text(_mosquitto_config(folder, port))
    log = folder / "mosquitto.out"
    with log.open("ab") as out:
        proc = subprocess.Popen([exe, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)
    _wait_for_port(port, proc, log, timeout=10)
    return proc


@contextlib.contextmanager
def running_mosquitto(folder: Path) -> Iterator[Mosquitto]:
    """A Mosquitto on a free loopback port with its data in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = Mosquitto(port, folder, _spawn_mosquitto(folder, port))
    try:
        yield server
    finally:
        server.stop()


def influxd_path() -> str:
    """The influxd binary: the system's, else the one unpacked under ``.servers/``."""
    found = shutil.which("influxd")
    if found:
        return found
    if LOCAL_INFLUXD.exists():
        return str(LOCAL_INFLUXD)
    raise ServerStartError("influxd not found: run `bash scripts/install-servers.sh` first")


@dataclass
class Influxd:
    """A running influxd we started; ``stop``/``start`` keep its port and data."""

    port: int
    folder: Path
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        _stop(self.proc)

    def start(self) -> None:
        self.proc = _spawn_influxd(self.folder, self.port)


def _influxd_config(folder: Path, port: int, rpc_port: int) -> str:
    return f"""reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{folder}/meta"
[data]
  dir = "{folder}/data"
  wal-dir = "{folder}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
"""


def _spawn_influxd(folder: Path, port: int) -> subprocess.Popen[bytes]:
    conf = folder / "influxdb.conf"
    conf.write_text(_influxd_config(folder, port, free_port()))
    log = folder / "influxd.out"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [influxd_path(), "-config", str(conf)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "INFLUXDB_DATA_QUERY_LOG_ENABLED": "false"},
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerStartError(f"influxd exited with {proc.returncode}: {log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=0.5).status_code == 204:
                return proc
        time.sleep(0.02)
    _stop(proc)
    raise ServerStartError(f"influxd not ready on port {port}: {log.read_text()}")


@contextlib.contextmanager
def running_influxd(folder: Path) -> Iterator[Influxd]:
    """An influxd on a free loopback port with its data in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = Influxd(port, folder, _spawn_influxd(folder, port))
    try:
        yield server
    finally:
        server.stop()
