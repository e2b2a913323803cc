"""Faults the simulator can inject, parsed from ``--fault NAME[=VALUE]``.

Flight faults change what the drone does, so they show in the track and in the intended
answer: ``missed-strip`` (passes skipped per job), ``clogged-nozzle`` (chance per pass that
the flow halves), ``wind-drift`` (metres of cross-track drift). Wire faults change only
what reaches the broker, never the track: ``drop``, ``duplicate``, ``reorder`` (chance per
message) and ``delay`` (seconds of one link outage per job, messages held and then sent).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Final

import numpy as np


@dataclass(frozen=True, slots=True)
class Faults:
    """Every fault's parameter; zero means off."""

    missed_strips: int = 0
    clogged_nozzle: float = 0.0
    wind_drift_m: float = 0.0
    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    delay_s: float = 0.0


#: Flow through a clogged boom, as a fraction of the commanded flow.
CLOGGED_FLOW_FACTOR: Final = 0.5


#: ``--fault`` name → (Faults attribute, default value, is a probability).
FAULT_NAMES: Final[dict[str, tuple[str, float, bool]]] = {
    "missed-strip": ("missed_strips", 1, False),
    "clogged-nozzle": ("clogged_nozzle", 0.2, True),
    "wind-drift": ("wind_drift_m", 1.0, False),
    "drop": ("drop", 0.01, True),
    "duplicate": ("duplicate", 0.01, True),
    "reorder": ("reorder", 0.01, True),
    "delay": ("delay_s", 10.0, False),
}


def parse_faults(specs: Iterable[str]) -> Faults:
    """``["drop=0.05", "missed-strip"]`` → ``Faults``; unknown names or bad values raise."""
    faults = Faults()
    for spec in specs:
        name, _, raw = spec.partition("=")
        name = name.strip()
        if name not in FAULT_NAMES:
            raise ValueError(
                f"--fault {spec!r}: unknown fault; choose from {', '.join(FAULT_NAMES)}"
            )
        attr, default, is_probability = FAULT_NAMES[name]
        try:
            value = float(raw) if raw else float(default)
        except ValueError as exc:
            raise ValueError(f"--fault {spec!r}: value {raw!r} is not a number") from exc
        if not math.isfinite(value) or value < 0 or (is_probability and value > 1):
            bound = "a probability in [0, 1]" if is_probability else "a number >= 0"
            raise ValueError(f"--fault {spec!r}: value must be {bound}")
        if attr == "missed_strips" and value != int(value):
            raise ValueError(f"--fault {spec!r}: missed-strip takes a whole number of passes")
        if attr == "missed_strips":
            faults = replace(faults, missed_strips=int(value))
        else:
            faults = replace(faults, **{attr: value})  # type: ignore[arg-type]
    return faults


@dataclass(frozen=True, slots=True)
class OutMessage:
    """One MQTT publish: when (simulated ms) it leaves the drone, where, and what."""

    release_ms: int
    topic: str
    payload: bytes
    samples: int = 0


@dataclass(slots=True)
class WireFaultCounts:
    """What the wire faults did, for the run's summary."""

    dropped: int = 0
    duplicated: int = 0
    reordered: int = 0
    delayed: int = 0


def apply_wire_faults(
    messages: list[OutMessage],
    faults: Faults,
    rng: np.random.Generator,
    counts: WireFaultCounts | None = None,
) -> list[OutMessage]:
    """The messages as the faulty link delivers them, in release order.

    ``messages`` must be in release order. Delay holds every message released inside one
    outage window of ``delay_s`` (placed at random in the job) until the window ends.
    """
    counts = counts if counts is not None else WireFaultCounts()
    out = list(messages)
    if faults.delay_s > 0 and out:
        first, last = out[0].release_ms, out[-1].release_ms
        start = int(rng.uniform(first, max(first, last - faults.delay_s * 1000) + 1))
        end = start + int(faults.delay_s * 1000)
        held = [m for m in out if start <= m.release_ms < end]
        counts.delayed += len(held)
        out = [replace(m, release_ms=end) if start <= m.release_ms < end else m for m in out]
        out.sort(key=lambda m: m.release_ms)
    if faults.drop > 0:
        keep = rng.random(len(out)) >= faults.drop
        counts.dropped += int((~keep).sum())
        out = [m for m, k in zip(out, keep, strict=True) if k]
    if faults.duplicate > 0:
        twice = rng.random(len(out)) < faults.duplicate
        counts.duplicated += int(twice.sum())
        out = [x for m, t in zip(out, twice, strict=True) for x in ((m, m) if t else (m,))]
    if faults.reorder > 0:
        swap = rng.random(len(out)) < faults.reorder
        i = 0
        while i < len(out) - 1:
            if swap[i]:
                a, b = out[i], out[i + 1]
                out[i] = replace(b, release_ms=a.release_ms)
                out[i + 1] = replace(a, release_ms=b.release_ms)
                counts.reordered += 1
                i += 2
            else:
                i += 1
    return out
