"""Drone registry, Mosquitto password hashes, and the password and ACL files written from them."""

from __future__ import annotations

import argparse
import base64
import dataclasses
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import broker_acl
from ingest.broker_acl import (
    HEALTH_USER,
    ServiceAccount,
    acl_file_text,
    check_ingest_users,
    check_service_user,
    mosquitto_hash,
    parse_password_file,
    password_file_text,
    service_accounts,
    verify_mosquitto_hash,
    write_private_file,
)
from storage.drones import DroneRecord, mqtt_username, validate_drone
from storage.metadata import MetadataConflictError, MetadataDB

T0 = 1_764_300_000_000
# Written by `mosquitto_passwd -b -c FILE user1 pass1` (Mosquitto 2.0.11, Debian) on this machine.
MOSQUITTO_PASSWD_LINE = (
    "user1:$7$101$sPXGsf9A9mcyoAxb$GM0UDHfmmBtuVds17DI1VvJkQvmBWQS3savD5S6tWyIvJsjYdG33"
    "X0M8700r9gpmAIfUutXG7LUHzR9B63H96Q=="
)


def drone(coop: str, name: str, password: str = "drone-pw") -> DroneRecord:  # noqa: S107
    return DroneRecord(coop, name, 5.5, T0, mosquitto_hash(password))


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    broker_acl.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    result: int = args.handler(args)
    return result


# --- the hash format ---------------------------------------------------------------------------


def test_our_hash_equals_mosquitto_passwd_for_the_same_salt() -> None:
    hashed = MOSQUITTO_PASSWD_LINE.split(":", 1)[1]
    salt = base64.b64decode(hashed.split("$")[3])
    assert mosquitto_hash("pass1", salt=salt, iterations=101) == hashed


def test_a_mosquitto_passwd_hash_verifies_with_its_password_only() -> None:
    hashed = MOSQUITTO_PASSWD_LINE.split(":", 1)[1]
    assert verify_mosquitto_hash("pass1", hashed)
    assert not verify_mosquitto_hash("pass2", hashed)


def test_a_new_hash_has_mosquittos_shape() -> None:
    parts = mosquitto_hash("secret").split("$")
    assert parts[:3] == ["", "7", "101"]
    assert len(base64.b64decode(parts[3])) == 12
    assert len(base64.b64decode(parts[4])) == 64


@settings(max_examples=25, deadline=None)
@given(password=st.text(min_size=1, max_size=40), other=st.text(min_size=1, max_size=40))
def test_hashes_verify_their_own_password_and_no_other(password: str, other: str) -> None:
    hashed = mosquitto_hash(password)
    assert verify_mosquitto_hash(password, hashed)
    assert verify_mosquitto_hash(other, hashed) is (other == password)


def test_the_same_password_hashes_differently_each_time() -> None:
    assert mosquitto_hash("same") != mosquitto_hash("same")


def test_verifying_against_something_else_than_a_hash_says_so() -> None:
    with pytest.raises(ValueError, match=r"not a Mosquitto \$7\$"):
        verify_mosquitto_hash("pw", "$6$abc$def")


def test_generated_passwords_are_long_and_distinct() -> None:
    passwords = {broker_acl.generate_password() for _ in range(20)}
    assert len(passwords) == 20
    assert all(len(p) == 32 for p in passwords)


# --- ids and user names ------------------------------------------------------------------------


def test_a_drone_logs_in_as_coop_dot_drone() -> None:
    record = drone("htx-hong-phong", "dji-t40-01")
    assert record.mqtt_username == mqtt_username("htx-hong-phong", "dji-t40-01")
    assert record.mqtt_username == "htx-hong-phong.dji-t40-01"
    assert record.topic_prefix == "agri/v1/htx-hong-phong/dji-t40-01/"


@pytest.mark.parametrize(
    ("coop", "name", "swath", "fragment"),
    [
        ("htx.a", "d1", None, "coop id 'htx.a'"),
        ("htx", "d/1", None, "drone id 'd/1'"),
        ("htx", "", None, "drone id ''"),
        ("htx", "d" * 65, None, "drone id"),
        ("htx", "d1", 0.0, "swath 0.0 m"),
        ("htx", "d1", float("nan"), "swath nan m"),
        ("htx", "d1", 80.0, "swath 80.0 m"),
    ],
)
def test_unusable_drones_are_refused_with_the_reason(
    coop: str, name: str, swath: float | None, fragment: str
) -> None:
    problem = validate_drone(coop, name, swath)
    assert problem is not None
    assert fragment in problem


