"""Every flag has an AGRIDRONE_* environment equivalent; a given flag wins."""

from __future__ import annotations

import argparse

import pytest

from agridrone.cli import build_parser, main
from agridrone.settings import settings_from_args
from ingest.cli import build_config


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


def test_a_retention_below_one_is_refused_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", "--rejected-retention-days", "0"]) == 2
    assert "AGRIDRONE_REJECTED_RETENTION_DAYS: Input should be greater than or equal to 1" in (
        capsys.readouterr().err
    )
