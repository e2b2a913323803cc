"""Positions no drone can have flown to: rejected as ``implausible_jump`` (pure, no I/O).

The wire parser is stateless (one message at a time), so the check lives here, in state the
ingest worker keeps per drone: the last sample it accepted (its *anchor*). A sample is
implausible when it lies further from the anchor than ``max_speed_mps`` (40 m/s: faster than
any agricultural or consumer drone; DJI's Air 2S tops out at 19 m/s) times the time between
them, plus ``slack_m`` (5 m) for position noise: at 10 Hz two samples may both be a couple of
metres off, and a tlog can carry two positions 17 ms apart. Samples are compared in the order
they arrive, so an uploaded log is checked sample by sample too; two samples at the same
millisecond in different places are a jump, at the same place a duplicate (stored once).

The good samples around a glitch are kept: the anchor moves only to accepted samples, so the
sample after a one-off jump is compared with the one before it. If the anchor itself was the
glitch (the first sample after a restart, or a drone moved while switched off), the samples
that follow agree with each other and not with it: after ``confirm`` such samples in a row
(each within reach of the one before) the filter re-anchors on them, so a wrong anchor costs
``confirm`` samples, never the rest of the flight. A restarted worker seeds its anchors
from the store's last-seen positions (``seed``), so the first sample after a restart is
checked against the drone's real previous position, not accepted blindly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from storage.records import DroneLastSeen

#: Reason recorded for a sample further from the drone's previous one than it can fly.
IMPLAUSIBLE_JUMP: Final = "implausible_jump"
#: The default speed limit between consecutive samples, m/s.
MAX_SPEED_MPS: Final = 40.0
#: Position noise allowed on top of the speed limit, metres.
SLACK_M: Final = 5.0
#: Consecutive samples that agree with each other but not with the anchor before the filter
#: believes them (the anchor was the glitch).
CONFIRM_SAMPLES: Final = 5

_M_PER_DEG: Final = 111_320.0
#: Metres per degree of longitude are recomputed when the anchor moved this far in latitude
#: (0.01°, ~1 km: the error stays under 1e-5 of the distance).
_K_REFRESH_DEG: Final = 0.01


@dataclass(slots=True)
class _State:
    ts_ms: int  # the anchor: the drone's last accepted sample
    lat: float
    lon: float
    m_per_deg_lon: float  # at latitude k_lat, within _K_REFRESH_DEG of the anchor's
    k_lat: float
    suspect: tuple[int, float, float] | None = None
    suspects: int = 0

    def move(self, ts_ms: int, lat: float, lon: float) -> None:
        self.ts_ms, self.lat, self.lon, self.k_lat = ts_ms, lat, lon, lat
        self.m_per_deg_lon = _M_PER_DEG * math.cos(math.radians(lat))
        self.suspect, self.suspects = None, 0


@dataclass(frozen=True, slots=True)
class Jump:
    """One refused sample: its time and why, in words for the rejected-message log."""

    ts_ms: int
    detail: str


#: What ``scan`` answers when every sample is plausible (shared: nothing allocated).
_NONE: Final[tuple[tuple[int, Jump], ...]] = ()


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Metres between two WGS84 points (equirectangular at the first point's latitude:
    exact enough below ~100 km, and a jump beyond that is implausible by any measure)."""
    dy = (lat2 - lat1) * _M_PER_DEG
    dx = (lon2 - lon1) * _M_PER_DEG * math.cos(math.radians(lat1))
    return math.hypot(dx, dy)


def _new_state(ts_ms: int, lat: float, lon: float) -> _State:
    return _State(ts_ms, lat, lon, _M_PER_DEG * math.cos(math.radians(lat)), lat)


