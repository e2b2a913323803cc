"""Real dirty input: the Fields2Cover strips file refused feature by feature by
``agridrone fields import``, and the real DJI flights' gaps cutting coverage passes."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pyproj import Geod

from adapters import read_track_csv
from agridrone.cli import main
from fields.coverage import GAP_LIMIT_S, CoverageParams, sample_arrays, split_passes
from fields.registry import FieldValidationError, parse_fields
from ingest.jumps import JumpFilter
from storage.metadata import MetadataDB
from tests.realdata import needs_realdata, realdata

STRIPS = "f2c_strips.geojson"


def _strips() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(realdata("fields", STRIPS).read_text())
    return doc


def _import(path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, Any]:
    db = tmp_path / "meta.db"
    argv = ["fields", "import", str(path), "--coop", "c1", "--metadata-path", str(db)]
    code = main([*argv, "--quiet", "--json"])
    summary = json.loads(capsys.readouterr().out)
    stored = MetadataDB(db)
    try:
        assert stored.stored_fields() == []  # nothing of a refused feature is stored
    finally:
        stored.close()
    return code, summary


@needs_realdata
def test_the_invalid_strips_file_is_refused_by_fields_import_with_a_message_per_feature(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, summary = _import(realdata("fields", STRIPS), tmp_path, capsys)
    assert code == 1
    assert (summary["features"], summary["added"], summary["refused"][0]["index"]) == (3, 0, 0)
    assert [r["index"] for r in summary["refused"]] == [0, 1, 2]
    for r in summary["refused"]:
        i = r["index"]
        assert f"feature {i}: no 'id' property" in r["reasons"]
        assert any(
            m.startswith(f"feature {i} outer ring: ring not closed") for m in r["reasons"]
        ), r


@needs_realdata
def test_with_ids_and_closed_rings_the_strips_are_still_refused_as_self_intersecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = copy.deepcopy(_strips())
    for i, f in enumerate(doc["features"]):
        f["properties"]["id"] = f"strip-{i}"
        ring = f["geometry"]["coordinates"][0]
        ring.append(ring[0])
    path = tmp_path / "strips-closed.geojson"
    path.write_text(json.dumps(doc))
    code, summary = _import(path, tmp_path, capsys)
    assert code == 1
    assert [r["index"] for r in summary["refused"]] == [0, 1, 2]
    for r in summary["refused"]:
        (reason,) = r["reasons"]
        assert reason.startswith(f"feature {r['index']} (strip-{r['index']}): invalid geometry")
        assert "Self-intersection" in reason
    with pytest.raises(FieldValidationError, match="3 problem"):
        parse_fields(doc)


# --- the real DJI flights: gaps cut passes, real flying trips no jump check ------------------


def _samples(name: str) -> list[dict[str, Any]]:
    with realdata("tracks", name).open(newline="", encoding="utf-8") as f:
        return [r.sample for r in read_track_csv(f, spraying=True) if r.sample is not None]


def _raw_fixed_rows(name: str) -> list[dict[str, str]]:
    """The CSV's rows with a fix (not 0,0, gpslevel not 0), first of each timestamp: an
    independent reading with the csv module."""
    with realdata("tracks", name).open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    seen: set[str] = set()
    out = []
    for r in rows:
        if (float(r["lat"]) == 0 and float(r["lon"]) == 0) or r.get("gpslevel") == "0":
            continue
        if r["ts"] in seen:
            continue
        seen.add(r["ts"])
        out.append(r)
    return out


@needs_realdata
@pytest.mark.parametrize(
    ("name", "rows", "passes"),
    [
        ("dji_mini2_2021-09-06_airdata.csv", 11608, 4),
        ("dji_air2s_2021-09-06_airdata.csv", 11491, 2),
    ],
)
def test_a_real_flight_sprayed_throughout_is_cut_into_passes_at_its_gaps(
    name: str, rows: int, passes: int
) -> None:
    samples = _samples(name)
    raw = _raw_fixed_rows(name)
    assert len(samples) == len(raw) == rows
    ts = np.array([round(float(r["ts"]) * 1000) for r in raw])
    lat = np.array([float(r["lat"]) for r in raw])
    lon = np.array([float(r["lon"]) for r in raw])
    _, _, step = Geod(ellps="WGS84").inv(lon[:-1], lat[:-1], lon[1:], lat[1:])
    p = CoverageParams(default_swath_m=5.0)
    cuts = int(((np.diff(ts) > GAP_LIMIT_S * 1000) | (step > p.max_jump_m)).sum())
    assert cuts + 1 == passes
    arrays = sample_arrays(
        [s["ts"] for s in samples],
        [s["lat"] for s in samples],
        [s["lon"] for s in samples],
        [s["spraying"] for s in samples],
    )
    assert len(split_passes(arrays, p).start) == passes
    # Real flying, up to ~19 m/s between samples, trips no implausible_jump.
    jumps = JumpFilter()
    assert [s for s in samples if jumps.check("c", "d", s["ts"], s["lat"], s["lon"])] == []
