"""Broker URLs and topic filters are parsed and built without any I/O."""

from __future__ import annotations

import pytest

from ingest.mqtt import BrokerAddress, subscriptions


def test_broker_url_gives_host_port_and_credentials() -> None:
    assert BrokerAddress.from_url("mqtt://ingest:s%40cret@broker.local:18830") == BrokerAddress(
        "broker.local", 18830, "ingest", "s@cret"
    )


def test_broker_url_without_port_uses_1883() -> None:
    assert BrokerAddress.from_url("mqtt://10.0.0.5").port == 1883


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://broker:1883", "scheme must be mqtt://"),
        ("mqtt://", "no host"),
        ("mqtt://broker:notaport", "bad port"),
    ],
)
def test_bad_broker_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BrokerAddress.from_url(url)


def test_default_subscriptions_cover_every_coop_and_drone() -> None:
    assert subscriptions() == [
        "agri/v1/+/+/telemetry",
        "agri/v1/+/+/event",
        "agri/v1/+/+/status",
    ]


def test_share_group_shares_telemetry_and_events_but_not_retained_status() -> None:
    assert subscriptions(["htx-yen-tho"], "ingest") == [
        "$share/ingest/agri/v1/htx-yen-tho/+/telemetry",
        "$share/ingest/agri/v1/htx-yen-tho/+/event",
        "agri/v1/htx-yen-tho/+/status",
    ]
