"""The rejected-message log: one row per rejected message with the samples it lost, bounded
by age and by row count; old one-row-per-sample logs keep working."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest

from ingest.inbox import Inbox, Received
from ingest.metrics import IngestMetrics
from ingest.wire import encode_samples
from ingest.worker import BatchWriter, DecodedBatch, WriterConfig, decode_batch
from storage.contract import StoreDataError
from storage.metadata import MetadataDB, RejectedMessage
from storage.records import Event, Sample
from storage.sqlite import SqliteStore
from tests.integration.mqtt_helpers import sample_series

DAY_MS = 86_400_000
NOW_MS = 1_764_300_000_000
TOPIC = "agri/v1/htx-a/dt-01/telemetry"


def message(payload: bytes, topic: str = TOPIC, mid: int = 1) -> Received:
    return Received(1, mid, 1, topic, payload, NOW_MS)


def batch_payload(samples: Sequence[Sample], bad: dict[int, dict[str, object]]) -> bytes:
    """A batch of ``samples`` with the items at the given indexes changed as given."""
    doc = orjson.loads(encode_samples(samples))
    for i, change in bad.items():
        doc["samples"][i] |= change
    return orjson.dumps(doc)


def rejected_at(ms: int, n: int = 1) -> RejectedMessage:
    return RejectedMessage(ms, TOPIC, "out_of_range", f"row at {ms}", b"{}", count=n)


# --- one row per message -------------------------------------------------------------------


def test_a_batch_of_500_bad_samples_is_one_rejection_counting_500() -> None:
    samples = sample_series("htx-a", "dt-01", 500)
    payload = batch_payload(samples, {i: {"lat": 91.0} for i in range(500)})
    decoded = decode_batch([message(payload)])
    (row,) = decoded.rejected
    assert (row.reason, row.count, row.reasons) == ("out_of_range", 500, {"out_of_range": 500})
    assert row.detail.startswith("sample 0: lat 91")
    assert row.detail.endswith("(and 499 more)")
    assert len(row.payload_excerpt) == 1024
    assert decoded.samples == []


def test_valid_samples_beside_bad_ones_are_kept_and_the_bad_ones_counted_by_reason() -> None:
    samples = sample_series("htx-a", "dt-01", 6)
    payload = batch_payload(samples, {1: {"lat": 91.0}, 3: {"spraying": 1}, 4: {"lon": 200.0}})
    decoded = decode_batch([message(payload)])
    assert decoded.samples == [samples[0], samples[2], samples[5]]
    (row,) = decoded.rejected
    assert (row.reason, row.count) == ("out_of_range", 3)
    assert row.by_reason == {"out_of_range": 2, "wrong_type": 1}


def test_a_message_refused_whole_counts_one() -> None:
    decoded = decode_batch([message(b"{not json"), message(b"[]", mid=2)])
    assert [(r.reason, r.count) for r in decoded.rejected] == [
        ("bad_json", 1),
        ("not_an_object", 1),
    ]


def test_by_reason_must_add_up_to_the_count_and_hold_the_reason() -> None:
    with pytest.raises(ValueError, match="does not add up to 3"):
        RejectedMessage(NOW_MS, TOPIC, "a", "", b"", count=3, by_reason={"a": 1, "b": 1})
    with pytest.raises(ValueError, match="lacks the reason c"):
        RejectedMessage(NOW_MS, TOPIC, "c", "", b"", count=2, by_reason={"a": 1, "b": 1})


class RefusingStore(SqliteStore):
    """A real SQLite store that refuses samples at the given timestamps, as InfluxDB does
    when a field's type clashes."""

    def __init__(self, path: Path, refused_ts: set[int]) -> None:
        super().__init__(path)
        self.refused_ts = refused_ts

    def write_samples(self, samples: Sequence[Sample]) -> None:
        if any(s.ts_ms in self.refused_ts for s in samples):
            raise StoreDataError("field type conflict")
        super().write_samples(samples)

    def write_events(self, events: Sequence[Event]) -> None:
        super().write_events(events)


