"""The ingest worker's view of the drone registry: cached, refreshed when a stranger appears."""

from __future__ import annotations

from ingest.inbox import Received
from ingest.registry import RegisteredDrones
from ingest.wire import encode_sample
from ingest.worker import UNKNOWN_DRONE, decode_batch
from storage.drones import DroneRecord
from tests.integration.mqtt_helpers import sample_series


def record(coop: str, drone: str) -> DroneRecord:
    return DroneRecord(coop, drone, None, 0, "$7$101$x$y")


def test_a_registered_drone_is_admitted_and_a_stranger_is_not() -> None:
    admit = RegisteredDrones(lambda: [record("htx-a", "dt-01")])
    assert admit("htx-a", "dt-01")
    assert not admit("htx-a", "dt-02")
    assert not admit("htx-b", "dt-01")


def test_a_drone_registered_later_is_admitted_after_the_miss_refresh() -> None:
    registry = [record("htx-a", "dt-01")]
    admit = RegisteredDrones(lambda: list(registry), refresh_s=3600, miss_refresh_s=0.0)
    assert not admit("htx-a", "dt-02")
    registry.append(record("htx-a", "dt-02"))
    assert admit("htx-a", "dt-02")


def test_the_registry_is_not_reread_for_every_message() -> None:
    loads: list[int] = []

    def load() -> list[DroneRecord]:
        loads.append(1)
        return [record("htx-a", "dt-01")]

    admit = RegisteredDrones(load, refresh_s=3600, miss_refresh_s=3600)
    for _ in range(100):
        admit("htx-a", "dt-01")
        admit("htx-a", "dt-99")
    assert len(loads) == 1


def test_messages_of_unknown_drones_are_rejected_with_their_reason() -> None:
    known, stranger = sample_series("htx-a", "dt-01", 1)[0], sample_series("htx-a", "dt-02", 1)[0]
    messages = [
        Received(1, i, 1, f"agri/v1/{s.coop}/{s.drone}/telemetry", encode_sample(s), s.ts_ms)
        for i, s in enumerate([known, stranger])
    ]
    decoded = decode_batch(messages, RegisteredDrones(lambda: [record("htx-a", "dt-01")]))
    assert decoded.samples == [known]
    assert [r.reason for r in decoded.rejected] == [UNKNOWN_DRONE]
    assert "htx-a/dt-02 is not registered" in decoded.rejected[0].detail
