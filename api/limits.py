"""Request limits enforced before a route runs: body size while it is read, JSON nesting.

A pure ASGI middleware reads the body itself, counting bytes as they arrive: a declared
``Content-Length`` over the limit is refused before reading, and a body (chunked or not)
that grows past it is refused as soon as it does (413). A JSON body nested deeper than
``MAX_JSON_DEPTH`` is refused with 422 before FastAPI parses it (Python's parser would hit
its recursion limit and crash the request). Accepted bodies are handed on unchanged.
"""

from __future__ import annotations

import re
from typing import Final

import orjson
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fields.registry import json_depth

#: Largest request body: room for a document at the field registry's limits
#: (``fields.registry.MAX_VERTICES`` positions at about 26 bytes each, plus properties).
MAX_BODY_BYTES: Final = 8 * 1024 * 1024
#: Routes that read their own body as a stream and enforce their own size limit (flight-log
#: upload, ``api.routes.logs``): the middleware hands them the request untouched.
STREAMED_BODY: Final = re.compile(r"^/api/v1/drones/[^/]+/[^/]+/logs$")
#: Deepest nesting of arrays and objects in a JSON body (a GeoJSON MultiPolygon
#: FeatureCollection needs 7, so properties keep plenty of room).
MAX_JSON_DEPTH: Final = 32


def too_deep(body: bytes) -> bool:
    """Whether a JSON body nests deeper than ``MAX_JSON_DEPTH``; a body that is not JSON is
    left to the route's own parsing (which answers 422 naming the error)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return "depth limit" in str(exc)
    return json_depth(doc, MAX_JSON_DEPTH) > MAX_JSON_DEPTH


def _too_large(declared: int | None = None) -> JSONResponse:
    size = f" (Content-Length says {declared} bytes)" if declared is not None else ""
    return JSONResponse(
        {
            "detail": f"the request body is larger than the limit of {MAX_BODY_BYTES} bytes"
            f" ({MAX_BODY_BYTES // (1024 * 1024)} MiB){size}; split it into several requests"
        },
        status_code=413,
    )


def _json_like(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return not media or media == "application/json" or media.endswith("+json")


class RequestLimitsMiddleware:
    """Refuses bodies over ``MAX_BODY_BYTES`` (413) and JSON nested past ``MAX_JSON_DEPTH``
    (422) with the app's ``{"detail": ...}`` answers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read and check the body, then run the app on it (or answer the refusal)."""
        if scope["type"] != "http" or (
            scope.get("method") == "POST" and STREAMED_BODY.match(scope.get("path", ""))
        ):
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        declared = headers.get(b"content-length")
        if declared is not None:
            text = declared.decode("latin-1").strip()
            if not text.isdigit():
                await JSONResponse(
                    {"detail": "the Content-Length header is not a number of bytes"},
                    status_code=400,
                )(scope, receive, send)
                return
            if int(text) > MAX_BODY_BYTES:
                await _too_large(int(text))(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its whole body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                await _too_large()(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        if body and _json_like(content_type) and too_deep(body):
            await JSONResponse(
                {
                    "detail": f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels of"
                    " arrays and objects; flatten it (GeoJSON of fields needs 7)"
                },
                status_code=422,
            )(scope, receive, send)
            return
        first: Message = {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, _replay(first, receive), send)


def _replay(first: Message, receive: Receive) -> Receive:
    """A ``receive`` that gives the body already read, then what the real one gives."""
    pending = [first]

    async def replay() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replay
