"""``agridrone products add|list``: the API's rules from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agridrone.cli import main as run_cli
from storage.metadata import MetadataDB

VALIDAN = [
    "--id",
    "validan",
    "--trade-name",
    "Validan 5SL",
    "--active-ingredient",
    "Validamycin",
    "--concentration",
    "5% SL",
    "--registration-no",
    "VN-1234/BVTV",
    "--target",
    "Bệnh khô vằn",
    "--dose-l-per-ha",
    "16",
    "--phi-days",
    "7",
]


def test_add_then_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    where = ["--metadata-path", str(tmp_path / "m.db")]
    assert run_cli(["products", "add", "--coop", "htx-a", *VALIDAN, *where]) == 0
    assert run_cli(["products", "add", "--coop", "htx-b", *VALIDAN, *where]) == 0  # per coop
    assert run_cli(["products", "add", "--coop", "htx-a", *VALIDAN, *where]) == 2  # taken
    assert "already has a product 'validan'" in capsys.readouterr().err
    assert run_cli(["products", "list", "--coop", "htx-a", "--json", *where]) == 0
    [line] = capsys.readouterr().out.splitlines()
    doc = json.loads(line)
    assert (doc["coop"], doc["id"], doc["target"], doc["phi_days"]) == (
        "htx-a",
        "validan",
        "Bệnh khô vằn",
        7,
    )
    assert run_cli(["products", "list", *where]) == 0
    out = capsys.readouterr().out
    assert out.count("Validan 5SL") == 2
    assert "PHI 7 days" in out


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (("--dose-l-per-ha", "600"), "--dose-l-per-ha"),
        (("--dose-l-per-ha", "0"), "--dose-l-per-ha"),
        (("--phi-days", "-1"), "--phi-days"),
        (("--trade-name", ""), "--trade-name"),
        (("--id", "bad id"), "--id"),
    ],
)
def test_bad_input_is_refused_naming_the_flag_and_nothing_is_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: tuple[str, str], words: str
) -> None:
    path = tmp_path / "m.db"
    args = list(VALIDAN)
    args[args.index(change[0]) + 1] = change[1]
    assert run_cli(["products", "add", "--coop", "htx-a", *args, "--metadata-path", str(path)]) == 2
    assert words in capsys.readouterr().err
    db = MetadataDB(path)
    try:
        assert db.products() == []
    finally:
        db.close()


def test_a_product_without_a_phi_is_refused(tmp_path: Path) -> None:
    args = VALIDAN[: VALIDAN.index("--phi-days")]
    with pytest.raises(SystemExit) as exc:
        run_cli(["products", "add", "--coop", "htx-a", *args, "--metadata-path", str(tmp_path)])
    assert exc.value.code == 2
