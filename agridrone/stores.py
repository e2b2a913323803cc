"""Open the configured telemetry store and metadata database."""

from __future__ import annotations

import logging
from pathlib import Path

from agridrone.settings import Settings
from storage.contract import StoreUnavailableError, TelemetryStore
from storage.metadata import MetadataDB

log = logging.getLogger(__name__)


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
            create_database=True,
        )
        try:
            store.ensure_database()
        except StoreUnavailableError as exc:
            # Not fatal: writes retry, and create the database once InfluxDB answers.
            log.warning("influx_unavailable_at_start error=%r", str(exc))
        return store
    from storage.sqlite import SqliteStore

    return SqliteStore(settings.sqlite_path)


def open_metadata(settings: Settings | str | Path) -> MetadataDB:
    """The metadata database the settings name (``metadata_url``, else ``metadata_path``),
    or the one a URL/path names; migrated to the current schema."""
    target = settings.metadata if isinstance(settings, Settings) else settings
    return MetadataDB(target)
