"""A simulated flight controller's telemetry link: raw MAVLink packets over UDP, to the
``udpin`` port of an ``agridrone mavlink-bridge`` (or a ground station)."""

from __future__ import annotations

import socket
import threading


class UdpLink:
    """Sends each payload as one datagram to ``host:port``; the same calls as ``DroneLink``
    (status and acknowledgements mean nothing on a raw MAVLink link)."""

    def __init__(self, host: str, port: int, coop: str, drone: str) -> None:
        self.coop, self.drone = coop, drone
        self.where = f"drone {coop}/{drone} → udp {host}:{port}"
        self.target = (host, port)
        self.published = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def publish(
        self,
        topic: str,  # noqa: ARG002 - the link has no topics
        payload: bytes,
        *,
        retain: bool = False,  # noqa: ARG002
        stop: threading.Event | None = None,  # noqa: ARG002
    ) -> bool:
        """Send one MAVLink packet (a lost datagram is what a radio link does too)."""
        self._sock.sendto(payload, self.target)
        self.published += 1
        return True

    def status(self, state: str, ts_ms: int) -> None:
        """Nothing: MAVLink says online/offline by heartbeats, which the stream carries."""

    def close(self, ts_ms: int | None = None, timeout_s: float = 30.0) -> bool:  # noqa: ARG002
        """Close the socket; True (UDP has nothing to wait for)."""
        self._sock.close()
        return True
