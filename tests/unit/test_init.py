"""``agridrone init``: creates what a first run needs, keeps what exists, refuses a partial set."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from agridrone.cli import main
from agridrone.init import Layout, files_action
from ingest.broker_acl import HEALTH_USER, parse_password_file, verify_mosquitto_hash
from storage.drones import DroneRecord
from storage.keys import key_matches, parse_key_id
from storage.metadata import MetadataDB


def init(tmp_path: Path, *extra: str) -> int:
    return main(
        [
            "init",
            *("--metadata-path", str(tmp_path / "var" / "agridrone.db")),
            *("--broker-dir", str(tmp_path / "broker")),
            *("--env-dir", str(tmp_path / "secrets")),
            *extra,
        ]
    )


def env_of(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def health_password(path: Path) -> str:
    options = [line.split(" ", 1) for line in path.read_text().splitlines() if line[:1] == "-"]
    assert options[0] == ["-u", HEALTH_USER]
    assert options[1][0] == "-P"
    return options[1][1]


def snapshot(tmp_path: Path) -> dict[str, bytes]:
    files = [*(tmp_path / "broker").iterdir(), *(tmp_path / "secrets").iterdir()]
    return {str(f): f.read_bytes() for f in files}


def metadata(tmp_path: Path) -> MetadataDB:
    return MetadataDB(tmp_path / "var" / "agridrone.db")


# --- deciding ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("present", "missing", "force", "action"),
    [
        ([], ["a", "b"], False, "create"),
        (["a", "b"], [], False, "keep"),
        (["a"], ["b"], False, "conflict"),
        (["a"], ["b"], True, "create"),
        (["a", "b"], [], True, "create"),
    ],
)
def test_files_are_created_kept_or_refused(
    present: list[str], missing: list[str], force: bool, action: str
) -> None:
    assert (
        files_action([Path(p) for p in present], [Path(m) for m in missing], force=force) == action
    )


def test_the_layout_lists_one_env_file_per_ingest_user(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "b", tmp_path / "s", ("w1", "w2"))
    assert [f.name for f in layout.files()] == [
        "w1.env",
        "w2.env",
        "mosquitto_sub",
        "passwd",
        "acl",
    ]


# --- a first run -------------------------------------------------------------------------------


def test_a_first_run_prints_only_a_working_operator_key_on_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert init(tmp_path) == 0
    out = capsys.readouterr().out
    key = out.strip()
    key_id = parse_key_id(key)
    assert key_id is not None
    assert out == key + "\n"
    db = metadata(tmp_path)
    record = db.api_key(key_id)
    db.close()
    assert record is not None
    assert (record.role, record.subject) == ("operator", "ops")
    assert key_matches(key, record)


def test_a_first_run_writes_the_ingest_login_that_the_password_file_accepts(
    tmp_path: Path,
) -> None:
    assert init(tmp_path) == 0
    env = env_of(tmp_path / "secrets" / "agridrone-ingest.env")
    users = parse_password_file((tmp_path / "broker" / "passwd").read_text())
    assert env["AGRIDRONE_MQTT_USERNAME"] == "agridrone-ingest"
    assert verify_mosquitto_hash(env["AGRIDRONE_MQTT_PASSWORD"], users["agridrone-ingest"])
    assert len(env["AGRIDRONE_MQTT_PASSWORD"]) == 32


def test_a_first_run_writes_the_healthcheck_login_that_the_password_file_accepts(
    tmp_path: Path,
) -> None:
    assert init(tmp_path) == 0
    password = health_password(tmp_path / "broker" / "mosquitto_sub")
    users = parse_password_file((tmp_path / "broker" / "passwd").read_text())
    assert verify_mosquitto_hash(password, users[HEALTH_USER])


def test_every_file_init_writes_is_private(tmp_path: Path) -> None:
    assert init(tmp_path) == 0
    written = [*(tmp_path / "broker").iterdir(), *(tmp_path / "secrets").iterdir()]
    assert sorted(f.name for f in written) == [
        "acl",
        "agridrone-ingest.env",
        "mosquitto_sub",
        "passwd",
    ]
    assert {stat.S_IMODE(f.stat().st_mode) for f in written} == {0o600}
    assert stat.S_IMODE((tmp_path / "secrets").stat().st_mode) == 0o700


def test_the_acl_boxes_in_each_service_user_and_drones_registered_before(tmp_path: Path) -> None:
    db = metadata(tmp_path)
    db.add_drone(DroneRecord("htx-a", "d1", None, 0, "$7$101$c2FsdA==$aGFzaA=="))
    db.close()
    assert init(tmp_path) == 0
    acl = (tmp_path / "broker" / "acl").read_text()
    assert "user agridrone-ingest\ntopic read agri/v1/#\n" in acl
    assert f"user {HEALTH_USER}\ntopic read $SYS/broker/uptime\n" in acl
    assert "user htx-a.d1\ntopic readwrite agri/v1/htx-a/d1/#\n" in acl
    users = parse_password_file((tmp_path / "broker" / "passwd").read_text())
    assert users["htx-a.d1"] == "$7$101$c2FsdA==$aGFzaA=="


def test_no_mqtt_password_is_ever_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert init(tmp_path) == 0
    printed = "".join(capsys.readouterr())
    ingest = env_of(tmp_path / "secrets" / "agridrone-ingest.env")["AGRIDRONE_MQTT_PASSWORD"]
    assert ingest not in printed
    assert health_password(tmp_path / "broker" / "mosquitto_sub") not in printed


def test_one_env_file_and_one_user_per_ingest_worker(tmp_path: Path) -> None:
    assert init(tmp_path, "--ingest-user", "ingest-1", "--ingest-user", "ingest-2") == 0
    users = parse_password_file((tmp_path / "broker" / "passwd").read_text())
    for name in ("ingest-1", "ingest-2"):
        env = env_of(tmp_path / "secrets" / f"{name}.env")
        assert env["AGRIDRONE_MQTT_USERNAME"] == name
        assert verify_mosquitto_hash(env["AGRIDRONE_MQTT_PASSWORD"], users[name])
    assert "agridrone-ingest" not in users


def test_it_says_what_to_do_next_with_the_paths_it_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert init(tmp_path) == 0
    err = capsys.readouterr().err
    env = tmp_path / "secrets" / "agridrone-ingest.env"
    assert f"set -a; . {env}; set +a" in err
    assert f"agridrone broker-acl --broker-dir {tmp_path / 'broker'}" in err
    assert "agridrone drones add --coop COOP --drone DRONE" in err
    assert "kill -HUP" in err


def test_under_compose_the_next_steps_are_compose_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert init(tmp_path, "--compose") == 0
    err = capsys.readouterr().err
    assert "docker compose up -d" in err
    assert "docker compose run --rm init broker-acl" in err
    assert "docker compose kill -s SIGHUP mosquitto" in err


# --- running it again --------------------------------------------------------------------------


def test_a_second_run_changes_nothing_and_prints_no_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert init(tmp_path) == 0
    first = snapshot(tmp_path)
    capsys.readouterr()
    assert init(tmp_path) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert snapshot(tmp_path) == first
    assert "kept: operator key(s)" in err
    db = metadata(tmp_path)
    assert len(db.api_keys()) == 1
    db.close()


def test_a_missing_credentials_file_is_refused_naming_it_and_nothing_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert init(tmp_path) == 0
    (tmp_path / "secrets" / "agridrone-ingest.env").unlink()
    before = snapshot(tmp_path)
    capsys.readouterr()
    assert init(tmp_path) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert f"but not {tmp_path / 'secrets' / 'agridrone-ingest.env'}" in err
    assert "--force" in err
    assert snapshot(tmp_path) == before


def test_force_issues_a_new_key_and_new_passwords_and_keeps_old_keys_valid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert init(tmp_path) == 0
    first_key = capsys.readouterr().out.strip()
    old_env = env_of(tmp_path / "secrets" / "agridrone-ingest.env")
    assert init(tmp_path, "--force") == 0
    second_key = capsys.readouterr().out.strip()
    new_env = env_of(tmp_path / "secrets" / "agridrone-ingest.env")
    users = parse_password_file((tmp_path / "broker" / "passwd").read_text())
    assert second_key != first_key
    assert new_env["AGRIDRONE_MQTT_PASSWORD"] != old_env["AGRIDRONE_MQTT_PASSWORD"]
    assert verify_mosquitto_hash(new_env["AGRIDRONE_MQTT_PASSWORD"], users["agridrone-ingest"])
    assert not verify_mosquitto_hash(old_env["AGRIDRONE_MQTT_PASSWORD"], users["agridrone-ingest"])
    db = metadata(tmp_path)
    assert [k.revoked for k in db.api_keys()] == [False, False]
    db.close()


def test_an_existing_operator_key_is_kept_even_without_broker_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert init(tmp_path) == 0
    for f in snapshot(tmp_path):
        Path(f).unlink()
    capsys.readouterr()
    assert init(tmp_path) == 0
    assert capsys.readouterr().out == ""
    assert (tmp_path / "broker" / "passwd").exists()


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--ingest-user", "htx.d1"], "no dot"),
        (["--ingest-user", HEALTH_USER], "healthcheck"),
        (["--operator", " ops"], "leading or trailing spaces"),
    ],
)
def test_bad_input_exits_2_with_the_reason_and_writes_no_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], fragment: str
) -> None:
    assert init(tmp_path, *extra) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert fragment in err
    assert not (tmp_path / "broker").exists()
    assert not (tmp_path / "secrets").exists()


def test_an_unwritable_broker_folder_is_an_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "broker").write_text("a file where the folder should be")
    assert init(tmp_path) == 1
    assert str(tmp_path / "broker") in capsys.readouterr().err


def test_an_unusable_metadata_path_is_an_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "agridrone.db").mkdir()  # a folder where the database should be
    assert init(tmp_path) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert str(tmp_path / "var" / "agridrone.db") in err
