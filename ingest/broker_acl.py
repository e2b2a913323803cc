"""Per-drone MQTT credentials: ``agridrone drones add|list|passwd|remove`` and ``broker-acl``.

Drone passwords are stored only as Mosquitto 2.0 ``$7$`` hashes (PBKDF2-HMAC-SHA512, the
format ``mosquitto_passwd`` writes), so ``broker-acl`` copies them into the password file
as they are. The ACL lets each drone use only ``agri/v1/{coop}/{drone}/#``, each ingest
user read ``agri/v1/#`` (Mosquitto 2.0 checks a ``$share/group/...`` subscription against
the topic after the group, so the same line covers shared subscriptions), and the
healthcheck user read ``$SYS/broker/uptime``. Service accounts (ingest, health) are not in
the registry: their hashes live only in the password file, and ``broker-acl`` carries them
over from the file it replaces.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import hashlib
import hmac
import os
import re
import secrets
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from adapters._common import ConfigError as AdapterConfigError
from adapters.mavlink import MavlinkDrone, parse_spray_rules
from agridrone.settings import add_settings_arguments, settings_from_args
from agridrone.stores import open_metadata
from storage.drones import DroneRecord, mqtt_username, validate_dji_sn, validate_drone
from storage.metadata import MetadataConflictError, MetadataDB

#: ``mosquitto_passwd`` 2.0's own defaults: 101 PBKDF2 rounds, 12-byte salt, SHA-512.
#: The passwords are 192 random bits, so more rounds would slow every connect for nothing.
PBKDF2_ITERATIONS: Final = 101
SALT_BYTES: Final = 12
PASSWORD_BYTES: Final = 24
DEFAULT_INGEST_USER: Final = "agridrone-ingest"
#: The user compose's Mosquitto healthcheck logs in as; it may read this one topic only.
HEALTH_USER: Final = "agridrone-health"
HEALTH_TOPIC: Final = "$SYS/broker/uptime"
#: The two files in a broker folder (``--broker-dir``; ``deploy/mosquitto.conf`` names them).
PASSWORD_FILE_NAME: Final = "passwd"  # noqa: S105 -- a file name, not a password
ACL_FILE_NAME: Final = "acl"
EXIT_BAD_INPUT: Final = 2
_HASH_RE: Final = re.compile(r"\$7\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)")
_SERVICE_USER_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


def generate_password() -> str:
    """A new random MQTT password (24 bytes, URL-safe base64: 32 characters)."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


def mosquitto_hash(
    password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS
) -> str:
    """``$7$<iterations>$<base64 salt>$<base64 PBKDF2-SHA512>``, as ``mosquitto_passwd`` writes."""
    if salt is None:
        salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    b64 = base64.b64encode
    return f"$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def verify_mosquitto_hash(password: str, hashed: str) -> bool:
    """Whether ``password`` matches a ``$7$`` hash; ``ValueError`` if the hash is not one."""
    m = _HASH_RE.fullmatch(hashed)
    if m is None:
        raise ValueError(f"not a Mosquitto $7$ password hash: {hashed[:12]!r}...")
    salt = base64.b64decode(m.group(2), validate=True)
    expected = base64.b64decode(m.group(3), validate=True)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, int(m.group(1)))
    return hmac.compare_digest(digest, expected)


def check_service_user(name: str) -> str | None:
    """Why ``name`` cannot be a service account (e.g. the ingest user), or ``None``."""
    if _SERVICE_USER_RE.fullmatch(name) is None:
        return (
            f"user name {name!r} must match [A-Za-z0-9_-]{{1,64}}"
            " (no dot, so it can never be a drone's {coop}.{drone})"
        )
    return None


ServiceRole = Literal["ingest", "health"]


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """A broker user that is not a drone: an ingest worker, or the healthcheck."""

    name: str
    password_hash: str
    role: ServiceRole = "ingest"


def password_file_text(drones: Iterable[DroneRecord], services: Sequence[ServiceAccount]) -> str:
    """The Mosquitto password file: the service accounts, then one line per drone."""
    lines = [f"{s.name}:{s.password_hash}" for s in services]
    lines.extend(f"{d.mqtt_username}:{d.mqtt_password_hash}" for d in drones)
    return "\n".join(lines) + "\n"


