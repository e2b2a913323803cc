"""Start real Mosquitto, InfluxDB and PostgreSQL servers on free loopback ports, for tests
and benchmarks.

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
import tempfile
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


def postgres_bindir() -> Path:
    """The folder of PostgreSQL's ``initdb`` and ``postgres``: ``pg_config --bindir`` when it
    has them, else the newest /usr/lib/postgresql/*/bin (Debian's ``postgresql`` package)."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, check=True)
            candidates.append(Path(out.stdout.decode().strip()))
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates += versions
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "postgres").exists():
            return folder
    raise ServerStartError(
        "PostgreSQL's initdb/postgres not found: run `bash scripts/install-servers.sh` first"
    )


@dataclass
class Postgres:
    """A running PostgreSQL we started (its own data folder, a free port, a socket folder
    of its own); ``url(db)`` reaches one of its databases as the superuser."""

    port: int
    data: Path
    user: str
    uid: int | None
    bindir: Path
    log: Path
    durable: bool = False
    proc: subprocess.Popen[bytes] | None = None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Start (again) on the same port and data, and wait until it answers."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
                 "-k", str(self.data), "-c", "listen_addresses=127.0.0.1",
                 "-c", "max_connections=200", *(() if self.durable else _NO_FSYNC)],
                stdout=out, stderr=subprocess.STDOUT, user=self.uid,
            )  # fmt: skip
        _wait_for_postgres(self, self.log, timeout=30)

    def stop(self) -> None:
        """Fast shutdown (SIGINT: clients are disconnected, not waited for)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create a database (a copy of ``template``, if given); its URL. A template still
        being left by its last client is retried for a few seconds."""
        import psycopg
        from psycopg import sql

        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        deadline = time.monotonic() + 10
        with psycopg.connect(self.url(), autocommit=True) as conn:
            while True:
                try:
                    conn.execute(statement)
                    return self.url(name)
                except psycopg.errors.ObjectInUse:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)

    def drop_database(self, name: str) -> None:
        """Drop a database, closing whatever connections are left to it."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _postgres_user() -> tuple[str, int | None]:
    """Who runs the server: ourselves, or (PostgreSQL refuses root) the ``postgres`` user."""
    if os.geteuid() != 0:
        return getpass.getuser(), None
    import pwd

    try:
        return "postgres", pwd.getpwnam("postgres").pw_uid
    except KeyError:
        raise ServerStartError(
            "running as root and there is no postgres user: run `bash"
            " scripts/install-servers.sh` (Debian's postgresql package makes it)"
        ) from None


@contextlib.contextmanager
def running_postgres(folder: Path, *, durable: bool = False) -> Iterator[Postgres]:
    """A PostgreSQL on a free loopback port: ``initdb`` into a data folder of its own
    (``folder/data``; under root a private temp folder owned by ``postgres``, as the server
    refuses to run as root), stopped by its PID. Never the machine's server. Tests run it
    with ``fsync=off``; ``durable`` keeps PostgreSQL's own fsync settings (benchmarks)."""
    folder.mkdir(parents=True, exist_ok=True)
    bindir = postgres_bindir()
    user, uid = _postgres_user()
    data = folder / "data"
    if uid is not None:  # pytest's folders are private to root: use one postgres can enter
        data = Path(tempfile.mkdtemp(prefix="agridrone-pg-"))
        os.chown(data, uid, -1)
    log = folder / "postgres.out"
    try:
        with log.open("ab") as out:
            subprocess.run(
                [str(bindir / "initdb"), "-D", str(data), "-U", user, "-A", "trust",
                 "-E", "UTF8", "--locale=C", "--no-sync"],
                stdout=out, stderr=subprocess.STDOUT, check=True, user=uid,
            )  # fmt: skip
        server = Postgres(free_port(), data, user, uid, bindir, log, durable)
        server.start()
        try:
            yield server
        finally:
            server.stop()
    except subprocess.CalledProcessError as exc:
        raise ServerStartError(f"initdb failed ({exc}): {log.read_text()}") from exc
    finally:
        if uid is not None:
            shutil.rmtree(data, ignore_errors=True)


#: Test servers need no durability: no fsync, no waiting for the WAL at commit.
_NO_FSYNC = ("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")


def _wait_for_postgres(server: Postgres, log: Path, timeout: float) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc is not None and server.proc.poll() is not None:
            raise ServerStartError(
                f"postgres exited with {server.proc.returncode}: {log.read_text()}"
            )
        with (
            contextlib.suppress(psycopg.OperationalError),
            psycopg.connect(server.url(), connect_timeout=1),
        ):
            return
        time.sleep(0.05)
    server.stop()
    raise ServerStartError(f"postgres not ready on port {server.port}: {log.read_text()}")
