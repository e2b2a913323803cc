"""Run a simulated fleet against a broker: plan jobs, pace publishes, count what happened.

Simulated time advances at 1x (sample timestamps 1/rate apart); ``speedup`` only changes
how fast the publishes go out. Drones publish in parallel, merged in release order.
"""

from __future__ import annotations

import heapq
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ingest.mqtt import BrokerAddress
from simulators.faults import OutMessage, WireFaultCounts, apply_wire_faults
from simulators.fleet import (
    DroneSpec,
    FlightConfig,
    Intended,
    Job,
    assign_drones,
    drone_jobs,
    intended_answers,
)
from simulators.foreign_out import (
    MavlinkEncoder,
    dji_osd_messages,
    dji_serial,
    mavproxy_messages,
)
from simulators.geo import FieldSet, load_fields
from simulators.publisher import DroneLink, MqttProtocol
from simulators.track import TrackWriter
from simulators.udp_link import UdpLink
from simulators.wire_out import job_messages

#: What a simulated drone can speak: wire v1; MAVLink as MAVProxy's ``mqtt`` module
#: publishes it; raw MAVLink over UDP to a bridge; DJI Cloud API OSD.
SPEAKS: tuple[str, ...] = ("wire", "mavproxy", "mavlink-udp", "dji")
#: The autopilot of a MAVLink drone booted this long before the simulation starts.
BOOTED_BEFORE_MS = 600_000


@dataclass(frozen=True, slots=True)
class Speaker:
    """One simulated drone and the language it speaks (``udp_port`` for mavlink-udp)."""

    spec: DroneSpec
    speaks: str
    udp_port: int | None = None


def plan_speakers(
    specs: Sequence[DroneSpec], speaks: Sequence[str] = ("wire",), udp_base_port: int = 14550
) -> list[Speaker]:
    """Drone i speaks ``speaks[i % len(speaks)]``; the k-th mavlink-udp drone sends to
    ``udp_base_port + k`` (one bridge per drone)."""
    if not speaks:
        raise ValueError("speaks: name at least one of " + ", ".join(SPEAKS))
    for s in speaks:
        if s not in SPEAKS:
            raise ValueError(f"speaks {s!r}: choose from {', '.join(SPEAKS)}")
    out: list[Speaker] = []
    k = 0
    for i, spec in enumerate(specs):
        lang = speaks[i % len(speaks)]
        port = None
        if lang == "mavlink-udp":
            port, k = udp_base_port + k, k + 1
        out.append(Speaker(spec, lang, port))
    return out


def _job_out(
    speaker: Speaker, job: Job, batch: int, encoder: MavlinkEncoder | None
) -> list[OutMessage]:
    """A job's messages in the drone's language, in release order."""
    if speaker.speaks == "wire":
        return job_messages(job.samples, job.events, batch)
    if speaker.speaks == "dji":
        serial = dji_serial(job.coop, job.drone)
        return [
            OutMessage(r, t, p, 1) for r, t, p in dji_osd_messages(serial, job.samples, job.events)
        ]
    assert encoder is not None
    stream = encoder.job(job.samples, job.events)
    if speaker.speaks == "mavproxy":
        return [
            OutMessage(r, t, p, int(t.endswith("/GLOBAL_POSITION_INT")))
            for r, t, p in mavproxy_messages(job.coop, job.drone, stream)
        ]
    return [
        OutMessage(m.release_ms, "udp", encoder.pack(m), int(m.msgtype == "GLOBAL_POSITION_INT"))
        for m in stream
    ]


log = logging.getLogger(__name__)


@dataclass(slots=True)
class FleetStats:
    """What a run did: counts, simulated and wall time, the intended answers."""

    drones: int = 0
    jobs: int = 0
    samples: int = 0
    events: int = 0
    messages: int = 0
    sim_start_ms: int = 0
    sim_end_ms: int = 0
    wall_s: float = 0.0
    all_acknowledged: bool = True
    stopped: bool = False
    faults: WireFaultCounts = field(default_factory=WireFaultCounts)
    intended: list[Intended] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the operator."""
        f = self.faults
        sim_s = max(0, self.sim_end_ms - self.sim_start_ms) / 1000
        return (
            f"published {self.messages} messages ({self.samples} samples, {self.events} events) "
            f"from {self.drones} drones, {self.jobs} jobs, {sim_s:.0f} s simulated in "
            f"{self.wall_s:.1f} s; faults: dropped {f.dropped}, duplicated {f.duplicated}, "
            f"reordered {f.reordered}, delayed {f.delayed}"
            + ("" if self.all_acknowledged else "; SOME PUBLISHES UNACKNOWLEDGED")
            + ("; stopped early" if self.stopped else "")
        )


def fleet_messages(
    specs: Sequence[DroneSpec],
    config: FlightConfig,
    *,
    seed: int,
    start_ms: int,
    batch: int,
    until_ms: int | None = None,
    flights: int | None = None,
    stats: FleetStats | None = None,
    on_job: list[Job] | None = None,
    track: TrackWriter | None = None,
    speakers: Sequence[Speaker] | None = None,
) -> Iterator[tuple[int, int, OutMessage]]:
    """Every drone's messages merged by release time: (release_ms, drone index, message)."""
    stats = stats if stats is not None else FleetStats()
    langs = list(speakers) if speakers is not None else plan_speakers(specs)

    def stream(index: int, spec: DroneSpec) -> Iterator[tuple[int, int, int, OutMessage]]:
        rng = np.random.default_rng([seed, index, 1])
        n = 0
        speaker = langs[index]
        encoder = None
        if speaker.speaks in ("mavproxy", "mavlink-udp"):
            encoder = MavlinkEncoder(
                start_ms - BOOTED_BEFORE_MS, tank_capacity_l=config.tank_capacity_l
            )
        for job in drone_jobs(
            spec,
            config,
            seed=seed,
            index=index,
            start_ms=start_ms,
            until_ms=until_ms,
            flights=flights,
        ):
            stats.jobs += 1
            stats.samples += len(job.samples)
            stats.events += len(job.events)
            if job.samples:
                stats.sim_end_ms = max(stats.sim_end_ms, job.end_ms)
            if track is not None:
                track.write(job.samples)
            if on_job is not None:
                on_job.append(job)
            messages = _job_out(speaker, job, batch, encoder)
            for m in apply_wire_faults(messages, config.faults, rng, stats.faults):
                n += 1
                yield m.release_ms, index, n, m

    merged = heapq.merge(*(stream(i, s) for i, s in enumerate(specs)))
    for release, index, _n, message in merged:
        yield release, index, message


