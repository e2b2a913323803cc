"""Cooperatives in the metadata database and ``agridrone coops``; the fields version that
tells the API's field cache to reload; reading a report's flights from stored summaries."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from agridrone.cli import main
from fields.registry import parse_fields
from fields.stored import to_stored
from fields.synthetic import collection, feature, rectangle
from reports.usage import FlightUsage, UsageInputError
from storage.metadata import MetadataDB


@pytest.fixture
def metadata(tmp_path: Path) -> Iterator[MetadataDB]:
    db = MetadataDB(tmp_path / "agridrone.db")
    yield db
    db.close()


def one_field(fid: str = "f-1") -> Any:
    doc = collection(feature(fid, rectangle(40, 25), name="Ruộng 1", owner="nd-1", coop="htx-a"))
    return parse_fields(doc, source="test").fields[0]


def test_a_new_coop_has_no_tariff_until_one_is_set(metadata: MetadataDB) -> None:
    made = metadata.set_coop("htx-a", name="HTX A")
    assert made.tariff_vnd_per_ha is None
    metadata.set_coop("htx-a", tariff_vnd_per_ha=250_000)
    got = metadata.coop("htx-a")
    assert got is not None
    assert (got.name, got.tariff_vnd_per_ha) == ("HTX A", 250_000)
    assert metadata.coop("htx-b") is None


def test_member_names_belong_to_their_coop(metadata: MetadataDB) -> None:
    metadata.set_members("htx-a", {"nd-1": "Bà Thu"})
    metadata.set_members("htx-b", {"nd-1": "Ông Hải"})
    assert metadata.member_names("htx-a") == {"nd-1": "Bà Thu"}


def test_every_change_of_fields_moves_the_version_even_within_a_millisecond(
    metadata: MetadataDB,
) -> None:
    (row,) = to_stored([one_field()])
    seen = {metadata.fields_version()}
    for i in range(5):
        metadata.save_fields([replace(row, feature=row.feature.replace("Ruộng 1", f"Ruộng {i}"))])
        seen.add(metadata.fields_version())
    assert len(seen) == 6


def test_the_cli_sets_and_lists_a_tariff(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--metadata-path", str(tmp_path / "m.db")]
    assert (
        main(["coops", "set", "htx-a", "--name", "HTX A", "--tariff-vnd-per-ha", "300000", *db])
        == 0
    )
    assert main(["coops", "list", "--json", *db]) == 0
    assert '"tariff_vnd_per_ha": 300000' in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["set", "htx a"], "does not match"),
        (["set", "htx-a", "--tariff-vnd-per-ha", "-1"], "is not in 0.."),
        (["member", "htx-a", "nd 1", "--name", "X"], "member id"),
    ],
)
def test_the_cli_refuses_bad_input_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], reason: str
) -> None:
    assert main(["coops", *args, "--metadata-path", str(tmp_path / "m.db")]) == 2
    assert reason in capsys.readouterr().err


def summary_doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": "htx-a.d1.1000",
        "coop": "htx-a",
        "drone": "d1",
        "start_ms": 1000,
        "end_ms": 61_000,
        "duration_s": 60.0,
        "applied_l": 2.5,
        "fields": [{"field_id": "f-1", "covered_ha": 0.05, "applied_l": 2.0, "coverage_pct": 50.0}],
    }
    return doc | changes


def test_a_stored_summary_becomes_the_reports_flight_with_the_registrys_names() -> None:
    f = one_field()
    got = FlightUsage.from_document(summary_doc(), {"f-1": f})
    assert (got.flight_id, got.drone, got.litres, got.duration_s) == (
        "htx-a.d1.1000",
        "d1",
        2.5,
        60.0,
    )
    (share,) = got.fields
    assert (share.owner, share.field_name, share.covered_ha) == ("nd-1", f.name, 0.05)


def test_a_summary_over_a_deleted_field_names_flight_and_field() -> None:
    with pytest.raises(UsageInputError, match=r"flight htx-a\.d1\.1000: field f-1 is not in"):
        FlightUsage.from_document(summary_doc(), {})


def test_an_unreadable_summary_says_to_rebuild() -> None:
    with pytest.raises(UsageInputError, match=r"unreadable.*flights rebuild"):
        FlightUsage.from_document(summary_doc(duration_s="long"), {"f-1": one_field()})
