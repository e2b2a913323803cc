"""A sparse flight over real HTTP, against both stores: the coverage answer says
``positioning: sparse`` and states its uncertainty, equal to the engine's on those samples."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fields.coverage import CoverageEngine
from fields.registry import load_fields
from fields.synthetic import T0_MS
from flights.service import rebuild
from simulators.geo import DEFAULT_FIELDS_PATH
from storage.contract import TelemetryStore
from tests.integration.api_world import DAY_MS, World, jobs, running_world

pytestmark = pytest.mark.integration

FIELD = "dt-hp-004"
NEXT_DAY = {"from": "2025-11-29", "to": "2025-11-30"}


@pytest.fixture
def fresh(store: TelemetryStore, tmp_path: Path) -> Iterator[tuple[World, TelemetryStore]]:
    with running_world(store, tmp_path) as w:
        yield w, store


def test_a_half_hertz_flight_answers_sparse_with_its_uncertainty(
    fresh: tuple[World, TelemetryStore],
) -> None:
    world, store = fresh
    job = jobs()[0]  # Hồng Phong's d-hp-a over dt-hp-004, 10 Hz
    # The same flight the next day, as a 0.5 Hz gateway would have sent it.
    samples = [dataclasses.replace(s, ts_ms=s.ts_ms + DAY_MS) for s in job.samples[::20]]
    events = [dataclasses.replace(e, ts_ms=e.ts_ms + DAY_MS) for e in job.events]
    store.write_samples(samples)
    store.write_events(events)
    rebuild(store, world.metadata, T0_MS, T0_MS + 2 * DAY_MS, now_ms=T0_MS + 3 * DAY_MS)

    response = httpx.get(
        f"{world.url}/api/v1/fields/{FIELD}/coverage",
        params=NEXT_DAY,
        headers=world.headers["coop_hp"],
        timeout=60,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["positioning"], body["uncertain"]) == ("sparse", True)
    coverage = body["coverage"]
    assert coverage["positioning"] == "sparse"
    assert coverage["uncertainty_ha"] > 0
    engine = CoverageEngine(load_fields(DEFAULT_FIELDS_PATH))
    want = engine.result(engine.run(samples)[FIELD]).metrics()
    for key in ("covered_ha", "coverage_pct", "uncertainty_ha", "uncertainty_pct", "passes"):
        assert coverage[key] == pytest.approx(want[key], abs=2e-6), key
    # The dense flight of the day before is still dense, with no stated uncertainty.
    dense = httpx.get(
        f"{world.url}/api/v1/fields/{FIELD}/coverage",
        params={"from": "2025-11-28", "to": "2025-11-29"},
        headers=world.headers["coop_hp"],
        timeout=60,
    ).json()
    assert dense["positioning"] == "rtk"
    assert (dense["coverage"]["uncertainty_ha"], dense["coverage"]["uncertainty_pct"]) == (0, 0)
    assert coverage["covered_ha"] <= dense["coverage"]["covered_ha"] + 1e-6
