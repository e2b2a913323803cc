"""The inbox between the MQTT thread and the writer is bounded by count and by bytes."""

from __future__ import annotations

import threading

from ingest.inbox import Inbox, Received


def message(mid: int, size: int = 1) -> Received:
    return Received(1, mid, 1, "agri/v1/c/d/telemetry", b"x" * size, 0)


def test_put_fails_when_the_message_count_bound_is_reached() -> None:
    inbox = Inbox(max_messages=3, max_bytes=10**6)
    assert all(inbox.put(message(i), timeout=0.01) for i in range(3))
    assert not inbox.put(message(3), timeout=0.01)
    assert len(inbox) == 3


def test_put_fails_when_the_byte_bound_is_reached() -> None:
    inbox = Inbox(max_messages=100, max_bytes=10)
    assert inbox.put(message(0, size=6), timeout=0.01)
    assert not inbox.put(message(1, size=6), timeout=0.01)
    assert inbox.bytes == 6


def test_an_oversized_message_still_enters_an_empty_inbox() -> None:
    inbox = Inbox(max_messages=100, max_bytes=10)
    assert inbox.put(message(0, size=50), timeout=0.01)


def test_take_returns_messages_in_arrival_order_up_to_the_limit() -> None:
    inbox = Inbox()
    for i in range(5):
        inbox.put(message(i), timeout=0.01)
    assert [m.mid for m in inbox.take(3, wait=0.01)] == [0, 1, 2]
    assert [m.mid for m in inbox.take(3, wait=0.01)] == [3, 4]
    assert inbox.bytes == 0


def test_take_on_an_empty_inbox_returns_nothing_after_waiting() -> None:
    assert Inbox().take(10, wait=0.01) == []


def test_taking_makes_room_for_a_blocked_put() -> None:
    inbox = Inbox(max_messages=1, max_bytes=100)
    inbox.put(message(0), timeout=0.01)
    result: list[bool] = []
    putter = threading.Thread(target=lambda: result.append(inbox.put(message(1), timeout=5)))
    putter.start()
    inbox.take(1, wait=0.01)
    putter.join(5)
    assert result == [True]
    assert [m.mid for m in inbox.take(1, wait=0.01)] == [1]


def test_take_stops_at_the_byte_budget_but_always_takes_one() -> None:
    inbox = Inbox()
    for i in range(4):
        inbox.put(message(i, size=40), timeout=0.01)
    assert [m.mid for m in inbox.take(10, wait=0.01, max_bytes=100)] == [0, 1, 2]
    assert [m.mid for m in inbox.take(10, wait=0.01, max_bytes=1)] == [3]


def test_put_many_takes_what_fits_in_order_and_says_how_many() -> None:
    inbox = Inbox(max_messages=3, max_bytes=10**6)
    assert inbox.put_many([message(i) for i in range(5)], timeout=0.01) == 3
    assert [m.mid for m in inbox.take(10, wait=0.01)] == [0, 1, 2]


def test_put_many_waits_for_room_the_writer_makes() -> None:
    inbox = Inbox(max_messages=2, max_bytes=10**6)
    taken: list[int] = []

    def writer() -> None:
        while len(taken) < 6:
            taken.extend(m.mid for m in inbox.take(2, wait=1.0))

    thread = threading.Thread(target=writer)
    thread.start()
    assert inbox.put_many([message(i) for i in range(6)], timeout=5.0) == 6
    thread.join(5.0)
    assert taken == [0, 1, 2, 3, 4, 5]
