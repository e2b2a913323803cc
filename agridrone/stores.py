"""Open the configured telemetry store and metadata database."""

from __future__ import annotations

from agridrone.settings import Settings
from storage.contract import TelemetryStore
from storage.metadata import MetadataDB


def open_telemetry_store(settings: Settings) -> TelemetryStore:
    """The store ``settings.store`` names; InfluxDB's database is created when missing (1.x)."""
    if settings.store == "influx":
        from storage.influx import InfluxStore

        password = settings.influx_password.get_secret_value() if settings.influx_password else None
        store = InfluxStore(
            settings.influx_url,
            settings.influx_db,
            username=settings.influx_username,
            password=password,
        )
        store.ensure_database()
        return store
    from storage.sqlite import SqliteStore

    return SqliteStore(settings.sqlite_path)


def open_metadata(settings: Settings) -> MetadataDB:
    """The SQLite metadata database."""
    return MetadataDB(settings.metadata_path)
