"""Importing a town's plots: ``agridrone fields import`` beside the API's POST /fields.

For each size, ``bench.town`` draws a town of N plots (with its no-spray zones; not timed)
and writes one GeoJSON file per cooperative plus one of the commune-wide zones.

- **Ours:** ``agridrone fields import FILE --coop C`` for each file, one process after the
  other, into a fresh SQLite metadata database (the time of every process from start to
  exit, interpreter start-up included; peak RSS is the largest of them, from ``wait4``).
- **Baseline:** the API's POST /fields as on main 1e9e835 (``git archive`` of that commit,
  run from its own tree): one process serving the app in-process (Starlette's TestClient,
  no network), a cooperative key posting its cooperative's documents of at most 5,000
  features (the API's per-document limit) and an operator key the commune-wide zones. It
  stops at the time cap; a size it cannot finish is shown as "> cap" with how far it got.

Each figure is wall seconds / CPU seconds (user + system of the timed process): on this
shared 2-core machine other work inflates wall time, CPU time much less. Medians of
``--runs`` runs (a baseline over the cap is run once). Both ends check that every plot and
zone was stored.

    .venv/bin/python -m bench.fields_import [--sizes 1000,10000,100000] [--runs 3]
    (make bench-import)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bench._serve import timed_process
from bench.town import Town, town, write_per_coop

BASELINE_REV: Final = "1e9e835"
GOAL_S: Final = 60.0
ROOT: Final = Path(__file__).resolve().parent.parent

#: Run by our in-process worker: ``import_file`` of every file, timed as the baseline is.
_OURS = r"""
import json, resource, sys, time
from pathlib import Path
from fields.import_cli import import_file
from storage.metadata import MetadataDB

folder = Path(sys.argv[1])
files = json.loads((folder / "files.json").read_text())
metadata = MetadataDB(folder / "ours-inproc.db")
started, cpu = time.perf_counter(), time.process_time()
stored = refused = 0
for coop, path in files:
    summary = import_file(Path(path), metadata, coop=coop, progress=False)
    stored += summary.added
    refused += len(summary.refused)
