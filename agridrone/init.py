"""``agridrone init``: a deployment's first run — operator key, broker users and their files.

It creates what is missing and keeps what is there, so running it again is harmless
(docker compose runs it before every start); ``--force`` issues everything anew. It writes:

- the metadata database (when new) and an operator API key, printed once on stdout;
- ``BROKER_DIR/passwd`` and ``BROKER_DIR/acl`` (``broker-acl``'s writer): a user per ingest
  worker, the healthcheck's user and every registered drone;
- ``BROKER_DIR/mosquitto_sub``: the healthcheck's login, which ``mosquitto_sub`` reads as its
  options file when ``XDG_CONFIG_HOME=BROKER_DIR``;
- ``ENV_DIR/<ingest user>.env``: each worker's ``AGRIDRONE_MQTT_USERNAME``/``_PASSWORD``.

Every file has mode 0600. MQTT passwords are never printed: only these files hold them.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from agridrone.settings import add_settings_arguments, settings_from_args
from agridrone.stores import open_metadata
from ingest.broker_acl import (
    ACL_FILE_NAME,
    DEFAULT_INGEST_USER,
    HEALTH_USER,
    PASSWORD_FILE_NAME,
    ServiceAccount,
    check_ingest_users,
    generate_password,
    mosquitto_hash,
    write_broker_files,
    write_private_file,
)
from storage.contract import StoreUnavailableError
from storage.drones import DroneRecord
from storage.keys import generate_key, validate_subject
from storage.metadata import MetadataDB
from storage.secrets import shown_url

#: ``mosquitto_sub`` looks for ``$XDG_CONFIG_HOME/mosquitto_sub`` (one option per line).
HEALTH_OPTIONS_NAME: Final = "mosquitto_sub"
#: Where the ingest workers' ``<user>.env`` files go: this folder in the data folder.
ENV_DIR_NAME: Final = "secrets"
DEFAULT_OPERATOR: Final = "ops"
EXIT_FAILED: Final = 1
EXIT_BAD_INPUT: Final = 2

FilesAction = Literal["create", "keep", "conflict"]


@dataclass(frozen=True, slots=True)
class Layout:
    """Where init puts the broker's files and the workers' credentials."""

    broker_dir: Path
    env_dir: Path
    ingest_users: tuple[str, ...]

    @property
    def password_file(self) -> Path:
        """Mosquitto's ``password_file``."""
        return self.broker_dir / PASSWORD_FILE_NAME

    @property
    def acl_file(self) -> Path:
        """Mosquitto's ``acl_file``."""
        return self.broker_dir / ACL_FILE_NAME

    @property
    def health_options(self) -> Path:
        """The healthcheck's ``mosquitto_sub`` options (its user name and password)."""
        return self.broker_dir / HEALTH_OPTIONS_NAME

    def env_file(self, user: str) -> Path:
        """An ingest worker's credentials as ``KEY=value`` lines."""
        return self.env_dir / f"{user}.env"

    def files(self) -> list[Path]:
        """Every file init writes besides the database."""
        envs = [self.env_file(u) for u in self.ingest_users]
        return [*envs, self.health_options, self.password_file, self.acl_file]


def files_action(present: Sequence[Path], missing: Sequence[Path], *, force: bool) -> FilesAction:
    """Create when nothing is there (or forced), keep when all is, refuse a partial set.

    A partial set cannot be completed: the password file holds only hashes, so a lost
    credentials file cannot be rewritten without issuing new passwords.
    """
    if force or not present:
        return "create"
    return "keep" if not missing else "conflict"


def env_file_text(user: str, password: str) -> str:
    """An ingest worker's credentials, loadable by ``set -a; . FILE`` or compose's env_file."""
    return (
        "# The ingest worker's MQTT login, written by `agridrone init`. Keep it secret.\n"
        f"AGRIDRONE_MQTT_USERNAME={user}\n"
        f"AGRIDRONE_MQTT_PASSWORD={password}\n"
    )


