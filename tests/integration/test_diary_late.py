"""Late samples change a written diary entry: a new version supersedes it, the chain stays
whole (the summarizer's own path: flights summarized again with ``replace``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from fields.registry import load_fields
from fields.stored import to_stored
from fields.synthetic import T0_MS
from flights.service import rebuild
from simulators.geo import DEFAULT_FIELDS_PATH
from storage.diary_chain import verify_chain
from storage.metadata import MetadataDB
from storage.sqlite import SqliteStore
from tests.integration.api_world import DAY_MS, PRODUCTS, jobs

pytestmark = pytest.mark.integration


def test_late_samples_write_a_superseding_version(metadata: MetadataDB, tmp_path: Path) -> None:
    registry = load_fields(DEFAULT_FIELDS_PATH)
    metadata.save_fields(to_stored([*registry.fields, *registry.no_spray]))
    metadata.add_product(PRODUCTS[0])
    job = jobs()[0]  # Hồng Phong's d-hp-a over dt-hp-004, several flights
    [start] = [e for e in job.events if e.type == "job_start"]
    announced = replace(
        start, ts_ms=start.ts_ms + 1, attrs={**start.attrs, "job": "j-0", "product": "validan"}
    )
    samples = sorted(job.samples, key=lambda s: s.ts_ms)
    spraying = [s for s in samples if s.spraying]
    cut = spraying[-len(spraying) // 4].ts_ms  # the last quarter of the spraying comes late
    on_time = [s for s in samples if s.ts_ms < cut]
    late = [s for s in samples if s.ts_ms >= cut]
    window = (T0_MS - DAY_MS, T0_MS + DAY_MS)
    with SqliteStore(tmp_path / "telemetry.db") as store:
        store.write_samples(on_time)
        store.write_events([*job.events, announced])
        rebuild(store, metadata, *window, now_ms=T0_MS + 3 * DAY_MS)
        [first] = metadata.diary_rows("dt-hp-004")
        store.write_samples(late)
        rebuild(store, metadata, *window, now_ms=T0_MS + 3 * DAY_MS)
        rows = metadata.diary_rows("dt-hp-004")
        rebuild(store, metadata, *window, now_ms=T0_MS + 3 * DAY_MS)  # nothing new
        assert metadata.diary_rows("dt-hp-004") == rows
    assert rows[0] == first
    assert [r.entry_key for r in rows] == ["htx-hong-phong.d-hp-a.j-0"] * 2
    old, new = rows[0].doc(), rows[1].doc()
    assert (old["version"], new["version"]) == (1, 2)
    assert new["supersedes"] == rows[0].entry_hash
    assert rows[1].prev_hash == rows[0].entry_hash
    assert new["applied_l"] > old["applied_l"]
    assert new["sprayed_ha"] > old["sprayed_ha"]
    assert new["end"] >= old["end"]
    assert new["product"]["trade_name"] == "Validan 5SL"
    assert verify_chain(metadata.diary_chain()).ok
