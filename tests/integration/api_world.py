"""A small running service for API tests: simulated flights in a real store, summarized into
the metadata database, the packaged Đông Triều fields, tariffs, and one key per role.

The flights (the simulator's own plans, replayed into the store):
- Hồng Phong's drone ``d-hp-a`` sprays field dt-hp-004 (member nd-hp-00) in several flights
  (a small tank forces refills);
- Yên Thọ's drone ``d-yt-a``, hired, sprays Hồng Phong's field dt-hp-002 (member nd-hp-01),
  then Yên Thọ's own dt-yt-004 (member nd-yt-02).

Each cooperative has one registered product (``PRODUCTS``).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np

from api.app import create_app
from fields.registry import load_fields
from fields.stored import to_stored
from fields.synthetic import T0_MS
from flights.service import rebuild
from simulators.fleet import DroneState, FlightConfig, Job, plan_job
from simulators.geo import DEFAULT_FIELDS_PATH
from simulators.geo import load_fields as load_sim_fields
from storage.contract import TelemetryStore
from storage.keys import Role, generate_key
from storage.metadata import MetadataDB, ProductRecord
from tests.integration.api_server import serving

HP: Final = "htx-hong-phong"
YT: Final = "htx-yen-tho"
DAY_MS: Final = 86_400_000
TARIFF: Final = 300_000
#: Local day (Asia/Ho_Chi_Minh) holding every flight, as query parameters.
THE_DAY: Final = {"from": "2025-11-28", "to": "2025-11-29"}

#: (coop, drone, field, start offset from T0) of each job.
JOBS: Final = (
    (HP, "d-hp-a", "dt-hp-004", 0),
    (YT, "d-yt-a", "dt-hp-002", 0),
    (YT, "d-yt-a", "dt-yt-004", 3 * 3_600_000),
)
#: One plant-protection product of each cooperative (the spray diary's products).
PRODUCTS: Final = (
    ProductRecord(
        HP, "validan", "Validan 5SL", "Validamycin", "5% SL", "VN-1234/BVTV", "Bệnh khô vằn", 16, 7
    ),
    ProductRecord(
        YT, "anvil", "Anvil 5SC", "Hexaconazole", "50 g/L", "VN-5678/BVTV", "Bệnh đạo ôn", 20, 14
    ),
)
#: Subjects of the keys the world hands out, by name.
PRINCIPALS: Final[dict[str, tuple[Role, str]]] = {
    "operator": ("operator", "ops"),
    "coop_hp": ("coop", HP),
    "coop_yt": ("coop", YT),
    "farmer_hp00": ("farmer", "nd-hp-00"),
    "farmer_hp01": ("farmer", "nd-hp-01"),
    "farmer_yt02": ("farmer", "nd-yt-02"),
    "farmer_none": ("farmer", "nd-nobody"),
}


@functools.cache
def jobs() -> tuple[Job, ...]:
    """The simulator's plans of the three jobs (deterministic: fixed seeds)."""
    sim_fields = load_sim_fields()
    states: dict[str, DroneState] = {}
    planned = []
    for i, (coop, drone, field_id, offset_ms) in enumerate(JOBS):
        state = states.setdefault(drone, DroneState(coop, drone, T0_MS))
        state.t_ms = max(state.t_ms, T0_MS + offset_ms)
        config = FlightConfig(tank_capacity_l=3.0 if drone == "d-hp-a" else 35.0)
        planned.append(
            plan_job(sim_fields.by_id(field_id), state, config, np.random.default_rng(10 + i))
        )
    return tuple(planned)


@dataclass
class World:
    """The running API over a populated store and metadata database."""

    url: str
    metadata: MetadataDB
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    def key(self, role: Role, subject: str) -> dict[str, str]:
        """Headers carrying a new key for ``role`` and ``subject``."""
        new = generate_key(role, subject, "test", int(time.time() * 1000))
        self.metadata.add_api_key(new.record)
        return {"Authorization": f"Bearer {new.key}"}


@contextlib.contextmanager
def running_world(
    store: TelemetryStore,
    folder: Path,
    metadata_url: str | None = None,
    planned: Sequence[Job] | None = None,
) -> Iterator[World]:
    """Write the jobs (``planned``, default ``jobs()``) into ``store``, summarize their
    flights, and serve the API (metadata in ``metadata_url``, default a SQLite file in
    ``folder``)."""
    metadata = MetadataDB(metadata_url or folder / "agridrone.db")
    registry = load_fields(DEFAULT_FIELDS_PATH)
    metadata.save_fields(to_stored([*registry.fields, *registry.no_spray]))
    metadata.set_coop(HP, name="HTX Hồng Phong", tariff_vnd_per_ha=TARIFF)
    metadata.set_coop(YT, name="HTX Yên Thọ", tariff_vnd_per_ha=TARIFF)
    metadata.set_members(HP, {"nd-hp-00": "Nguyễn Văn Hưng", "nd-hp-01": "Trần Thị Lan"})
    for product in PRODUCTS:
        if metadata.product(product.coop, product.id) is None:
            metadata.add_product(product)
    for job in jobs() if planned is None else planned:
        store.write_samples(job.samples)
        store.write_events(job.events)
    outcomes = rebuild(store, metadata, T0_MS - DAY_MS, T0_MS + DAY_MS, now_ms=T0_MS + 3 * DAY_MS)
    failed = [f for o in outcomes for f in o.failed]
    if failed or not any(o.saved for o in outcomes):
        raise RuntimeError(f"the world's flights were not summarized: {outcomes}")
    try:
        with serving(create_app(store, metadata)) as url:
            world = World(url, metadata)
            world.headers = {name: world.key(*who) for name, who in PRINCIPALS.items()}
            yield world
    finally:
        metadata.close()
