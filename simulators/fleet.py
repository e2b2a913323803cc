"""Spraying missions over plots, as pure functions: a field and a seed in, samples out.

A job on one field: take off at the field edge, climb to 2.5-3.5 m, fly boustrophedon
passes along the field's main axis spaced at the swath, sprayer on only over the field,
return to the take-off point whenever the tank runs dry or the battery reaches its
reserve (refill, battery swap, events), resume where spraying stopped, land. Positions
are planned in a local metric frame; the published samples carry GNSS noise of the
configured fix. Every job also keeps its noise-free *truth*, from which the intended
coverage answer is computed with the coverage definitions of docs/coverage.md.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.affinity import rotate
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box
from shapely.ops import nearest_points

from ingest.jumps import distance_m
from simulators.faults import CLOGGED_FLOW_FACTOR, Faults
from simulators.geo import FieldSet, FloatArray, LocalFrame, SimField, frame_for
from storage.records import Event, Sample

Gnss = Literal["rtk", "gnss"]

#: Horizontal 1-sigma position error per axis and its correlation time, by receiver.
GNSS_DEFAULTS: Final[dict[str, tuple[float, float, str]]] = {
    "rtk": (0.02, 1.0, "rtk_fixed"),
    "gnss": (1.5, 10.0, "3d"),
}
#: Gaps (time) after which the coverage engine stops joining samples into one pass.
ENGINE_GAP_S: Final = 2.0


@dataclass(frozen=True, slots=True)
class FlightConfig:
    """How the drones fly and spray; defaults are a typical 35 L spraying drone."""

    rate_hz: float = 10.0
    speed_mps: float = 6.0
    turn_speed_mps: float = 2.5
    transit_speed_mps: float = 7.0
    climb_mps: float = 1.5
    altitude_m: tuple[float, float] = (2.5, 3.5)
    swath_m: float = 5.0
    spacing_error: float = 0.0
    flow_lpm: float = 6.0
    tank_capacity_l: float = 35.0
    battery_base_pct_s: float = 0.10
    battery_load_pct_s_per_l: float = 0.003
    battery_reserve_pct: float = 25.0
    battery_swap_below_pct: float = 60.0
    ground_s: tuple[float, float] = (60.0, 120.0)
    ferry_s: tuple[float, float] = (120.0, 300.0)
    #: The drone is carried between plots (motorbike or truck on the dyke roads): a ferry
    #: takes at least the distance at this speed, whatever ``ferry_s`` draws.
    ferry_speed_mps: float = 8.0
    gnss: Gnss = "rtk"
    gnss_sigma_m: float | None = None
    gnss_tau_s: float | None = None
    faults: Faults = field(default_factory=Faults)
    #: What each ``job_start`` announces for the spray diary (docs/diary.md, "Jobs"): a
    #: product id of the drone's cooperative and the planned dose. Either one also gives
    #: the job an id (``j-<start ms>``; details of a job without one are not recorded) and
    #: has its ``job_end`` name it. ``None``: the job_start names its field only.
    product: str | None = None
    dose_l_per_ha: float | None = None

    def __post_init__(self) -> None:
        checks = {
            "rate_hz": 0 < self.rate_hz <= 50,
            "speed_mps": 0 < self.speed_mps <= 20,
            "ferry_speed_mps": 0 < self.ferry_speed_mps <= 30,
            "swath_m": 0 < self.swath_m <= 30,
            "spacing_error": -0.9 < self.spacing_error < 2,
            "flow_lpm": 0 < self.flow_lpm <= 60,
            "tank_capacity_l": self.tank_capacity_l > self.flow_lpm / 60 / self.rate_hz,
            "battery_reserve_pct": 0 <= self.battery_reserve_pct < 90,
            "gnss": self.gnss in GNSS_DEFAULTS,
            "dose_l_per_ha": self.dose_l_per_ha is None or 0 < self.dose_l_per_ha <= 500,
            "product": self.product is None or bool(self.product.strip()),
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            values = ", ".join(f"{k}={getattr(self, k)!r}" for k in bad)
            raise ValueError(f"flight config out of range: {values}")

    @property
    def dt_ms(self) -> int:
        """Sample interval in whole milliseconds."""
        return max(1, round(1000 / self.rate_hz))

    @property
    def spacing_m(self) -> float:
        """Distance between neighbouring pass lines."""
        return self.swath_m * (1 + self.spacing_error)

    def job_details(self, start_ms: int) -> dict[str, Any]:
        """What a job starting at ``start_ms`` announces besides its field: its id, product
        and dose when the config names a product or a dose, else nothing."""
        details: dict[str, Any] = {}
        if self.product is not None:
            details["product"] = self.product
        if self.dose_l_per_ha is not None:
            details["dose_l_per_ha"] = self.dose_l_per_ha
        return {"job": f"j-{start_ms}", **details} if details else {}

    def noise(self) -> tuple[float, float, str]:
        """(sigma per axis in m, correlation time in s, wire ``fix``) of the receiver."""
        sigma, tau, fix = GNSS_DEFAULTS[self.gnss]
        return (
            sigma if self.gnss_sigma_m is None else self.gnss_sigma_m,
            tau if self.gnss_tau_s is None else self.gnss_tau_s,
            fix,
        )


@dataclass(frozen=True, slots=True)
class Leg:
    """A piece of route in local metres, flown at one speed with the sprayer on or off."""

    pts: FloatArray
    speed_mps: float
    spray: bool = False
    flow_factor: float = 1.0
    pass_index: int = -1


@dataclass(frozen=True, slots=True)
class Route:
    """The planned job: take-off point, legs in order, and what the plan left out."""

    home: tuple[float, float]
    legs: tuple[Leg, ...]
    axis_deg: float
    pass_lines: int
    missed_strips: tuple[int, ...]
    clogged_passes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Truth:
    """Noise-free flown positions (field-local metres) with what the sprayer did."""

    ts_ms: NDArray[np.int64]
    x: FloatArray
    y: FloatArray
    spraying: NDArray[np.bool_]
    flow_lpm: FloatArray
    swath_m: float

    def until(self, end_ms: int) -> Truth:
        """The part before ``end_ms``."""
        keep: NDArray[np.bool_] = np.less(self.ts_ms, end_ms)
        return Truth(
            self.ts_ms[keep],
            self.x[keep],
            self.y[keep],
            self.spraying[keep],
            self.flow_lpm[keep],
            self.swath_m,
        )


@dataclass(frozen=True, slots=True)
class Job:
    """One drone's job on one field: what it published and what truly happened."""

    field: SimField
    coop: str
    drone: str
    samples: list[Sample]
    events: list[Event]
    truth: Truth
    route: Route
    gnss_sigma_m: float = 0.0

    @property
    def end_ms(self) -> int:
        """Time of the last sample."""
        return self.samples[-1].ts_ms if self.samples else 0