def acl_file_text(drones: Iterable[DroneRecord], services: Sequence[ServiceAccount]) -> str:
    """The Mosquitto ACL: ingest users read-all, health one topic, each drone its own tree."""
    ingest = "\n".join(f"topic read {t}" for t in ("agri/v1/#", *INGEST_FOREIGN_READS))
    grants = {"ingest": ingest, "health": f"topic read {HEALTH_TOPIC}"}
    header = (
        "# Written by `agridrone broker-acl` / `agridrone init`; edits are overwritten.\n"
        "# No topic lines before the first `user`: anonymous clients get nothing.\n"
        "# Ingest users read every drone; `$share/<group>/agri/v1/...` subscriptions are\n"
        "# checked against the topic after the group, so their line covers them too.\n"
        "# Each drone's user may use its own wire-v1 tree, its ground station's MAVProxy\n"
        "# tree (agri/mavlink/{coop}/{drone}/#) and, with a DJI serial, that serial's\n"
        "# thing/product/{sn}/# topics; nothing else.\n"
    )
    parts = [header]
    parts.extend(f"\nuser {s.name}\n{grants[s.role]}\n" for s in services)
    parts.extend(_drone_grants(d) for d in drones)
    return "".join(parts)


#: What an ingest user reads besides ``agri/v1/#``: MAVProxy's topics and DJI's OSD
#: (``thing/product/+/osd`` only: a gateway's other topics carry commands and replies).
INGEST_FOREIGN_READS: Final = ("agri/mavlink/#", "thing/product/+/osd")


def mavlink_prefix(coop: str, drone: str) -> str:
    """The topic tree a drone's ground station publishes MAVProxy's messages under."""
    return f"agri/mavlink/{coop}/{drone}/"


def _drone_grants(d: DroneRecord) -> str:
    """A drone's ACL lines: its wire-v1 tree, its MAVProxy tree and its DJI serial's."""
    lines = [
        f"user {d.mqtt_username}",
        f"topic readwrite {d.topic_prefix}#",
        f"topic readwrite {mavlink_prefix(d.coop, d.drone)}#",
    ]
    if d.dji_sn is not None:
        lines.append(f"topic readwrite thing/product/{d.dji_sn}/#")
    return "\n" + "\n".join(lines) + "\n"


def parse_password_file(text: str) -> dict[str, str]:
    """``user -> hash`` of a Mosquitto password file (lines without a colon are skipped)."""
    users: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, hashed = line.strip().partition(":")
        if sep and name and not name.startswith("#"):
            users[name] = hashed
    return users


