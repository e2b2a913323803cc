"""Every flag has an AGRIDRONE_* environment equivalent; a given flag wins."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from agridrone.cli import build_parser, main
from agridrone.settings import (
    ConfigError,
    Settings,
    check_environment,
    known_environment,
    settings_from_args,
)
from ingest.cli import build_config

REPO = Path(__file__).resolve().parents[2]


def ingest_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["ingest", *argv])


def test_environment_supplies_what_the_flags_do_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGRIDRONE_STORE", "influx")
    monkeypatch.setenv("AGRIDRONE_INFLUX_DB", "dong_trieu")
    monkeypatch.setenv("AGRIDRONE_MQTT_URL", "mqtt://broker:1884")
    settings = settings_from_args(ingest_args())
    assert (settings.store, settings.influx_db, settings.mqtt_url) == (
        "influx",
        "dong_trieu",
        "mqtt://broker:1884",
    )


def test_a_flag_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGRIDRONE_INFLUX_DB", "from_env")
    assert settings_from_args(ingest_args("--influx-db", "from_flag")).influx_db == "from_flag"


def test_passwords_are_kept_secret_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGRIDRONE_INFLUX_PASSWORD", "s3cret")
    settings = settings_from_args(ingest_args())
    assert settings.influx_password is not None
    assert settings.influx_password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)


def test_every_ingest_flag_of_the_issue_exists() -> None:
    args = ingest_args(
        "--mqtt-url", "mqtt://h:1", "--store", "sqlite", "--influx-url", "http://i:8086",
        "--influx-db", "d", "--influx-username", "u", "--influx-password", "p",
        "--sqlite-path", "x.db", "--share-group", "g", "--metrics-port", "9100",
    )  # fmt: skip
    assert args.share_group == "g"
    assert args.metrics_port == 9100


def test_a_bad_value_is_a_clear_error_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AGRIDRONE_STORE", "postgres")
    assert main(["ingest"]) == 2
    err = capsys.readouterr().err
    assert "AGRIDRONE_STORE" in err
    assert "Traceback" not in err


def test_a_bad_broker_url_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", "--mqtt-url", "http://broker:1883"]) == 2
    assert "scheme must be mqtt://" in capsys.readouterr().err


def test_the_rejected_log_retention_comes_from_flags_or_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGRIDRONE_REJECTED_RETENTION_DAYS", "7")
    args = ingest_args("--rejected-max-rows", "5000")
    writer = build_config(args, settings_from_args(args)).writer
    assert (writer.rejected_days, writer.rejected_max_rows) == (7, 5000)
    defaults = ingest_args()
    monkeypatch.delenv("AGRIDRONE_REJECTED_RETENTION_DAYS")
    default_writer = build_config(defaults, settings_from_args(defaults)).writer
    assert (default_writer.rejected_days, default_writer.rejected_max_rows) == (30, 1_000_000)


def test_the_jump_speed_limit_comes_from_flags_or_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert build_config(ingest_args(), settings_from_args(ingest_args())).writer.max_speed_mps == 40
    monkeypatch.setenv("AGRIDRONE_MAX_SPEED_MPS", "25")
    args = ingest_args()
    assert build_config(args, settings_from_args(args)).writer.max_speed_mps == 25
    args = ingest_args("--max-speed-mps", "0")
    assert build_config(args, settings_from_args(args)).writer.max_speed_mps == 0


def test_a_retention_below_one_is_refused_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", "--rejected-retention-days", "0"]) == 2
    assert "AGRIDRONE_REJECTED_RETENTION_DAYS: Input should be greater than or equal to 1" in (
        capsys.readouterr().err
    )


# --- unknown variables and the data folder ----------------------------------------------


def test_a_misspelt_variable_is_refused_naming_the_nearest_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    misspelt = "AGRIDRONE_" + "METADTA_URL"  # spelt apart: the repository scan below
    monkeypatch.setenv(misspelt, "postgresql://db/agridrone")
    assert main(["keys", "list"]) == 2
    err = capsys.readouterr().err
    assert f"{misspelt} is not a setting (did you mean AGRIDRONE_METADATA_URL?)" in err
    assert "Traceback" not in err


def test_an_unknown_variable_without_a_near_name_is_refused_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGRIDRONE_" + "ZZZ", "1")
    with pytest.raises(ConfigError, match="no setting has a similar name"):
        check_environment()


def test_every_agridrone_variable_the_project_mentions_is_a_setting() -> None:
    known = set(known_environment())
    mentioned: dict[str, set[str]] = {}
    for path in _project_files():
        for name in re.findall(r"\bAGRIDRONE_[A-Z0-9_]*[A-Z0-9]\b", path.read_text("utf-8")):
            mentioned.setdefault(name, set()).add(str(path.relative_to(REPO)))
    assert mentioned  # the scan saw the settings table at least
    unknown = {name: sorted(where) for name, where in mentioned.items() if name not in known}
    assert unknown == {}


def _project_files() -> list[Path]:
    roots = [REPO / d for d in ("agridrone", "adapters", "api", "ingest", "fields", "flights")]
    roots += [REPO / d for d in ("reports", "storage", "simulators", "tests", "docs", "deploy")]
    roots += [REPO / d for d in ("bench", "scripts", ".ci")]
    files = [REPO / f for f in ("README.md", "Dockerfile", "docker-compose.yml", "Makefile")]
    for root in roots:
        if root.is_dir():
            files += [p for p in root.rglob("*") if p.suffix in _TEXT and p.is_file()]
    return [f for f in files if f.exists()]


_TEXT = {".py", ".md", ".yml", ".yaml", ".sh", ".toml", ".conf", ".env", ".txt", ".cfg", ""}


def test_every_command_finds_the_same_files_from_any_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AGRIDRONE_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    monkeypatch.chdir(tmp_path / "one")
    assert main(["keys", "create", "--role", "operator", "--subject", "ops"]) == 0
    monkeypatch.chdir(tmp_path / "two")
    capsys.readouterr()
    assert main(["keys", "list", "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [k["subject"] for k in listed] == ["ops"]
    assert (tmp_path / "data" / "agridrone.db").exists()
    assert not (tmp_path / "one" / "var").exists()


def test_the_paths_default_into_the_data_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AGRIDRONE_DATA_DIR", str(tmp_path))
    settings = settings_from_args(ingest_args())
    assert (settings.metadata_path, settings.sqlite_path, settings.broker_dir) == (
        tmp_path / "agridrone.db",
        tmp_path / "telemetry.db",
        tmp_path / "broker",
    )
    assert settings.metadata == str(tmp_path / "agridrone.db")


def test_the_default_data_folder_is_the_users_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AGRIDRONE_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert Settings().data_dir == tmp_path / "xdg" / "agridrone"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert Settings().data_dir == tmp_path / "home" / ".local" / "share" / "agridrone"


def test_a_relative_data_folder_is_made_absolute_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AGRIDRONE_DATA_DIR", "rel")
    assert Settings().metadata_path == tmp_path / "rel" / "agridrone.db"


def test_an_explicit_path_setting_wins_over_the_data_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AGRIDRONE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AGRIDRONE_SQLITE_PATH", str(tmp_path / "elsewhere.db"))
    settings = Settings()
    assert settings.sqlite_path == tmp_path / "elsewhere.db"
    assert settings.metadata_path == tmp_path / "data" / "agridrone.db"


def test_the_metadata_url_wins_over_the_metadata_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGRIDRONE_METADATA_PATH", "/data/agridrone.db")
    monkeypatch.setenv("AGRIDRONE_METADATA_URL", "postgresql://agridrone:pw@db/agridrone")
    assert Settings().metadata == "postgresql://agridrone:pw@db/agridrone"


def test_a_metadata_url_of_another_kind_is_a_clear_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["keys", "list", "--metadata-url", "mysql://u:secret@db/x"]) == 2
    err = capsys.readouterr().err
    assert "AGRIDRONE_METADATA_URL" in err
    assert "postgresql://" in err
    assert "secret" not in err


@pytest.mark.parametrize(
    "url",
    [
        "postgres:/agridrone:s3cret@db/agridrone",
        "postgresql//agridrone:s3cret@db/x",
        "postgresql:://agridrone:s3cret@db/x",
        "mysql://agridrone:s3c@ret@db/x",
    ],
)
def test_a_mistyped_metadata_url_is_refused_without_showing_its_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, url: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AGRIDRONE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AGRIDRONE_METADATA_URL", url)
    assert main(["keys", "list"]) == 2
    err = capsys.readouterr().err
    assert "AGRIDRONE_METADATA_URL" in err
    assert "must start with postgresql://, postgres:// or sqlite://" in err
    assert "s3c" not in err
    assert "***@db/" in err  # where it points stays visible
    assert "default factory" not in err  # only the setting that is wrong is named
    assert list(tmp_path.rglob("*s3c*")) == []


def test_a_plain_path_in_the_metadata_url_points_to_the_path_setting(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["keys", "list", "--metadata-url", str(tmp_path / "m.db")]) == 2
    assert "belongs in the metadata path setting" in capsys.readouterr().err
    assert not (tmp_path / "m.db").exists()


def test_the_mavproxy_and_dji_topics_come_from_flags_or_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    defaults = ingest_args()
    foreign = build_config(defaults, settings_from_args(defaults)).foreign
    assert foreign is not None
    assert foreign.subscriptions() == ["agri/mavlink/+/+/+", "thing/product/+/osd"]
    monkeypatch.setenv("AGRIDRONE_DJI_TOPIC", "")
    args = ingest_args("--mavproxy-prefix", "gcs/{coop}/{drone}", "--coop", "htx-a")
    foreign = build_config(args, settings_from_args(args)).foreign
    assert foreign is not None
    assert foreign.subscriptions() == ["gcs/htx-a/+/+"]
    off = ingest_args("--mavproxy-prefix", "")
    assert build_config(off, settings_from_args(off)).foreign is None
    assert main(["ingest", "--mavproxy-prefix", "agri/v1/{coop}/{drone}"]) == 2
    assert "lies in wire v1's agri/v1/ tree" in capsys.readouterr().err