@dataclass(slots=True)
class DroneState:
    """What carries over from one job to the next."""

    coop: str
    drone: str
    t_ms: int
    seq: int = 0
    battery_pct: float = 100.0
    tank_l: float = 0.0


def main_axis_deg(geom: Polygon | MultiPolygon) -> float:
    """Direction (degrees, counter-clockwise from east) of the field's longer side."""
    rect = shapely.oriented_envelope(geom)
    c = np.asarray(rect.exterior.coords) if isinstance(rect, Polygon) else np.zeros((3, 2))
    e1, e2 = c[1] - c[0], c[2] - c[1]
    e = e1 if np.hypot(*e1) >= np.hypot(*e2) else e2
    return math.degrees(math.atan2(e[1], e[0]))


def pass_offsets(width: float, swath: float, spacing: float) -> FloatArray:
    """Cross-track offsets (from the low edge) of pass lines covering ``width``, centred."""
    n = 1 if width <= swath else math.ceil((width - swath) / spacing - 1e-9) + 1
    slack = (n - 1) * spacing + swath - width
    first = max(swath / 2 - slack / 2, 0.05)
    return first + spacing * np.arange(n, dtype=np.float64)


def _rot(pts: FloatArray, angle_deg: float) -> FloatArray:
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    return np.column_stack([pts[:, 0] * c - pts[:, 1] * s, pts[:, 0] * s + pts[:, 1] * c])


def _segments(
    geom: Polygon | MultiPolygon, v: float, half_band: float
) -> list[tuple[float, float]]:
    """Where the pass at cross-track ``v`` sprays, low u first (field axis-aligned).

    The sprayer is on wherever the middle of the swath (``v`` ± ``half_band``) is over the
    field, so slanted field ends are covered as a careful pilot would; it switches off over
    a hole or gap only where the whole band clears it.
    """
    u0, _, u1, _ = geom.bounds
    band = box(u0 - 1, v - half_band, u1 + 1, v + half_band).intersection(geom)
    parts = sorted(
        (p.bounds[0], p.bounds[2]) for p in shapely.get_parts(band) if p.area > 0.01 * half_band
    )
    spans: list[tuple[float, float]] = []
    for a, b in parts:
        if spans and a <= spans[-1][1] + 0.2:
            spans[-1] = (spans[-1][0], max(spans[-1][1], b))
        elif b - a >= 0.2:
            spans.append((a, b))
    return spans


