"""The ``agridrone`` command: one sub-command per job, each defined beside the code it runs.

Start-up imports only the module of the command being run: ``COMMANDS`` names each command's
module and help line, so ``agridrone --help`` lists every command without importing FastAPI,
paho or pydantic, and ``agridrone coverage`` pays only for numpy, Shapely and pyproj.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from agridrone import __version__

#: Modules that each expose ``register(subparsers)``, in ``--help`` order.
COMMAND_MODULES: tuple[str, ...] = (
    "ingest.cli",
    "api.cli",
    "simulators.cli",
    "fields.cli",
    "fields.import_cli",
    "flights.cli",
    "ingest.logs_cli",
    "api.keys_cli",
    "reports.coops_cli",
    "agridrone.products_cli",
    "agridrone.diary_cli",
    "agridrone.jobs_cli",
    "ingest.broker_acl",
    "agridrone.init",
    "agridrone.demo",
    "agridrone.bridge",
)

#: Command name -> (module registering it, its help line), so the parser can list every
#: command and import only the chosen one. A module of COMMAND_MODULES missing here is
#: imported on every run (correct, only slower); tests/unit/test_cli.py keeps this in step
#: with what each module registers.
COMMANDS: dict[str, tuple[str, str]] = {
    "ingest": ("ingest.cli", "consume MQTT telemetry into the store (at-least-once)"),
    "api": ("api.cli", "serve the HTTP API"),
    "simulate": (
        "simulators.cli",
        "fly simulated spraying drones and publish their telemetry over MQTT",
    ),
    "coverage": ("fields.cli", "spray coverage of fields from a flown track"),
    "fields": (
        "fields.import_cli",
        "import a cooperative's fields and no-spray zones",
    ),
    "flights": ("flights.cli", "rebuild and list stored flight summaries"),
    "logs": ("ingest.logs_cli", "import flight logs uploaded after the flight"),
    "keys": ("api.keys_cli", "create, list and revoke API keys"),
    "coops": ("reports.coops_cli", "cooperatives: names, tariffs for usage reports, member names"),
    "products": (
        "agridrone.products_cli",
        "a cooperative's plant-protection products for the spray diary",
    ),
    "diary": (
        "agridrone.diary_cli",
        "a field's spray diary; `diary verify` checks the diaries' hash chains",
    ),
    "jobs": (
        "agridrone.jobs_cli",
        "spray jobs: `jobs refly JOB_ID` lists the missed areas to fly again",
    ),
    "drones": ("ingest.broker_acl", "the drone registry and each drone's MQTT password"),
    "broker-acl": (
        "ingest.broker_acl",
        "write Mosquitto's password file and ACL from the drone registry",
    ),
    "init": (
        "agridrone.init",
        "first run: operator key, broker users and files (keeps what exists)",
    ),
    "demo": ("agridrone.demo", "run broker, ingest, API and a simulated fleet together"),
    "mavlink-bridge": (
        "agridrone.bridge",
        "MAVLink (UDP, serial, .tlog) to wire v1 at QoS 1, spooled to disk",
    ),
}

Handler = Callable[[argparse.Namespace], int]


def _chosen(argv: Sequence[str]) -> str | None:
    """The command word of argv (the top-level parser has no option taking a value)."""
    for word in argv:
        if not word.startswith("-"):
            return word
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``command``, only that command's module is imported.

    Without it every module registers its full sub-parser (what tests and tools inspect).
    Other commands get a placeholder with their help line, so ``--help`` lists them all and
    a typo is still an "invalid choice" naming every command.
    """
    parser = argparse.ArgumentParser(
        prog="agridrone",
        description="Telemetry ingest, field coverage and reports for spraying drones.",
    )
    parser.add_argument("--version", action="version", version=f"agridrone {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    listed = {module for module, _ in COMMANDS.values()}
    wanted = COMMANDS[command][0] if command in COMMANDS else None
    for name in COMMAND_MODULES:
        if command is None or name == wanted or name not in listed:
            importlib.import_module(name).register(subparsers)
            continue
        for cmd, (module, help_line) in COMMANDS.items():
            if module == name:
                subparsers.add_parser(cmd, help=help_line, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_chosen(words) or "")
    args = parser.parse_args(words)
    handler: Handler = args.handler
    try:
        if any(name.upper().startswith("AGRIDRONE_") for name in os.environ):
            # Unknown AGRIDRONE_* variables are refused; checking costs pydantic, so only
            # when there is something to check.
            from agridrone.settings import check_environment

            check_environment()
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # agridrone.settings is loaded by every command that can raise its ConfigError;
        # importing it here for the check would cost pydantic on every run.
        settings = sys.modules.get("agridrone.settings")
        if settings is not None and isinstance(exc, settings.ConfigError):
            print(f"agridrone {args.command}: {exc}", file=sys.stderr)
            return 2
        from storage.contract import StoreUnavailableError  # only when something failed

        if not isinstance(exc, StoreUnavailableError):
            raise
        print(f"agridrone {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
