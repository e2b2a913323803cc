"""One ``Settings`` for every command: flags override ``AGRIDRONE_*`` environment variables."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from storage.secrets import redact_urls


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
    broker_dir: Path = Path("var/broker")
    metrics_public: bool = False
    #: Retention of the rejected-message log (enforced by ``agridrone ingest``).
    rejected_retention_days: int = Field(default=30, ge=1)
    rejected_max_rows: int = Field(default=1_000_000, ge=1)


#: Command-line flags that override a setting, with their help text.
_FLAGS: dict[str, str] = {
    "mqtt_url": "broker URL, mqtt://[user:pass@]host[:port]",
    "store": "telemetry store: influx or sqlite",
    "influx_url": "InfluxDB base URL (v1 HTTP API)",
    "influx_db": "InfluxDB database",
    "influx_username": "InfluxDB user (on 3.x any name; the token is the password)",
    "influx_password": "InfluxDB password or token",
    "sqlite_path": "SQLite telemetry file (store=sqlite)",
    "metadata_path": "SQLite metadata database (rejected messages, fields, ...)",
    "broker_dir": "folder of Mosquitto's password file and ACL (passwd, acl)",
    "rejected_retention_days": "days the rejected-message log keeps a message",
    "rejected_max_rows": "most messages the rejected-message log holds (oldest deleted first)",
}


#: The settings that say where telemetry and metadata are stored.
STORE_SETTINGS: tuple[str, ...] = (
    "store",
    "influx_url",
    "influx_db",
    "influx_username",
    "influx_password",
    "sqlite_path",
    "metadata_path",
)


def add_settings_arguments(parser: argparse.ArgumentParser, *names: str) -> None:
    """Add ``--name`` flags for the given settings; each defaults to ``AGRIDRONE_NAME``."""
    for name in names:
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, dest=name, default=None, help=f"{_FLAGS[name]} [{_env(name)}]")


class ConfigError(Exception):
    """A setting, flag or environment variable has a value we cannot use."""


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The environment's settings with the flags that were given laid over them."""
    given = {name: getattr(args, name) for name in _FLAGS if getattr(args, name, None) is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_env(str(e['loc'][0])) if e['loc'] else 'setting'}: {redact_urls(e['msg'])}"
            for e in exc.errors(include_input=False)
        )
        raise ConfigError(problems) from None


def _env(name: str) -> str:
    return "AGRIDRONE_" + name.upper()
