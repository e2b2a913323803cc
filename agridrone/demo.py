"""``agridrone demo``: the whole service on embedded defaults, in one command.

An embedded MQTT broker (unless ``--mqtt-url`` names one), the SQLite store and metadata
database in the data folder every command uses (``AGRIDRONE_DATA_DIR``, or ``--data-dir``;
``AGRIDRONE_METADATA_URL``, ``_METADATA_PATH`` and ``_SQLITE_PATH`` still name their own),
an ingest worker, the HTTP API and a simulated fleet over the sample Đông Triều fields.
Ctrl-C stops everything cleanly.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any, Final

import uvicorn

from agridrone.embedded_broker import embedded_broker
from agridrone.logs import configure_logging
from agridrone.settings import Settings
from agridrone.stores import open_metadata
from api.app import create_app
from api.times import local_day
from fields.registry import load_fields
from fields.stored import to_stored
from flights.service import FlightWatcher, watch
from ingest.foreign import ForeignConfig
from ingest.metrics import IngestMetrics
from ingest.mqtt import BrokerAddress, ConsumerConfig, MqttProtocol
from ingest.service import IngestConfig, IngestService
from simulators.fleet import FlightConfig
from simulators.geo import DEFAULT_FIELDS_PATH
from simulators.runner import run_fleet
from storage.keys import Role, generate_key, parse_key_id
from storage.logins import LOGIN_LINK_TTL_MS, hash_token, login_url, new_token
from storage.metadata import MetadataDB, ProductRecord
from storage.secrets import shown_url
from storage.sqlite import SqliteStore

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the ``demo`` sub-command."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "demo", help="run broker, ingest, API and a simulated fleet together"
    )
    p.add_argument("--mqtt-url", help="use this broker instead of the embedded one")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="data folder [AGRIDRONE_DATA_DIR, else ~/.local/share/agridrone]",
    )
    p.add_argument("--api-port", type=int, default=8000, help="preferred; another if taken")
    p.add_argument("--mqtt-port", type=int, default=1883, help="preferred; another if taken")
    p.add_argument("--drones", type=int, default=4)
    p.add_argument("--speedup", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--backfill-hours",
        type=float,
        default=1.0,
        help="fly this many past hours first, so flights and reports exist at once (0 = none)",
    )
    p.add_argument(
        "--speaks",
        default=DEFAULT_SPEAKS,
        help="languages of the live fleet, assigned to the drones in turn (drones alternate "
        "between the two cooperatives): wire, mavlink-udp (raw MAVLink over UDP to a built-in "
        "mavlink-bridge per drone), mavproxy (MAVProxy's mqtt module JSON), dji (DJI Cloud API "
        f"OSD) [{DEFAULT_SPEAKS}: each cooperative gets two languages]",
    )
    p.add_argument("--log-level", default="WARNING")
    p.set_defaults(handler=run)


#: What the demo's live fleet may speak; its worker takes MAVProxy and DJI topics too.
DEMO_SPEAKS = ("wire", "mavlink-udp", "mavproxy", "dji")
#: Drones alternate between the two cooperatives: one speaks wire v1 and MAVProxy JSON, the
#: other MAVLink (through a built-in bridge) and DJI OSD.
DEFAULT_SPEAKS = "wire,mavlink-udp,mavproxy,dji"


def demo_speaks(text: str) -> tuple[str, ...]:
    """``--speaks`` checked against what the demo can carry."""
    langs = tuple(w.strip() for w in text.split(",") if w.strip())
    bad = [w for w in langs if w not in DEMO_SPEAKS]
    if bad or not langs:
        raise ValueError(f"--speaks {text!r}: the demo carries {', '.join(DEMO_SPEAKS)}")
    return langs


def free_udp_run(count: int, preferred: int = 14550) -> int:
    """A first port of ``count`` consecutive free UDP ports on 127.0.0.1."""
    for base in (preferred, *range(40000, 60000, 97)):
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
        return int(base)
    raise OSError(f"no {count} consecutive free UDP ports")


@contextlib.contextmanager
def mavlink_bridges(
    args: argparse.Namespace, url: str, protocol: MqttProtocol, data_dir: Path
) -> Iterator[int]:
    """One built-in mavlink-bridge per mavlink-udp drone of the live fleet; yields the
    fleet's first UDP port."""
    from adapters.mavlink import MavlinkDrone, parse_spray_rules
    from adapters.mavlink_bridge import running_bridge
    from simulators.fleet import assign_drones
    from simulators.foreign_out import FLOW_BATTERY, SPRAY_RULE
    from simulators.geo import load_fields as load_sim_fields
    from simulators.runner import plan_speakers

    specs = assign_drones(load_sim_fields(), args.drones, None, args.seed)
    base = free_udp_run(max(1, len(specs)))
    speakers = [s for s in plan_speakers(specs, args.speaks, base) if s.udp_port is not None]
    address = BrokerAddress.from_url(url)
    with contextlib.ExitStack() as stack:
        for sp in speakers:
            drone = MavlinkDrone(
                sp.spec.coop,
                sp.spec.drone,
                spray=parse_spray_rules(SPRAY_RULE),
                flow_battery_instance=FLOW_BATTERY,
                tank_capacity_l=DEMO_FLIGHT.tank_capacity_l,
            )
            stack.enter_context(
                running_bridge(
                    drone,
                    f"udpin:127.0.0.1:{sp.udp_port}",
                    address,
                    data_dir / "bridge-spool" / f"{sp.spec.coop}.{sp.spec.drone}",
                    protocol=protocol,
                )
            )
        yield base


