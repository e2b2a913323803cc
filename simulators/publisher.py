"""A thin paho-mqtt 2.x publisher: one connection per simulated drone.

Each drone connects with its own last will (retained ``offline`` status), announces
``online`` (retained), publishes at QoS 1 by default, and never has more than
``max_outstanding`` publishes unacknowledged: paho silently loses messages once 65,535 are
outstanding (message ids wrap, paho issue #377). ``close`` waits for every publish to be
acknowledged, says ``offline`` and disconnects cleanly.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Final, Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from ingest.mqtt import BrokerAddress
from simulators.wire_out import encode_status, status_topic

log = logging.getLogger(__name__)

MqttProtocol = Literal["5", "3.1.1"]
#: Publishes allowed in flight on the wire (sent, not yet acknowledged) per connection.
INFLIGHT: Final = 100
#: Publishes handed to paho and not yet acknowledged, per connection (far below 65,535).
MAX_OUTSTANDING: Final = 1_000


class PublishError(RuntimeError):
    """The broker could not be reached, refused us, or did not acknowledge in time."""


class DroneLink:
    """One drone's MQTT connection."""

    def __init__(
        self,
        address: BrokerAddress,
        coop: str,
        drone: str,
        *,
        protocol: MqttProtocol = "5",
        qos: int = 1,
        max_outstanding: int = MAX_OUTSTANDING,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.coop, self.drone, self.qos = coop, drone, qos
        self.where = f"drone {coop}/{drone} → {address.host}:{address.port}"
        self._max = max_outstanding
        self._outstanding = 0
        self._cond = threading.Condition()
        self._connected = threading.Event()
        self._refusal: str | None = None
        self.published = 0
        version = paho.MQTTv5 if protocol == "5" else paho.MQTTv311
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"agridrone-sim-{drone}-{os.getpid()}",
            protocol=version,
        )
        if address.username:
            client.username_pw_set(address.username, address.password)
        client.will_set(status_topic(coop, drone), encode_status("offline", None), 1, retain=True)
        client.max_inflight_messages_set(min(INFLIGHT, max_outstanding))
        client.on_connect = self._on_connect
        client.on_publish = self._on_publish
        self._client = client
        try:
            client.connect(address.host, address.port, keepalive=30)
        except OSError as exc:
            raise PublishError(f"{self.where}: cannot connect: {exc}") from exc
        client.loop_start()
        if not self._connected.wait(connect_timeout_s) or self._refusal:
            client.loop_stop()
            why = self._refusal or f"no CONNACK within {connect_timeout_s} s"
            raise PublishError(f"{self.where}: {why}")

    def _on_connect(
        self, _c: paho.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any = None
    ) -> None:
        if reason.is_failure:
            self._refusal = f"broker refused the connection: {reason}"
        self._connected.set()

    def _on_publish(
        self, _c: paho.Client, _u: Any, _mid: int, _reason: ReasonCode, _p: Any = None
    ) -> None:
        with self._cond:
            self._outstanding -= 1
            self._cond.notify_all()

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        retain: bool = False,
        stop: threading.Event | None = None,
    ) -> bool:
        """Hand one message to paho, waiting while too many are unacknowledged.

        False if ``stop`` was set while waiting (the message was not sent).
        """
        with self._cond:
            while self._outstanding >= self._max:
                if stop is not None and stop.is_set():
                    return False
                self._cond.wait(0.1)
            self._outstanding += 1
        info = self._client.publish(topic, payload, qos=self.qos, retain=retain)
        if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN and self.qos == 0:
            with self._cond:  # paho drops QoS 0 while disconnected and never calls back
                self._outstanding -= 1
        elif info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            with self._cond:
                self._outstanding -= 1
            raise PublishError(f"{self.where}: publish to {topic} failed: {info.rc.name}")
        self.published += 1
        return True

    def status(self, state: str, ts_ms: int) -> None:
        """Publish the retained ``online``/``offline`` status."""
        self.publish(status_topic(self.coop, self.drone), encode_status(state, ts_ms), retain=True)

    def wait_all(self, timeout_s: float) -> bool:
        """Wait until every publish is acknowledged; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._outstanding > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    @property
    def outstanding(self) -> int:
        """Publishes handed to paho and not yet acknowledged."""
        with self._cond:
            return self._outstanding

    def close(self, ts_ms: int | None = None, timeout_s: float = 30.0) -> bool:
        """Wait for acknowledgements, announce ``offline`` (if ``ts_ms``), disconnect cleanly.

        True if everything published was acknowledged.
        """
        done = self.wait_all(timeout_s)
        if ts_ms is not None:
            self.status("offline", ts_ms)
            done = self.wait_all(5.0) and done
        if not done:
            log.warning("%s: %d publishes unacknowledged at close", self.where, self.outstanding)
        self._client.disconnect()
        self._client.loop_stop()
        return done
