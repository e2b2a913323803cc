"""SqliteStore specifics: file layout, durability settings, threads, error mapping."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from storage.contract import StoreDataError, StoreUnavailableError, TelemetryStore
from storage.records import Event, Sample
from storage.sqlite import SqliteStore

T0 = 1_700_000_000_000


def sample(ts_ms: int, drone: str = "dt-01") -> Sample:
    return Sample("htx", drone, ts_ms, 21.08, 106.52, spraying=True, seq=ts_ms - T0)


def test_opening_creates_parent_folders_and_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "var" / "deep" / "telemetry.db"
    with SqliteStore(path) as store:
        assert isinstance(store, TelemetryStore)
    tables = {
        row[0]
        for row in sqlite3.connect(path).execute(
            "SELECT name FROM sqlite_master WHERE type='table'"
        )
    }
    assert {"samples", "events", "last_seen"} <= tables


def test_wal_and_full_sync_are_on_for_every_connection(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "t.db") as store:
        modes: list[tuple[str, int]] = []

        def probe() -> None:
            conn = store._conn()
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            modes.append((mode, conn.execute("PRAGMA synchronous").fetchone()[0]))

        probe()
        worker = threading.Thread(target=probe)
        worker.start()
        worker.join()
    assert modes == [("wal", 2), ("wal", 2)]  # 2 is FULL


def test_data_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    with SqliteStore(path) as store:
        store.write_samples([sample(T0), sample(T0 + 1)])
        store.write_events([Event("htx", "dt-01", T0, "takeoff", {"pilot": "Lan"})])
    with SqliteStore(path) as store:
        assert store.drone_samples("htx", "dt-01", 0, 2**62) == [sample(T0), sample(T0 + 1)]
        assert store.drone_events("htx", "dt-01", 0, 2**62)[0].attrs == {"pilot": "Lan"}
        assert [d.ts_ms for d in store.drones()] == [T0 + 1]


def test_readers_on_other_threads_see_whole_writes_while_one_thread_writes(
    tmp_path: Path,
) -> None:
    with SqliteStore(tmp_path / "t.db") as store:
        batches, batch = 40, 250
        done = threading.Event()
        seen: list[int] = []
        errors: list[BaseException] = []

        def read() -> None:
            try:
                while not done.is_set():
                    seen.append(len(store.drone_samples("htx", "dt-01", 0, 2**62)))
            except BaseException as exc:  # noqa: BLE001  (reported by the main thread)
                errors.append(exc)

        readers = [threading.Thread(target=read) for _ in range(2)]
        for r in readers:
            r.start()
        for b in range(batches):
            store.write_samples([sample(T0 + b * batch + i) for i in range(batch)])
        done.set()
        for r in readers:
            r.join()
        assert errors == []
        assert all(n % batch == 0 for n in seen)  # a write is one transaction
        assert len(store.drone_samples("htx", "dt-01", 0, 2**62)) == batches * batch


def test_a_seq_beyond_64_bits_is_a_data_error_naming_the_sample(tmp_path: Path) -> None:
    overflow = Sample("htx", "dt-01", T0 + 1, 1.0, 2.0, spraying=False, seq=2**64)
    with SqliteStore(tmp_path / "t.db") as store:
        with pytest.raises(StoreDataError, match=r"htx/dt-01 ts=1700000000001: seq=.* overflows"):
            store.write_samples([sample(T0), overflow])
        assert store.drone_samples("htx", "dt-01", 0, 2**62) == []


def test_a_write_failing_midway_is_rolled_back_whole(tmp_path: Path) -> None:
    no_lat = Sample("htx", "dt-01", T0 + 1, None, 2.0, spraying=False)  # type: ignore[arg-type]
    with SqliteStore(tmp_path / "t.db") as store:
        with pytest.raises(StoreDataError, match="NOT NULL"):
            store.write_samples([sample(T0), no_lat, sample(T0 + 2)])
        assert store.drone_samples("htx", "dt-01", 0, 2**62) == []
        assert store.drones() == []
        store.write_samples([sample(T0)])
        assert store.drone_samples("htx", "dt-01", 0, 2**62) == [sample(T0)]


def test_attrs_that_are_not_json_are_a_data_error(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "t.db") as store, pytest.raises(StoreDataError, match="attrs"):
        store.write_events([Event("htx", "dt-01", T0, "error", {"when": object()})])


def test_an_unopenable_path_is_unavailable_and_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("not a folder")
    with pytest.raises(StoreUnavailableError, match="blocker"):
        SqliteStore(tmp_path / "blocker" / "telemetry.db")


def test_a_file_that_is_not_a_database_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreUnavailableError, match=r"t\.db"):
        SqliteStore(path)


def test_synchronous_setting_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="OFF"):
        SqliteStore(tmp_path / "t.db", synchronous="OFF")


def test_close_closes_connections_of_every_thread(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "t.db")
    other = threading.Thread(target=store.ping)
    other.start()
    other.join()
    conns = list(store._conns)
    assert len(conns) == 2
    store.close()
    for conn in conns:
        with pytest.raises(sqlite3.ProgrammingError):
            conn.execute("SELECT 1")
