"""One ``Settings`` for every command: flags override ``AGRIDRONE_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Service configuration; each field ``x`` is read from ``AGRIDRONE_X``."""

    model_config = SettingsConfigDict(env_prefix="AGRIDRONE_", extra="ignore")

    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    store: Literal["influx", "sqlite"] = "sqlite"
    influx_url: str = "http://127.0.0.1:8086"
    influx_db: str = "agridrone"
    influx_username: str | None = None
    influx_password: SecretStr | None = None
    sqlite_path: Path = Path("var/telemetry.db")
    metadata_path: Path = Path("var/agridrone.db")