def plan_route(
    geom: Polygon | MultiPolygon, config: FlightConfig, rng: np.random.Generator
) -> Route:
    """Boustrophedon passes over a field given in local metres."""
    axis = main_axis_deg(geom)
    turned = rotate(geom, -axis, origin=(0, 0))
    _, v0, _, v1 = turned.bounds
    lines = [
        (k, v0 + off)
        for k, off in enumerate(pass_offsets(v1 - v0, config.swath_m, config.spacing_m))
    ]
    passes = [(k, v, _segments(turned, v, config.swath_m / 4)) for k, v in lines]
    passes = [p for p in passes if p[2]]
    missed: tuple[int, ...] = ()
    n_missed = config.faults.missed_strips
    if n_missed:
        inner = [p[0] for p in passes[1:-1]] or [p[0] for p in passes]
        missed = tuple(
            sorted(int(k) for k in rng.choice(inner, min(n_missed, len(inner)), replace=False))
        )
        passes = [p for p in passes if p[0] not in missed]
    clog = rng.random(len(passes)) < config.faults.clogged_nozzle
    clogged = tuple(p[0] for p, c in zip(passes, clog, strict=True) if c)

    legs: list[Leg] = []
    prev_end: tuple[float, float] | None = None
    first_start: tuple[float, float] | None = None
    overrun = 2.0
    for i, (k, v, spans) in enumerate(passes):
        forward = i % 2 == 0
        ordered = spans if forward else [(b, a) for a, b in reversed(spans)]
        start = (ordered[0][0], v)
        if prev_end is None:
            first_start = start
        else:
            legs.append(Leg(_turn(prev_end, start, forward, overrun), config.turn_speed_mps))
        factor = CLOGGED_FLOW_FACTOR if k in clogged else 1.0
        for j, (a, b) in enumerate(ordered):
            if j:
                gap = np.array([[ordered[j - 1][1], v], [a, v]])
                legs.append(Leg(gap, config.speed_mps, pass_index=k))
            seg = np.array([[a, v], [b, v]])
            legs.append(Leg(seg, config.speed_mps, spray=True, flow_factor=factor, pass_index=k))
        prev_end = (ordered[-1][1], v)
    if first_start is None or prev_end is None:
        raise ValueError("field too small: no pass line crosses it")

    exterior = shapely.union_all([p.exterior for p in shapely.get_parts(turned)])
    home_pt = nearest_points(exterior, Point(first_start))[0]
    home = (home_pt.x, home_pt.y)
    legs.insert(0, Leg(np.array([home, first_start]), config.transit_speed_mps))
    legs.append(Leg(np.array([prev_end, home]), config.transit_speed_mps))
    legs = [replace(leg, pts=_rot(leg.pts, axis)) for leg in legs]
    home_xy = _rot(np.array([home]), axis)[0]
    return Route(
        home=(float(home_xy[0]), float(home_xy[1])),
        legs=tuple(legs),
        axis_deg=axis,
        pass_lines=len(lines),
        missed_strips=missed,
        clogged_passes=clogged,
    )


def _turn(
    end: tuple[float, float], start: tuple[float, float], forward: bool, overrun: float
) -> FloatArray:
    """U-turn (sprayer off) from the end of one pass to the start of the next, outside both."""
    (ue, ve), (us, vs) = end, start
    d = 1.0 if not forward else -1.0  # direction of the pass just flown
    ut = max(ue, us) + overrun if d > 0 else min(ue, us) - overrun
    r, vc = abs(vs - ve) / 2, (vs + ve) / 2
    sign = 1.0 if vs > ve else -1.0
    phi = np.linspace(-math.pi / 2, math.pi / 2, 9)
    arc = np.column_stack([ut + d * r * np.cos(phi), vc + sign * r * np.sin(phi)])
    return np.vstack([[end], [[ut, ve]], arc[1:-1], [[ut, vs]], [start]])