def test_a_usable_drone_passes() -> None:
    assert validate_drone("htx-hong-phong", "T40_01", 6.5) is None
    assert validate_drone("htx-hong-phong", "T40_01", None) is None


@pytest.mark.parametrize("name", ["htx.d1", "", "a:b", "a b"])
def test_service_users_cannot_look_like_drones_or_break_the_file(name: str) -> None:
    assert check_service_user(name) is not None


# --- the registry ------------------------------------------------------------------------------


def test_registered_drones_come_back_sorted_and_filtered(tmp_path: Path) -> None:
    db = MetadataDB(tmp_path / "m.db")
    for coop, name in [("htx-b", "d2"), ("htx-a", "d9"), ("htx-b", "d1")]:
        db.add_drone(drone(coop, name))
    assert [(d.coop, d.drone) for d in db.drones()] == [
        ("htx-a", "d9"),
        ("htx-b", "d1"),
        ("htx-b", "d2"),
    ]
    assert [d.drone for d in db.drones("htx-b")] == ["d1", "d2"]
    assert db.drone("htx-a", "d9") == db.drones()[0]
    assert db.drone("htx-a", "d1") is None


def test_a_drone_id_is_unique_within_its_coop_only(tmp_path: Path) -> None:
    db = MetadataDB(tmp_path / "m.db")
    db.add_drone(drone("htx-a", "d1"))
    db.add_drone(drone("htx-b", "d1"))
    with pytest.raises(MetadataConflictError, match=r"already registered.*drones passwd"):
        db.add_drone(drone("htx-a", "d1"))


def test_a_new_password_replaces_the_old_hash(tmp_path: Path) -> None:
    db = MetadataDB(tmp_path / "m.db")
    db.add_drone(drone("htx-a", "d1", "old"))
    db.set_drone_password("htx-a", "d1", mosquitto_hash("new"))
    stored = db.drone("htx-a", "d1")
    assert stored is not None
    assert verify_mosquitto_hash("new", stored.mqtt_password_hash)
    assert not verify_mosquitto_hash("old", stored.mqtt_password_hash)


def test_updating_or_removing_an_unregistered_drone_names_it(tmp_path: Path) -> None:
    db = MetadataDB(tmp_path / "m.db")
    with pytest.raises(MetadataConflictError, match="no drone d7 in cooperative htx-a"):
        db.set_drone_password("htx-a", "d7", mosquitto_hash("x"))
    with pytest.raises(MetadataConflictError, match="no drone d7 in cooperative htx-a"):
        db.remove_drone("htx-a", "d7")


# --- the files ---------------------------------------------------------------------------------


def test_the_password_file_has_the_ingest_user_then_each_drone() -> None:
    drones = [drone("htx-a", "d1"), drone("htx-b", "d2")]
    services = [ServiceAccount("agridrone-ingest", mosquitto_hash("ingest"))]
    text = password_file_text(drones, services)
    lines = text.splitlines()
    assert [line.split(":", 1)[0] for line in lines] == [
        "agridrone-ingest",
        "htx-a.d1",
        "htx-b.d2",
    ]
    assert lines[1].split(":", 1)[1] == drones[0].mqtt_password_hash
    assert verify_mosquitto_hash("ingest", lines[0].split(":", 1)[1])
    assert text.endswith("\n")


def test_the_acl_gives_ingest_users_read_all_health_the_uptime_and_drones_their_tree() -> None:
    services = [
        ServiceAccount("ingest-1", "h1"),
        ServiceAccount("ingest-2", "h2"),
        ServiceAccount(HEALTH_USER, "h3", "health"),
    ]
    dji = dataclasses.replace(drone("htx-b", "d2"), dji_sn="1ZNBK7LC00AB")
    text = acl_file_text([drone("htx-a", "d1"), dji], services)
    rules = [line for line in text.splitlines() if line and not line.startswith("#")]
    ingest_reads = ["topic read agri/v1/#", "topic read agri/mavlink/#"]
    ingest_reads.append("topic read thing/product/+/osd")
    assert rules == [
        "user ingest-1",
        *ingest_reads,
        "user ingest-2",
        *ingest_reads,
        "user agridrone-health",
        "topic read $SYS/broker/uptime",
        "user htx-a.d1",
        "topic readwrite agri/v1/htx-a/d1/#",
        "topic readwrite agri/mavlink/htx-a/d1/#",
        "user htx-b.d2",
        "topic readwrite agri/v1/htx-b/d2/#",
        "topic readwrite agri/mavlink/htx-b/d2/#",
        "topic readwrite thing/product/1ZNBK7LC00AB/#",
    ]


