"""``agridrone logs import``: exit codes, summary on stdout, progress on stderr (embedded
SQLite stores in a temporary data folder; synthetic logs with their known truth)."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from agridrone.cli import main
from simulators.logfiles import tlog_file
from storage.drones import DroneRecord
from storage.metadata import MetadataDB

T0 = 1_600_000_000_000  # September 2020: an old log
COOP, DRONE = "htx-a", "px-01"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "data"
    monkeypatch.setenv("AGRIDRONE_DATA_DIR", str(folder))
    return folder


def register(data_dir: Path) -> None:
    db = MetadataDB(data_dir / "agridrone.db")
    try:
        db.add_drone(DroneRecord(COOP, DRONE, None, int(time.time() * 1000), "$7$x"))
    finally:
        db.close()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["logs", "import", *args, "--coop", COOP, "--drone", DRONE])
    out, err = capsys.readouterr()
    return code, out, err


def test_import_summary_progress_and_a_second_run(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    register(data_dir)
    log = tmp_path / "flight.tlog"
    truth = tlog_file(log, start_ms=T0, seconds=420, sorties=3, rate_hz=5)
    code, out, err = run(capsys, str(log))
    assert code == 0, err
    assert "importing" in err  # the progress bar
    assert f"{len(truth.fixes)} samples" in out
    assert "3 flights found" in out
    assert f"rejected no_fix: {truth.no_fix}" in out
    assert "2020-09-13" in out  # the log's own time, however old

    code, out, err = run(capsys, str(log), "--json")
    assert code == 0, err
    again = orjson.loads(out)
    assert again["already_imported"] is True
    assert again["samples_stored"] == 0
    assert again["flights_found"] == 3

    code, out, _ = run(capsys, str(log), "--quiet")
    assert code == 0
    assert "already imported" in out


def test_a_truncated_log_exits_1_saying_where_it_stopped(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    register(data_dir)
    log = tmp_path / "cut.tlog"
    tlog_file(log, start_ms=T0, seconds=60)
    data = log.read_bytes()
    log.write_bytes(data[: len(data) - 5])
    code, out, err = run(capsys, str(log), "--quiet", "--json")
    assert code == 1, err
    result = orjson.loads(out)
    assert result["complete"] is False
    assert result["stopped"]["reason"].endswith("the file is truncated")
    assert result["stopped"]["offset"] < len(data) - 5
    assert result["samples_stored"] > 0


@pytest.mark.parametrize(
    ("content", "args", "expected"),
    [
        (b"# notes\n", (), "accepted: a MAVLink telemetry log (.tlog)"),
        (b"ts,lat,lon\n1600000000,21,106\n", ("--spray", "rc7>1500"), "needs a MAVLink log"),
        (b"tlog", ("--spray", "rc0>1"), "channel outside"),
    ],
)
def test_refusals_exit_2_and_store_nothing(  # noqa: PLR0917 -- a parametrized case
    data_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    args: tuple[str, ...],
    expected: str,
) -> None:
    register(data_dir)
    path = tmp_path / "file.csv"
    if content == b"tlog":  # a real log, with a bad spray rule
        tlog_file(path, start_ms=T0, seconds=5)
    else:
        path.write_bytes(content)
    code, out, err = run(capsys, str(path), "--quiet", *args)
    assert code == 2
    assert expected in err
    assert "nothing imported" in err
    assert out == ""
    assert not (data_dir / "telemetry.db").exists() or _samples(data_dir) == 0


def _samples(data_dir: Path) -> int:
    from storage.sqlite import SqliteStore

    with SqliteStore(data_dir / "telemetry.db") as store:
        return len(store.drone_samples(COOP, DRONE, 0, 2**62))


def test_an_unregistered_drone_exits_2(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "f.tlog"
    tlog_file(log, start_ms=T0, seconds=10)
    code, out, err = run(capsys, str(log))
    assert code == 2
    assert "is not registered" in err
    assert "agridrone drones add" in err
    assert out == ""
    assert data_dir.exists()