class JumpFilter:
    """Per-drone anchors; ``scan`` says which of a drone's next samples are implausible.

    Not thread-safe: the ingest worker's single decoder thread owns one.
    """

    def __init__(
        self,
        max_speed_mps: float = MAX_SPEED_MPS,
        slack_m: float = SLACK_M,
        confirm: int = CONFIRM_SAMPLES,
    ) -> None:
        if not max_speed_mps > 0 or slack_m < 0 or confirm < 1:
            raise ValueError(
                f"jump filter needs max_speed_mps > 0, slack_m >= 0, confirm >= 1; got "
                f"{max_speed_mps}, {slack_m}, {confirm}"
            )
        self.max_speed_mps = max_speed_mps
        self.slack_m = slack_m
        self.confirm = confirm
        self._speed_per_ms = max_speed_mps / 1000.0
        self._drones: dict[str, dict[str, _State]] = {}  # coop -> drone -> state

    def __len__(self) -> int:
        return sum(map(len, self._drones.values()))

    def seed(self, last_seen: Iterable[DroneLastSeen]) -> None:
        """Anchor drones at their last stored positions (after a restart); drones already
        seen by this filter keep their own anchors."""
        for d in last_seen:
            drones = self._drones.setdefault(d.coop, {})
            if d.drone not in drones:
                drones[d.drone] = _new_state(d.ts_ms, d.lat, d.lon)

    def check(self, coop: str, drone: str, ts_ms: int, lat: float, lon: float) -> Jump | None:
        """None when the sample is plausible (it becomes the drone's anchor), else why not:
        ``scan`` of one sample, without building anything when it is plausible."""
        drones = self._drones.get(coop)
        state = None if drones is None else drones.get(drone)
        if state is None:
            self._drones.setdefault(coop, {})[drone] = _new_state(ts_ms, lat, lon)
            return None
        dy = (lat - state.lat) * _M_PER_DEG
        dx = (lon - state.lon) * state.m_per_deg_lon
        reach = self._speed_per_ms * abs(ts_ms - state.ts_ms) + self.slack_m
        if dx * dx + dy * dy <= reach * reach:
            state.ts_ms, state.lat, state.lon = ts_ms, lat, lon
            if state.suspects:
                state.suspect, state.suspects = None, 0
            if abs(lat - state.k_lat) > _K_REFRESH_DEG:
                state.m_per_deg_lon = _M_PER_DEG * math.cos(math.radians(lat))
                state.k_lat = lat
            return None
        return self._off_anchor(state, ts_ms, lat, lon, math.sqrt(dx * dx + dy * dy))

    def scan(
        self, coop: str, drone: str, points: Sequence[Sequence[Any]]
    ) -> Sequence[tuple[int, Jump]]:
        """Check a drone's next samples in order, each ``(ts_ms, lat, lon, ...)`` (a wire
        row will do); the (index, why) of each implausible one, usually none. The common
        case, every sample within reach of the one before, costs a few float operations per
        sample and builds nothing."""
        drones = self._drones.get(coop)
        state = None if drones is None else drones.get(drone)
        if state is None:
            if not points:
                return _NONE
            first = points[0]
            state = _new_state(first[0], first[1], first[2])
            self._drones.setdefault(coop, {})[drone] = state
        a_ts, a_lat, a_lon = state.ts_ms, state.lat, state.lon
        kx, k_lat = state.m_per_deg_lon, state.k_lat
        speed, slack = self._speed_per_ms, self.slack_m
        pending = state.suspects != 0  # suspects to forget at the next accepted sample
        refused: list[tuple[int, Jump]] | None = None  # built only when needed: no garbage
        i = -1
        for p in points:
            i += 1
            ts = p[0]
            dy = (p[1] - a_lat) * _M_PER_DEG
            dx = (p[2] - a_lon) * kx
            reach = speed * abs(ts - a_ts) + slack
            if dx * dx + dy * dy <= reach * reach:
                a_ts, a_lat, a_lon = ts, p[1], p[2]
                if pending:
                    state.suspect, state.suspects, pending = None, 0, False
                if abs(a_lat - k_lat) > _K_REFRESH_DEG:  # keep metres per degree of lon true
                    kx, k_lat = _M_PER_DEG * math.cos(math.radians(a_lat)), a_lat
                    state.m_per_deg_lon, state.k_lat = kx, k_lat
                continue
            # Out of reach: bring the stored anchor up to date, then decide.
            state.ts_ms, state.lat, state.lon = a_ts, a_lat, a_lon
            jump = self._off_anchor(state, ts, p[1], p[2], math.sqrt(dx * dx + dy * dy))
            if jump is not None:
                if refused is None:
                    refused = []
                refused.append((i, jump))
            a_ts, a_lat, a_lon = state.ts_ms, state.lat, state.lon
            kx, k_lat = state.m_per_deg_lon, state.k_lat
            pending = state.suspects != 0
        state.ts_ms, state.lat, state.lon = a_ts, a_lat, a_lon
        return _NONE if refused is None else refused

    def _off_anchor(
        self, state: _State, ts_ms: int, lat: float, lon: float, far: float
    ) -> Jump | None:
        """A sample out of the anchor's reach: a glitch, or (after ``confirm`` samples that
        agree among themselves) proof that the anchor was wrong."""
        s = state.suspect
        if s is not None and distance_m(s[1], s[2], lat, lon) <= (
            self.max_speed_mps * abs(ts_ms - s[0]) / 1000.0 + self.slack_m
        ):
            state.suspects += 1
        else:
            state.suspects = 1
        state.suspect = (ts_ms, lat, lon)
        if state.suspects > self.confirm:  # they agree among themselves: the anchor was wrong
            state.move(ts_ms, lat, lon)
            return None
        dt_s = (ts_ms - state.ts_ms) / 1000.0
        speed = "at the same instant" if dt_s == 0 else f"{far / abs(dt_s):.0f} m/s"
        return Jump(
            ts_ms,
            f"sample ts={ts_ms} at {lat:.6f},{lon:.6f} is {far:.0f} m from the drone's "
            f"previous sample (ts={state.ts_ms}, {dt_s:+.1f} s): {speed}, over the "
            f"{self.max_speed_mps:g} m/s limit",
        )