def test_the_acl_has_no_rule_for_anonymous_clients() -> None:
    text = acl_file_text([drone("htx-a", "d1")], [ServiceAccount("ingest", "h")])
    before_first_user = text.split("\nuser ", 1)[0]
    assert all(line.startswith("#") or not line for line in before_first_user.splitlines())


def test_private_files_are_replaced_whole_with_mode_0600(tmp_path: Path) -> None:
    target = tmp_path / "etc" / "passwd"
    write_private_file(target, "first\n")
    target.chmod(0o644)
    write_private_file(target, "second\n")
    assert target.read_text() == "second\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["passwd"]


# --- the commands ------------------------------------------------------------------------------


def test_drones_add_prints_a_password_that_matches_the_stored_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(tmp_path / "m.db")
    code = run_cli(
        [
            "drones",
            "add",
            "--coop",
            "htx-a",
            "--drone",
            "d1",
            "--swath-m",
            "5.5",
            "--metadata-path",
            path,
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0
    stored = MetadataDB(path).drone("htx-a", "d1")
    assert stored is not None
    assert stored.swath_m == 5.5
    assert verify_mosquitto_hash(out.strip(), stored.mqtt_password_hash)
    assert "htx-a.d1" in err
    assert "broker-acl" in err


def test_drones_add_twice_exits_2_and_keeps_the_first_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(tmp_path / "m.db")
    argv = ["drones", "add", "--coop", "htx-a", "--drone", "d1", "--metadata-path", path]
    run_cli(argv)
    first = capsys.readouterr().out.strip()
    assert run_cli(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "already registered" in err
    stored = MetadataDB(path).drone("htx-a", "d1")
    assert stored is not None
    assert verify_mosquitto_hash(first, stored.mqtt_password_hash)


def test_drones_add_refuses_a_bad_id_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(tmp_path / "m.db")
    code = run_cli(["drones", "add", "--coop", "htx a", "--drone", "d1", "--metadata-path", path])
    assert code == 2
    assert "coop id 'htx a'" in capsys.readouterr().err
    assert MetadataDB(path).drones() == []


def test_drones_passwd_issues_a_new_password_and_remove_unregisters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(tmp_path / "m.db")
    ids = ["--coop", "htx-a", "--drone", "d1", "--metadata-path", path]
    run_cli(["drones", "add", *ids])
    old = capsys.readouterr().out.strip()
    assert run_cli(["drones", "passwd", *ids]) == 0
    new = capsys.readouterr().out.strip()
    stored = MetadataDB(path).drone("htx-a", "d1")
    assert stored is not None
    assert verify_mosquitto_hash(new, stored.mqtt_password_hash)
    assert not verify_mosquitto_hash(old, stored.mqtt_password_hash)
    assert run_cli(["drones", "remove", *ids]) == 0
    assert MetadataDB(path).drones() == []
    assert run_cli(["drones", "remove", *ids]) == 2


def test_drones_list_shows_user_names_but_no_hashes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(tmp_path / "m.db")
    run_cli(["drones", "add", "--coop", "htx-a", "--drone", "d1", "--metadata-path", path])
    run_cli(["drones", "add", "--coop", "htx-b", "--drone", "d2", "--metadata-path", path])
    capsys.readouterr()
    assert run_cli(["drones", "list", "--coop", "htx-b", "--metadata-path", path]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        *("COOP", "DRONE", "SWATH_M", "REGISTERED", "MQTT_USER", "MAVLINK_SPRAY", "DJI_SN"),
        "REGISTRATION",
    ]
    assert len(lines) == 2
    assert lines[1].split()[0:3] == ["htx-b", "d2", "-"]
    assert lines[1].split()[-4:] == ["htx-b.d2", "-", "-", "-"]
    assert "$7$" not in "\n".join(lines)


# --- per-drone MAVLink and DJI settings ---------------------------------------------------------


def test_drones_add_stores_the_spray_rule_as_the_worker_reads_it_and_the_dji_serial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(tmp_path / "m.db")
    ids = ["--coop", "htx-a", "--drone", "d1", "--metadata-path", path]
    settings = ["--mavlink-spray", " RC7 > 1500 , auto", "--mavlink-flow-battery", "1"]
    settings += ["--tank-l", "10", "--dji-sn", "1ZNBK7LC00AB", "--dji-spraying", "yes"]
    assert run_cli(["drones", "add", *ids, *settings]) == 0
    stored = MetadataDB(path).drone("htx-a", "d1")
    assert stored is not None
    assert stored.mavlink_spray == "rc7>1500,auto"
    assert (stored.mavlink_flow_battery, stored.tank_capacity_l) == (1, 10.0)
    assert (stored.dji_sn, stored.dji_spraying) == ("1ZNBK7LC00AB", True)
    capsys.readouterr()
    assert run_cli(["drones", "list", "--metadata-path", path]) == 0
    row = capsys.readouterr().out.splitlines()[1].split()
    assert row[-4:] == ["rc7>1500,auto", "1ZNBK7LC00AB", "(spraying)", "-"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--mavlink-spray", "rc7=1500"], "--mavlink-spray: spray rule 'rc7=1500' is not servoN"),
        (["--mavlink-spray", "servo17>1500"], "channel outside 1..16"),
        (["--mavlink-spray", "rc7>0"], "PWM outside 1..65534"),
        (["--dji-sn", "a/b"], "--dji-sn: DJI serial 'a/b' does not match"),
        (["--mavlink-flow-battery", "0"], "battery instance 0 cannot also be the flow sensor"),
        (["--tank-l", "10"], "tank_capacity_l needs flow_battery_instance"),
        (["--tank-l", "ten"], "could not convert string to float: 'ten'"),
    ],
)
def test_drones_add_refuses_bad_settings_with_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    path = str(tmp_path / "m.db")
    ids = ["--coop", "htx-a", "--drone", "d1", "--metadata-path", path]
    assert run_cli(["drones", "add", *ids, *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("agridrone drones add: ")
    assert message in err
    assert MetadataDB(path).drones() == []


def test_a_second_drone_claiming_a_dji_serial_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(tmp_path / "m.db")
    base = ["--metadata-path", path, "--dji-sn", "SN1"]
    assert run_cli(["drones", "add", "--coop", "htx-a", "--drone", "d1", *base]) == 0
    capsys.readouterr()
    assert run_cli(["drones", "add", "--coop", "htx-b", "--drone", "d2", *base]) == 2
    err = capsys.readouterr().err
    assert "DJI serial SN1 is already drone d1 of cooperative htx-a's" in err
    assert [d.drone for d in MetadataDB(path).drones()] == ["d1"]


def test_drones_set_changes_and_clears_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(tmp_path / "m.db")
    ids = ["--coop", "htx-a", "--drone", "d1", "--metadata-path", path]
    run_cli(["drones", "add", *ids, "--mavlink-spray", "rc7>1500", "--dji-sn", "SN1"])
    before = MetadataDB(path).drone("htx-a", "d1")
    assert run_cli(["drones", "set", *ids, "--mavlink-spray", "servo9>1600", "--dji-sn", ""]) == 0
    after = MetadataDB(path).drone("htx-a", "d1")
    assert after is not None
    assert before is not None
    assert (after.mavlink_spray, after.dji_sn) == ("servo9>1600", None)
    assert after.mqtt_password_hash == before.mqtt_password_hash  # set issues no password
    assert run_cli(["drones", "set", *ids, "--swath-m", "6.5"]) == 0
    assert MetadataDB(path).drone("htx-a", "d1") == dataclasses.replace(after, swath_m=6.5)
    capsys.readouterr()
    assert run_cli(["drones", "set", *ids]) == 2
    assert "nothing to change" in capsys.readouterr().err
    assert run_cli(["drones", "set", *ids, "--mavlink-spray", "rc99>1"]) == 2
    missing = ["--coop", "htx-a", "--drone", "d9", "--metadata-path", path]
    assert run_cli(["drones", "set", *missing, "--mavlink-spray", "auto"]) == 2
    assert "no drone d9" in capsys.readouterr().err


def test_a_drone_registration_number_is_set_at_add_or_later_and_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(tmp_path / "m.db")
    ids = ["--coop", "htx-a", "--drone", "d1", "--metadata-path", path]
    assert run_cli(["drones", "add", *ids, "--registration", "VN-UAV-0001"]) == 0
    assert MetadataDB(path).drones()[0].registration == "VN-UAV-0001"
    assert run_cli(["drones", "set", *ids, "--registration", "VN-UAV-0002"]) == 0
    assert MetadataDB(path).drones()[0].registration == "VN-UAV-0002"
    capsys.readouterr()
    assert run_cli(["drones", "list", "--metadata-path", path]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[-1] == "VN-UAV-0002"
    assert run_cli(["drones", "set", *ids, "--registration", ""]) == 0
    assert MetadataDB(path).drones()[0].registration is None
    other = ["--coop", "htx-a", "--drone", "d9", "--metadata-path", path]
    assert run_cli(["drones", "set", *other, "--registration", "X"]) == 2
    assert run_cli(["drones", "add", *other, "--registration", "x" * 201]) == 2
    assert [d.drone for d in MetadataDB(path).drones()] == ["d1"]


def test_broker_acl_writes_both_files_with_the_ingest_password_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "m.db")
    run_cli(["drones", "add", "--coop", "htx-a", "--drone", "d1", "--metadata-path", path])
    drone_password = capsys.readouterr().out.strip()
    monkeypatch.setenv("AGRIDRONE_MQTT_PASSWORD", "from-env")
    monkeypatch.setenv("AGRIDRONE_MQTT_USERNAME", "ingest-1")
    pw, acl = tmp_path / "pw", tmp_path / "acl"
    code = run_cli(
        ["broker-acl", "--password-file", str(pw), "--acl-file", str(acl), "--metadata-path", path]
    )
    out, err = capsys.readouterr()
    assert code == 0
    assert out == ""
    users = dict(line.split(":", 1) for line in pw.read_text().splitlines())
    assert set(users) == {"ingest-1", "htx-a.d1"}
    assert verify_mosquitto_hash("from-env", users["ingest-1"])
    assert verify_mosquitto_hash(drone_password, users["htx-a.d1"])
    assert "user htx-a.d1\ntopic readwrite agri/v1/htx-a/d1/#" in acl.read_text()
    assert stat.S_IMODE(pw.stat().st_mode) == stat.S_IMODE(acl.stat().st_mode) == 0o600
    assert "1 drone(s)" in err


def test_broker_acl_generates_and_prints_an_ingest_password_when_none_is_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AGRIDRONE_MQTT_PASSWORD", raising=False)
    monkeypatch.delenv("AGRIDRONE_MQTT_USERNAME", raising=False)
    pw, acl, db = tmp_path / "pw", tmp_path / "acl", str(tmp_path / "m.db")
    code = run_cli(
        ["broker-acl", "--password-file", str(pw), "--acl-file", str(acl), "--metadata-path", db]
    )
    out = capsys.readouterr().out
    assert code == 0
    env = dict(line.split("=", 1) for line in out.splitlines())
    assert env["AGRIDRONE_MQTT_USERNAME"] == "agridrone-ingest"
    user, hashed = pw.read_text().strip().split(":", 1)
    assert user == "agridrone-ingest"
    assert verify_mosquitto_hash(env["AGRIDRONE_MQTT_PASSWORD"], hashed)


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--ingest-user", "htx.d1", "--ingest-password", "x"], "no dot"),
        (["--ingest-password", ""], "empty"),
    ],
)
def test_broker_acl_refuses_bad_ingest_credentials_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], fragment: str
) -> None:
    pw, acl, db = tmp_path / "pw", tmp_path / "acl", str(tmp_path / "m.db")
    code = run_cli(
        [
            "broker-acl",
            "--password-file",
            str(pw),
            "--acl-file",
            str(acl),
            "--metadata-path",
            db,
            *extra,
        ]
    )
    assert code == 2
    assert fragment in capsys.readouterr().err
    assert not pw.exists()
    assert not acl.exists()