print(json.dumps({"seconds": time.perf_counter() - started, "stored": stored,
                  "cpu_s": time.process_time() - cpu,
                  "refused": refused,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

#: Run by the baseline process, from the baseline's source tree: POST every document.
_BASELINE = r"""
import json, resource, sys, time
from pathlib import Path
from fastapi.testclient import TestClient
from api.app import create_app
from storage.keys import generate_key
from storage.metadata import MetadataDB
from storage.sqlite import SqliteStore

folder, cap_s = Path(sys.argv[1]), float(sys.argv[2])
manifest = json.loads((folder / "manifest.json").read_text())
metadata = MetadataDB(folder / "base.db")
store = SqliteStore(folder / "telemetry.db")
headers = {}
for coop in {d["coop"] for d in manifest}:
    role, subject = ("coop", coop) if coop else ("operator", "ops")
    new = generate_key(role, subject, "bench", int(time.time() * 1000))
    metadata.add_api_key(new.record)
    headers[coop] = {"Authorization": f"Bearer {new.key}"}
client = TestClient(create_app(store, metadata))
started, cpu = time.perf_counter(), time.process_time()
stored = done = 0
for doc in manifest:
    if time.perf_counter() - started > cap_s:
        break
    body = (folder / doc["path"]).read_bytes()
    r = client.post("/api/v1/fields", content=body,
                    headers={**headers[doc["coop"]], "Content-Type": "application/json"})
    if r.status_code != 201:
        sys.exit(f"POST {doc['path']}: {r.status_code} {r.text[:300]}")
    stored += r.json()["imported"]
    done += 1
print(json.dumps({"seconds": time.perf_counter() - started, "stored": stored,
                  "cpu_s": time.process_time() - cpu,
                  "documents": done, "of": len(manifest),
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


@dataclass
class Run:
    """One import of a whole town: wall time, peak RSS, features stored (or how far it got)."""

    seconds: float
    rss_mb: float
    stored: int
    cpu_s: float
    finished: bool = True
    note: str = ""


def fresh(db: Path) -> None:
    """Remove a SQLite database and its WAL files."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def ours_cli(files: list[tuple[str, Path]], folder: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of ``agridrone fields import`` run for every file, one process
    each (interpreter start-up and imports included), into a fresh database."""
    db = folder / "ours.db"
    fresh(db)
    total = 0.0
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for coop, path in files:
        argv = [sys.executable, "-m", "agridrone.cli", "fields", "import", str(path)]
        argv += ["--coop", coop, "--quiet", "--json", "--metadata-path", str(db)]
        seconds, text = timed_process(argv, ROOT)
        if json.loads(text)["refused"]:
            raise RuntimeError(f"{path}: refused {json.loads(text)['refused'][:3]}")
        total += seconds
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return total, cpu


def ours(files: list[tuple[str, Path]], folder: Path) -> Run:
    """``fields.import_cli.import_file`` of every file in one process, timed inside it as the
    baseline is (no start-up), into a fresh database."""
    fresh(folder / "ours-inproc.db")
    (folder / "files.json").write_text(json.dumps([(c, str(p)) for c, p in files]))
    _, text = timed_process([sys.executable, "-c", _OURS, str(folder)], ROOT)
    got = json.loads(text.strip().splitlines()[-1])
    if got["refused"]:
        raise RuntimeError(f"{got['refused']} features refused")
    return Run(got["seconds"], got["rss_mb"], got["stored"], got["cpu_s"])


def baseline(t: Town, folder: Path, source: Path, cap_s: float) -> Run:
    """The API's POST /fields from ``source``, document by document, up to ``cap_s``."""
    docs = folder / "docs"
    docs.mkdir(exist_ok=True)
    manifest = []
    for k, (coop, doc) in enumerate(t.documents()):
        path = docs / f"{k:04d}.json"
        path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        manifest.append({"coop": coop or "", "path": str(path.relative_to(folder))})
    (folder / "manifest.json").write_text(json.dumps(manifest))
    fresh(folder / "base.db")
    fresh(folder / "telemetry.db")
    env = {**os.environ, "PYTHONPATH": str(source)}
    _, text = timed_process([sys.executable, "-c", _BASELINE, str(folder), str(cap_s)], source, env)
    got = json.loads(text.strip().splitlines()[-1])
    finished = got["documents"] == got["of"]
    note = "" if finished else f"{got['documents']}/{got['of']} documents, {got['stored']} stored"
    return Run(got["seconds"], got["rss_mb"], got["stored"], got["cpu_s"], finished, note)


def baseline_source(rev: str, folder: Path) -> Path:
    """The baseline's tree: ``git archive`` of ``rev`` (the current tree if git cannot)."""
    target = folder / f"src-{rev}"
    archive = folder / f"{rev}.tar"
    try:
        subprocess.run(
            ["git", "archive", "--format=tar", "-o", str(archive), rev],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"(git archive {rev} failed: {exc}; the baseline runs this tree's API)")
        return ROOT
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target


def median_run(runs: list[Run]) -> Run:
    """The run of median time (its RSS and count with it)."""
    ordered = sorted(runs, key=lambda r: r.seconds)
    return ordered[(len(ordered) - 1) // 2]


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="town sizes, in plots")
    parser.add_argument("--runs", type=int, default=3, help="runs per size (median shown)")
    parser.add_argument("--cap-s", type=float, default=240.0, help="baseline time cap per run")
    parser.add_argument("--baseline-rev", default=BASELINE_REV, help="commit of the baseline")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    print(
        f"# fields import, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, "
        f"{platform.machine()} x {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f} at start"
    )
    rows: list[str] = []
    seconds_100k: float | None = None
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        root = Path(tmp)
        source = baseline_source(args.baseline_rev, root)
        for n in sizes:
            folder = root / f"town-{n}"
            t = town(n)
            paths = write_per_coop(folder, t)
            files = [
                (p.stem if p.stem != "commune" else t.coops[0], p)
                for p in paths
                if json.loads(p.read_text(encoding="utf-8"))["features"]
            ]
            expected = len(t.plots) + len(t.zones)
            mine = [ours(files, folder) for _ in range(args.runs)]
            cli = [ours_cli(files, folder) for _ in range(args.runs)]
            cli_s = statistics.median(w for w, _ in cli)
            cli_cpu = statistics.median(c for _, c in cli)
            theirs: list[Run] = []
            for _ in range(args.runs):
                theirs.append(baseline(t, folder, source, args.cap_s))
                if not theirs[-1].finished:
                    break
            a, b = median_run(mine), median_run(theirs)
            if n == 100_000:
                seconds_100k = cli_s
            if a.stored != expected or (b.finished and b.stored != expected):
                raise RuntimeError(f"{n} plots: stored {a.stored} / {b.stored} of {expected}")
            rows.append(_row(n, expected, (a, b), (cli_s, cli_cpu), (len(mine), len(theirs))))
            print(rows[-1], flush=True)
    print()
    print(
        "| plots | features | ours in-process: wall / CPU s (peak RSS MB) | POST /fields on "
        f"main {args.baseline_rev}: wall / CPU s (peak RSS MB) | ratio (wall) "
        "| ours as CLI processes: wall / CPU s |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(row)
    if seconds_100k is not None:
        verdict = "met" if seconds_100k <= GOAL_S else "NOT met"
        print(
            f"\ngoal: 100,000 plots import (CLI processes, wall) in <= {GOAL_S:.0f} s: "
            f"{verdict} ({seconds_100k:.1f} s; load average now {os.getloadavg()[0]:.1f})"
        )


def _row(
    n: int, expected: int, pair: tuple[Run, Run], cli: tuple[float, float], runs: tuple[int, int]
) -> str:
    a, b = pair
    base = f"{b.seconds:.1f} / {b.cpu_s:.1f} ({b.rss_mb:.0f})"
    if not b.finished:
        base = f"> {b.seconds:.0f} cap / {b.cpu_s:.0f} ({b.note}; {b.rss_mb:.0f})"
    ratio = f"{b.seconds / a.seconds:.1f}x" + ("+" if not b.finished else "")
    return (
        f"| {n:,} | {expected:,} | {a.seconds:.1f} / {a.cpu_s:.1f} ({a.rss_mb:.0f}) "
        f"[{runs[0]} runs] | {base} [{runs[1]} runs] | {ratio} | {cli[0]:.1f} / {cli[1]:.1f} |"
    )


if __name__ == "__main__":
    main()