class Acker:
    def ack(self, messages: Sequence[Received]) -> int:
        return len(messages)


def writer(
    metadata: MetadataDB,
    store: SqliteStore,
    clock: list[float] | None = None,
    **config: float,
) -> BatchWriter:
    now = clock if clock is not None else [NOW_MS / 1000]
    return BatchWriter(
        Inbox(10, 10_000),
        store,
        metadata,
        Acker(),
        metrics=IngestMetrics(),
        config=WriterConfig(**config),  # type: ignore[arg-type]
        clock=lambda: now[0],
    )


def test_samples_the_store_refuses_make_one_row_per_drone(
    metadata: MetadataDB, tmp_path: Path
) -> None:
    a = sample_series("htx-a", "dt-01", 10)
    b = sample_series("htx-a", "dt-02", 10, t0_ms=NOW_MS + 60_000)
    refused = {a[2].ts_ms, a[7].ts_ms, b[4].ts_ms}
    with RefusingStore(tmp_path / "t.db", refused) as store:
        batch = DecodedBatch([*a, *b], [], [])
        writer(metadata, store)._write(batch)
        assert len(store.drone_samples("htx-a", "dt-01", 0, 2**62)) == 8
    rows = metadata.rejected_messages(0, 2**62)
    assert sorted((r.topic, r.reason, r.count) for r in rows) == [
        ("agri/v1/htx-a/dt-01/telemetry", "store_rejected", 2),
        ("agri/v1/htx-a/dt-02/telemetry", "store_rejected", 1),
    ]


# --- storage --------------------------------------------------------------------------------


def test_counts_and_reasons_are_stored_and_read_back(metadata: MetadataDB) -> None:
    mixed = RejectedMessage(
        NOW_MS,
        TOPIC,
        "out_of_range",
        "x",
        b"\xff",
        count=5,
        by_reason={"out_of_range": 3, "wrong_type": 2},
    )
    single = RejectedMessage(NOW_MS + 1, TOPIC, "bad_json", "y", b"{", count=1)
    batch = RejectedMessage(NOW_MS + 2, TOPIC, "out_of_range", "z", b"", count=500)
    metadata.record_rejections([mixed, single, batch])
    assert metadata.rejected_messages(0, 2**62) == [mixed, single, batch]
    assert metadata.rejected_counts() == {"bad_json": 1, "out_of_range": 503, "wrong_type": 2}
    assert metadata.rejected_rows() == 3


def test_long_topics_and_details_and_payloads_are_cut(metadata: MetadataDB) -> None:
    huge = RejectedMessage(NOW_MS, "t/" * 10_000, "bad_topic", "d" * 50_000, b"p" * 100_000)
    metadata.record_rejections([huge])
    (row,) = metadata.rejected_messages(0, 2**62)
    assert (len(row.topic), len(row.detail), len(row.payload_excerpt)) == (256, 1000, 1024)
    assert row.detail.endswith("…")


def test_the_row_cap_keeps_the_newest_rows_in_the_same_write(metadata: MetadataDB) -> None:
    for start in range(0, 30, 10):
        deleted = metadata.record_rejections(
            [rejected_at(NOW_MS + i) for i in range(start, start + 10)], max_rows=12
        )
        assert deleted == max(0, start + 10 - 12) - max(0, start - 12)
    kept = metadata.rejected_messages(0, 2**62)
    assert [r.received_ms - NOW_MS for r in kept] == list(range(18, 30))


