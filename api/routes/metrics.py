"""``/metrics``: the API process in Prometheus text format, with request counts and latency.

It needs an operator key unless the deployment opts in to anonymous scraping
(``AGRIDRONE_METRICS_PUBLIC=true``): the API port faces farmers, and request counts by
route and status tell an outsider how the service is used. It holds no farm data (only
route templates such as ``/api/v1/fields/{field_id}``, never ids from paths). Each
application has its own registry, so several apps in one process (tests) never clash.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Final, cast

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import authenticate, require_role
from api.deps import MetadataDep

router = APIRouter(tags=["health"])

#: The ``route`` label of requests no route matched (unknown paths stay one series).
UNMATCHED: Final = "<unmatched>"


@dataclass(frozen=True, slots=True)
class ApiMetrics:
    """One application's registry and the request metrics in it."""

    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    templates: dict[int, str] = field(default_factory=dict)

    def include(self, app: FastAPI, router: APIRouter, prefix: str = "") -> None:
        """``app.include_router`` that also notes each route's full path template."""
        app.include_router(router, prefix=prefix)
        for route in router.routes:
            self.templates[id(route)] = prefix + str(getattr(route, "path", ""))

    def template(self, route: object) -> str:
        """The full path template of the route a request matched (``<unmatched>`` if none)."""
        if route is None:
            return UNMATCHED
        return self.templates.get(id(route)) or str(getattr(route, "path", UNMATCHED))

    @classmethod
    def create(cls) -> ApiMetrics:
        """A fresh registry with process, platform and GC metrics plus request metrics."""
        registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        requests = Counter(
            "agridrone_api_requests",
            "HTTP requests answered, by method, route template and status code",
            ["method", "route", "status"],
            registry=registry,
        )
        latency = Histogram(
            "agridrone_api_request_duration_seconds",
            "Time from request to the end of the response, by method and route template",
            ["method", "route"],
            registry=registry,
        )
        return cls(registry, requests, latency)


class MetricsMiddleware:
    """Counts every HTTP request and times it, labelled by the route template it matched."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, noting its status code and duration."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            template = self.metrics.template(scope.get("route"))
            method = str(scope["method"])
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - started)


_operator_only = require_role("operator")


def metrics_access(request: Request, metadata: MetadataDep) -> None:
    """An operator key (401 without a valid key, 403 for other roles), unless public."""
    if getattr(request.app.state, "metrics_public", False):
        return
    _operator_only(authenticate(request, metadata, None))


@router.get("/metrics", response_class=Response, dependencies=[Depends(metrics_access)])
def metrics(request: Request) -> Response:
    """The process's metrics in Prometheus text format (an operator key, unless public)."""
    registry = cast(ApiMetrics, request.app.state.metrics).registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
