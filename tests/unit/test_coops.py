"""Cooperatives in the metadata database and ``agridrone coops``; the fields version that
tells the API's field cache to reload; reading a report's flights from stored summaries."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from agridrone.cli import main
from fields.registry import parse_fields
from fields.stored import to_stored
from fields.synthetic import collection, feature, rectangle
from reports.usage import FlightUsage, UsageInputError
from storage.metadata import BankAccount, CoopRecord, MetadataDB


def one_field(fid: str = "f-1") -> Any:
    doc = collection(feature(fid, rectangle(40, 25), name="Ruộng 1", owner="nd-1", coop="htx-a"))
    return parse_fields(doc, source="test").fields[0]


def prices(record: CoopRecord | None) -> list[tuple[int, str, date | None]]:
    assert record is not None
    return [(t.vnd, t.unit, t.effective_from) for t in record.tariffs]


def test_a_new_coop_has_no_tariff_until_one_is_set(metadata: MetadataDB) -> None:
    made = metadata.set_coop("htx-a", name="HTX A")
    assert made.tariffs == ()
    metadata.set_coop("htx-a", tariff_vnd_per_ha=250_000)
    got = metadata.coop("htx-a")
    assert got is not None
    assert got.name == "HTX A"
    assert prices(got) == [(250_000, "ha", None)]
    assert metadata.coop("htx-b") is None


def test_every_tariff_set_is_kept_in_the_order_it_was_set(metadata: MetadataDB) -> None:
    metadata.set_coop("htx-a", tariff_vnd_per_ha=250_000)
    metadata.add_tariff("htx-a", 9_000, unit="sao", effective_from=date(2026, 12, 1))
    metadata.add_tariff("htx-a", 8_500, unit="sao", effective_from=date(2026, 12, 1))
    assert prices(metadata.coop("htx-a")) == [
        (250_000, "ha", None),
        (9_000, "sao", date(2026, 12, 1)),
        (8_500, "sao", date(2026, 12, 1)),
    ]
    assert prices(metadata.coops()[0]) == prices(metadata.coop("htx-a"))


def test_adding_a_tariff_creates_the_coop_and_keeps_its_name(metadata: MetadataDB) -> None:
    assert metadata.add_tariff("htx-new", 1_000).name == "htx-new"
    metadata.set_coop("htx-new", name="HTX Mới")
    assert metadata.add_tariff("htx-new", 2_000, effective_from=date(2027, 1, 1)).name == "HTX Mới"


OLD_COOPS_SCHEMA = """
CREATE TABLE coops (
    id                TEXT    PRIMARY KEY,
    name              TEXT    NOT NULL,
    tariff_vnd_per_ha INTEGER CHECK (tariff_vnd_per_ha >= 0),
    updated_ms        INTEGER NOT NULL
);
INSERT INTO coops VALUES ('htx-a', 'HTX A', 300000, 1764300000000);
INSERT INTO coops VALUES ('htx-b', 'HTX B', NULL, 1764300000001);
"""


def test_a_database_with_one_tariff_per_coop_is_migrated_to_the_history(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_COOPS_SCHEMA)
    conn.close()
    for _ in range(2):  # the second opening finds it migrated and changes nothing
        db = MetadataDB(path)
        a, b = db.coops()
        assert (a.name, b.name) == ("HTX A", "HTX B")
        assert prices(a) == [(300_000, "ha", None)]
        assert a.tariffs[0].set_ms == 1764300000000
        assert b.tariffs == ()
        db.close()
    with sqlite3.connect(path) as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(coops)")]
    conn.close()
    bank = ["bank_bin", "bank_account", "bank_account_name"]  # step 3
    assert columns == ["id", "name", "updated_ms", *bank]


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


def coops_cli(tmp_path: Path, *args: str) -> int:
    return main(["coops", *args, "--metadata-path", str(tmp_path / "m.db")])


def listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert coops_cli(tmp_path, "list", "--json") == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_the_cli_sets_a_first_tariff_from_the_beginning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        coops_cli(tmp_path, "set", "htx-a", "--name", "HTX A", "--tariff-vnd-per-ha", "300000") == 0
    )
    assert "300000 VND/ha from the beginning" in capsys.readouterr().err
    [coop] = listed(tmp_path, capsys)
    assert (coop["id"], coop["name"]) == ("htx-a", "HTX A")
    assert [(t["from"], t["vnd"], t["unit"], t["superseded"]) for t in coop["tariffs"]] == [
        (None, 300_000, "ha", False)
    ]


def test_the_cli_keeps_the_history_of_tariffs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert coops_cli(tmp_path, "set", "htx-a", "--tariff-vnd-per-ha", "300000") == 0
    assert (
        coops_cli(tmp_path, "set", "htx-a", "--tariff-vnd-per-sao", "9000", "--from", "2099-12-01")
        == 0
    )
    assert (
        coops_cli(tmp_path, "set", "htx-a", "--tariff-vnd-per-sao", "8500", "--from", "2099-12-01")
        == 0
    )
    [coop] = listed(tmp_path, capsys)
    assert [(t["from"], t["vnd"], t["unit"], t["superseded"]) for t in coop["tariffs"]] == [
        (None, 300_000, "ha", False),
        ("2099-12-01", 9_000, "sao", True),
        ("2099-12-01", 8_500, "sao", False),
    ]
    assert coops_cli(tmp_path, "list") == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0] == "htx-a  htx-a"
    assert text[1].split()[:5] == ["300000", "VND/ha", "from", "the", "beginning"]
    assert text[2].split()[:4] == ["9000", "VND/sào", "from", "2099-12-01"]
    assert text[2].endswith("(superseded by a later one from the same day)")
    assert text[3].split()[:4] == ["8500", "VND/sào", "from", "2099-12-01"]


def test_a_change_of_price_must_say_from_which_day(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert coops_cli(tmp_path, "set", "htx-a", "--tariff-vnd-per-ha", "300000") == 0
    assert coops_cli(tmp_path, "set", "htx-a", "--tariff-vnd-per-ha", "350000") == 2
    err = capsys.readouterr().err
    assert "already has a tariff (300000 VND/ha)" in err
    assert "--from YYYY-MM-DD" in err
    assert len(listed(tmp_path, capsys)[0]["tariffs"]) == 1


def test_a_price_from_a_past_day_is_accepted_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        coops_cli(tmp_path, "set", "htx-a", "--tariff-vnd-per-ha", "1", "--from", "2020-01-01") == 0
    )
    assert "note: 2020-01-01 is not in the future" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["set", "htx a"], "does not match"),
        (["set", "htx-a", "--tariff-vnd-per-ha", "-1"], "tariff -1 VND/ha is not in 0.."),
        (["set", "htx-a", "--tariff-vnd-per-sao", "3600001"], "VND/sào is not in 0..3,600,000"),
        (["set", "htx-a", "--from", "2026-12-01"], "--from needs a price"),
        (["set", "htx-a", "--tariff-vnd-per-ha", "1", "--from", "2026-13-01"], "not a date"),
        (["set", "htx-a", "--tariff-vnd-per-ha", "1", "--from", "1/12/2026"], "not a date"),
        (["member", "htx-a", "nd 1", "--name", "X"], "member id"),
    ],
)
def test_the_cli_refuses_bad_input_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], reason: str
) -> None:
    assert coops_cli(tmp_path, *args) == 2
    assert reason in capsys.readouterr().err
    assert not (tmp_path / "m.db").exists() or listed(tmp_path, capsys) == []


def test_a_price_per_ha_and_per_sao_at_once_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        coops_cli(tmp_path, "set", "htx-a", "--tariff-vnd-per-ha", "1", "--tariff-vnd-per-sao", "1")
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


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


def test_a_bank_account_is_kept_and_replaced(metadata: MetadataDB) -> None:
    metadata.set_coop("htx-a", name="HTX A", tariff_vnd_per_ha=250_000)
    assert metadata.coop("htx-a") == replace(metadata.coops()[0], bank=None)
    metadata.set_bank("htx-a", BankAccount("970405", "1234567890", "HTX A"))
    metadata.set_bank("htx-a", BankAccount("970436", "0071000123456", "HTX A MOI"))
    got = metadata.coop("htx-a")
    assert got is not None
    assert got.bank == BankAccount("970436", "0071000123456", "HTX A MOI")
    assert (got.name, prices(got)) == ("HTX A", [(250_000, "ha", None)])
    assert metadata.coops()[0].bank == got.bank


def test_setting_a_bank_account_creates_the_coop(metadata: MetadataDB) -> None:
    made = metadata.set_bank("htx-b", BankAccount("970405", "12", "HTX B"))
    assert (made.id, made.name, made.tariffs) == ("htx-b", "htx-b", ())


def test_the_cli_sets_the_bank_account_with_the_name_as_banks_show_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert coops_cli(tmp_path, "set", "htx-a", "--tariff-vnd-per-ha", "300000") == 0
    args = ["--bank-bin", "970405", "--bank-account", "1500201234567"]
    assert coops_cli(tmp_path, "set", "htx-a", *args, "--account-name", "HTX Hồng Phong") == 0
    assert "bank 970405, account 1500201234567, HTX HONG PHONG" in capsys.readouterr().err
    [coop] = listed(tmp_path, capsys)
    assert coop["bank"] == {
        "bin": "970405",
        "account": "1500201234567",
        "account_name": "HTX HONG PHONG",
    }
    assert len(coop["tariffs"]) == 1
    assert coops_cli(tmp_path, "list") == 0
    assert "  bank 970405, account 1500201234567, HTX HONG PHONG" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--bank-bin", "970405", "--bank-account", "123"], "together"),
        (["--bank-bin", "97045", "--bank-account", "123", "--account-name", "A"], "6-digit"),
        (["--bank-bin", "970405", "--bank-account", "12-3", "--account-name", "A"], "1 to 19"),
        (["--bank-bin", "970405", "--bank-account", "123", "--account-name", "HTX <A>"], "name"),
    ],
)
def test_the_cli_refuses_a_bad_bank_account_and_stores_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], reason: str
) -> None:
    assert coops_cli(tmp_path, "set", "htx-a", *args) == 2
    assert reason in capsys.readouterr().err
    assert not (tmp_path / "m.db").exists() or listed(tmp_path, capsys) == []


def test_a_refused_tariff_leaves_the_bank_account_unset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert coops_cli(tmp_path, "set", "htx-a", "--tariff-vnd-per-ha", "300000") == 0
    bank = ["--bank-bin", "970405", "--bank-account", "123", "--account-name", "A"]
    assert coops_cli(tmp_path, "set", "htx-a", "--tariff-vnd-per-ha", "1", *bank) == 2
    assert listed(tmp_path, capsys)[0]["bank"] is None
