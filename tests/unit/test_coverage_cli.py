"""``agridrone coverage``: tracks in, exactly the documented metrics out, exit 2 on bad input."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from shapely.geometry import shape

from fields import cli
from fields.coverage import GEOMETRY_KINDS, METRIC_KEYS
from fields.synthetic import DONG_TRIEU, Flight, collection, feature, rectangle

LINES = [3.0 + 6.0 * k for k in range(10)]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="agridrone")
    cli.register(p.add_subparsers(dest="command", required=True))
    return p


def main(*argv: str) -> int:
    args = parser().parse_args(["coverage", *argv])
    code: int = args.handler(args)
    return code


@pytest.fixture
def fields_file(tmp_path: Path) -> Path:
    path = tmp_path / "fields.geojson"
    doc = collection(
        feature("f", rectangle(100, 60), name="Ruộng bà Thu"),
        feature("g", rectangle(50, 50, 300, 0)),
    )
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def write_csv(path: Path, flight: Flight, *, swath: bool, bools: tuple[str, str]) -> Path:
    lon, lat = DONG_TRIEU.inverse(flight.x, flight.y)
    header = "ts,lat,lon,spraying,flow_lpm" + (",swath_m" if swath else "") + ",drone"
    rows = [header]
    for t, la, lo, on in zip(flight.ts, lat, lon, flight.on, strict=True):
        cells = [str(t), repr(float(la)), repr(float(lo)), bools[0] if on else bools[1], "6"]
        rows.append(",".join([*cells, *(["6"] if swath else []), "d1"]))
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_json_prints_exactly_the_metric_keys_per_touched_field(
    fields_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    track = write_csv(
        tmp_path / "t.csv", Flight().boustrophedon(0, 100, LINES), swath=True, bools=("1", "0")
    )
    assert main("--field", str(fields_file), "--track", str(track)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    assert list(out) == ["field_id", *METRIC_KEYS]
    assert out["field_id"] == "f"
    assert out["coverage_pct"] == pytest.approx(100.0, abs=0.5)
    assert out["passes"] == 10


def test_swath_option_fills_in_for_samples_without_swath(
    fields_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flight = Flight().boustrophedon(0, 100, [6.0, 18.0, 30.0, 42.0, 54.0])
    track = write_csv(tmp_path / "t.csv", flight, swath=False, bools=("true", "false"))
    assert main("--field", str(fields_file), "--track", str(track), "--swath", "12") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["coverage_pct"] == pytest.approx(100.0, abs=0.5)


def test_missing_swath_without_the_option_is_a_clear_error(
    fields_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flight = Flight().boustrophedon(0, 100, LINES)
    track = write_csv(tmp_path / "t.csv", flight, swath=False, bools=("true", "false"))
    assert main("--field", str(fields_file), "--track", str(track)) == 2
    assert "--swath" in capsys.readouterr().err


def test_json_lines_tracks_and_field_id_selection_work(
    fields_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flight = Flight().boustrophedon(0, 100, LINES)
    lon, lat = DONG_TRIEU.inverse(flight.x, flight.y)
    track = tmp_path / "t.jsonl"
    samples = [
        {"ts": t, "lat": float(la), "lon": float(lo), "spraying": on, "swath_m": 6.0}
        for t, la, lo, on in zip(flight.ts, lat, lon, flight.on, strict=True)
    ]
    track.write_text("\n".join(json.dumps(s) for s in samples), encoding="utf-8")
    code = main("--field", str(fields_file), "--track", str(track), "--field-id", "g")
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["field_id"] == "g"
    assert out["coverage_pct"] == 0.0
    assert out["mean_rate_l_per_ha"] is None


def test_geojson_holds_the_polygons_of_each_kind_in_wgs84(
    fields_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [y for y in LINES if y != 27.0]
    flight = Flight().boustrophedon(-5, 105, [*lines, 30.5])
    track = write_csv(tmp_path / "t.csv", flight, swath=True, bools=("1", "0"))
    code = main("--field", str(fields_file), "--track", str(track), "--format", "geojson")
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["type"] == "FeatureCollection"
    kinds = {f["properties"]["kind"] for f in doc["features"]}
    assert kinds == {"covered", "missed", "overlap", "off_target"}
    assert kinds <= set(GEOMETRY_KINDS)
    for f in doc["features"]:
        min_lon, min_lat, max_lon, max_lat = shape(f["geometry"]).bounds
        assert 106.5 < min_lon < max_lon < 106.6
        assert 21.0 < min_lat < max_lat < 21.1


@pytest.mark.parametrize(
    ("fields_text", "track_text", "expected"),
    [
        ("{not json", "ts,lat,lon,spraying\n1,21.08,106.52,1\n", "not valid JSON"),
        (None, "ts,lat,lon\n1,21.08,106.52\n", "spraying"),
        (None, "ts,lat,lon,spraying\n1,21.08,106.52,yes\n", "line 2: spraying 'yes'"),
        (None, "ts,lat,lon,spraying\nsoon,21.08,106.52,1\n", "line 2: ts 'soon'"),
        (None, '{"ts": 1, "lat": 21.08}\n', "line 1: missing lon"),
        (None, "ts,lat,lon,spraying\n1,121.08,106.52,1\n", "not a WGS84 coordinate"),
    ],
)
def test_bad_input_gives_a_message_and_exit_code_2(
    fields_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    *,
    fields_text: str | None,
    track_text: str,
    expected: str,
) -> None:
    if fields_text is not None:
        fields_file.write_text(fields_text, encoding="utf-8")
    track = tmp_path / ("t.jsonl" if track_text.startswith("{") else "t.csv")
    track.write_text(track_text, encoding="utf-8")
    assert main("--field", str(fields_file), "--track", str(track)) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert "Traceback" not in err


def test_an_unknown_field_id_or_missing_file_is_exit_code_2(
    fields_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    track = tmp_path / "t.csv"
    track.write_text("ts,lat,lon,spraying\n1,21.08,106.52,1\n", encoding="utf-8")
    assert main("--field", str(fields_file), "--track", str(track), "--field-id", "zz") == 2
    assert "no field 'zz'" in capsys.readouterr().err
    assert main("--field", str(fields_file), "--track", str(tmp_path / "none.csv")) == 2
    assert "cannot read" in capsys.readouterr().err