def read_password_file(path: Path) -> dict[str, str]:
    """The users of the password file at ``path``; empty if there is none yet."""
    try:
        return parse_password_file(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def write_broker_files(
    password_file: Path,
    acl_file: Path,
    drones: Sequence[DroneRecord],
    services: Sequence[ServiceAccount],
) -> None:
    """Write both files; password file first: a crash between the two leaves new users
    without ACL lines, and a user without lines is granted nothing."""
    write_private_file(password_file, password_file_text(drones, services))
    write_private_file(acl_file, acl_file_text(drones, services))


def write_private_file(path: Path, text: str) -> None:
    """Replace ``path`` atomically (temp file in the same folder, fsync, rename), mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        Path(tmp).chmod(0o600)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


#: Longest drone registration number accepted.
MAX_REGISTRATION = 200


def register(subparsers: Any) -> None:
    """Add the ``drones`` and ``broker-acl`` sub-commands."""
    drones: argparse.ArgumentParser = subparsers.add_parser(
        "drones", help="the drone registry and each drone's MQTT password"
    )
    actions = drones.add_subparsers(dest="drones_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="register a drone and print its new MQTT password once")
    passwd = actions.add_parser("passwd", help="issue a registered drone a new MQTT password")
    remove = actions.add_parser("remove", help="unregister a drone (its login stops working)")
    listing = actions.add_parser("list", help="registered drones (never their passwords)")
    change = actions.add_parser(
        "set",
        help="change a drone's swath, MAVLink or DJI settings ('' or none clears one)",
    )
    for p in (add, passwd, remove, change):
        p.add_argument("--coop", required=True, help="cooperative id")
        p.add_argument("--drone", required=True, help="drone id, unique within the cooperative")
    for p in (add, change):
        _settings_arguments(p)
    listing.add_argument("--coop", help="only this cooperative's drones")
    for p in (add, passwd, remove, listing, change):
        add_settings_arguments(p, "metadata_path")
        p.set_defaults(handler=run)

    acl: argparse.ArgumentParser = subparsers.add_parser(
        "broker-acl",
        help="write Mosquitto's password file and ACL from the drone registry",
        description=(
            "Writes both files atomically with mode 0600; reload Mosquitto (SIGHUP) to apply. "
            "Drones come from the registry. Each ingest user keeps the hash it has in the "
            "current password file, unless --ingest-password or AGRIDRONE_MQTT_PASSWORD "
            "gives its password (one ingest user only); a user with neither gets a new "
            f"password, printed once. {HEALTH_USER} is carried over when the file has it."
        ),
    )
    acl.add_argument("--password-file", type=Path, metavar="P", help="default: BROKER_DIR/passwd")
    acl.add_argument("--acl-file", type=Path, metavar="A", help="default: BROKER_DIR/acl")
    acl.add_argument(
        "--ingest-user",
        action="append",
        help="an ingest worker's user, once per worker (the broker keys each worker's session "
        f"by its user name) [AGRIDRONE_MQTT_USERNAME; {DEFAULT_INGEST_USER}]",
    )
    acl.add_argument("--ingest-password", help="prefer AGRIDRONE_MQTT_PASSWORD: argv is public")
    add_settings_arguments(acl, "metadata_path", "broker_dir")
    acl.set_defaults(handler=run_broker_acl, drones_command=None)


def _settings_arguments(p: argparse.ArgumentParser) -> None:
    """The per-drone settings ``drones add`` and ``drones set`` take (docs/integrations.md)."""
    p.add_argument("--swath-m", help="effective spray width in metres")
    p.add_argument(
        "--mavlink-spray",
        metavar="RULE",
        help="when its MAVLink stream counts as spraying: servoN>PWM (SERVO_OUTPUT_RAW), "
        "rcN>PWM (RC_CHANNELS, e.g. rc7>1500) or auto (armed in an AUTO mission); "
        "several, comma-separated, must all hold; none set: never spraying",
    )
    p.add_argument(
        "--mavlink-flow-battery",
        metavar="N",
        help="BATTERY_STATUS instance (1..255) of a battery monitor used as a flow sensor",
    )
    p.add_argument(
        "--tank-l", metavar="LITRES", help="tank capacity, for tank_l from the flow sensor"
    )
    p.add_argument(
        "--dji-sn",
        metavar="SN",
        help="DJI aircraft serial whose Cloud API OSD (thing/product/SN/osd) is this drone's",
    )
    p.add_argument(
        "--dji-spraying",
        choices=("yes", "no"),
        help="whether this DJI drone's samples count as spraying (its OSD has no spray state)",
    )
    p.add_argument(
        "--registration",
        help="the drone's registration number (số đăng ký), shown in the spray diary; '' clears it",
    )


_CLEAR: Final = ("", "none")


def drone_settings(args: argparse.Namespace) -> tuple[dict[str, Any], str | None]:
    """The settings given on the command line (column -> value, None clears), or why they
    cannot be used. Rules and numbers are checked as the ingest worker will use them."""
    out: dict[str, Any] = {}
    try:
        for flag, column, kind in (
            ("swath_m", "swath_m", float),
            ("mavlink_flow_battery", "mavlink_flow_battery", int),
            ("tank_l", "tank_capacity_l", float),
        ):
            text: str | None = getattr(args, flag, None)
            if text is not None:
                out[column] = None if text.strip().lower() in _CLEAR else kind(text)
    except ValueError as exc:
        return {}, f"{exc} (a number, or '' to clear)"
    spray: str | None = getattr(args, "mavlink_spray", None)
    if spray is not None:
        try:
            rules = parse_spray_rules(spray) if spray.strip().lower() not in _CLEAR else ()
        except AdapterConfigError as exc:
            return {}, f"--mavlink-spray: {exc}"
        out["mavlink_spray"] = ",".join(str(r) for r in rules) or None
    sn: str | None = getattr(args, "dji_sn", None)
    if sn is not None:
        sn = sn.strip()
        problem = validate_dji_sn(sn) if sn.lower() not in _CLEAR else None
        if problem is not None:
            return {}, f"--dji-sn: {problem}"
        out["dji_sn"] = sn if sn.lower() not in _CLEAR else None
    spraying: str | None = getattr(args, "dji_spraying", None)
    if spraying is not None:
        out["dji_spraying"] = spraying == "yes"
    registration: str | None = getattr(args, "registration", None)
    if registration is not None:
        registration = registration.strip()
        if len(registration) > MAX_REGISTRATION:
            return {}, f"registration {registration[:20]!r}... is longer than {MAX_REGISTRATION}"
        out["registration"] = None if registration.lower() in _CLEAR else registration
    return out, None


def check_mavlink_settings(record: DroneRecord) -> str | None:
    """Why the ingest worker could not translate this drone's MAVLink, or ``None``."""
    try:
        MavlinkDrone(
            record.coop,
            record.drone,
            parse_spray_rules(record.mavlink_spray or ""),
            record.mavlink_flow_battery,
            record.tank_capacity_l,
        )
    except AdapterConfigError as exc:
        return str(exc)
    return None


def check_ingest_users(users: Sequence[str], *, password_given: bool) -> str | None:
    """Why these ingest users cannot be written, or ``None``."""
    for name in users:
        problem = check_service_user(name)
        if problem is not None:
            return problem
        if name == HEALTH_USER:
            return f"{HEALTH_USER} is the healthcheck's user; name the ingest user otherwise"
    doubled = sorted({u for u in users if users.count(u) > 1})
    if doubled:
        return f"ingest user {doubled[0]!r} is named twice; each worker needs its own user"
    if password_given and len(users) > 1:
        return (
            f"one password (--ingest-password or AGRIDRONE_MQTT_PASSWORD) for {len(users)} "
            "ingest users: each worker needs its own; leave it out so each user keeps its "
            "hash from the password file or gets a new password"
        )
    return None


def service_accounts(
    ingest_users: Sequence[str], existing: Mapping[str, str], password: str | None = None
) -> tuple[list[ServiceAccount], dict[str, str]]:
    """The service accounts to write, and the passwords generated for some of them.

    An ingest user's hash comes from ``password`` if given, else from ``existing`` (the
    current password file), else from a new password. The health user is carried over
    from ``existing``; it is created only by ``agridrone init``.
    """
    services: list[ServiceAccount] = []
    generated: dict[str, str] = {}
    for name in ingest_users:
        if password is not None:
            hashed = mosquitto_hash(password)
        elif name in existing:
            hashed = existing[name]
        else:
            generated[name] = generate_password()
            hashed = mosquitto_hash(generated[name])
        services.append(ServiceAccount(name, hashed))
    if HEALTH_USER in existing:
        services.append(ServiceAccount(HEALTH_USER, existing[HEALTH_USER], "health"))
    return services, generated


def _fail(command: str, message: str) -> int:
    sys.stderr.write(f"agridrone {command}: {message}\n")
    return EXIT_BAD_INPUT


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def run(args: argparse.Namespace) -> int:
    """``agridrone drones ACTION``: 0 on success, 2 on bad input."""
    metadata = open_metadata(settings_from_args(args))
    try:
        return _drones(args, metadata)
    finally:
        metadata.close()


def _drones(args: argparse.Namespace, metadata: MetadataDB) -> int:
    command = f"drones {args.drones_command}"
    if args.drones_command == "list":
        _print_drones(metadata.drones(args.coop))
        return 0
    settings, problem = drone_settings(args)
    if problem is None:
        problem = validate_drone(args.coop, args.drone, settings.get("swath_m"))
    password = generate_password()
    record = DroneRecord(args.coop, args.drone, None, _now_ms(), mosquitto_hash(password))
    record = dataclasses.replace(record, **settings)
    if problem is None and args.drones_command == "add":
        problem = check_mavlink_settings(record)
    if problem is not None:
        return _fail(command, problem)
    if args.drones_command == "set":
        return _set(command, metadata, args.coop, args.drone, settings)
    try:
        if args.drones_command == "add":
            metadata.add_drone(record)
        elif args.drones_command == "passwd":
            metadata.set_drone_password(args.coop, args.drone, mosquitto_hash(password))
        else:
            metadata.remove_drone(args.coop, args.drone)
            sys.stderr.write(
                f"removed drone {args.drone} of {args.coop}; run `agridrone broker-acl` and "
                "reload Mosquitto to end its login\n"
            )
            return 0
    except MetadataConflictError as exc:
        return _fail(command, str(exc))
    user = mqtt_username(args.coop, args.drone)
    sys.stdout.write(password + "\n")
    sys.stderr.write(
        f"MQTT user {user}: the password above is shown only once; put it in the drone's "
        f"(or its ground station's) configuration. It may publish only under "
        f"agri/v1/{args.coop}/{args.drone}/#, {mavlink_prefix(args.coop, args.drone)}# "
        "(MAVProxy) and its DJI serial's thing/product/SN/#. "
        "Run `agridrone broker-acl` and reload Mosquitto (SIGHUP) to let it in.\n"
    )
    return 0


def _set(
    command: str, metadata: MetadataDB, coop: str, drone: str, settings: dict[str, Any]
) -> int:
    if not settings:
        return _fail(command, "nothing to change: give at least one setting (see --help)")
    current = metadata.drone(coop, drone)
    if current is not None:
        problem = check_mavlink_settings(dataclasses.replace(current, **settings))
        if problem is not None:
            return _fail(command, problem)
    try:
        record = metadata.update_drone(coop, drone, settings)
    except MetadataConflictError as exc:
        return _fail(command, str(exc))
    _print_drones([record])
    if "dji_sn" in settings:
        sys.stderr.write(
            "the DJI serial changed: run `agridrone broker-acl` and reload Mosquitto (SIGHUP) "
            "so the drone's user may use its thing/product/SN/# topics\n"
        )
    return 0


def _print_drones(drones: Sequence[DroneRecord]) -> None:
    head = ("COOP", "DRONE", "SWATH_M", "REGISTERED", "MQTT_USER", "MAVLINK_SPRAY", "DJI_SN")
    rows = [(*head, "REGISTRATION")]
    rows.extend(
        (
            d.coop,
            d.drone,
            "-" if d.swath_m is None else f"{d.swath_m:g}",
            datetime.fromtimestamp(d.registered_ms / 1000, UTC).isoformat(timespec="seconds"),
            d.mqtt_username,
            d.mavlink_spray or "-",
            "-" if d.dji_sn is None else d.dji_sn + (" (spraying)" if d.dji_spraying else ""),
            d.registration or "-",
        )
        for d in drones
    )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        sys.stdout.write("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        sys.stdout.write("\n")


def run_broker_acl(args: argparse.Namespace) -> int:
    """``agridrone broker-acl``: write both files; 0 on success, 2 on bad input."""
    settings = settings_from_args(args)
    users: list[str] = args.ingest_user or [settings.mqtt_username or DEFAULT_INGEST_USER]
    password: str | None = args.ingest_password
    if password is None and settings.mqtt_password is not None:
        password = settings.mqtt_password.get_secret_value()
    if password == "":
        return _fail("broker-acl", "the ingest password is empty")
    problem = check_ingest_users(users, password_given=password is not None)
    if problem is not None:
        return _fail("broker-acl", f"--ingest-user: {problem}")
    password_file = args.password_file or settings.broker_dir / PASSWORD_FILE_NAME
    acl_file = args.acl_file or settings.broker_dir / ACL_FILE_NAME
    if password_file.resolve() == acl_file.resolve():
        return _fail("broker-acl", "--password-file and --acl-file must be different files")
    services, generated = service_accounts(users, read_password_file(password_file), password)
    metadata = open_metadata(settings)
    try:
        drones = metadata.drones()
    finally:
        metadata.close()
    write_broker_files(password_file, acl_file, drones, services)
    for user, new_password in generated.items():
        sys.stdout.write(
            f"AGRIDRONE_MQTT_USERNAME={user}\nAGRIDRONE_MQTT_PASSWORD={new_password}\n"
        )
    kept = [s.name for s in services if s.name not in generated and password is None]
    notes = []
    if generated:
        notes.append(f"new password for {', '.join(generated)} above, shown once")
    if kept:
        notes.append(f"kept the hash of {', '.join(kept)}")
    sys.stderr.write(
        f"wrote {password_file} and {acl_file}: ingest user(s) {', '.join(users)}"
        f"{' (' + '; '.join(notes) + ')' if notes else ''} and {len(drones)} drone(s); "
        "reload Mosquitto (SIGHUP) to apply\n"
    )
    return 0
