"""A real Mosquitto running THE SHIPPED ``deploy/mosquitto.conf``, rewired only for a test.

The listener moves to a free loopback port, ``password_file``/``acl_file`` to the test's
broker folder (same file names), ``persistence_location`` to the test's data folder, and a
``user`` line keeps the broker under the test's own user. Every other line is used as
shipped, so a regression in the file (anonymous access, the client-id binding, the queue
limits) fails the tests that start it. ``docker-compose.yml``'s commands are read here too.
"""

from __future__ import annotations

import contextlib
import getpass
import shutil
import signal
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from tests.deployment import SHIPPED_CONF, directives
from tests.servers import _stop, _wait_for_port, free_port

#: Directives whose value names this machine's places; each must appear exactly once.
REWIRED: Final = ("listener", "password_file", "acl_file", "persistence_location")


def shipped_config(
    port: int, broker_dir: Path, data_dir: Path, *, without: Sequence[str] = ()
) -> str:
    """The shipped configuration for a test; ``without`` drops directives (control cases)."""
    shipped = directives(SHIPPED_CONF.read_text(encoding="utf-8"))
    names = [name for name, _ in shipped]
    for name in REWIRED:
        if names.count(name) != 1:
            raise AssertionError(f"{SHIPPED_CONF} sets {name} {names.count(name)} times, not once")
    lines = []
    for name, value in shipped:
        if name in without:
            continue
        here = {
            "listener": f"{port} 127.0.0.1",
            "password_file": str(broker_dir / Path(value).name),
            "acl_file": str(broker_dir / Path(value).name),
            "persistence_location": f"{data_dir}/",
        }
        lines.append(f"{name} {here.get(name, value)}")
    lines.append(f"user {getpass.getuser()}")
    return "\n".join(lines) + "\n"


@dataclass
class ShippedBroker:
    """A Mosquitto we started with the shipped configuration; stopped by its PID only."""

    port: int
    broker_dir: Path
    data_dir: Path
    proc: subprocess.Popen[bytes]
    log: Path

    def reload(self) -> None:
        """SIGHUP: Mosquitto re-reads its password file and ACL."""
        self.proc.send_signal(signal.SIGHUP)


@contextlib.contextmanager
def running_shipped_mosquitto(
    broker_dir: Path, data_dir: Path, *, without: Sequence[str] = ()
) -> Iterator[ShippedBroker]:
    """Mosquitto with the shipped config, its users from ``broker_dir`` (passwd and acl)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = data_dir / "mosquitto.conf"
    conf.write_text(shipped_config(port, broker_dir, data_dir, without=without))
    log = data_dir / "mosquitto.out"
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    with log.open("ab") as out:
        proc = subprocess.Popen([exe, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, proc, log, timeout=10)
        yield ShippedBroker(port, broker_dir, data_dir, proc, log)
    finally:
        _stop(proc)