class _Flight:
    """Steps a route at the sample rate, keeping tank, battery, time and events."""

    def __init__(
        self, config: FlightConfig, state: DroneState, rng: np.random.Generator, field_id: str
    ) -> None:
        self.cfg = config
        self.state = state
        self.rng = rng
        self.field_id = field_id
        self.dt_ms = config.dt_ms
        self.dt_s = self.dt_ms / 1000
        self.t_ms = state.t_ms
        self.cols: dict[str, list[Any]] = {
            k: [] for k in ("t", "x", "y", "alt", "speed", "heading", "batt", "flow", "tank", "on")
        }
        self.events: list[tuple[int, str, dict[str, Any]]] = []
        self.x = self.y = 0.0
        self.alt = 0.0
        self.heading = 0.0
        self.cruise_alt = float(rng.uniform(*config.altitude_m))

    def event(self, kind: str, **attrs: Any) -> None:
        ts = self.cols["t"][-1] if self.cols["t"] else self.t_ms
        self.events.append((ts, kind, {"field": self.field_id, **attrs}))

    def _append(
        self, x: float, y: float, speed: float, *, on: bool = False, flow: float = 0.0
    ) -> None:
        c = self.cols
        c["t"].append(self.t_ms)
        c["x"].append(x)
        c["y"].append(y)
        c["alt"].append(self.alt)
        c["speed"].append(speed)
        c["heading"].append(self.heading)
        c["batt"].append(self.state.battery_pct)
        c["flow"].append(flow)
        c["tank"].append(self.state.tank_l)
        c["on"].append(on)
        self.x, self.y = x, y
        self.t_ms += self.dt_ms
        if self.alt > 0:
            drain = (
                self.cfg.battery_base_pct_s + self.cfg.battery_load_pct_s_per_l * self.state.tank_l
            )
            self.state.battery_pct = max(0.0, self.state.battery_pct - drain * self.dt_s)

    def _can_spray(self, flow: float) -> bool:
        """Whether the tank holds one more sample interval's litres and the battery allows."""
        litres = flow * self.dt_s / 60
        return (
            self.state.tank_l + 1e-9 >= litres
            and self.state.battery_pct > self.cfg.battery_reserve_pct
        )

    def _draw(self, flow: float) -> None:
        """Take the litres sprayed until the next sample from the tank."""
        self.state.tank_l = max(0.0, self.state.tank_l - flow * self.dt_s / 60)

    def takeoff(self, x: float, y: float) -> None:
        self.alt = 0.0
        self._append(x, y, 0.0)
        self.event("takeoff", battery_pct=round(self.state.battery_pct, 1))
        self.vertical(self.cruise_alt)

    def vertical(self, to_alt: float) -> None:
        start = self.alt
        n = max(1, math.ceil(abs(to_alt - start) / (self.cfg.climb_mps * self.dt_s)))
        for k in range(1, n + 1):
            self.alt = start + (to_alt - start) * k / n
            self._append(self.x, self.y, 0.0)

    def land(self) -> None:
        self.vertical(0.0)
        self.event("landing", battery_pct=round(self.state.battery_pct, 1))

    def _positions(self, leg: Leg) -> tuple[FloatArray, FloatArray, FloatArray, float]:
        seg = np.diff(leg.pts, axis=0)
        cum = np.concatenate([[0.0], np.cumsum(np.hypot(seg[:, 0], seg[:, 1]))])
        length = float(cum[-1])
        n = max(1, math.ceil(length / (leg.speed_mps * self.dt_s) - 1e-9))
        s = length * np.arange(1, n + 1) / n
        x = np.interp(s, cum, leg.pts[:, 0])
        y = np.interp(s, cum, leg.pts[:, 1])
        idx = np.clip(np.searchsorted(cum, s, side="left") - 1, 0, len(seg) - 1)
        heading = np.degrees(np.arctan2(seg[idx, 0], seg[idx, 1])) % 360
        return x, y, heading, length / (n * self.dt_s)

    def fly(self, leg: Leg) -> None:
        x, y, heading, speed = self._positions(leg)
        for xi, yi, hi in zip(x.tolist(), y.tolist(), heading.tolist(), strict=True):
            self.heading = hi
            self._append(xi, yi, speed)

    def spray(self, leg: Leg) -> FloatArray | None:
        """Fly a spray leg; if tank or battery gives out, the rest of the leg to fly later."""
        flow = self.cfg.flow_lpm * leg.flow_factor
        if not self._can_spray(flow):
            return leg.pts
        self.cols["on"][-1] = True
        self.cols["flow"][-1] = flow
        self._draw(flow)
        x, y, heading, speed = self._positions(leg)
        for xi, yi, hi in zip(x.tolist(), y.tolist(), heading.tolist(), strict=True):
            if not self._can_spray(flow):
                done = float(np.hypot(self.x - leg.pts[0, 0], self.y - leg.pts[0, 1]))
                seg = np.diff(leg.pts, axis=0)
                cum = np.cumsum(np.hypot(seg[:, 0], seg[:, 1]))
                ahead = leg.pts[1:][cum > done + 1e-9]
                return np.vstack([[[self.x, self.y]], ahead])
            self.heading = hi
            self._append(xi, yi, speed, on=True, flow=flow)
            self._draw(flow)
        return None

    def service(self, home: tuple[float, float], resume: tuple[float, float]) -> None:
        """Back to the take-off point, land, refill and swap battery, fly back to ``resume``."""
        cfg = self.cfg
        self.fly(Leg(np.array([[self.x, self.y], home]), cfg.transit_speed_mps))
        self.land()
        ground_ms = int(self.rng.uniform(*cfg.ground_s) * 1000)
        landed = self.cols["t"][-1]
        self.refill_and_swap(landed, ground_ms)
        self.t_ms = landed + ground_ms
        self.takeoff(*home)
        self.fly(Leg(np.array([home, resume]), cfg.transit_speed_mps))

    def refill_and_swap(self, at_ms: int, ground_ms: int, *, top_up_below: float = 1.0) -> None:
        """Refill the tank (if below ``top_up_below`` of capacity) and swap a low battery."""
        cfg, st = self.cfg, self.state
        added = cfg.tank_capacity_l - st.tank_l
        if added > 1e-6 and st.tank_l < top_up_below * cfg.tank_capacity_l:
            st.tank_l = cfg.tank_capacity_l
            self.events.append(
                (
                    at_ms + ground_ms // 3,
                    "refill",
                    {
                        "field": self.field_id,
                        "added_l": round(added, 3),
                        "tank_l": cfg.tank_capacity_l,
                    },
                )
            )
        if st.battery_pct < cfg.battery_swap_below_pct:
            before = st.battery_pct
            st.battery_pct = 100.0
            self.events.append(
                (
                    at_ms + 2 * ground_ms // 3,
                    "battery_swap",
                    {"field": self.field_id, "battery_pct_before": round(before, 1)},
                )
            )

    def run(self, route: Route) -> None:
        home = route.home
        self.takeoff(*home)
        queue = deque(route.legs)
        while queue:
            leg = queue.popleft()
            if not leg.spray:
                self.fly(leg)
                continue
            rest = self.spray(leg)
            if rest is not None:
                self.service(home, (float(rest[0, 0]), float(rest[0, 1])))
                queue.appendleft(replace(leg, pts=rest))
        self.land()