def port_or_free(preferred: int) -> int:
    """``preferred`` if nothing listens on it at 127.0.0.1, else any free port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def broker_url(args: argparse.Namespace) -> Iterator[tuple[str, MqttProtocol]]:
    """The broker to use: the one given, else an embedded amqtt (MQTT 3.1.1 only)."""
    if args.mqtt_url:
        yield args.mqtt_url, "5"
        return
    with embedded_broker(port_or_free(args.mqtt_port)) as url:
        yield url, "3.1.1"


@contextlib.contextmanager
def api_server(app: Any, port: int) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1:port in a thread."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextlib.contextmanager
def flight_summaries(store: SqliteStore, metadata: MetadataDB) -> Iterator[None]:
    """Summarize the fleet's flights as they land (every 10 s, 10 s after the last sample)."""
    stop = threading.Event()
    watcher = FlightWatcher(interval_s=10.0, settle_s=10.0)
    thread = threading.Thread(
        target=watch, args=(store, metadata, stop, watcher, 2.0), name="flights", daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)


#: Backfill messages published but not yet acknowledged by the ingest worker, at most.
#: amqtt (the embedded broker) pushes every message to a subscriber at once and drops a QoS 1
#: message whose PUBACK takes over 5 s, so a backfill that outruns the worker (a busy
#: machine) loses data; the backfill waits for the worker instead.
BACKFILL_WINDOW: Final = 2_000
#: How long the backfill waits for the worker before it says so and goes on.
BACKFILL_WAIT_S: Final = 120.0


def wait_for_ingest(
    metrics: IngestMetrics, published: int, window: int, wait_s: float = BACKFILL_WAIT_S
) -> None:
    """Block while more than ``window`` of ``published`` messages are not yet acknowledged
    by the ingest worker of ``metrics``; after ``wait_s`` say so and return."""
    deadline = time.monotonic() + wait_s
    while (acked := metrics.value("agridrone_ingest_messages_acked_total")) < (published - window):
        if time.monotonic() > deadline:
            log.warning(
                "backfill_ingest_behind published=%d acked=%d waited_s=%g",
                published,
                acked,
                wait_s,
            )
            return
        time.sleep(0.02)


def ingest_pace(ingest: IngestService, window: int = BACKFILL_WINDOW) -> Callable[[int], None]:
    """Flow control for ``run_fleet``: every hundredth message, wait for ``ingest``."""

    def pace(published: int) -> None:
        if published % 100 == 0:
            wait_for_ingest(ingest.metrics, published, window)

    return pace