# --- service accounts ----------------------------------------------------------------------------


def test_a_password_file_parses_to_users_and_hashes() -> None:
    text = "agridrone-ingest:$7$a\n\n# note\nhtx-a.d1:$7$b\nbroken line\n"
    assert parse_password_file(text) == {"agridrone-ingest": "$7$a", "htx-a.d1": "$7$b"}


def test_an_ingest_user_keeps_the_hash_it_has_in_the_current_file() -> None:
    services, generated = service_accounts(["ingest-1"], {"ingest-1": "$7$kept"})
    assert services == [ServiceAccount("ingest-1", "$7$kept")]
    assert generated == {}


def test_a_given_password_replaces_the_current_hash() -> None:
    services, generated = service_accounts(["ingest-1"], {"ingest-1": "$7$old"}, "new-pw")
    assert verify_mosquitto_hash("new-pw", services[0].password_hash)
    assert generated == {}


def test_a_new_ingest_user_gets_a_new_password_matching_its_hash() -> None:
    services, generated = service_accounts(["ingest-1", "ingest-2"], {"ingest-1": "$7$kept"})
    assert list(generated) == ["ingest-2"]
    assert services[0] == ServiceAccount("ingest-1", "$7$kept")
    assert verify_mosquitto_hash(generated["ingest-2"], services[1].password_hash)


