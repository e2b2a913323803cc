"""Drones: where each one was last seen."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from pydantic import BaseModel

from api.auth import PrincipalDep, can_see_drone
from api.deps import StoreDep

router = APIRouter(tags=["drones"])


class DronePosition(BaseModel):
    """A drone's latest stored sample."""

    coop: str
    drone: str
    last_seen: datetime
    lat: float
    lon: float
    battery_pct: float | None


@router.get("/drones")
def list_drones(principal: PrincipalDep, store: StoreDep) -> list[DronePosition]:
    """The caller's drones with stored telemetry, with their last time and position.

    A cooperative sees its own drones, an operator every drone; farmers see drones through
    the flights over their fields (not yet served).
    """
    return [
        DronePosition(
            coop=d.coop,
            drone=d.drone,
            last_seen=datetime.fromtimestamp(d.ts_ms / 1000, UTC),
            lat=d.lat,
            lon=d.lon,
            battery_pct=d.battery_pct,
        )
        for d in store.drones()
        if can_see_drone(principal, d.coop)
    ]
