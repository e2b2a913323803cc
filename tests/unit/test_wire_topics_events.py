"""Wire format v1: topics, event payloads and retained status payloads."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from paho.mqtt.client import topic_matches_sub

from ingest.wire import (
    EVENT_SUBSCRIPTION,
    STATUS_SUBSCRIPTION,
    TELEMETRY_SUBSCRIPTION,
    WIRE_EVENT_TYPES,
    Decoded,
    decode_message,
    encode_event,
    encode_status,
    event_topic,
    status_topic,
    telemetry_topic,
)
from storage.records import Event

NOW = 1_795_869_000_000
TS = NOW - 60_000
EVENTS = "agri/v1/htx-1/d-07/event"
STATUS = "agri/v1/htx-1/d-07/status"


def rejection_of(decoded: Decoded) -> str:
    assert (decoded.samples, decoded.events) == ([], [])
    [r] = decoded.rejections
    return r.reason


def event_payload(**changes: Any) -> bytes:
    obj: dict[str, Any] = {"v": 1, "ts": TS, "type": "refill"}
    obj.update(changes)
    return orjson.dumps({k: v for k, v in obj.items() if v is not ...})


# --- topics


def test_topic_helpers_build_the_v1_topics() -> None:
    assert telemetry_topic("htx-1", "d_07") == "agri/v1/htx-1/d_07/telemetry"
    assert event_topic("htx-1", "d_07") == "agri/v1/htx-1/d_07/event"
    assert status_topic("htx-1", "d_07") == "agri/v1/htx-1/d_07/status"


@pytest.mark.parametrize(("coop", "drone"), [("htx 1", "d"), ("c", "d/7"), ("c", ""), ("+", "d")])
def test_topic_helpers_refuse_ids_outside_the_id_alphabet(coop: str, drone: str) -> None:
    with pytest.raises(ValueError, match="does not match"):
        telemetry_topic(coop, drone)


def test_subscriptions_match_exactly_their_own_kind_of_topic() -> None:
    topics = [telemetry_topic("c", "d"), event_topic("c", "d"), status_topic("c", "d")]
    subs = [TELEMETRY_SUBSCRIPTION, EVENT_SUBSCRIPTION, STATUS_SUBSCRIPTION]
    for i, sub in enumerate(subs):
        assert [topic_matches_sub(sub, t) for t in topics] == [j == i for j in range(3)]


@pytest.mark.parametrize(
    "topic",
    [
        "agri/v2/c/d/telemetry",
        "agri/v1/c/d/telemetry/extra",
        "agri/v1/c/telemetry",
        "agri/v1/c/d/position",
        "farm/v1/c/d/telemetry",
        "/agri/v1/c/d/telemetry",
        "",
    ],
)
def test_a_topic_not_of_the_v1_form_is_a_bad_topic(topic: str) -> None:
    assert rejection_of(decode_message(topic, b"{}", NOW)) == "bad_topic"


@pytest.mark.parametrize(
    "topic",
    [
        "agri/v1//d/telemetry",
        "agri/v1/c/d.7/telemetry",
        "agri/v1/c/đ7/telemetry",
        f"agri/v1/c/{'d' * 65}/telemetry",
        "agri/v1/c o/d/event",
    ],
)
def test_an_id_outside_the_id_alphabet_is_a_bad_id(topic: str) -> None:
    assert rejection_of(decode_message(topic, b"{}", NOW)) == "bad_id"


def test_a_64_character_id_is_accepted() -> None:
    topic = telemetry_topic("c", "d" * 64)
    payload = b'{"ts":%d,"lat":1.0,"lon":2.0,"spraying":false}' % TS
    [sample] = decode_message(topic, payload, NOW).samples
    assert sample.drone == "d" * 64


# --- events


def test_an_event_keeps_its_other_keys_as_attrs() -> None:
    decoded = decode_message(EVENTS, event_payload(litres=12.5, tank="main"), NOW)
    assert decoded == Decoded(
        [], [Event("htx-1", "d-07", TS, "refill", {"litres": 12.5, "tank": "main"})], []
    )


def test_an_events_v_ts_type_coop_and_drone_are_not_attrs() -> None:
    [event] = decode_message(EVENTS, event_payload(coop="htx-1", drone="d-07"), NOW).events
    assert event.attrs == {}


@pytest.mark.parametrize("kind", WIRE_EVENT_TYPES)
def test_every_documented_event_type_is_accepted(kind: str) -> None:
    [event] = decode_message(EVENTS, event_payload(type=kind), NOW).events
    assert event.type == kind


@pytest.mark.parametrize("kind", ["explode", "status", "Takeoff", ""])
def test_an_undocumented_event_type_is_an_unknown_event(kind: str) -> None:
    assert rejection_of(decode_message(EVENTS, event_payload(type=kind), NOW)) == "unknown_event"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"type": ...}, "missing_key"),
        ({"ts": ...}, "missing_key"),
        ({"type": 3}, "wrong_type"),
        ({"v": 2}, "unsupported_version"),
        ({"ts": NOW + 2 * 86_400_000}, "future_timestamp"),
        ({"ts": "yesterday"}, "bad_timestamp"),
        ({"drone": "d-08"}, "drone_mismatch"),
    ],
)
def test_an_invalid_event_is_rejected_with_its_reason(changes: dict[str, Any], reason: str) -> None:
    assert rejection_of(decode_message(EVENTS, event_payload(**changes), NOW)) == reason


def test_an_event_payload_that_is_a_list_is_not_an_object() -> None:
    assert rejection_of(decode_message(EVENTS, b"[]", NOW)) == "not_an_object"


def test_encode_event_refuses_attrs_that_shadow_wire_keys() -> None:
    with pytest.raises(ValueError, match=r"reserved wire keys \['ts'\]"):
        encode_event(Event("c", "d", TS, "refill", {"ts": 1}))


# --- status


@pytest.mark.parametrize("state", ["online", "offline"])
def test_plain_text_status_becomes_a_status_event_at_the_receive_time(state: str) -> None:
    decoded = decode_message(STATUS, state.encode(), NOW)
    assert decoded == Decoded([], [Event("htx-1", "d-07", NOW, "status", {"state": state})], [])


def test_plain_text_status_may_end_with_a_newline() -> None:
    [event] = decode_message(STATUS, b"offline\n", NOW).events
    assert event.attrs == {"state": "offline"}


def test_json_status_uses_its_own_timestamp() -> None:
    decoded = decode_message(STATUS, encode_status("online", TS), NOW)
    assert decoded.events == [Event("htx-1", "d-07", TS, "status", {"state": "online"})]


def test_json_status_without_a_timestamp_uses_the_receive_time() -> None:
    [event] = decode_message(STATUS, encode_status("offline"), NOW).events
    assert event.ts_ms == NOW


@pytest.mark.parametrize("payload", [b"", b"\n"])
def test_an_empty_status_is_a_cleared_retained_message_not_a_rejection(payload: bytes) -> None:
    assert decode_message(STATUS, payload, NOW) == Decoded([], [], [])


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"ONLINE", "bad_json"),
        (b"landed", "bad_json"),
        (b'{"v":1,"state":"sleeping"}', "out_of_range"),
        (b'{"v":1}', "missing_key"),
        (b'{"v":1,"state":1}', "wrong_type"),
        (b'{"v":3,"state":"online"}', "unsupported_version"),
        (b'{"v":1,"state":"online","ts":"soon"}', "bad_timestamp"),
        (b'{"v":1,"state":"online","drone":"d-08"}', "drone_mismatch"),
        (b'["online"]', "not_an_object"),
    ],
)
def test_an_invalid_status_is_rejected_with_its_reason(payload: bytes, reason: str) -> None:
    assert rejection_of(decode_message(STATUS, payload, NOW)) == reason


def test_encode_status_refuses_unknown_states() -> None:
    with pytest.raises(ValueError, match="'asleep'"):
        encode_status("asleep")