def gauss_markov(
    n: int, sigma: float, tau_s: float, dt_s: float, rng: np.random.Generator
) -> FloatArray:
    """``n`` steps of a stationary first-order Gauss-Markov error (white if ``tau_s`` is 0)."""
    w = rng.standard_normal(n) * sigma
    if tau_s <= 0 or n == 0:
        return w
    a = math.exp(-dt_s / tau_s)
    b = math.sqrt(1 - a * a)
    out = np.empty(n)
    prev = w[0]
    out[0] = prev
    for i in range(1, n):
        prev = a * prev + b * w[i]
        out[i] = prev
    return out


def plan_job(
    sim_field: SimField,
    state: DroneState,
    config: FlightConfig,
    rng: np.random.Generator,
) -> Job:
    """Fly one job on ``sim_field`` from ``state`` (advanced in place to the job's end)."""
    frame = frame_for(sim_field.geometry)
    local = frame.polygon_to_local(sim_field.geometry)
    route = plan_route(local, config, rng)
    flight = _Flight(config, state, rng, sim_field.id)
    ground_ms = int(rng.uniform(*config.ground_s) * 1000)
    details = config.job_details(state.t_ms)
    flight.event(
        "job_start", name=sim_field.name, owner=sim_field.owner, crop=sim_field.crop, **details
    )
    flight.refill_and_swap(state.t_ms, ground_ms, top_up_below=0.5)
    flight.t_ms = state.t_ms + ground_ms
    flight.run(route)
    closes = {"job": details["job"]} if details else {}
    flight.event("job_end", passes=route.pass_lines - len(route.missed_strips), **closes)
    c = flight.cols
    ts = np.asarray(c["t"], dtype=np.int64)
    x_true, y_true = np.asarray(c["x"]), np.asarray(c["y"])
    alt = np.asarray(c["alt"])
    if config.faults.wind_drift_m > 0:
        x_true, y_true = _drift(
            x_true, y_true, ts=ts, alt=alt, axis_deg=route.axis_deg, config=config, rng=rng
        )
    sigma, tau, fix = config.noise()
    dt_s = config.dt_ms / 1000
    x_meas = x_true + gauss_markov(len(ts), sigma, tau, dt_s, rng)
    y_meas = y_true + gauss_markov(len(ts), sigma, tau, dt_s, rng)
    alt_meas = np.where(alt > 0, np.maximum(0.0, alt + rng.normal(0, 0.05, len(ts))), 0.0)
    lon, lat = frame.to_wgs84(x_meas, y_meas)
    on = np.asarray(c["on"], dtype=bool)
    flow = np.asarray(c["flow"])
    samples = _samples(
        state, c, ts=ts, lat=lat, lon=lon, alt=alt_meas, on=on, fix=fix, swath=config.swath_m
    )
    state.t_ms = int(ts[-1]) + config.dt_ms
    events = _spray_events(flight.events, ts, on, sim_field.id, state)
    truth = Truth(ts, x_true, y_true, on, flow, config.swath_m)
    return Job(sim_field, state.coop, state.drone, samples, events, truth, route, sigma)