def test_the_health_user_is_carried_over_only_when_the_file_has_it() -> None:
    with_health, _ = service_accounts(["i"], {"i": "$7$i", HEALTH_USER: "$7$h"})
    without, _ = service_accounts(["i"], {"i": "$7$i", "stranger": "$7$s"})
    assert with_health[-1] == ServiceAccount(HEALTH_USER, "$7$h", "health")
    assert [s.name for s in without] == ["i"]


@pytest.mark.parametrize(
    ("users", "password_given", "fragment"),
    [
        (["htx.d1"], False, "no dot"),
        ([HEALTH_USER], False, "healthcheck"),
        (["w1", "w2", "w1"], False, "'w1' is named twice"),
        (["w1", "w2"], True, "each worker needs its own"),
    ],
)
def test_unusable_ingest_users_are_refused_with_the_reason(
    users: list[str], password_given: bool, fragment: str
) -> None:
    problem = check_ingest_users(users, password_given=password_given)
    assert problem is not None
    assert fragment in problem


def test_several_ingest_users_without_a_password_pass() -> None:
    assert check_ingest_users(["w1", "w2"], password_given=False) is None


def test_broker_acl_rerun_without_a_password_keeps_the_ingest_and_health_hashes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AGRIDRONE_MQTT_PASSWORD", raising=False)
    monkeypatch.delenv("AGRIDRONE_MQTT_USERNAME", raising=False)
    db = str(tmp_path / "m.db")
    broker = tmp_path / "broker"
    write_private_file(
        broker / "passwd", f"agridrone-ingest:{mosquitto_hash('w')}\n{HEALTH_USER}:$7$h\n"
    )
    before = parse_password_file((broker / "passwd").read_text())
    run_cli(["drones", "add", "--coop", "htx-a", "--drone", "d1", "--metadata-path", db])
    capsys.readouterr()
    assert run_cli(["broker-acl", "--broker-dir", str(broker), "--metadata-path", db]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    after = parse_password_file((broker / "passwd").read_text())
    assert set(after) == {"agridrone-ingest", HEALTH_USER, "htx-a.d1"}
    assert after["agridrone-ingest"] == before["agridrone-ingest"]
    assert after[HEALTH_USER] == "$7$h"
    assert f"user {HEALTH_USER}\ntopic read $SYS/broker/uptime" in (broker / "acl").read_text()
    assert "kept the hash of agridrone-ingest, agridrone-health" in err


def test_broker_acl_with_several_workers_prints_each_new_password_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AGRIDRONE_MQTT_PASSWORD", raising=False)
    broker, db = tmp_path / "broker", str(tmp_path / "m.db")
    argv = ["broker-acl", "--broker-dir", str(broker), "--metadata-path", db]
    assert run_cli([*argv, "--ingest-user", "w1", "--ingest-user", "w2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("=", 1)[0] for line in lines] == [
        "AGRIDRONE_MQTT_USERNAME",
        "AGRIDRONE_MQTT_PASSWORD",
    ] * 2
    users = parse_password_file((broker / "passwd").read_text())
    assert verify_mosquitto_hash(lines[1].split("=", 1)[1], users["w1"])
    assert verify_mosquitto_hash(lines[3].split("=", 1)[1], users["w2"])


def test_broker_acl_refuses_one_password_for_several_workers_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broker, db = tmp_path / "broker", str(tmp_path / "m.db")
    code = run_cli(
        [
            *("broker-acl", "--broker-dir", str(broker), "--metadata-path", db),
            *("--ingest-user", "w1", "--ingest-user", "w2", "--ingest-password", "one"),
        ]
    )
    assert code == 2
    assert "each worker needs its own" in capsys.readouterr().err
    assert not broker.exists()