def _open_link(
    sp: Speaker, address: BrokerAddress, protocol: MqttProtocol, qos: int, udp_host: str
) -> DroneLink | UdpLink:
    if sp.udp_port is not None:
        return UdpLink(udp_host, sp.udp_port, sp.spec.coop, sp.spec.drone)
    if sp.speaks == "mavproxy":
        qos = 0  # MAVProxy's mqtt module publishes every message at QoS 0
    return DroneLink(address, sp.spec.coop, sp.spec.drone, protocol=protocol, qos=qos)


def run_fleet(
    mqtt_url: str,
    *,
    drones: int = 4,
    coop: str | None = None,
    fields: FieldSet | None = None,
    field_ids: Sequence[str] = (),
    config: FlightConfig | None = None,
    batch: int = 10,
    duration_s: float | None = None,
    flights: int | None = None,
    speedup: float = 1.0,
    seed: int = 0,
    qos: int = 1,
    protocol: MqttProtocol = "5",
    start_ms: int | None = None,
    stop: threading.Event | None = None,
    track_path: Path | None = None,
    collect_intended: bool = False,
    speaks: Sequence[str] = ("wire",),
    udp_host: str = "127.0.0.1",
    udp_base_port: int = 14550,
    pace: Callable[[int], None] | None = None,
) -> FleetStats:
    """Fly and publish a fleet until done, ``duration_s`` of simulated time, or ``stop``.

    Without ``duration_s`` and ``flights`` it runs until ``stop`` is set (the demo's way).
    ``speaks`` assigns languages to the drones in turn (``plan_speakers``); mavlink-udp
    drones send raw MAVLink to ``udp_host:udp_base_port + k`` instead of using MQTT.
    ``pace`` is called with the count published after each message and may block: flow
    control for a receiver the broker cannot slow down (the demo's backfill).
    """
    if speedup <= 0:
        raise ValueError(f"speedup {speedup}: must be > 0 (use inf for as fast as possible)")
    config = config or FlightConfig()
    fieldset = fields or load_fields()
    stop = stop or threading.Event()
    specs = assign_drones(fieldset, drones, coop, seed, field_ids)
    start = start_ms if start_ms is not None else int(time.time() * 1000)
    until = start + int(duration_s * 1000) if duration_s is not None else None
    stats = FleetStats(drones=len(specs), sim_start_ms=start, sim_end_ms=start)
    jobs: list[Job] | None = [] if collect_intended else None
    track = TrackWriter(track_path) if track_path is not None else None
    address = BrokerAddress.from_url(mqtt_url)
    speakers = plan_speakers(specs, speaks, udp_base_port)
    links: list[DroneLink | UdpLink] = []
    wall0 = time.monotonic()
    try:
        for sp in speakers:
            links.append(_open_link(sp, address, protocol, qos, udp_host))
            links[-1].status("online", start)
        messages = fleet_messages(
            specs,
            config,
            seed=seed,
            start_ms=start,
            batch=batch,
            until_ms=until,
            flights=flights,
            stats=stats,
            on_job=jobs,
            track=track,
            speakers=speakers,
        )
        for release, index, message in messages:
            if stop.is_set():
                stats.stopped = True
                break
            if math.isfinite(speedup):
                wait = wall0 + (release - start) / 1000 / speedup - time.monotonic()
                if wait > 0 and stop.wait(wait):
                    stats.stopped = True
                    break
            if links[index].publish(message.topic, message.payload, stop=stop):
                stats.messages += 1
                if pace is not None:
                    pace(stats.messages)
    finally:
        last = stats.sim_end_ms
        for link in links:
            stats.all_acknowledged = link.close(last) and stats.all_acknowledged
        if track is not None:
            track.close()
        stats.wall_s = time.monotonic() - wall0
    if jobs is not None:
        stats.intended = intended_answers(jobs, fieldset.no_spray, fieldset.fields)
    return stats
