"""Open the configured telemetry store and metadata database."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final

from agridrone.settings import ConfigError, Settings
from storage.contract import StoreUnavailableError, TelemetryStore
from storage.metadata import MetadataDB

log = logging.getLogger(__name__)

#: The metadata database of versions before the per-user data folder (``./var``), relative
#: to the working directory the commands ran in.
OLD_METADATA: Final = Path("var") / "agridrone.db"


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
    if isinstance(settings, Settings):
        check_old_data_folder(settings)
    target = settings.metadata if isinstance(settings, Settings) else settings
    return MetadataDB(target)


def check_old_data_folder(settings: Settings) -> None:
    """Refuse to start on the per-user data folder's database when no setting chose where
    the files are and the working directory holds an earlier version's ``var/agridrone.db``
    (the default data folder was ``./var``): an upgraded installation would otherwise
    silently start on empty databases, and write new keys, fields and flights beside its
    old ones. Nothing is opened or created; any data-folder or path setting decides."""
    chosen = {"data_dir", "metadata_path"} & settings.model_fields_set
    if settings.metadata_url is not None or chosen:
        return
    old = OLD_METADATA.absolute()
    if not old.is_file() or old == settings.metadata_path.absolute():
        return
    raise ConfigError(
        f"found the metadata database of an earlier version in this directory, {old}, and "
        f"no setting says which to use (the default data folder moved from ./var to "
        f"{settings.data_dir}). To keep using it (and ./var's other files), set "
        f"AGRIDRONE_DATA_DIR={old.parent}; to start afresh in the new folder, set "
        f"AGRIDRONE_DATA_DIR={settings.data_dir}. Nothing was opened or changed "
        '(README, "Upgrading")'
    )
