"""Adapters: foreign drone telemetry (MAVLink via MAVProxy, DJI Cloud API, flight-record CSV)
translated to wire v1, purely.

Each adapter takes what a real drone or ground station sends (a message dict, an OSD
envelope, a CSV stream) and returns wire-v1 sample and event objects — the dicts
``ingest/wire.py`` validates — or a rejection with its reason. No I/O here: the worker
subscription, the MAVLink bridge, the log upload route and the CLI are the I/O edges
(docs/integrations.md).
"""

from adapters._common import (
    ADAPTER_REASONS,
    DUPLICATE,
    NO_FIX,
    NO_POSITION,
    UNKNOWN_DEVICE,
    AdapterError,
    AdapterRejection,
    ConfigError,
    DroneRef,
    FormatError,
    Translation,
    WireObject,
)
from adapters.airdata import TrackRow, read_track_csv
from adapters.dji import DjiDrone, DjiTranslation, DjiTranslator
from adapters.mavlink import (
    MavlinkCounts,
    MavlinkDrone,
    MavlinkTopic,
    MavlinkTranslator,
    MavproxyFleet,
    MavproxyTopics,
    SprayRule,
    parse_spray_rules,
)

__all__ = [
    "ADAPTER_REASONS",
    "DUPLICATE",
    "NO_FIX",
    "NO_POSITION",
    "UNKNOWN_DEVICE",
    "AdapterError",
    "AdapterRejection",
    "ConfigError",
    "DjiDrone",
    "DjiTranslation",
    "DjiTranslator",
    "DroneRef",
    "FormatError",
    "MavlinkCounts",
    "MavlinkDrone",
    "MavlinkTopic",
    "MavlinkTranslator",
    "MavproxyFleet",
    "MavproxyTopics",
    "SprayRule",
    "TrackRow",
    "Translation",
    "WireObject",
    "parse_spray_rules",
    "read_track_csv",
]
