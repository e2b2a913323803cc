"""One ``Settings`` for every command: flags override ``AGRIDRONE_*`` environment variables.

Every file lives under one data folder (``AGRIDRONE_DATA_DIR``, default
``$XDG_DATA_HOME/agridrone`` or ``~/.local/share/agridrone``) unless a path setting names
another place, so every command finds the same files whatever its working directory. An
``AGRIDRONE_*`` variable that is no setting is refused at start-up (``check_environment``),
naming the nearest known one.
"""

from __future__ import annotations

import argparse
import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from storage.secrets import redact_urls

PREFIX = "AGRIDRONE_"


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The per-user data folder: ``$XDG_DATA_HOME/agridrone``, else
    ``~/.local/share/agridrone`` (``AGRIDRONE_DATA_DIR`` overrides it)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "agridrone"


def _under_data_dir(name: str) -> Any:
    """A path setting's default: ``name`` in the data folder."""
    return Field(default_factory=lambda data: Path(data["data_dir"]) / name)


class Settings(BaseSettings):
    """Service configuration; each field ``x`` is read from ``AGRIDRONE_<X>``."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore")

    #: Where every file lives unless its own setting says otherwise.
    data_dir: Path = Field(default_factory=default_data_dir)
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    store: Literal["influx", "sqlite"] = "sqlite"
    influx_url: str = "http://127.0.0.1:8086"
    influx_db: str = "agridrone"
    influx_username: str | None = None
    influx_password: SecretStr | None = None
    sqlite_path: Path = _under_data_dir("telemetry.db")
    metadata_path: Path = _under_data_dir("agridrone.db")
    #: ``postgresql://user:pass@host/db`` (or ``sqlite:///path``); wins over metadata_path.
    metadata_url: str | None = None
    broker_dir: Path = _under_data_dir("broker")
    metrics_public: bool = False
    #: Retention of the rejected-message log (enforced by ``agridrone ingest``).
    rejected_retention_days: int = Field(default=30, ge=1)
    rejected_max_rows: int = Field(default=1_000_000, ge=1)
    #: The ``mqtt set prefix`` of ground stations running MAVProxy, with {coop} and {drone};
    #: the ingest worker subscribes to it plus ``/+`` ("" takes no MAVProxy topics).
    mavproxy_prefix: str = "agri/mavlink/{coop}/{drone}"
    #: DJI Cloud API OSD topic filter the ingest worker subscribes to ("" takes none).
    dji_topic: str = "thing/product/+/osd"
    #: Largest flight log ``POST /api/v1/drones/{coop}/{drone}/logs`` accepts (413 past it).
    log_upload_max_mib: int = Field(default=256, ge=1)
    #: Speed limit between a drone's consecutive samples (``implausible_jump``); 0: no check.
    max_speed_mps: float = Field(default=40.0, ge=0)

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @field_validator("metadata_url")
    @classmethod
    def _metadata_url(cls, value: str | None) -> str | None:
        if value:
            from storage.metadata import metadata_target  # only when a URL is set: start-up

            metadata_target(value, url_only=True)  # ValueError naming what it accepts
        return value or None

    @property
    def metadata(self) -> str:
        """Where the metadata database is: ``metadata_url`` if set, else the SQLite file."""
        return self.metadata_url or str(self.metadata_path)


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
    "metadata_url": "metadata database URL, postgresql://user:pass@host/db (wins over the path)",
    "broker_dir": "folder of Mosquitto's password file and ACL (passwd, acl)",
    "rejected_retention_days": "days the rejected-message log keeps a message",
    "rejected_max_rows": "most messages the rejected-message log holds (oldest deleted first)",
    "mavproxy_prefix": "MAVProxy topic prefix with {coop} and {drone} ('' = no MAVProxy)",
    "dji_topic": "DJI Cloud API OSD topic filter ('' = no DJI)",
    "log_upload_max_mib": "largest flight-log upload the API accepts, MiB (413 past it)",
    "max_speed_mps": "samples further from the drone's previous one than this speed allows "
    "(+5 m) are rejected implausible_jump; 0 turns the check off",
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
    "metadata_url",
)


def add_settings_arguments(parser: argparse.ArgumentParser, *names: str) -> None:
    """Add ``--name`` flags for the given settings; each defaults to ``AGRIDRONE_<NAME>``.
    A command that takes ``metadata_path`` takes ``metadata_url`` too."""
    if "metadata_path" in names and "metadata_url" not in names:
        names = (*names, "metadata_url")
    for name in names:
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, dest=name, default=None, help=f"{_FLAGS[name]} [{_env(name)}]")


class ConfigError(Exception):
    """A setting, flag or environment variable has a value we cannot use."""


def known_environment() -> list[str]:
    """Every ``AGRIDRONE_*`` variable the project reads: one per setting."""
    return sorted(_env(name) for name in Settings.model_fields)


def check_environment(environ: Mapping[str, str] | None = None) -> None:
    """Refuse ``AGRIDRONE_*`` variables that are no setting (a misspelt one would silently
    leave its default in force): ``ConfigError`` naming each and the nearest known one."""
    env = os.environ if environ is None else environ
    known = known_environment()
    unknown = sorted(k for k in env if k.upper().startswith(PREFIX) and k.upper() not in known)
    if not unknown:
        return
    problems = []
    suffixes = {k.removeprefix(PREFIX): k for k in known}  # the prefix would match anything
    for name in unknown:
        near = difflib.get_close_matches(name.upper().removeprefix(PREFIX), suffixes, 1, 0.6)
        hint = f"did you mean {suffixes[near[0]]}?" if near else "no setting has a similar name"
        problems.append(f"{name} is not a setting ({hint})")
    raise ConfigError(
        "; ".join(problems) + f". Known settings: {', '.join(known)} (see README, Settings)"
    )


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The environment's settings with the flags that were given laid over them."""
    given = {name: getattr(args, name) for name in _FLAGS if getattr(args, name, None) is not None}
    check_environment()
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_env(str(e['loc'][0])) if e['loc'] else 'setting'}: {redact_urls(e['msg'])}"
            for e in exc.errors(include_input=False)
            # A default made from another setting is skipped after that one failed: noise.
            if e["type"] != "default_factory_not_called"
        )
        raise ConfigError(problems) from None


def _env(name: str) -> str:
    return PREFIX + name.upper()
