"""MAVProxy and DJI Cloud API messages in the ingest worker: the live I/O edge of ``adapters``.

The worker subscribes to MAVProxy's topics (``agri/mavlink/{coop}/{drone}/{MSGTYPE}``) and
DJI's OSD (``thing/product/{sn}/osd``) beside wire v1. Those messages go through the same
inbox as wire v1; the decoder thread hands them to ``ForeignTelemetry``, which feeds them
to the pure translators (one MAVLink translator per drone, one DJI translator, keeping their
state between batches) and turns what comes out into wire-v1 messages that the ordinary
decoder then validates, batches and stores. Nothing here touches the store, and nothing
runs on the MQTT thread.

Rejections go to the rejected log like wire v1's, with two kinds throttled, as they come
from one drone or device continuously: positions without a GNSS fix (``no_fix``, one drone
sitting on the ground) and unknown DJI serials (``unknown_device``) or unregistered MAVProxy
drones (``unknown_drone``). The first of a run is one row at once; the rest of the run are
counted and written as one more row when the run ends (a fix again, the window over, or
the worker stopping), so the rejected log's counts stay exact.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

import orjson

from adapters._common import NO_FIX, UNKNOWN_DEVICE, AdapterRejection, ConfigError, Translation
from adapters.dji import DjiDrone, DjiTranslator, parse_topic
from adapters.mavlink import (
    MavlinkCounts,
    MavlinkDrone,
    MavlinkTranslator,
    MavproxyTopics,
    parse_spray_rules,
)
from ingest.inbox import Received
from ingest.metrics import IngestMetrics
from ingest.wire import EXCERPT_BYTES, MAX_BATCH_SAMPLES, event_topic, telemetry_topic
from ingest.worker import merge_rejections
from storage.contract import StoreUnavailableError
from storage.drones import DroneRecord, validate_dji_sn
from storage.metadata import RejectedMessage

log = logging.getLogger(__name__)

DEFAULT_MAVPROXY_PREFIX: Final = "agri/mavlink/{coop}/{drone}"
DEFAULT_DJI_TOPIC: Final = "thing/product/+/osd"
#: Reason of a MAVProxy message of a drone not in the registry (when it is enforced).
UNKNOWN_DRONE: Final = "unknown_drone"
MAVPROXY: Final = "mavproxy"
DJI: Final = "dji"


@dataclass(frozen=True, slots=True)
class ForeignConfig:
    """Which foreign sources the worker takes, and how their rejections are throttled.

    ``mavproxy_prefix``: what ground stations give ``mqtt set prefix``, with ``{coop}`` and
    ``{drone}`` (None: no MAVProxy). ``dji_topic``: the DJI topic filter (None: no DJI).
    """

    mavproxy_prefix: str | None = DEFAULT_MAVPROXY_PREFIX
    dji_topic: str | None = DEFAULT_DJI_TOPIC
    #: MAVProxy messages of drones not in the registry are refused (``unknown_drone``).
    require_registered: bool = False
    #: Only these cooperatives' drones (None: all).
    coops: frozenset[str] | None = None
    #: A run of no-fix positions is written as at most two rows per this many ms.
    no_fix_window_ms: int = 600_000
    #: An unknown DJI serial (or unregistered MAVProxy drone) is one row per window.
    unknown_window_ms: int = 3_600_000
    #: The registry is re-read this often, and at most once a second on a miss.
    refresh_s: float = 30.0
    miss_refresh_s: float = 1.0

    def __post_init__(self) -> None:
        if self.mavproxy_prefix is not None:
            topics = MavproxyTopics(self.mavproxy_prefix)  # ConfigError if malformed
            if topics.subscription.startswith("agri/v1/"):
                raise ConfigError(
                    f"MAVProxy prefix {self.mavproxy_prefix!r} lies in wire v1's agri/v1/ tree"
                )
        if self.dji_topic is not None and not self.dji_topic.startswith("thing/product/"):
            raise ConfigError(f"DJI topic filter {self.dji_topic!r} is not thing/product/...")

    def subscriptions(self) -> list[str]:
        """The topic filters to subscribe to (never shared: translation keeps per-drone state,
        so one worker must see all of a drone's messages)."""
        out: list[str] = []
        if self.mavproxy_prefix is not None:
            topics = MavproxyTopics(self.mavproxy_prefix)
            if self.coops and "{coop}" in self.mavproxy_prefix:
                pattern = self.mavproxy_prefix
                out += [
                    MavproxyTopics(pattern.replace("{coop}", c), coop=c).subscription
                    for c in sorted(self.coops)
                ]
            else:
                out.append(topics.subscription)
        if self.dji_topic is not None:
            out.append(self.dji_topic)
        return out


def mavlink_drone(record: DroneRecord) -> MavlinkDrone:
    """How the worker translates a registered drone's MAVLink; ``ConfigError`` if its stored
    settings cannot be used."""
    return MavlinkDrone(
        record.coop,
        record.drone,
        parse_spray_rules(record.mavlink_spray or ""),
        record.mavlink_flow_battery,
        record.tank_capacity_l,
    )


@dataclass(slots=True)
class _Run:
    """A throttled run of one rejection reason from one drone or device."""

    opened_ms: int
    topic: str
    detail: str
    last_ms: int
    suppressed: int = 0


@dataclass(slots=True)
class Throttle:
    """First rejection of a run written at once, the rest counted into one closing row."""

    reason: str
    window_ms: int
    what: str  # e.g. "positions without a GNSS fix"
    runs: dict[str, _Run] = field(default_factory=dict)
    #: Runs opened over the worker's life, by key (the log says the first once per key).
    seen: set[str] = field(default_factory=set)

    def hit(self, key: str, r: RejectedMessage) -> list[RejectedMessage]:
        """One rejection; the rows to write now."""
        out: list[RejectedMessage] = []
        run = self.runs.get(key)
        if run is not None and r.received_ms - run.opened_ms < self.window_ms:
            run.suppressed += r.count
            run.last_ms = r.received_ms
            return out
        if run is not None:
            out += self.close(key)
        self.runs[key] = _Run(r.received_ms, r.topic, r.detail, r.received_ms)
        if key not in self.seen:
            self.seen.add(key)
            log.warning(
                "foreign_rejected reason=%s key=%s detail=%r note=later ones are counted"
                " into one row per run (window %d s), not logged one by one",
                self.reason,
                key,
                r.detail,
                self.window_ms // 1000,
            )
        out.append(r)
        return out

    def close(self, key: str) -> list[RejectedMessage]:
        """End ``key``'s run: a row counting what was held back, if anything was."""
        run = self.runs.pop(key, None)
        if run is None or run.suppressed == 0:
            return []
        detail = (
            f"{run.suppressed} more {self.what} of this run after the first (received"
            f" {run.opened_ms}..{run.last_ms} ms), counted here rather than one row each;"
            f" the first was: {run.detail}"
        )
        return [RejectedMessage(run.last_ms, run.topic, self.reason, detail, b"", run.suppressed)]

    def expire(self, now_ms: int) -> list[RejectedMessage]:
        """Close the runs whose window is over by ``now_ms``."""
        old = [k for k, run in self.runs.items() if now_ms - run.opened_ms >= self.window_ms]
        return [row for k in old for row in self.close(k)]

    def close_all(self) -> list[RejectedMessage]:
        """Close every run (the worker stops)."""
        return [row for k in list(self.runs) for row in self.close(k)]


@dataclass
class Translated:
    """What a batch of foreign messages became: wire-v1 messages and rejection rows."""

    messages: list[Received] = field(default_factory=list)
    rejected: list[RejectedMessage] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.messages or self.rejected)


