"""The demo's backfill waits for the ingest worker instead of outrunning it."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from agridrone.demo import wait_for_ingest
from ingest.metrics import IngestMetrics


def test_waits_until_the_worker_has_acknowledged_all_but_the_window() -> None:
    metrics = IngestMetrics()
    metrics.messages_acked.inc(100)

    def worker() -> None:
        time.sleep(0.3)
        metrics.messages_acked.inc(400)

    thread = threading.Thread(target=worker)
    thread.start()
    wait_for_ingest(metrics, published=1_000, window=500, wait_s=30)
    assert metrics.value("agridrone_ingest_messages_acked_total") == 500
    thread.join()


def test_does_not_wait_while_the_worker_is_within_the_window() -> None:
    metrics = IngestMetrics()
    metrics.messages_acked.inc(600)
    started = time.monotonic()
    wait_for_ingest(metrics, published=1_000, window=500, wait_s=30)
    assert time.monotonic() - started < 1


def test_a_worker_that_never_catches_up_is_reported_not_waited_for(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = IngestMetrics()
    with caplog.at_level(logging.WARNING, logger="agridrone.demo"):
        wait_for_ingest(metrics, published=1_000, window=0, wait_s=0.1)
    assert "backfill_ingest_behind published=1000 acked=0" in caplog.text