def _drift(
    x: FloatArray,
    y: FloatArray,
    *,
    ts: NDArray[np.int64],
    alt: FloatArray,
    axis_deg: float,
    config: FlightConfig,
    rng: np.random.Generator,
) -> tuple[FloatArray, FloatArray]:
    """Wind pushes the drone across its passes: a smooth offset up to ``wind_drift_m``."""
    t = (ts - ts[0]) / 1000
    p1, p2 = rng.uniform(0, 2 * math.pi, 2)
    f = 0.6 * np.sin(2 * math.pi * t / 37 + p1) + 0.4 * np.sin(2 * math.pi * t / 11 + p2)
    lift = np.clip(alt / max(config.altitude_m[0], 0.1), 0, 1)
    off = config.faults.wind_drift_m * f * lift
    a = math.radians(axis_deg + 90)
    return x + off * math.cos(a), y + off * math.sin(a)


def _samples(
    state: DroneState,
    c: dict[str, list[Any]],
    *,
    ts: NDArray[np.int64],
    lat: FloatArray,
    lon: FloatArray,
    alt: FloatArray,
    on: NDArray[np.bool_],
    fix: str,
    swath: float,
) -> list[Sample]:
    seq0 = state.seq
    state.seq += len(ts)
    rows = zip(
        ts.tolist(),
        np.round(lat, 8).tolist(),
        np.round(lon, 8).tolist(),
        on.tolist(),
        np.round(alt, 2).tolist(),
        np.round(c["speed"], 2).tolist(),
        np.round(c["heading"], 1).tolist(),
        np.round(c["batt"], 1).tolist(),
        np.round(c["flow"], 2).tolist(),
        np.round(c["tank"], 3).tolist(),
        strict=True,
    )
    return [
        Sample(
            coop=state.coop,
            drone=state.drone,
            ts_ms=t,
            lat=la,
            lon=lo,
            spraying=sp,
            seq=seq0 + i,
            alt_m=al,
            speed_mps=sv,
            heading_deg=hd % 360.0,
            battery_pct=bt,
            flow_lpm=fl,
            tank_l=tk,
            swath_m=swath,
            fix=fix,
        )
        for i, (t, la, lo, sp, al, sv, hd, bt, fl, tk) in enumerate(rows)
    ]


def _spray_events(
    raw: list[tuple[int, str, dict[str, Any]]],
    ts: NDArray[np.int64],
    on: NDArray[np.bool_],
    field_id: str,
    state: DroneState,
) -> list[Event]:
    edges = np.diff(on.astype(np.int8), prepend=0, append=0)
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    spray = [(int(ts[i]), "spray_on", {"field": field_id}) for i in starts]
    last = len(ts) - 1
    spray += [(int(ts[min(int(i), last)]), "spray_off", {"field": field_id}) for i in stops]
    every = sorted(raw + spray, key=lambda e: e[0])
    return [Event(state.coop, state.drone, t, kind, attrs) for t, kind, attrs in every]


