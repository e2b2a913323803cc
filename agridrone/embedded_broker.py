"""An embedded MQTT broker (amqtt) for the demo, so ``make demo`` needs no Mosquitto.

amqtt speaks MQTT 3.1.1 only and manages a few thousand messages a second: plenty for a
demo fleet, not a production broker. It is bound to 127.0.0.1 on the port we choose (its own
default is 0.0.0.0:1883, which the machine's Mosquitto may hold).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)


@contextlib.contextmanager
def embedded_broker(port: int, host: str = "127.0.0.1") -> Iterator[str]:
    """Run an amqtt broker on ``host:port`` in a thread; yields its ``mqtt://`` URL."""
    from amqtt.broker import Broker

    config: dict[str, Any] = {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    loop = asyncio.new_event_loop()
    broker = Broker(config, loop=loop)
    started = threading.Event()
    failed: list[BaseException] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(broker.start())
        except Exception as exc:  # noqa: BLE001 -- reported to the caller below
            failed.append(exc)
            started.set()
            return
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, name="embedded-broker", daemon=True)
    thread.start()
    started.wait(30)
    if failed:
        raise RuntimeError(f"embedded broker on {host}:{port} did not start: {failed[0]}")
    try:
        yield f"mqtt://{host}:{port}"
    finally:
        # amqtt logs a noisy traceback while cancelling its own loops at shutdown.
        logging.getLogger("amqtt").setLevel(logging.CRITICAL)
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(broker.shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
