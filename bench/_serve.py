"""Starting, waiting for, measuring and stopping the processes a benchmark runs.

Shared by the ``bench`` modules so each starts its processes its own way but times them,
waits for them, reads their RSS and metrics, stops them and names the machine alike.
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import subprocess
import time
from pathlib import Path

import httpx


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until_ready(
    url: str,
    proc: subprocess.Popen[bytes],
    what: str,
    *,
    log: Path | None = None,
    path: str = "/healthz",
    timeout_s: float = 60,
) -> None:
    """Poll ``url + path`` until it answers 200; ``RuntimeError`` naming ``what`` (and the
    tail of ``log``) if ``proc`` exits or ``timeout_s`` passes first."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = "" if log is None else ":\n" + log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{what} did not start{tail}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}{path}", timeout=2).status_code == 200:
                return
        time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within 15 s."""
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a live process has used so far (Linux /proc)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM of a live process (Linux), MB; None when it cannot be read."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def metric(port: int, name: str) -> float:
    """One unlabelled value of the Prometheus page on ``port``; -1 when absent or unreachable."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return -1.0
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return -1.0


def timed_process(
    argv: list[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[float, str]:
    """Run a process to its end: (wall seconds, its stdout); its exit code must be 0."""
    t0 = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{argv[:6]} exited {done.returncode}: {done.stderr[-2000:]}")
    return seconds, done.stdout


def machine_line() -> str:
    """The header line a benchmark prints first: host, architecture, cores, Python."""
    return (
        f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
