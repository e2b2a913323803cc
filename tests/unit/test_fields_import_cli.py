"""``agridrone fields import FILE --coop C`` against a real SQLite metadata file: what it adds,
updates, leaves alone and refuses (feature by feature, with the API's rules), and how it
fails on a file it cannot read."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agridrone.cli import main
from fields import gis
from fields.import_cli import import_file
from fields.registry import parse_fields
from fields.stored import to_stored
from fields.synthetic import collection, feature, rectangle
from storage.metadata import MetadataDB
from tests.gis_readers import gdal_write

# Plots 100 m x 50 m side by side along x (they share only boundaries).
A = rectangle(100, 50, 0, 0)
B = rectangle(100, 50, 100, 0)
C = rectangle(100, 50, 200, 0)


def plot(fid: str, geometry: Any, **props: Any) -> dict[str, Any]:
    return feature(fid, geometry, owner="o1", **props)


def write(path: Path, *features: dict[str, Any]) -> Path:
    path.write_text(json.dumps(collection(*features)))
    return path


Run = Callable[..., tuple[int, dict[str, Any]]]


@pytest.fixture
def run_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    """Runs the command in-process with --json: (exit code, the summary)."""

    def run(source: Path, *extra: str, coop: str = "c1") -> tuple[int, dict[str, Any]]:
        db = str(tmp_path / "meta.db")
        argv = ["fields", "import", str(source), "--coop", coop, "--metadata-path", db]
        code = main([*argv, "--quiet", "--json", *extra])
        summary: dict[str, Any] = json.loads(capsys.readouterr().out)
        return code, summary

    return run


def register(tmp_path: Path, *features: dict[str, Any]) -> None:
    """Fields registered beforehand (as the API stores them)."""
    registry = parse_fields(collection(*features))
    db = MetadataDB(tmp_path / "meta.db")
    db.save_fields(to_stored([*registry.fields, *registry.no_spray]))
    db.close()


def current(tmp_path: Path) -> dict[str, str]:
    """Cooperative of every current field by id."""
    db = MetadataDB(tmp_path / "meta.db")
    try:
        return {f.id: f.coop for f in db.stored_fields()}
    finally:
        db.close()


def refused(summary: dict[str, Any]) -> dict[int, str]:
    return {r["index"]: " | ".join(r["reasons"]) for r in summary["refused"]}


def test_a_new_file_is_added_whole_and_exits_0(tmp_path: Path, run_import: Run) -> None:
    source = write(tmp_path / "f.geojson", plot("p1", A), plot("p2", B))
    code, summary = run_import(source)
    assert code == 0
    assert (summary["added"], summary["updated"], summary["unchanged"]) == (2, 0, 0)
    assert current(tmp_path) == {"p1": "c1", "p2": "c1"}


def test_importing_the_same_file_again_changes_nothing(tmp_path: Path, run_import: Run) -> None:
    source = write(tmp_path / "f.geojson", plot("p1", A), plot("p2", B))
    run_import(source)
    db = MetadataDB(tmp_path / "meta.db")
    before = db.fields_version()
    code, summary = run_import(source)
    assert code == 0
    assert (summary["added"], summary["updated"], summary["unchanged"]) == (0, 0, 2)
    assert db.fields_version() == before
    db.close()


def test_a_changed_outline_is_a_new_version_and_a_new_id_is_added(
    tmp_path: Path, run_import: Run
) -> None:
    run_import(write(tmp_path / "a.geojson", plot("p1", A), plot("p2", B)))
    source = write(
        tmp_path / "b.geojson", plot("p1", A), plot("p2", rectangle(90, 50, 100, 0)), plot("p3", C)
    )
    code, summary = run_import(source)
    assert code == 0
    assert (summary["added"], summary["updated"], summary["unchanged"]) == (1, 1, 1)
    db = MetadataDB(tmp_path / "meta.db")
    assert [v.seq for v in db.field_versions("p2")] == [1, 2]
    db.close()


def test_an_id_of_another_cooperative_is_refused_and_the_rest_stored(
    tmp_path: Path, run_import: Run
) -> None:
    register(tmp_path, plot("x1", C, coop="c2"))
    source = write(tmp_path / "f.geojson", plot("p1", A), plot("x1", rectangle(50, 50, 0, 100)))
    code, summary = run_import(source)
    assert code == 1
    assert refused(summary) == {
        1: "feature 1 (x1): the id is already taken (by another cooperative or a commune-wide zone)"
    }
    assert current(tmp_path) == {"p1": "c1", "x1": "c2"}


class RegistersWhilePlanning:
    """The metadata database, where another cooperative registers fields through the API
    (``save_fields`` as that cooperative) right after the import read the history."""

    def __init__(self, db: MetadataDB, coop: str, *features: dict[str, Any]) -> None:
        self.db, self.coop, self.features = db, coop, features

    def field_versions(self) -> Any:
        snapshot = self.db.field_versions()
        registry = parse_fields(collection(*self.features))
        self.db.save_fields(to_stored(registry.fields), by=f"api:{self.coop}", coop=self.coop)
        return snapshot

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


def test_an_id_another_cooperative_registers_during_the_import_is_refused_and_kept_its(
    tmp_path: Path,
) -> None:
    source = write(tmp_path / "f.geojson", plot("p1", A), plot("x1", B))
    db = MetadataDB(tmp_path / "meta.db")
    racing = RegistersWhilePlanning(db, "c2", plot("x1", C, coop="c2"))
    summary = import_file(source, racing, coop="c1", progress=False)
    assert summary.refused == {
        1: [
            (
                "feature 1 (x1): changed during import (field x1 now belongs to another"
                " cooperative or is a commune-wide zone); import again"
            )
        ]
    }
    assert (summary.added, summary.updated) == (1, 0)
    (x1,) = db.field_versions("x1")
    assert (x1.field.coop, x1.valid_to_ms, x1.recorded_by) == ("c2", None, "api:c2")
    assert {f.id: f.coop for f in db.stored_fields()} == {"p1": "c1", "x1": "c2"}
    db.close()


def test_a_field_the_cooperative_changes_during_the_import_is_refused(tmp_path: Path) -> None:
    register(tmp_path, plot("p1", A, coop="c1"))
    source = write(tmp_path / "f.geojson", plot("p1", rectangle(90, 50, 0, 0)))
    db = MetadataDB(tmp_path / "meta.db")
    racing = RegistersWhilePlanning(db, "c1", plot("p1", rectangle(80, 50, 0, 0), coop="c1"))
    summary = import_file(source, racing, coop="c1", progress=False)
    assert summary.refused == {
        0: ["feature 0 (p1): changed during import (field p1 was changed); import again"]
    }
    assert [v.recorded_by for v in db.field_versions("p1")] == ["direct", "api:c1"]
    db.close()


def test_a_field_over_another_cooperatives_field_is_refused_naming_the_rounded_area(
    tmp_path: Path, run_import: Run
) -> None:
    register(tmp_path, plot("theirs", A, coop="c2"))
    source = write(tmp_path / "f.geojson", plot("mine", rectangle(100, 50, 50, 0)), plot("p3", C))
    code, summary = run_import(source)
    assert code == 1
    assert refused(summary) == {
        0: "feature 0 (mine): overlaps a field of another cooperative by about 2500 m² "
        "(50 % of mine)"
    }
    assert set(current(tmp_path)) == {"theirs", "p3"}


def test_force_registers_the_overlapping_field_as_an_operator_may(
    tmp_path: Path, run_import: Run
) -> None:
    register(tmp_path, plot("theirs", A, coop="c2"))
    source = write(tmp_path / "f.geojson", plot("mine", rectangle(100, 50, 50, 0)))
    code, summary = run_import(source, "--force")
    assert code == 0
    assert summary["added"] == 1
    assert current(tmp_path) == {"theirs": "c2", "mine": "c1"}


def test_a_sliver_along_the_shared_boundary_is_tolerated(tmp_path: Path, run_import: Run) -> None:
    register(tmp_path, plot("theirs", A, coop="c2"))
    source = write(tmp_path / "f.geojson", plot("mine", rectangle(100, 50, 99.9, 0)))
    code, _ = run_import(source)
    assert code == 0


def test_a_bad_feature_is_refused_with_the_registrys_reason_and_good_ones_are_stored(
    tmp_path: Path, run_import: Run
) -> None:
    broken = {"type": "Feature", "properties": {"id": "bad"}, "geometry": None}
    source = write(tmp_path / "f.geojson", plot("p1", A), broken, plot("p2", B))
    code, summary = run_import(source)
    assert code == 1
    assert summary["added"] == 2
    assert refused(summary) == {1: "feature 1 (bad): no geometry"}
    assert set(current(tmp_path)) == {"p1", "p2"}


def test_a_feature_of_another_cooperative_in_the_file_is_refused(
    tmp_path: Path, run_import: Run
) -> None:
    source = write(tmp_path / "f.geojson", plot("p1", A), plot("p2", B, coop="c2"))
    code, summary = run_import(source)
    assert code == 1
    assert refused(summary) == {1: "feature 1 (p2): its coop 'c2' is not the import's ('c1')"}


def test_a_feature_without_coop_is_the_imports_cooperatives(
    tmp_path: Path, run_import: Run
) -> None:
    source = write(tmp_path / "f.geojson", plot("p1", A))
    run_import(source, coop="c7")
    assert current(tmp_path) == {"p1": "c7"}


def test_a_repeated_id_is_refused_after_its_first_use(tmp_path: Path, run_import: Run) -> None:
    source = write(tmp_path / "f.geojson", plot("p1", A), plot("p1", B))
    code, summary = run_import(source)
    assert code == 1
    assert refused(summary) == {1: "feature 1 (p1): duplicate id, already used by feature 0"}
    assert summary["added"] == 1


def test_a_commune_wide_zone_is_registered_as_an_operator_may(
    tmp_path: Path, run_import: Run
) -> None:
    zone = feature("school", rectangle(30, 30, 500, 0), kind="no_spray", scope="commune")
    code, _ = run_import(write(tmp_path / "f.geojson", zone))
    assert code == 0
    assert current(tmp_path) == {"school": ""}


def test_an_unreadable_file_stores_nothing_and_names_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = json.dumps(plot("p1", A))
    source = tmp_path / "f.geojson"
    source.write_text('{"type": "FeatureCollection", "features": [\n' + good + ",\n{oops}\n]}")
    db = str(tmp_path / "meta.db")
    code = main(["fields", "import", str(source), "--coop", "c1", "--metadata-path", db])
    err = capsys.readouterr().err
    assert code == 2
    assert "line 3" in err
    assert "nothing was stored" in err
    assert current(tmp_path) == {}


def test_a_number_of_thousands_of_digits_is_unreadable_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "f.geojson"
    source.write_text(json.dumps(collection(plot("p1", A))).replace('"p1"', "1" + "0" * 5_000))
    db = str(tmp_path / "meta.db")
    code = main(["fields", "import", str(source), "--coop", "c1", "--metadata-path", db])
    assert code == 2
    assert "not valid JSON: a number with more than" in capsys.readouterr().err
    assert current(tmp_path) == {}


def test_a_missing_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "meta.db")
    code = main(
        ["fields", "import", str(tmp_path / "no.geojson"), "--coop", "c1", "--metadata-path", db]
    )
    assert code == 2
    assert "cannot read the file" in capsys.readouterr().err


def test_progress_goes_to_stderr_and_the_summary_to_stdout(tmp_path: Path) -> None:
    source = write(tmp_path / "f.geojson", plot("p1", A), plot("p2", B))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "agridrone.cli",
            "fields",
            "import",
            str(source),
            "--coop",
            "c1",
            "--metadata-path",
            str(tmp_path / "meta.db"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "reading" in done.stderr
    assert "storing" in done.stderr
    assert done.stdout == (
        f"{source}: 2 features: 2 added, 0 updated, 0 unchanged, 0 refused"
        + done.stdout[done.stdout.index(" refused") + len(" refused") :]
    )
    assert "reading" not in done.stdout


# --- KML, Shapefile and ISOXML files (fields.gis) -------------------------------------------


def _gis_file(path: Path, fmt: gis.ExportFormat, *features: dict[str, Any]) -> Path:
    path.write_bytes(gis.export(collection(*features), fmt, name="plots").content)
    return path


@pytest.mark.parametrize(("fmt", "name"), [("kml", "f.kml"), ("shp", "f.zip"), ("isoxml", "t.zip")])
def test_kml_shapefile_and_isoxml_files_are_imported_with_the_same_rules(
    tmp_path: Path, run_import: Run, fmt: gis.ExportFormat, name: str
) -> None:
    register(tmp_path, feature("taken", C, owner="o9", coop="c2"))
    source = _gis_file(tmp_path / name, fmt, plot("p1", A, name="Ruộng Gò"), plot("taken", B))
    code, summary = run_import(source)
    assert code == 1
    assert (summary["features"], summary["added"]) == (2, 1)
    assert "the id is already taken" in refused(summary)[1]
    assert current(tmp_path) == {"p1": "c1", "taken": "c2"}


def test_a_shp_beside_its_dbf_and_prj_is_imported(tmp_path: Path, run_import: Run) -> None:
    archive = _gis_file(tmp_path / "plots.zip", "shp", plot("p1", A), plot("p2", B))
    folder = tmp_path / "layer"
    with zipfile.ZipFile(archive) as z:
        z.extractall(folder)
    code, summary = run_import(folder / "plots.shp")
    assert (code, summary["added"]) == (0, 2)


def test_a_shapefile_not_in_wgs84_is_unreadable_and_stores_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gdal_write(tmp_path, "utm", "ESRI Shapefile", [({"id": "u1"}, A)], "EPSG:32648")
    db = str(tmp_path / "meta.db")
    code = main(
        ["fields", "import", str(tmp_path / "utm.shp"), "--coop", "c1", "--metadata-path", db]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "'WGS 84 / UTM zone 48N' (EPSG:32648), not WGS84" in err
    assert "nothing was stored" in err
    assert current(tmp_path) == {}
