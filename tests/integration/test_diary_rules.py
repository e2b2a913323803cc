"""A cooperative's own compliance thresholds (``agridrone diary rules``) decide the flags of
the entries written afterwards, on both metadata stores."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from agridrone.cli import main as run_cli
from fields.registry import load_fields
from fields.stored import to_stored
from fields.synthetic import T0_MS
from flights.service import rebuild
from simulators.geo import DEFAULT_FIELDS_PATH
from storage.metadata import MetadataDB
from storage.sqlite import SqliteStore
from tests.integration.api_world import DAY_MS, HP, PRODUCTS, jobs

pytestmark = pytest.mark.integration


def buffer_flag(metadata: MetadataDB) -> dict[str, Any]:
    doc = metadata.diary_rows("dt-hp-004")[-1].doc()
    [flag] = [f for f in doc["flags"] if f["code"] == "no_spray_buffer"]
    return dict(flag)


def test_a_wider_buffer_flags_more_ground_in_the_next_version(
    metadata: MetadataDB, metadata_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = load_fields(DEFAULT_FIELDS_PATH)
    metadata.save_fields(to_stored([*registry.fields, *registry.no_spray]))
    metadata.add_product(PRODUCTS[0])
    job = jobs()[0]
    [start] = [e for e in job.events if e.type == "job_start"]
    announced = replace(start, ts_ms=start.ts_ms + 1, attrs={**start.attrs, "job": "j-0"})
    window = (T0_MS - DAY_MS, T0_MS + DAY_MS)
    where = [
        "--metadata-url",
        metadata_url if "://" in metadata_url else f"sqlite:///{metadata_url}",
    ]
    with SqliteStore(tmp_path / "telemetry.db") as store:
        store.write_samples(job.samples)
        store.write_events([*job.events, announced])
        rebuild(store, metadata, *window, now_ms=T0_MS + 3 * DAY_MS)
        narrow = buffer_flag(metadata)
        assert "15 m" in narrow["message_en"]
        assert run_cli(["diary", "rules", "--coop", HP, "--buffer-m", "40", *where]) == 0
        shown = capsys.readouterr().out.splitlines()
        assert "buffer_m 40" in shown
        assert "wind_limit_mps 3.4  (default)" in shown
        rebuild(store, metadata, *window, now_ms=T0_MS + 3 * DAY_MS)
    wide = buffer_flag(metadata)
    assert "40 m" in wide["message_en"]
    assert wide["area_m2"] > narrow["area_m2"]
    rows = metadata.diary_rows("dt-hp-004")
    assert [r.doc()["version"] for r in rows] == [1, 2]
    assert metadata.diary_rules(HP) == {"buffer_m": 40.0}
    assert metadata.diary_rules("htx-other") == {}


@pytest.mark.parametrize(
    "args",
    [
        ["diary", "rules", "--buffer-m", "20"],  # no --coop
        ["diary", "rules", "--coop", "htx-a", "--buffer-m", "500"],
        ["diary", "rules", "--coop", "htx-a", "--dose-tolerance-pct", "0"],
    ],
)
def test_bad_rules_are_refused_and_nothing_is_stored(tmp_path: Path, args: list[str]) -> None:
    path = tmp_path / "m.db"
    assert run_cli([*args, "--metadata-path", str(path)]) == 2
    db = MetadataDB(path)
    try:
        assert db.diary_rules("htx-a") == {}
    finally:
        db.close()