def backfill(
    args: argparse.Namespace, url: str, protocol: MqttProtocol, ingest: IngestService
) -> None:
    """Fly the fleet's earlier hours at full speed through the broker, so flights exist at once.

    The past is published exactly like live telemetry (broker, ingest, store), only faster,
    at the pace the ingest worker acknowledges it; the flight watcher then summarizes those
    flights on its first round.
    """
    if args.backfill_hours <= 0:
        return
    hours = args.backfill_hours
    start = int(time.time() * 1000) - int((hours + 0.25) * 3600 * 1000)
    print(f"flying the last {hours:g} h of the fleet's day through the broker…", flush=True)
    stats = run_fleet(
        url,
        drones=args.drones,
        config=DEMO_FLIGHT,
        duration_s=hours * 3600,
        speedup=math.inf,
        seed=args.seed + 1,
        protocol=protocol,
        start_ms=start,
        pace=ingest_pace(ingest),
    )
    wait_for_ingest(ingest.metrics, stats.messages, window=0)


#: The rice fungicide each demo cooperative registers and its drones name in their
#: ``job_start`` (docs/diary.md), so the demo's spray diary has a product, a dose and
#: safe-harvest dates. Made up for the demo: no real product's name or registration.
DEMO_PRODUCT: Final = ProductRecord(
    coop="",  # each cooperative's own copy
    id="difecon",
    trade_name="Difecon 300EC",
    active_ingredient="Difenoconazole 150 g/L + Propiconazole 150 g/L",
    concentration="300 g/L EC",
    registration_no="VN-2025-0300/BVTV",
    target="Bệnh khô vằn, lem lép hạt lúa",
    dose_l_per_ha=15.0,
    phi_days=14,
)
#: Demo drones spend seconds, not minutes, on the ground, so the first flights show at once;
#: they apply about the planned 15 L/ha (2.7 L/min at 6 m/s over a 5 m swath) and announce
#: the product.
DEMO_FLIGHT = FlightConfig(
    ground_s=(3.0, 8.0),
    ferry_s=(20.0, 40.0),
    flow_lpm=2.7,
    product=DEMO_PRODUCT.id,
    dose_l_per_ha=DEMO_PRODUCT.dose_l_per_ha,
)


