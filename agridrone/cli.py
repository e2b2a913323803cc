"""The ``agridrone`` command: one sub-command per job, each defined beside the code it runs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from agridrone import __version__
from agridrone.settings import ConfigError, check_environment

#: Modules that each expose ``register(subparsers)``; imported lazily to keep start-up fast.
COMMAND_MODULES: tuple[str, ...] = (
    "ingest.cli",
    "api.cli",
    "simulators.cli",
    "fields.cli",
    "flights.cli",
    "api.keys_cli",
    "reports.coops_cli",
    "ingest.broker_acl",
    "agridrone.init",
    "agridrone.demo",
)

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every sub-command registered."""
    import importlib

    parser = argparse.ArgumentParser(
        prog="agridrone",
        description="Telemetry ingest, field coverage and reports for spraying drones.",
    )
    parser.add_argument("--version", action="version", version=f"agridrone {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        check_environment()
        return handler(args)
    except ConfigError as exc:
        print(f"agridrone {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from storage.contract import StoreUnavailableError  # only when something failed

        if not isinstance(exc, StoreUnavailableError):
            raise
        print(f"agridrone {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
