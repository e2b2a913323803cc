"""``agridrone simulate``: a fleet of spraying drones over Đông Triều plots, over MQTT."""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

from agridrone.settings import add_settings_arguments, settings_from_args
from simulators.faults import FAULT_NAMES, parse_faults
from simulators.fleet import FlightConfig
from simulators.geo import DEFAULT_FIELDS_PATH, FieldsFileError, load_fields
from simulators.publisher import PublishError
from simulators.runner import run_fleet
from simulators.track import intended_path, write_intended


def register(subparsers: Any) -> None:
    """Add the ``simulate`` sub-command."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "simulate",
        help="fly simulated spraying drones and publish their telemetry over MQTT",
        description="Simulated spraying drones over sample Đông Triều fields, publishing "
        "wire-format v1 telemetry, events and status (docs/simulator.md).",
    )
    add_settings_arguments(p, "mqtt_url")
    p.add_argument("--mqtt-protocol", choices=("5", "3.1.1"), default="5")
    p.add_argument("--qos", type=int, choices=(0, 1, 2), default=1)
    p.add_argument("--drones", type=int, default=4, help="number of drones (dt-01, dt-02, ...)")
    p.add_argument("--coop", help="only this cooperative's fields and drones")
    p.add_argument("--fields", type=Path, default=DEFAULT_FIELDS_PATH, help="GeoJSON plots")
    p.add_argument("--field-id", action="append", default=[], help="fly only these plots")
    p.add_argument("--rate", type=float, default=10.0, help="samples per second per drone")
    p.add_argument("--batch", type=int, default=10, help="samples per message (1 = bare sample)")
    until = p.add_mutually_exclusive_group()
    until.add_argument("--duration", type=float, help="simulated seconds to fly, then stop")
    until.add_argument("--flights", type=int, help="jobs (one field each) per drone, then stop")
    p.add_argument(
        "--speedup", type=_speedup, default=1.0, help="publish X times real time, or max"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--start", type=_start_ms, help="simulated start, ISO 8601 or epoch ms [now]")
    p.add_argument("--gnss", choices=("rtk", "gnss"), default="rtk", help="rtk ~2 cm, gnss ~1.5 m")
    p.add_argument("--gnss-sigma", type=float, help="override the receiver's sigma per axis, m")
    p.add_argument("--swath", type=float, default=5.0, help="spray width, m")
    p.add_argument("--spacing-error", type=float, default=0.0, help="pass spacing = swath*(1+E)")
    p.add_argument("--speed", type=float, default=6.0, help="working speed, m/s")
    p.add_argument("--flow", type=float, default=6.0, help="flow while spraying, L/min")
    p.add_argument("--tank", type=float, default=35.0, help="tank capacity, L")
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME[=VALUE]",
        help=f"inject a fault (repeatable): {', '.join(FAULT_NAMES)}",
    )
    p.add_argument(
        "--speaks",
        type=_speaks,
        default=("wire",),
        metavar="LANGS",
        help="what the drones speak, assigned in turn (comma-separated): wire (v1), mavproxy "
        "(MAVLink JSON on agri/mavlink/COOP/DRONE/MSGTYPE), mavlink-udp (raw MAVLink to a "
        "bridge's udpin port), dji (OSD on thing/product/SIM-COOP-DRONE/osd) [wire]",
    )
    p.add_argument(
        "--mavlink-udp",
        type=_host_port,
        default=("127.0.0.1", 14550),
        metavar="HOST:PORT",
        help="where mavlink-udp drones send: the k-th to PORT+k [127.0.0.1:14550]",
    )
    p.add_argument("--write-track", type=Path, help="write flown samples as CSV here")
    p.add_argument("--write-intended", type=Path, help="intended answer JSON [TRACK.intended.json]")
    p.set_defaults(handler=run)


def _speaks(text: str) -> tuple[str, ...]:
    from simulators.runner import SPEAKS

    langs = tuple(w.strip() for w in text.split(",") if w.strip())
    bad = [w for w in langs if w not in SPEAKS]
    if bad or not langs:
        raise argparse.ArgumentTypeError(f"{text!r}: choose from {', '.join(SPEAKS)}")
    return langs


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r}: give HOST:PORT, e.g. 127.0.0.1:14550")
    return host, int(port)


def _speedup(text: str) -> float:
    if text in ("max", "inf"):
        return math.inf
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text}: must be > 0 or 'max'")
    return value


def _start_ms(text: str) -> int:
    if text.isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text}: not ISO 8601 or epoch ms") from exc
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text}: give a UTC offset, e.g. +07:00 or Z")
    return int(when.timestamp() * 1000)


def run(args: argparse.Namespace) -> int:
    """Run the fleet until done or SIGINT/SIGTERM; print the summary (and intended answer)."""
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        config = FlightConfig(
            rate_hz=args.rate,
            speed_mps=args.speed,
            swath_m=args.swath,
            spacing_error=args.spacing_error,
            flow_lpm=args.flow,
            tank_capacity_l=args.tank,
            gnss=args.gnss,
            gnss_sigma_m=args.gnss_sigma,
            faults=parse_faults(args.fault),
        )
        fields = load_fields(args.fields)
        intended_file = args.write_intended or (
            intended_path(args.write_track) if args.write_track else None
        )
        stats = run_fleet(
            settings_from_args(args).mqtt_url,
            drones=args.drones,
            coop=args.coop,
            fields=fields,
            field_ids=args.field_id,
            config=config,
            batch=args.batch,
            duration_s=args.duration,
            flights=args.flights,
            speedup=args.speedup,
            seed=args.seed,
            qos=args.qos,
            protocol=args.mqtt_protocol,
            start_ms=args.start,
            stop=stop,
            track_path=args.write_track,
            collect_intended=intended_file is not None,
            speaks=args.speaks,
            udp_host=args.mavlink_udp[0],
            udp_base_port=args.mavlink_udp[1],
        )
    except (ValueError, KeyError, FieldsFileError, PublishError, OSError) as exc:
        sys.stderr.write(f"agridrone simulate: {exc}\n")
        return 2
    sys.stderr.write(stats.summary() + "\n")
    if intended_file is not None:
        write_intended(intended_file, stats.intended)
        for answer in stats.intended:
            a = answer.as_dict()
            sys.stdout.write(
                f"intended {a['field_id']}: field {a['field_ha']:.4f} ha, covered "
                f"{a['covered_ha']:.4f} ha ({a['coverage_pct']:.2f} %), missed "
                f"{a['missed_ha']:.4f} ha, applied {a['applied_l']:.2f} L\n"
            )
        sys.stdout.write(f"intended answer written to {intended_file}\n")
    return 0 if stats.all_acknowledged else 1