@contextlib.contextmanager
def fleet(
    args: argparse.Namespace, url: str, protocol: MqttProtocol, udp_base_port: int
) -> Iterator[None]:
    """The simulated fleet in a thread, flying until the demo stops."""
    stop = threading.Event()
    thread = threading.Thread(
        target=run_fleet,
        args=(url,),
        kwargs={
            "drones": args.drones,
            "config": DEMO_FLIGHT,
            "speedup": args.speedup,
            "seed": args.seed,
            "protocol": protocol,
            "stop": stop,
            "speaks": args.speaks,
            "udp_base_port": udp_base_port,
        },
        name="fleet",
        daemon=True,
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(15)


@dataclass(frozen=True, slots=True)
class DemoKeys:
    """API keys made for this demo run, one per role, and whose they are."""

    farmer: str
    farmer_id: str
    coop: str
    coop_id: str
    operator: str


def demo_login_link(metadata: MetadataDB, key: str, api: str) -> str:
    """A one-time login link (7 days) to the web app at ``api`` for ``key``."""
    key_id = parse_key_id(key)
    if key_id is None:
        raise ValueError("not a key")
    now = int(time.time() * 1000)
    token = new_token()
    metadata.add_login_link(hash_token(token), key_id, now, now + LOGIN_LINK_TTL_MS)
    return login_url(api, token)


#: An example price per sprayed hectare for the demo cooperatives (VND).
DEMO_TARIFF_VND_PER_HA = 200_000


def seed_metadata(metadata: MetadataDB) -> DemoKeys:
    """Register the sample Đông Triều fields and their cooperatives (with an example
    tariff and the demo's product), and make one key per role (new keys each run)."""
    registry = load_fields(DEFAULT_FIELDS_PATH)
    everything = [*registry.fields, *registry.no_spray]
    metadata.save_fields(to_stored(everything))
    for coop in sorted({f.coop for f in registry.fields if f.coop}):
        if metadata.coop(coop) is None:
            metadata.set_coop(coop, tariff_vnd_per_ha=DEMO_TARIFF_VND_PER_HA)
        if metadata.product(coop, DEMO_PRODUCT.id) is None:
            metadata.add_product(replace(DEMO_PRODUCT, coop=coop))
    first = registry.fields[0]
    now = int(time.time() * 1000)
    subjects: tuple[tuple[Role, str], ...] = (
        ("farmer", first.owner),
        ("coop", first.coop),
        ("operator", "demo-operator"),
    )
    keys = {role: generate_key(role, subject, "agridrone demo", now) for role, subject in subjects}
    for new in keys.values():
        metadata.add_api_key(new.record)
    return DemoKeys(
        farmer=keys["farmer"].key,
        farmer_id=first.owner,
        coop=keys["coop"].key,
        coop_id=first.coop,
        operator=keys["operator"].key,
    )


def register_foreign_drones(metadata: MetadataDB, args: argparse.Namespace) -> None:
    """Register the live fleet's MAVProxy and DJI drones with the settings the worker reads
    them by (docs/integrations.md): the simulator's spray rule and flow sensor, and the
    DJI serial. A DJI drone's samples are never counted as spraying (its OSD has no spray
    state): the demo shows its track, not its coverage."""
    from simulators.fleet import assign_drones
    from simulators.foreign_out import FLOW_BATTERY, SPRAY_RULE, dji_serial
    from simulators.geo import load_fields as load_sim_fields
    from simulators.runner import plan_speakers
    from storage.drones import DroneRecord

    specs = assign_drones(load_sim_fields(), args.drones, None, args.seed)
    now = int(time.time() * 1000)
    for sp in plan_speakers(specs, args.speaks):
        coop, drone = sp.spec.coop, sp.spec.drone
        if sp.speaks not in {"mavproxy", "dji"} or metadata.drone(coop, drone) is not None:
            continue
        record = DroneRecord(coop, drone, None, now, "-")  # no MQTT login: embedded broker
        if sp.speaks == "mavproxy":
            record = replace(
                record,
                mavlink_spray=SPRAY_RULE,
                mavlink_flow_battery=FLOW_BATTERY,
                tank_capacity_l=DEMO_FLIGHT.tank_capacity_l,
            )
        else:
            record = replace(record, dji_sn=dji_serial(coop, drone))
        metadata.add_drone(record)


def banner(
    args: argparse.Namespace, url: str, api: str, keys: DemoKeys, links: tuple[str, str]
) -> str:
    """What the demo prints: what runs where, the keys, the web app's login links (farmer,
    cooperative), and lines to try."""
    broker = f"{url}{' (embedded amqtt)' if not args.mqtt_url else ''}"
    return (
        f"agridrone demo is running (Ctrl-C to stop)\n"
        f"  MQTT broker   {broker}\n"
        f"  store         SQLite {args.sqlite_path}\n"
        f"  metadata      {shown_url(args.metadata)}\n"
        f"  fleet         {args.drones} simulated drones over Đông Triều fields, speaking "
        f"{' and '.join(dict.fromkeys(args.speaks))} (MAVLink through a built-in "
        f"mavlink-bridge each)\n"
        f"  API           {api}/docs\n"
        f"  drones        {api}/api/v1/drones\n"
        f"  health        {api}/readyz\n"
        f"  web app       {api}/\n"
        f"  farmer login  {links[0]}\n"
        f"  coop login    {links[1]}\n"
        f"  farmer key    {keys.farmer}  ({keys.farmer_id})\n"
        f"  coop key      {keys.coop}  ({keys.coop_id})\n"
        f"  operator key  {keys.operator}\n"
        f"try:\n"
        f'  curl -H "Authorization: Bearer {keys.farmer}" {api}/api/v1/fields\n'
        f'  curl -H "Authorization: Bearer {keys.coop}" {api}/api/v1/drones'
    )


def first_story(metadata: MetadataDB, keys: DemoKeys, api: str, since_ms: int) -> str | None:
    """Once a flight by the coop key's drones has sprayed one of its members' fields: a key
    for that field's farmer and the lines that show their coverage and the coop's report."""
    now = int(time.time() * 1000)
    owners = metadata.field_owners()
    for flight in metadata.flights(since_ms, now + 1, coop=keys.coop_id):
        shares = [
            s
            for s in flight.summary_dict()["fields"]
            if owners.get(s["field_id"], ("", ""))[1] == keys.coop_id and s["covered_ha"] > 0
        ]
        if not shares:
            continue
        field_id = max(shares, key=lambda s: float(s["covered_ha"]))["field_id"]
        owner = owners[field_id][0]
        farmer = generate_key("farmer", owner, "agridrone demo", now)
        metadata.add_api_key(farmer.record)
        link = demo_login_link(metadata, farmer.key, api)
        day = local_day(flight.start_ms).isoformat()
        as_farmer = f'curl -H "Authorization: Bearer {farmer.key}"'
        as_coop = f'curl -H "Authorization: Bearer {keys.coop}"'
        return (
            f"flights are landing: {flight.drone} of {keys.coop_id} sprayed field {field_id}\n"
            f"  its farmer    {farmer.key}  ({owner})\n"
            f"  web login     {link}  (the field: {api}/fields/{field_id})\n"
            f"coverage (farmer):\n"
            f'  {as_farmer} "{api}/api/v1/fields/{field_id}/coverage?from={day}"\n'
            f"flights over the field (farmer):\n"
            f'  {as_farmer} "{api}/api/v1/flights?field={field_id}&from={day}"\n'
            f"usage report, CSV for Excel (coop):\n"
            f'  {as_coop} "{api}/api/v1/reports/usage?from={day}&format=csv&lang=vi"'
            f" -o usage.csv"
        )
    return None


def run(args: argparse.Namespace) -> int:
    """Start everything, print where to look, run until Ctrl-C or SIGTERM."""
    configure_logging(args.log_level)
    args.speaks = demo_speaks(args.speaks)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    settings = Settings() if args.data_dir is None else Settings(data_dir=args.data_dir)
    args.sqlite_path, args.metadata = settings.sqlite_path, settings.metadata
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = SqliteStore(settings.sqlite_path)
    metadata = open_metadata(settings)
    keys = seed_metadata(metadata)
    register_foreign_drones(metadata, args)
    with broker_url(args) as (url, protocol):
        address = BrokerAddress.from_url(url)
        ingest = IngestService(
            IngestConfig(
                ConsumerConfig(address, "agridrone-demo-ingest", protocol=protocol),
                foreign=ForeignConfig(),
            ),
            store,
            metadata,
        )
        ingest.start(connect_timeout_s=15)
        since_ms = int(time.time() * 1000) - int((args.backfill_hours + 0.5) * 3_600_000)
        backfill(args, url, protocol, ingest)
        with (
            api_server(create_app(store, metadata), port_or_free(args.api_port)) as api,
            mavlink_bridges(args, url, protocol, settings.data_dir) as udp_base,
            fleet(args, url, protocol, udp_base),
            flight_summaries(store, metadata),
        ):
            links = (
                demo_login_link(metadata, keys.farmer, api),
                demo_login_link(metadata, keys.coop, api),
            )
            print(banner(args, url, api, keys, links), flush=True)
            told = False
            while not stop.wait(1.0):
                story = None if told else first_story(metadata, keys, api, since_ms)
                if story is not None:
                    print(story, flush=True)
                    told = True
            print("stopping…", flush=True)
        ingest.stop()
    store.close()
    metadata.close()
    return 0
