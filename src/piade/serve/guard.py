"""The server's outer layer: the token check and the request metrics, as one ASGI middleware.

With a token (``piade serve --token-file``) every path but ``/healthz`` and the Swagger UI's
static files needs ``Authorization: Bearer TOKEN``. HTTP Basic with the token as the password is
accepted too, so that a browser opening ``/`` or ``/docs`` asks for it once (the 401 of those
pages carries a Basic challenge) and sends it with every request of the page after that. The
comparison takes the same time whatever the token given (``hmac.compare_digest``).

Every request is counted in ``piade_requests_total`` by route and status, and timed in
``piade_request_seconds`` (Prometheus text format at ``/metrics``).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.responses import JSONResponse

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = ("/healthz",)
OPEN_PREFIXES = ("/static/",)  # Swagger UI's JavaScript and CSS: the same for every server
PAGES = ("/", "/docs")  # opened by a browser: a Basic challenge makes it ask for the token
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Telemetry:
    """The server's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self, routes: tuple[str, ...]) -> None:
        self.routes = routes
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "piade_requests", "HTTP requests by route and status", ["route", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "piade_request_seconds", "time to answer a request, by route", ["route"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.images = Counter("piade_images_scored", "images scored", registry=self.registry)
        self.batch = Histogram(
            "piade_batch_images", "images per scored batch (micro-batching)",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=self.registry,
        )  # fmt: skip

    def observe(self, path: str, status: int, seconds: float) -> None:
        route = path if path in self.routes else "other"  # unknown paths share one label
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)


def authorised(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``token`` (Bearer, or Basic's password)."""
    scheme, _, value = (header or "").partition(" ")
    given = value.strip()
    if scheme.lower() == "basic":
        try:
            given = base64.b64decode(given, validate=True).decode("utf-8").partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return False
    elif scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))


class Guard:
    """ASGI middleware: refuses requests without the token, counts and times every request."""

    def __init__(self, app: ASGIApp, *, token: str | None, telemetry: Telemetry) -> None:
        self.app, self.token, self.telemetry = app, token, telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), [500]

        async def send_counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        path = scope["path"]
        try:
            if self.token is None or self._open(path) or self._allowed(scope):
                await self.app(scope, receive, send_counted)
            else:
                await self._refuse(path)(scope, receive, send_counted)
        finally:
            self.telemetry.observe(path, status[0], time.perf_counter() - start)

    def _open(self, path: str) -> bool:
        return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)

    def _allowed(self, scope: Scope) -> bool:
        headers = dict(scope.get("headers") or [])
        header = headers.get(b"authorization", b"").decode("latin-1")
        return authorised(header, self.token or "")

    @staticmethod
    def _refuse(path: str) -> JSONResponse:
        challenge = 'Basic realm="piade", charset="UTF-8"' if path in PAGES else "Bearer"
        return JSONResponse(
            {"error": "missing or wrong token: send 'Authorization: Bearer TOKEN' with the token"
             " of the file given to piade serve --token-file"},
            status_code=401,
            headers={"WWW-Authenticate": challenge},
        )  # fmt: skip