class ForeignTelemetry:
    """MAVProxy and DJI messages to wire-v1 messages, with each drone's translator state.

    Used by the worker's decoder thread only (not thread-safe). ``load`` reads the drone
    registry (``MetadataDB.drones``).
    """

    def __init__(
        self,
        config: ForeignConfig,
        load: Callable[[], list[DroneRecord]],
        metrics: IngestMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._load = load
        self.metrics = metrics
        self._clock = clock
        self._topics = (
            MavproxyTopics(config.mavproxy_prefix) if config.mavproxy_prefix is not None else None
        )
        self._dji = DjiTranslator({})
        self._drones: dict[tuple[str, str], MavlinkDrone] = {}
        self._translators: dict[tuple[str, str], MavlinkTranslator] = {}
        self._reported: dict[tuple[str, str], MavlinkCounts] = {}
        self._loaded_at = float("-inf")
        self._no_fix = Throttle(NO_FIX, config.no_fix_window_ms, "positions without a GNSS fix")
        self._unknown = Throttle(
            UNKNOWN_DEVICE, config.unknown_window_ms, "messages of this unknown device"
        )
        self._unregistered = Throttle(
            UNKNOWN_DRONE, config.unknown_window_ms, "messages of this unregistered drone"
        )
        self._bad_settings: set[tuple[str, str]] = set()

    @staticmethod
    def handles(topic: str) -> bool:
        """Whether ``topic`` is foreign (everything outside wire v1's tree)."""
        return not topic.startswith("agri/v1/")

    # --- the registry -----------------------------------------------------------------------

    def _refresh(self, *, miss: bool) -> None:
        now = self._clock()
        age = now - self._loaded_at
        if age < (self.config.miss_refresh_s if miss else self.config.refresh_s):
            return
        self._loaded_at = now
        try:
            records = self._load()
        except StoreUnavailableError as exc:  # keep the maps we have; ingest goes on
            log.warning("drone_registry_unavailable error=%r note=retried later", str(exc))
            return
        drones: dict[tuple[str, str], MavlinkDrone] = {}
        devices: dict[str, DjiDrone] = {}
        for record in records:
            key = (record.coop, record.drone)
            try:
                drones[key] = mavlink_drone(record)
                if record.dji_sn is not None and validate_dji_sn(record.dji_sn) is None:
                    devices[record.dji_sn] = DjiDrone(
                        record.coop, record.drone, record.dji_spraying
                    )
            except ConfigError as exc:  # stored by an older release, or edited by hand
                if key not in self._bad_settings:
                    self._bad_settings.add(key)
                    log.warning(
                        "drone_settings_unusable coop=%s drone=%s error=%r"
                        " note=translated without a spray rule until fixed (agridrone drones set)",
                        record.coop,
                        record.drone,
                        str(exc),
                    )
                with contextlib.suppress(ConfigError):  # ids the wire refuses: none at all
                    drones[key] = MavlinkDrone(record.coop, record.drone)
        self._drones = drones
        self._dji.set_devices(devices)
        for key, translator in self._translators.items():
            new = drones.get(key)
            if new is not None and new != translator.drone:
                translator.drone = new  # settings changed: keep the stream's state

    # --- translation ------------------------------------------------------------------------

    def translate(self, batch: Sequence[Received]) -> tuple[list[Received], list[RejectedMessage]]:
        """Wire-v1 messages of ``batch`` as they are, foreign ones translated, in order."""
        self._refresh(miss=False)
        out = Translated()
        touched: set[tuple[str, str]] = set()
        for msg in batch:
            if not self.handles(msg.topic):
                out.messages.append(msg)
                continue
            try:
                if msg.topic.startswith("thing/product/"):
                    self._dji_message(msg, out)
                else:
                    key = self._mavproxy_message(msg, out)
                    if key is not None:
                        touched.add(key)
            except Exception as exc:  # a bug here must not stop ingest: reject the message
                log.exception("foreign_translation_failed topic=%s", msg.topic)
                detail = f"translation failed: {type(exc).__name__}: {exc}"[:300]
                out.rejected.append(_row(msg, "internal_error", detail))
        self._report_counts(touched)
        return out.messages, out.rejected

    def tick(self, now_ms: int | None = None) -> Translated:
        """Release MAVLink samples held too long for a SYSTEM_TIME and close throttle runs
        whose window is over: call when the inbox is idle (nothing else would)."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        out = Translated()
        for key, translator in self._translators.items():
            self._emit(
                key, translator.release_stale(now_ms), now_ms, topic="", payload=b"", out=out
            )
        for throttle in (self._no_fix, self._unknown, self._unregistered):
            out.rejected += throttle.expire(now_ms)
        self._report_counts(set(self._translators))
        return out

    def flush(self, now_ms: int | None = None) -> Translated:
        """Release everything held and close every run (the worker stops)."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        out = Translated()
        for key, translator in self._translators.items():
            self._emit(key, translator.flush(), now_ms, topic="", payload=b"", out=out)
        for throttle in (self._no_fix, self._unknown, self._unregistered):
            out.rejected += throttle.close_all()
        self._report_counts(set(self._translators))
        return out

    def _mavproxy_message(self, msg: Received, out: Translated) -> tuple[str, str] | None:
        if self._topics is None:
            out.rejected.append(_row(msg, "bad_topic", "MAVProxy topics are switched off"))
            return None
        parsed = self._topics.parse(msg.topic)
        if isinstance(parsed, AdapterRejection):
            out.rejected.append(_rejection_row(msg, parsed))
            return None
        key = (parsed.coop, parsed.drone)
        if self.config.coops is not None and parsed.coop not in self.config.coops:
            return None
        translator = self._translators.get(key)
        if translator is None:
            drone = self._drones.get(key)
            if drone is None:
                self._refresh(miss=True)
                drone = self._drones.get(key)
            if drone is None and self.config.require_registered:
                row = _row(
                    msg,
                    UNKNOWN_DRONE,
                    f"drone {parsed.coop}/{parsed.drone} is not registered"
                    " (register it: agridrone drones add ... --mavlink-spray RULE)",
                )
                out.rejected += self._unregistered.hit(f"{parsed.coop}/{parsed.drone}", row)
                return None
            translator = MavlinkTranslator(drone or MavlinkDrone(parsed.coop, parsed.drone))
            self._translators[key] = translator
        if self.metrics is not None:
            self.metrics.foreign_messages.labels(MAVPROXY).inc()
        result = translator.feed_payload(parsed.msgtype, msg.payload, msg.received_ms)
        self._emit(key, result, msg.received_ms, topic=msg.topic, payload=msg.payload, out=out)
        return key

    def _dji_message(self, msg: Received, out: Translated) -> None:
        topic = parse_topic(msg.topic)
        if isinstance(topic, AdapterRejection):
            out.rejected.append(_rejection_row(msg, topic))
            return
        if self._dji.device(topic.serial) is None:
            self._refresh(miss=True)
        result = self._dji.feed(msg.topic, msg.payload, msg.received_ms)
        if self.metrics is not None:
            self.metrics.foreign_messages.labels(DJI).inc()
        drone = result.drone
        if drone is None:
            for r in result.translation.rejections:
                row = _rejection_row(msg, r)
                if r.reason == UNKNOWN_DEVICE:
                    out.rejected += self._unknown.hit(topic.serial, row)
                else:
                    out.rejected.append(row)
            return
        if self.config.coops is not None and drone.coop not in self.config.coops:
            return
        key = (drone.coop, drone.drone)
        self._emit(
            key, result.translation, msg.received_ms, topic=msg.topic, payload=msg.payload, out=out
        )

    def _emit(
        self,
        key: tuple[str, str],
        result: Translation,
        received_ms: int,
        *,
        topic: str,
        payload: bytes,
        out: Translated,
    ) -> None:
        """A translation as wire-v1 messages and rejection rows."""
        coop, drone = key
        name = f"{coop}/{drone}"
        if result.samples:
            out.rejected += self._no_fix.close(name)  # a fix again: the run is over
            samples = list(result.samples)
            for i in range(0, len(samples), MAX_BATCH_SAMPLES):
                chunk = samples[i : i + MAX_BATCH_SAMPLES]
                payload_v1 = orjson.dumps({"v": 1, "samples": chunk})
                out.messages.append(_wire(telemetry_topic(coop, drone), payload_v1, received_ms))
        for event in result.events:
            out.messages.append(_wire(event_topic(coop, drone), orjson.dumps(event), received_ms))
        plain: list[RejectedMessage] = []
        for r in result.rejections:
            row = RejectedMessage(
                received_ms,
                topic or f"agri/mavlink/{coop}/{drone}",
                r.reason,
                r.detail,
                r.excerpt or payload[:EXCERPT_BYTES],
            )
            if r.reason == NO_FIX:
                out.rejected += self._no_fix.hit(name, row)
            else:
                plain.append(row)
        if plain:
            out.rejected.append(merge_rejections(plain))
        for notice in result.notices:
            log.info("foreign_notice coop=%s drone=%s notice=%r", coop, drone, notice)

    def _report_counts(self, keys: Iterable[tuple[str, str]]) -> None:
        """Add what the touched translators counted since last time to the metrics."""
        if self.metrics is None:
            return
        m = self.metrics
        for key in keys:
            translator = self._translators.get(key)
            if translator is None:
                continue
            now = translator.counts
            before = self._reported.get(key) or MavlinkCounts()
            self._reported[key] = now
            gaps = now.position_gaps - before.position_gaps
            missing = now.positions_missing - before.positions_missing
            if gaps:
                m.mavlink_position_gaps.inc(gaps)
                m.mavlink_positions_missing.inc(missing)
                log.info(
                    "mavlink_position_gaps coop=%s drone=%s gaps=%d positions_missing=%d"
                    " total_gaps=%d",
                    key[0],
                    key[1],
                    gaps,
                    missing,
                    now.position_gaps,
                )
            timed = now.timed_by_receive - before.timed_by_receive
            if timed:
                m.mavlink_timed_by_receive.inc(timed)

    def counts(self, coop: str, drone: str) -> MavlinkCounts | None:
        """A drone's MAVLink translator counts (None if it sent nothing yet)."""
        translator = self._translators.get((coop, drone))
        return None if translator is None else translator.counts


def _wire(topic: str, payload: bytes, received_ms: int) -> Received:
    """A translated message for the decoder: never acknowledged itself (the foreign message
    it came from is, with its batch)."""
    return Received(-1, 0, 0, topic, payload, received_ms)


def _row(msg: Received, reason: str, detail: str) -> RejectedMessage:
    return RejectedMessage(msg.received_ms, msg.topic, reason, detail, msg.payload[:EXCERPT_BYTES])


def _rejection_row(msg: Received, r: AdapterRejection) -> RejectedMessage:
    excerpt = r.excerpt or msg.payload[:EXCERPT_BYTES]
    return RejectedMessage(msg.received_ms, msg.topic, r.reason, r.detail, excerpt)