def test_pruning_deletes_rows_older_than_the_cutoff(metadata: MetadataDB) -> None:
    metadata.record_rejections([rejected_at(NOW_MS - d * DAY_MS) for d in (40, 31, 30, 1)])
    assert metadata.prune_rejected(older_than_ms=NOW_MS - 30 * DAY_MS, max_rows=100) == 2
    left = [(NOW_MS - r.received_ms) // DAY_MS for r in metadata.rejected_messages(0, 2**62)]
    assert left == [30, 1]


def test_pruning_also_enforces_a_lowered_row_cap(metadata: MetadataDB) -> None:
    metadata.record_rejections([rejected_at(NOW_MS + i) for i in range(10)])
    assert metadata.prune_rejected(older_than_ms=0, max_rows=4) == 6
    assert [r.received_ms - NOW_MS for r in metadata.rejected_messages(0, 2**62)] == [6, 7, 8, 9]


OLD_SCHEMA = """
CREATE TABLE rejected_messages (
    id          INTEGER PRIMARY KEY,
    received_ms INTEGER NOT NULL,
    topic       TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    detail      TEXT    NOT NULL,
    payload     BLOB    NOT NULL
);
CREATE INDEX rejected_messages_by_time ON rejected_messages (received_ms);
INSERT INTO rejected_messages (received_ms, topic, reason, detail, payload)
VALUES (1764300000000, 'agri/v1/c/d/telemetry', 'out_of_range', 'sample 1: lat 91', X'7B7D'),
       (1764300000000, 'agri/v1/c/d/telemetry', 'out_of_range', 'sample 2: lat 92', X'7B7D'),
       (1764300000001, 'agri/v1/c/d/telemetry', 'bad_json', 'unterminated', X'7B');
"""


def test_a_log_of_one_row_per_sample_is_migrated_and_reads_as_counts_of_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_SCHEMA)
    conn.close()
    for _ in range(2):  # opening it again finds it migrated
        db = MetadataDB(path)
        rows = db.rejected_messages(0, 2**62)
        assert [(r.reason, r.count, r.reasons) for r in rows] == [
            ("out_of_range", 1, {"out_of_range": 1}),
            ("out_of_range", 1, {"out_of_range": 1}),
            ("bad_json", 1, {"bad_json": 1}),
        ]
        assert db.rejected_counts() == {"bad_json": 1, "out_of_range": 2}
        db.close()
    db = MetadataDB(path)
    db.record_rejections([rejected_at(NOW_MS + 5, n=500)], max_rows=3)
    assert [r.count for r in db.rejected_messages(0, 2**62)] == [1, 1, 500]
    db.close()


# --- the worker's retention -----------------------------------------------------------------


def test_the_worker_prunes_by_age_at_most_once_per_interval(
    metadata: MetadataDB, tmp_path: Path
) -> None:
    clock = [NOW_MS / 1000]
    with SqliteStore(tmp_path / "t.db") as store:
        w = writer(metadata, store, clock, rejected_days=30, prune_every_s=60.0)
        metadata.record_rejections([rejected_at(NOW_MS - 31 * DAY_MS), rejected_at(NOW_MS)])
        assert w.prune_if_due() == 1  # the first batch prunes at once
        clock[0] += 59
        metadata.record_rejections([rejected_at(NOW_MS - 40 * DAY_MS)])
        assert w.prune_if_due() == 0  # 59 s after the last prune
        clock[0] += 1
        assert w.prune_if_due() == 1
    assert [r.received_ms for r in metadata.rejected_messages(0, 2**62)] == [NOW_MS]


def test_the_worker_caps_the_rows_as_it_writes(metadata: MetadataDB, tmp_path: Path) -> None:
    samples = sample_series("htx-a", "dt-01", 5)
    bad = [
        message(batch_payload(samples, {i: {"lat": 91.0} for i in range(5)}), mid=m)
        for m in range(20)
    ]
    with SqliteStore(tmp_path / "t.db") as store:
        w = writer(metadata, store, rejected_max_rows=7)
        w._write(decode_batch(bad))
    assert metadata.rejected_rows() == 7
    assert metadata.rejected_counts() == {"out_of_range": 35}


def test_the_worker_defaults_keep_30_days_and_a_million_rows() -> None:
    config = WriterConfig()
    assert (config.rejected_days, config.rejected_max_rows) == (30, 1_000_000)
    assert dataclasses.replace(config, rejected_days=7).rejected_days == 7
