"""Where the shared real-world material lives, and the wire-v1 check every adapter output passes.

The material (../shared/realdata/ beside the project root; README there) is never copied
into the project: tests that need it skip with a reason when it is absent (CI has it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

import orjson
import pytest

from ingest.wire import MAX_BATCH_SAMPLES, decode_message, event_topic, telemetry_topic
from storage.records import Event, Sample

PROJECT_ROOT: Final = Path(__file__).resolve().parents[1]
REALDATA: Final = PROJECT_ROOT.parent / "shared" / "realdata"

needs_realdata = pytest.mark.skipif(
    not (REALDATA / "README.md").is_file(),
    reason=f"real telemetry material not found at {REALDATA} (CI provides ../shared/realdata/)",
)


def realdata(*parts: str) -> Path:
    """A file of the shared material (the test is marked ``needs_realdata``)."""
    return REALDATA.joinpath(*parts)


def wire_accepts(
    coop: str,
    drone: str,
    samples: Sequence[dict[str, Any]],
    events: Iterable[dict[str, Any]] = (),
    received_ms: int = 1_795_869_000_000,
) -> tuple[list[Sample], list[Event]]:
    """Publish-equivalent check: every object decodes through ingest/wire.py, none refused."""
    stored: list[Sample] = []
    for i in range(0, len(samples), MAX_BATCH_SAMPLES):
        payload = orjson.dumps({"v": 1, "samples": list(samples[i : i + MAX_BATCH_SAMPLES])})
        decoded = decode_message(telemetry_topic(coop, drone), payload, received_ms)
        assert decoded.rejections == [], decoded.rejections[:3]
        stored.extend(decoded.samples)
    stored_events: list[Event] = []
    for event in events:
        decoded = decode_message(event_topic(coop, drone), orjson.dumps(event), received_ms)
        assert decoded.rejections == [], decoded.rejections
        stored_events.extend(decoded.events)
    return stored, stored_events
