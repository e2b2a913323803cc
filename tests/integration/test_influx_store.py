"""InfluxStore against a real influxd: errors, outages, retries, database creation, escaping."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from storage.contract import StoreDataError, StoreUnavailableError
from storage.influx import InfluxStore, RetryPolicy
from storage.records import DroneLastSeen, Sample
from tests.servers import Influxd

pytestmark = pytest.mark.integration

T0 = 1_700_000_000_000
ALL_TIME = (0, 2**62)
FAST_RETRY = RetryPolicy(attempts=3, initial_s=0.01, max_s=0.02)


class CountingTransport(httpx.HTTPTransport):
    """A real HTTP transport that counts the requests it sends, by path."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return super().handle_request(request)


@pytest.fixture
def database() -> str:
    return f"it_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store(influxd: Influxd, database: str) -> Iterator[InfluxStore]:
    with InfluxStore.open(influxd.url, database, retry=FAST_RETRY) as s:
        yield s
        s.drop_database()


def sample(ts_ms: int = T0, coop: str = "htx", drone: str = "dt-01", seq: int = 1) -> Sample:
    return Sample(
        coop, drone, ts_ms, 21.08, 106.52, spraying=True, seq=seq, alt_m=3.0, fix="rtk_fixed"
    )


def databases(url: str) -> list[str]:
    body = httpx.get(f"{url}/query", params={"q": "SHOW DATABASES"}).json()
    return [row[0] for row in body["results"][0]["series"][0].get("values", [])]


def test_open_creates_a_missing_database_and_is_idempotent(influxd: Influxd, database: str) -> None:
    assert database not in databases(influxd.url)
    with InfluxStore.open(influxd.url, database) as store:
        assert database in databases(influxd.url)
        store.write_samples([sample()])
        store.ensure_database()
        assert store.drone_samples("htx", "dt-01", *ALL_TIME) == [sample()]
        store.drop_database()
    assert database not in databases(influxd.url)


def test_writing_to_a_missing_database_says_so_and_is_retryable(influxd: Influxd) -> None:
    with InfluxStore(influxd.url, "never_created", retry=FAST_RETRY) as store:
        with pytest.raises(StoreUnavailableError, match="database not found"):
            store.write_samples([sample()])
        with pytest.raises(StoreUnavailableError, match="database not found"):
            store.drone_samples("htx", "dt-01", *ALL_TIME)


def test_field_type_conflict_is_a_data_error_with_influx_text_and_is_not_retried(
    influxd: Influxd, database: str
) -> None:
    transport = CountingTransport()
    with InfluxStore.open(influxd.url, database, retry=FAST_RETRY, transport=transport) as store:
        # Field types are fixed per shard: a float ``seq`` an instant earlier, same shard.
        line = f"telemetry,coop=htx,drone=dt-01 lat=1.0,lon=2.0,spraying=true,seq=1.5 {T0 - 1}"
        conflict = httpx.post(
            f"{influxd.url}/write",
            params={"db": database, "precision": "ms"},
            content=line.encode(),
        )
        assert conflict.status_code == 204
        transport.paths.clear()
        with pytest.raises(StoreDataError, match="field type conflict"):
            store.write_samples([sample()])
        assert transport.paths == ["/write"]
        store.drop_database()


def test_unrepresentable_values_are_refused_before_sending(store: InfluxStore) -> None:
    with pytest.raises(StoreDataError, match=r"drone 'dt\\n01'.*newlines"):
        store.write_samples([sample(drone="dt\n01")])
    with pytest.raises(StoreDataError, match="seq: 9223372036854775808"):
        store.write_samples([sample(seq=2**63)])


def test_tag_values_with_separators_round_trip(store: InfluxStore) -> None:
    coop, drone = "htx, đông=triều", "dt 01,=x\\y\\\\z"
    store.write_samples([sample(coop=coop, drone=drone)])
    assert store.drone_samples(coop, drone, *ALL_TIME) == [sample(coop=coop, drone=drone)]
    assert store.drones() == [DroneLastSeen(coop, drone, T0, 21.08, 106.52, None)]


def test_user_values_are_bound_not_spliced_into_influxql(store: InfluxStore) -> None:
    store.write_samples([sample(drone="dt-01"), sample(drone="dt-02")])
    injected = "dt-01' OR drone = 'dt-02"
    assert store.drone_samples("htx", injected, *ALL_TIME) == []
    assert store.drone_samples("htx", '" OR 1=1 --', *ALL_TIME) == []


def test_reads_merge_every_chunk(influxd: Influxd, store: InfluxStore) -> None:
    samples = [sample(T0 + i, seq=i) for i in range(50)]
    store.write_samples(samples)
    with InfluxStore(influxd.url, store.database, chunk_size=7) as small_chunks:
        assert small_chunks.drone_samples("htx", "dt-01", *ALL_TIME) == samples


def test_large_writes_go_in_batches_of_batch_lines(influxd: Influxd, store: InfluxStore) -> None:
    transport = CountingTransport()
    with InfluxStore(influxd.url, store.database, batch_lines=100, transport=transport) as s:
        s.write_samples([sample(T0 + i, seq=i) for i in range(250)])
        assert transport.paths == ["/write"] * 3
        assert len(s.drone_samples("htx", "dt-01", *ALL_TIME)) == 250


def test_stopped_server_raises_unavailable_and_a_retry_after_restart_succeeds(
    fresh_influxd: Influxd,
) -> None:
    with InfluxStore.open(fresh_influxd.url, "outage", retry=FAST_RETRY) as store:
        store.write_samples([sample(T0)])
        fresh_influxd.stop()
        with pytest.raises(StoreUnavailableError, match="after 3 attempts"):
            store.write_samples([sample(T0 + 1, seq=2)])
        with pytest.raises(StoreUnavailableError):
            store.ping()
        with pytest.raises(StoreUnavailableError):
            store.drones()
        fresh_influxd.start()
        store.write_samples([sample(T0 + 1, seq=2)])
        store.ping()
        got = store.drone_samples("htx", "dt-01", *ALL_TIME)
        assert got == [sample(T0), sample(T0 + 1, seq=2)]


def test_a_rewrite_that_omits_a_field_keeps_the_earlier_value(store: InfluxStore) -> None:
    """InfluxDB merges the fields of points with the same series and time (SQLite replaces).

    Harmless for at-least-once redelivery, where the rewrite carries the same fields.
    """
    store.write_samples([sample()])
    bare = Sample("htx", "dt-01", T0, 21.5, 106.5, spraying=False)
    store.write_samples([bare])
    [got] = store.drone_samples("htx", "dt-01", *ALL_TIME)
    assert (got.lat, got.spraying, got.alt_m, got.fix) == (21.5, False, 3.0, "rtk_fixed")