def health_options_text(password: str) -> str:
    """``mosquitto_sub`` options logging in as the healthcheck user."""
    return (
        "# mosquitto_sub options for the broker healthcheck, written by `agridrone init`.\n"
        f"-u {HEALTH_USER}\n"
        f"-P {password}\n"
    )


def register(subparsers: Any) -> None:
    """Add the ``init`` sub-command."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "init",
        help="first run: operator key, broker users and files (keeps what exists)",
        description=(
            "Creates the metadata database, an operator API key (printed once), the ingest "
            "workers' and the healthcheck's MQTT logins, and Mosquitto's password file and "
            "ACL. What exists is kept; --force issues everything anew."
        ),
    )
    add_settings_arguments(p, "metadata_path", "broker_dir")
    p.add_argument(
        "--env-dir",
        type=Path,
        default=None,
        help=f"where each ingest worker's <user>.env goes [DATA_DIR/{ENV_DIR_NAME}]",
    )
    p.add_argument(
        "--ingest-user",
        action="append",
        help=f"one per ingest worker: the broker keys sessions by user [{DEFAULT_INGEST_USER}]",
    )
    p.add_argument(
        "--operator",
        default=DEFAULT_OPERATOR,
        metavar="SUBJECT",
        help=f"subject of the operator key [{DEFAULT_OPERATOR}]",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="new operator key and new MQTT passwords for the service users, files rewritten",
    )
    p.add_argument(
        "--compose", action="store_true", help="say what to do next as docker compose commands"
    )
    p.set_defaults(handler=run)


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> int:
    sys.stderr.write(f"agridrone init: {message}\n")
    return code


def run(args: argparse.Namespace) -> int:
    """0 when everything is in place, 2 on bad input or a partial set of files, 1 on I/O."""
    settings = settings_from_args(args)
    users = tuple(args.ingest_user or [DEFAULT_INGEST_USER])
    problem = check_ingest_users(users, password_given=False)
    if problem is not None:
        return _fail(f"--ingest-user: {problem}")
    problem = validate_subject("operator", args.operator)
    if problem is not None:
        return _fail(f"--operator: {problem}")
    env_dir = args.env_dir or settings.data_dir / ENV_DIR_NAME
    layout = Layout(settings.broker_dir, env_dir, users)
    present = [f for f in layout.files() if f.exists()]
    missing = [f for f in layout.files() if not f.exists()]
    action = files_action(present, missing, force=args.force)
    if action == "conflict":
        return _fail(
            f"found {', '.join(map(str, present))} but not {', '.join(map(str, missing))}. "
            "Only hashes are kept, so the missing credentials cannot be rewritten: run "
            "`agridrone init --force` to issue new MQTT passwords to the service users "
            "(restart the ingest workers afterwards), or restore the missing files. To add "
            "an ingest worker, run `agridrone broker-acl` with every --ingest-user instead."
        )
    try:
        if action == "create":
            layout.broker_dir.mkdir(parents=True, exist_ok=True)
            layout.env_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        metadata = open_metadata(settings)
        try:
            key_line = _operator_key(metadata, args.operator, force=args.force)
            drones = metadata.drones()
        finally:
            metadata.close()
        if action == "create":
            _write_files(layout, drones)
    except StoreUnavailableError as exc:
        return _fail(str(exc), EXIT_FAILED)
    except OSError as exc:
        return _fail(f"cannot write {exc.filename or 'a file'}: {exc.strerror or exc}", EXIT_FAILED)
    sys.stderr.write(
        summary(layout, shown_url(settings.metadata), key_line, action, len(drones))
        + next_steps(layout, compose=args.compose)
    )
    return 0


def _operator_key(metadata: MetadataDB, subject: str, *, force: bool) -> str:
    """Create the operator key (printed on stdout) unless one is active; a line about it."""
    active = [k for k in metadata.api_keys(include_revoked=False) if k.role == "operator"]
    if active and not force:
        ids = ", ".join(k.key_id for k in active)
        return (
            f"kept: operator key(s) {ids} already exist (lost it? `agridrone keys create "
            "--role operator --subject ops`, then `agridrone keys revoke KEY_ID`)"
        )
    new = generate_key("operator", subject, "agridrone init", time.time_ns() // 1_000_000)
    metadata.add_api_key(new.record)
    sys.stdout.write(new.key + "\n")
    sys.stdout.flush()
    older = f"; keys made before stay valid until revoked ({len(active)} active)" if active else ""
    return (
        f"new: operator key {new.record.key_id} ({subject!r}), printed above and shown only "
        f"once: send it as `Authorization: Bearer <key>`{older}"
    )


def _write_files(layout: Layout, drones: Sequence[DroneRecord]) -> None:
    services: list[ServiceAccount] = []
    for user in layout.ingest_users:
        password = generate_password()
        write_private_file(layout.env_file(user), env_file_text(user, password))
        services.append(ServiceAccount(user, mosquitto_hash(password)))
    health = generate_password()
    write_private_file(layout.health_options, health_options_text(health))
    services.append(ServiceAccount(HEALTH_USER, mosquitto_hash(health), "health"))
    write_broker_files(layout.password_file, layout.acl_file, drones, services)


def summary(
    layout: Layout, metadata_path: str, key_line: str, action: FilesAction, drones: int
) -> str:
    """What init found, made and kept."""
    envs = ", ".join(str(layout.env_file(u)) for u in layout.ingest_users)
    if action == "create":
        users = f"{', '.join(layout.ingest_users)}, {HEALTH_USER} and {drones} drone(s)"
        files = f"new: {layout.password_file}, {layout.acl_file} ({users})"
        verb = "new"
    else:
        files = f"kept: {layout.password_file}, {layout.acl_file}"
        verb = "kept"
    return (
        "agridrone init: done\n"
        f"  metadata      {metadata_path}\n"
        f"  operator      {key_line}\n"
        f"  broker files  {files}\n"
        f"  ingest login  {verb}: {envs} (mode 0600; the passwords are only there)\n"
        f"  healthcheck   {verb}: {layout.health_options}\n"
    )


def next_steps(layout: Layout, *, compose: bool) -> str:
    """The exact commands that come next, on a host or under docker compose."""
    user = layout.ingest_users[0]
    users = "".join(
        f" --ingest-user {u}"
        for u in layout.ingest_users
        if layout.ingest_users != (DEFAULT_INGEST_USER,)
    )
    if compose:
        return (
            "next:\n"
            "  docker compose up -d                       # Mosquitto, InfluxDB, ingest, API\n"
            "  docker compose run --rm init drones add --coop COOP --drone DRONE"
            "   # prints the drone's MQTT password once\n"
            f"  docker compose run --rm init broker-acl{users}    # rewrite the broker files\n"
            "  docker compose kill -s SIGHUP mosquitto    # Mosquitto reloads them\n"
            "  docker compose run --rm init keys create --role coop --subject COOP\n"
            "  curl -H 'Authorization: Bearer <operator key>' http://localhost:8000/metrics\n"
        )
    return (
        "next:\n"
        "  1. run Mosquitto with deploy/mosquitto.conf, its password_file and acl_file set to\n"
        f"     {layout.password_file} and {layout.acl_file} (docker compose does all this)\n"
        "  2. start the ingest worker with its login:\n"
        f"     set -a; . {layout.env_file(user)}; set +a\n"
        f"     agridrone ingest --mqtt-url mqtt://127.0.0.1:1883 --client-id {user}\n"
        "  3. register each drone, then rewrite the broker files and reload Mosquitto:\n"
        "     agridrone drones add --coop COOP --drone DRONE\n"
        f"     agridrone broker-acl --broker-dir {layout.broker_dir}{users}\n"
        "     kill -HUP $(pidof mosquitto)\n"
        "  4. give cooperatives and farmers their keys:\n"
        "     agridrone keys create --role coop --subject COOP\n"
    )
