"""Passwords in URLs never reach a message, a repr or a log line."""

from __future__ import annotations

import base64
import logging
import sqlite3
from pathlib import Path

import httpx
import pytest

from agridrone.cli import main
from ingest.mqtt import BrokerAddress
from storage.contract import StoreUnavailableError
from storage.influx import InfluxStore, RetryPolicy
from storage.metadata import MetadataDB
from storage.records import Sample
from storage.secrets import masker, redact_urls, shown_url, url_passwords, without_userinfo

SECRET = "s3cr%40t-pw"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("mqtt://ingest:pw@broker:1883", "mqtt://ingest:***@broker:1883"),
        ("InfluxDB http://u:p@h:8086/write failed", "InfluxDB http://u:***@h:8086/write failed"),
        ("http://token@h", "http://***@h"),
        ("http://h:8086 and mqtt://a:b@c", "http://h:8086 and mqtt://a:***@c"),
        ("no url here: a:b@c", "no url here: a:b@c"),
    ],
)
def test_passwords_in_urls_are_hidden(text: str, shown: str) -> None:
    assert redact_urls(text) == shown


def test_userinfo_is_split_off_a_url() -> None:
    assert without_userinfo("http://u:p%40ss@influx:8086/x") == (
        "http://influx:8086/x",
        "u",
        "p%40ss",
    )
    assert without_userinfo("http://influx:8086") == ("http://influx:8086", None, None)


@pytest.mark.parametrize("url", [f"http://u:{SECRET}@b:1883", f"mqtt://u:{SECRET}@b:port"])
def test_a_bad_broker_url_is_explained_without_its_password(url: str) -> None:
    with pytest.raises(ValueError, match="MQTT URL") as info:
        BrokerAddress.from_url(url)
    assert SECRET not in str(info.value)
    assert "u:***@b" in str(info.value)


def test_a_broker_address_does_not_show_its_password() -> None:
    address = BrokerAddress.from_url(f"mqtt://ingest:{SECRET}@broker:1883")
    assert address.password == "s3cr@t-pw"
    assert "s3cr" not in repr(address)


def test_the_ingest_command_refuses_a_bad_url_without_printing_the_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["ingest", "--mqtt-url", f"mqtt://ingest:{SECRET}@broker:notaport"]) == 2
    err = capsys.readouterr().err
    assert "bad port" in err
    assert "s3cr" not in err


def test_influx_credentials_in_the_url_become_the_basic_header_not_the_shown_url() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503, text="overloaded")

    store = InfluxStore(
        f"http://pilot:{SECRET}@influx.test:8086",
        "agri",
        transport=httpx.MockTransport(answer),
        retry=RetryPolicy(attempts=1),
    )
    assert store.url == "http://influx.test:8086"
    with pytest.raises(StoreUnavailableError) as info:
        store.write_samples([Sample("htx", "d-1", 1_700_000_000_000, 21.08, 106.52, spraying=True)])
    assert "s3cr" not in str(info.value)
    assert "s3cr" not in repr(store)
    expected = base64.b64encode(b"pilot:s3cr@t-pw").decode("ascii")
    assert seen[0].headers["Authorization"] == f"Basic {expected}"


@pytest.mark.parametrize("read", ["field_owners", "fields_version"])
def test_field_registry_reads_that_fail_are_unavailable_not_crashes(
    tmp_path: Path, read: str
) -> None:
    metadata = MetadataDB(tmp_path / "agridrone.db")
    with sqlite3.connect(tmp_path / "agridrone.db") as other:
        other.execute("DROP TABLE field_versions")
    with pytest.raises(StoreUnavailableError, match="metadata database"):
        getattr(metadata, read)()
    metadata.close()


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql://h/db?password=s3cret", "postgresql://h/db?password=***"),
        (
            "postgresql://h/db?sslmode=require&password=s3cret&x=1",
            "postgresql://h/db?sslmode=require&password=***&x=1",
        ),
        ("host=h password=s3cret user=u", "host=h password=*** user=u"),
        ("host=h password='s3 cr\\'et' user=u", "host=h password=*** user=u"),
    ],
)
def test_password_parameters_are_hidden(text: str, shown: str) -> None:
    assert redact_urls(text) == shown


@pytest.mark.parametrize(
    ("url", "password"),
    [
        ("postgresql://agri:pa%zzss@127.0.0.1:{port}/agri", "pa%zzss"),  # libpq quotes it
        ("postgresql://agri@127.0.0.1:{port}/agri?password=s3cret", "s3cret"),
        ("postgresql://agri@127.0.0.1:{port}/agri?password=pa%zzss", "pa%zzss"),
        ("postgresql://agri:pa ss@127.0.0.1:{port}/agri", "pa ss"),  # libpq quotes it
        ("postgresql://agri:s3%63ret@127.0.0.1:{port}/agri", "s3cret"),  # decoded form
    ],
)
def test_a_postgres_password_reaches_no_message_where_or_log(
    url: str, password: str, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.servers import free_port

    caplog.set_level(logging.DEBUG)
    with pytest.raises(StoreUnavailableError, match="cannot connect") as info:
        MetadataDB(url.format(port=free_port()))
    shown = str(info.value)
    assert "127.0.0.1" in shown
    assert "***" in shown
    for form in {password, password.replace("%63", "c"), password.replace(" ", "%20")}:
        assert form not in shown
        assert form not in caplog.text


def test_a_masker_hides_the_raw_and_the_decoded_password_of_its_url() -> None:
    mask = masker("postgresql://u:s3%63ret@h/db?password=an%20other")
    assert url_passwords("postgresql://u:s3%63ret@h/db?password=an%20other") == {
        "s3%63ret",
        "s3cret",
        "an%20other",
        "an other",
    }
    shown = mask('bad token "s3%63ret", auth s3cret, an other; an%20other')
    assert shown == 'bad token "***", auth ***, ***; ***'


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pa ss@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:pa%zzss@h/db", "postgresql://u:***@h/db"),
        ("postgresql://h/db?password=s3%20cret", "postgresql://h/db?password=***"),
        ("/var/lib/agridrone/agridrone.db", "/var/lib/agridrone/agridrone.db"),
    ],
)
def test_a_url_printed_by_the_commands_shows_none_of_its_password(url: str, shown: str) -> None:
    assert shown_url(url) == shown


def test_the_connection_pools_own_log_lines_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    """psycopg_pool logs its reconnect failures itself, quoting libpq's error."""
    from storage.metadata._db import _POOL_LOG_MASK

    url = "postgresql://agri:s3%63ret@127.0.0.1:1/agri"
    _POOL_LOG_MASK.add(url, masker(url))
    caplog.set_level(logging.WARNING, logger="psycopg.pool")
    logging.getLogger("psycopg.pool").warning(
        "error connecting in %r: %s", "agridrone-metadata", 'invalid token "s3cret" in s3%63ret'
    )
    assert "s3cret" not in caplog.text
    assert "s3%63ret" not in caplog.text
    assert "agridrone-metadata" in caplog.text