@dataclass(frozen=True, slots=True)
class DroneSpec:
    """One simulated drone: its id, cooperative, and the fields it works through."""

    coop: str
    drone: str
    fields: tuple[SimField, ...]


def assign_drones(
    fieldset: FieldSet,
    drones: int,
    coop: str | None = None,
    seed: int = 0,
    field_ids: Sequence[str] = (),
) -> list[DroneSpec]:
    """Drones ``dt-01``... alternating between cooperatives, each with its own field order."""
    if drones < 1:
        raise ValueError(f"--drones {drones}: need at least one drone")
    pool = [fieldset.by_id(f) for f in field_ids] if field_ids else list(fieldset.fields)
    coops = [coop] if coop else sorted({f.coop for f in pool})
    by_coop = {c: [f for f in pool if f.coop == c] for c in coops}
    if not all(by_coop.values()):
        empty = [c for c, fs in by_coop.items() if not fs]
        raise ValueError(f"no fields for cooperative(s) {empty}")
    rng = np.random.default_rng(seed)
    order = {c: [fs[i] for i in rng.permutation(len(fs))] for c, fs in by_coop.items()}
    specs = []
    for i in range(drones):
        c = coops[i % len(coops)]
        fs = order[c]
        k = (i // len(coops)) * max(1, len(fs) // max(1, drones)) % len(fs)
        specs.append(DroneSpec(c, f"dt-{i + 1:02d}", tuple(fs[k:] + fs[:k])))
    return specs


def drone_jobs(
    spec: DroneSpec,
    config: FlightConfig,
    *,
    seed: int,
    index: int,
    start_ms: int,
    until_ms: int | None = None,
    flights: int | None = None,
) -> Iterator[Job]:
    """The drone's jobs one after another (cycling its fields), cut at ``until_ms``."""
    rng = np.random.default_rng([seed, index])
    state = DroneState(spec.coop, spec.drone, start_ms + index * 7_000)
    n = 0
    while flights is None or n < flights:
        if until_ms is not None and state.t_ms >= until_ms:
            return
        job = plan_job(spec.fields[n % len(spec.fields)], state, config, rng)
        n += 1
        if until_ms is not None and job.end_ms >= until_ms:
            yield truncate(job, until_ms)
            return
        yield job
        ferry_s = rng.uniform(*config.ferry_s)
        if job.samples:
            last = job.samples[-1]
            to = spec.fields[n % len(spec.fields)].geometry.centroid
            ferry_s = max(
                ferry_s, distance_m(last.lat, last.lon, to.y, to.x) / config.ferry_speed_mps
            )
        state.t_ms += int(ferry_s * 1000)


def truncate(job: Job, until_ms: int) -> Job:
    """The part of a job before ``until_ms`` (a run cut short by ``--duration``)."""
    return replace(
        job,
        samples=[s for s in job.samples if s.ts_ms < until_ms],
        events=[e for e in job.events if e.ts_ms < until_ms],
        truth=job.truth.until(until_ms),
    )


@dataclass(frozen=True, slots=True)
class Intended:
    """What the coverage engine should find for one field from the simulated flights.

    Computed from the noise-free flown track with the engine's definitions, so it is the
    answer a perfect receiver would give; GNSS noise moves the engine's answer from it.
    """

    field_id: str
    field_ha: float
    covered_ha: float
    coverage_pct: float
    missed_ha: float
    overlap_ha: float
    off_target_ha: float
    no_spray_ha: float
    applied_l: float
    passes: int
    pass_lines: int
    missed_strips: tuple[int, ...]
    clogged_passes: tuple[int, ...]
    drones: tuple[str, ...]
    fix: str
    gnss_sigma_m: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, areas rounded to 0.1 m² (in ha), litres to 1 mL."""
        return {
            "field_id": self.field_id,
            "field_ha": round(self.field_ha, 6),
            "covered_ha": round(self.covered_ha, 6),
            "coverage_pct": round(self.coverage_pct, 3),
            "missed_ha": round(self.missed_ha, 6),
            "overlap_ha": round(self.overlap_ha, 6),
            "off_target_ha": round(self.off_target_ha, 6),
            "no_spray_ha": round(self.no_spray_ha, 6),
            "applied_l": round(self.applied_l, 3),
            "passes": self.passes,
            "pass_lines": self.pass_lines,
            "missed_strips": list(self.missed_strips),
            "clogged_passes": list(self.clogged_passes),
            "drones": list(self.drones),
            "fix": self.fix,
            "gnss_sigma_m": self.gnss_sigma_m,
        }


def run_footprints(truth: Truth) -> list[Polygon]:
    """Each spray run's track buffered by swath/2, flat ends, round joins (engine's rule)."""
    edges = np.diff(truth.spraying.astype(np.int8), prepend=0, append=0)
    out = []
    for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        if b - a < 2:
            continue
        line = LineString(np.column_stack([truth.x[a:b], truth.y[a:b]]))
        out.append(line.buffer(truth.swath_m / 2, cap_style="flat", join_style="round"))
    return out


def applied_litres(truth: Truth) -> float:
    """Flow of each spray-on sample times the time to the next, capped at 2 s."""
    if len(truth.ts_ms) == 0:
        return 0.0
    dt = np.diff(truth.ts_ms, append=truth.ts_ms[-1]) / 1000
    dt = np.minimum(dt, ENGINE_GAP_S)
    return float((truth.flow_lpm * dt / 60)[truth.spraying].sum())


def intended_answers(
    jobs: Sequence[Job],
    no_spray: Sequence[Polygon | MultiPolygon] = (),
    fields: Sequence[SimField] = (),
) -> list[Intended]:
    """The intended coverage of every field the jobs sprayed, in order of first visit.

    ``fields`` are the registered plots around them: as in the engine, spray landing on a
    neighbour's plot is not off-target, and a no-spray zone is not part of a field's target.
    """
    by_field: dict[str, list[Job]] = {}
    for job in jobs:
        by_field.setdefault(job.field.id, []).append(job)
    return [_intended(js, no_spray, fields) for js in by_field.values()]


def _intended(
    jobs: list[Job], no_spray: Sequence[Polygon | MultiPolygon], fields: Sequence[SimField]
) -> Intended:
    f = jobs[0].field
    frame = frame_for(f.geometry)
    local = frame.polygon_to_local(f.geometry)
    fps = [fp for job in jobs for fp in run_footprints(job.truth)]
    union = shapely.union_all(fps) if fps else Polygon()
    zones = _local_zones(frame, local, no_spray)
    target = local if zones is None else local.difference(zones)
    others = _local_zones(frame, local, [g.geometry for g in fields if g.id != f.id])
    if others is not None and zones is not None:
        others = others.difference(zones)
    off_target = union.difference(target)
    if others is not None:
        off_target = off_target.difference(others)
    covered = union.intersection(target)
    overlap = _overlap(fps).intersection(target)
    field_m2 = target.area
    route = jobs[0].route
    first = jobs[0].samples[0] if jobs[0].samples else None
    return Intended(
        field_id=f.id,
        field_ha=field_m2 / 1e4,
        covered_ha=covered.area / 1e4,
        coverage_pct=100 * covered.area / field_m2,
        missed_ha=(field_m2 - covered.area) / 1e4,
        overlap_ha=overlap.area / 1e4,
        off_target_ha=off_target.area / 1e4,
        no_spray_ha=union.intersection(zones).area / 1e4 if zones is not None else 0.0,
        applied_l=sum(applied_litres(j.truth) for j in jobs),
        passes=len(fps),
        pass_lines=route.pass_lines,
        missed_strips=tuple(sorted({k for j in jobs for k in j.route.missed_strips})),
        clogged_passes=tuple(sorted({k for j in jobs for k in j.route.clogged_passes})),
        drones=tuple(sorted({j.drone for j in jobs})),
        fix=(first.fix or "") if first else "",
        gnss_sigma_m=jobs[0].gnss_sigma_m,
    )


def _overlap(fps: Sequence[Polygon]) -> Polygon | MultiPolygon:
    """Where at least two footprints meet."""
    if len(fps) < 2:
        return Polygon()
    tree = shapely.STRtree(fps)
    pairs = tree.query(fps, predicate="intersects")
    parts = [fps[i].intersection(fps[j]) for i, j in pairs.T if i < j]
    result: Polygon | MultiPolygon = shapely.union_all(parts) if parts else Polygon()
    return result


def _local_zones(
    frame: LocalFrame, local: Polygon | MultiPolygon, zones: Sequence[Polygon | MultiPolygon]
) -> Polygon | MultiPolygon | None:
    near = local.buffer(100)
    mine = [z for z in (frame.polygon_to_local(z) for z in zones) if z.intersects(near)]
    if not mine:
        return None
    result: Polygon | MultiPolygon = shapely.union_all(mine)
    return result
