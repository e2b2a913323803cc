"""Telemetry storage: the ``TelemetryStore`` contract, its records and errors, and the two
stores that fulfil it (InfluxDB over the v1 HTTP API; SQLite, the embedded default)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from storage.contract import (
    BBox,
    StoreDataError,
    StoreError,
    StoreUnavailableError,
    TelemetryStore,
)
from storage.records import DroneLastSeen, Event, Sample

if TYPE_CHECKING:
    from storage.influx import InfluxStore, RetryPolicy
    from storage.sqlite import SqliteStore

__all__ = [
    "BBox",
    "DroneLastSeen",
    "Event",
    "InfluxStore",
    "RetryPolicy",
    "Sample",
    "SqliteStore",
    "StoreDataError",
    "StoreError",
    "StoreUnavailableError",
    "TelemetryStore",
    "open_store",
]


_LAZY = {"InfluxStore": "storage.influx", "RetryPolicy": "storage.influx"}
_LAZY["SqliteStore"] = "storage.sqlite"


def __getattr__(name: str) -> Any:
    """The stores import on first use, so ``import storage.records`` stays cheap (no httpx)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'storage' has no attribute {name!r}")


def open_store(
    kind: str,
    *,
    sqlite_path: Path | str | None = None,
    influx_url: str | None = None,
    influx_db: str | None = None,
    influx_username: str | None = None,
    influx_password: str | None = None,
) -> TelemetryStore:
    """Open the store ``kind`` names (``sqlite`` or ``influx``); InfluxDB's database is
    created when missing (1.x)."""
    if kind == "sqlite":
        if sqlite_path is None:
            raise ValueError("open_store('sqlite'): sqlite_path is required")
        from storage.sqlite import SqliteStore

        return SqliteStore(sqlite_path)
    if kind == "influx":
        if not influx_url or not influx_db:
            raise ValueError("open_store('influx'): influx_url and influx_db are required")
        from storage.influx import InfluxStore

        return InfluxStore.open(influx_url, influx_db, influx_username, influx_password)
    raise ValueError(f"open_store: unknown store kind {kind!r} (sqlite or influx)")
