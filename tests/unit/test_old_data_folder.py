"""An installation upgraded from the ``./var`` data folder: a command that opens the metadata
database refuses to start on an empty one in the per-user folder while the working directory
holds the old ``var/agridrone.db`` and no setting chose; any setting decides."""

from __future__ import annotations

from pathlib import Path

import pytest

from agridrone.cli import main


@pytest.fixture
def upgraded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A working directory with an earlier version's ``var/agridrone.db`` holding one key,
    and no data-folder setting; returns the new default data folder."""
    install = tmp_path / "install"
    install.mkdir()
    monkeypatch.chdir(install)
    monkeypatch.setenv("AGRIDRONE_DATA_DIR", "./var")
    assert (
        main(["keys", "create", "--role", "operator", "--subject", "ops", "--name", "old-key"]) == 0
    )
    assert (install / "var" / "agridrone.db").is_file()
    monkeypatch.delenv("AGRIDRONE_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "agridrone"


def test_a_command_refuses_naming_the_old_file_and_how_to_keep_it(
    upgraded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["keys", "list"]) == 2
    err = capsys.readouterr().err
    assert str(Path("var", "agridrone.db").absolute()) in err
    assert f"AGRIDRONE_DATA_DIR={Path('var').absolute()}" in err
    assert not upgraded.exists()  # no empty database was made in the new folder


def test_the_data_folder_setting_keeps_using_the_old_database(
    upgraded: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AGRIDRONE_DATA_DIR", "./var")
    capsys.readouterr()
    assert main(["keys", "list"]) == 0
    assert "old-key" in capsys.readouterr().out


def test_choosing_the_new_folder_starts_afresh_there(
    upgraded: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AGRIDRONE_DATA_DIR", str(upgraded))
    capsys.readouterr()
    assert main(["keys", "list"]) == 0
    assert "old-key" not in capsys.readouterr().out
    assert (upgraded / "agridrone.db").is_file()


def test_a_metadata_path_flag_decides_too(
    upgraded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "list", "--metadata-path", str(tmp_path / "other.db")]) == 0


def test_without_an_old_database_the_new_default_folder_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGRIDRONE_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert main(["keys", "list"]) == 0
    assert (tmp_path / "xdg" / "agridrone" / "agridrone.db").is_file()
