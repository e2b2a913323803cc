"""``agridrone api``: serve the HTTP API over the configured store."""

from __future__ import annotations

import argparse
import logging
import threading
import time
from typing import Any

from agridrone.logs import configure_logging
from agridrone.settings import STORE_SETTINGS, add_settings_arguments, settings_from_args
from agridrone.stores import open_metadata, open_telemetry_store

log = logging.getLogger("agridrone.api")


def register(subparsers: Any) -> None:
    """Add the ``api`` sub-command."""
    p: argparse.ArgumentParser = subparsers.add_parser("api", help="serve the HTTP API")
    add_settings_arguments(p, *STORE_SETTINGS, "log_upload_max_mib")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--forwarded-allow-ips",
        metavar="ADDRESSES",
        help="comma-separated proxies whose X-Forwarded-For/-Proto are believed (the access"
        " log then shows the client, not the proxy); '*' only when nothing but the proxy"
        " reaches this process [uvicorn's default: 127.0.0.1]",
    )
    p.add_argument(
        "--tile-url",
        metavar="TEMPLATE",
        help="map tiles for the web app's maps, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png"
        " (deployments with internet; default: fields on a plain background, no tiles)",
    )
    p.add_argument("--log-level", default="INFO")
    p.set_defaults(handler=run)


def _warm(app: Any) -> None:
    """Load the field catalog and its current coverage engine, logging how long it took."""
    started = time.perf_counter()
    try:
        catalog = app.state.catalog.current()
        catalog.engine()
    except Exception:  # the first request tries again and answers the error
        log.exception("fields_load_failed")
        return
    log.info(
        "fields_loaded fields=%d seconds=%.2f", len(catalog.by_id), time.perf_counter() - started
    )


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    import uvicorn

    from api.app import create_app

    configure_logging(args.log_level)
    settings = settings_from_args(args)
    store = open_telemetry_store(settings)
    metadata = open_metadata(settings)
    try:
        app = create_app(
            store,
            metadata,
            metrics_public=settings.metrics_public,
            log_upload_max_bytes=settings.log_upload_max_mib * 1024 * 1024,
            tile_url=args.tile_url,
        )
        # Parse the fields and prepare coverage before the first request asks, in a thread
        # of its own: /healthz answers meanwhile (a town's registry takes tens of seconds),
        # and a coverage request that comes first waits for the same catalog lock.
        threading.Thread(target=_warm, args=(app,), name="catalog-warm", daemon=True).start()
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            log_config=None,
            forwarded_allow_ips=args.forwarded_allow_ips,
        )
    finally:
        store.close()
        metadata.close()
    return 0
