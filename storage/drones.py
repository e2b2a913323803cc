"""The drone registry's records (pure; the rows live in ``storage.metadata``).

Each drone logs in to the broker as ``{coop}.{drone}``: drone ids are unique only within a
cooperative, and the dot can appear in neither id, so the name is unique and reversible and
can never collide with a service account such as the ingest user (which has no dot).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final

_ID_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_SWATH_M: Final = 50.0


@dataclass(frozen=True, slots=True)
class DroneRecord:
    """One registered drone; ``mqtt_password_hash`` is a Mosquitto ``$7$`` hash."""

    coop: str
    drone: str
    swath_m: float | None
    registered_ms: int
    mqtt_password_hash: str
    #: How the ingest worker reads this drone's MAVLink stream (docs/integrations.md):
    #: the spray rule set as ``agridrone drones add --mavlink-spray`` took it (e.g.
    #: ``rc7>1500``; None: never spraying), the BATTERY_STATUS instance that is a flow
    #: sensor, and the tank's capacity in litres.
    mavlink_spray: str | None = None
    mavlink_flow_battery: int | None = None
    tank_capacity_l: float | None = None
    #: The DJI aircraft serial whose Cloud API OSD is this drone's (unique across drones),
    #: and whether its samples count as spraying (DJI's OSD carries no spray state).
    dji_sn: str | None = None
    dji_spraying: bool = False
    #: The drone's registration number (số đăng ký), shown in the spray diary.
    registration: str | None = None

    @property
    def mqtt_username(self) -> str:
        """The user name this drone presents to the broker."""
        return mqtt_username(self.coop, self.drone)

    @property
    def topic_prefix(self) -> str:
        """The only topic tree the drone may use: ``agri/v1/{coop}/{drone}/``."""
        return f"agri/v1/{self.coop}/{self.drone}/"


def mqtt_username(coop: str, drone: str) -> str:
    """The broker user name of a drone: ``{coop}.{drone}``."""
    return f"{coop}.{drone}"


_DJI_SN_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


def validate_dji_sn(sn: str) -> str | None:
    """Why ``sn`` cannot be a DJI serial (it is a topic segment), or ``None``."""
    if _DJI_SN_RE.fullmatch(sn) is None:
        return f"DJI serial {sn!r} does not match [A-Za-z0-9_-]{{1,64}} (used in topics)"
    return None


def validate_drone(coop: str, drone: str, swath_m: float | None) -> str | None:
    """Why this drone cannot be registered, or ``None`` if it can."""
    for label, value in (("coop", coop), ("drone", drone)):
        if _ID_RE.fullmatch(value) is None:
            return f"{label} id {value!r} does not match [A-Za-z0-9_-]{{1,64}} (used in topics)"
    if swath_m is not None and not (math.isfinite(swath_m) and 0 < swath_m <= MAX_SWATH_M):
        return f"drone {coop}/{drone}: swath {swath_m} m is not in (0, {MAX_SWATH_M:g}] m"
    return None
