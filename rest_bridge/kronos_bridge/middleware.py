"""One ASGI middleware for every request: request id, body size limit, metrics, last-resort errors.

* ``X-Request-ID``: the caller's when it is a sane token, else a fresh one; on every
  response and forwarded to gRPC as ``x-request-id``.
* Body limit: ``Content-Length`` over KRONOS_MAX_REQUEST_SIZE_MB is refused (413) before a
  byte is read; a body without one is read up to the limit and refused when it passes it.
  The body is then replayed to the route, which parses it.
* Metrics: the routes that call the KronosPredictor service are counted here, once, under
  their REST path (the service does not count the bridge's calls again), with the same
  status values as native gRPC calls, the bridge's own rejections included.
* An :class:`HttpError` from anywhere below becomes the error body; anything else is a
  500 with a generic message and a logged traceback.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from loguru import logger
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kronos_bridge.errors import GENERIC_INTERNAL, HttpError, bad_request, error_response, too_large
from kronos_server.observability.metrics import Metrics
from kronos_server.rpc.interceptors.request_context import request_id_from

SCOPE_KEY = "kronos"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# (method, REST path) -> the KronosPredictor method it calls (the endpoint label)
COUNTED_ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/v1/predict/single"): "PredictSingle",
    ("POST", "/v1/predict/batch"): "PredictBatch",
    ("GET", "/v1/models"): "GetModelInfo",
}
# HTTP status -> status label, when the route did not set one itself
_OUTCOME_BY_HTTP = {
    400: "invalid",
    401: "unauthorized",
    403: "forbidden",
    413: "too_large",
    422: "invalid",
    429: "rate_limited",
    499: "cancelled",
    503: "unavailable",
    504: "timeout",
}


@dataclass
class RequestInfo:
    """Per-request state shared by the middleware and the route (``request.scope["kronos"]``)."""

    request_id: str
    outcome: str | None = None


class ClientGone(Exception):
    """The client disconnected before the answer was ready."""


def info_of(request: Request) -> RequestInfo:
    info: RequestInfo = request.scope[SCOPE_KEY]
    return info


def outcome_of(status: int) -> str:
    if status < 400:
        return "success"
    return _OUTCOME_BY_HTTP.get(status, "error")


class BridgeMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics, max_body_bytes: int):
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        info = RequestInfo(request_id_from(headers.get("x-request-id")))
        scope[SCOPE_KEY] = info
        endpoint = COUNTED_ROUTES.get((scope["method"], scope["path"]))
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = int(message["status"])
                MutableHeaders(scope=message).append("x-request-id", info.request_id)
            await send(message)

        if endpoint is not None:
            self.metrics.concurrent.inc()
        with logger.contextualize(request_id=info.request_id):
            try:
                body_receive = receive
                if scope["method"] in BODY_METHODS:
                    body_receive = await self._buffered(headers, receive)
                await self.app(scope, body_receive, send_with_id)
            except HttpError as exc:
                info.outcome = exc.outcome
                if not response_started:
                    await error_response(exc, info.request_id)(scope, receive, send_with_id)
            except ClientGone:
                info.outcome, status = "cancelled", 499
            except Exception:
                logger.exception("unhandled error in {} {}", scope["method"], scope["path"])
                info.outcome = "error"
                if not response_started:
                    fault = HttpError(500, "internal", GENERIC_INTERNAL, "error")
                    await error_response(fault, info.request_id)(scope, receive, send_with_id)
            finally:
                elapsed = time.perf_counter() - started
                outcome = info.outcome or outcome_of(status)
                if endpoint is not None:
                    self._record(scope["path"], endpoint, outcome, elapsed)
                log = logger.bind(
                    method=scope["method"],
                    path=scope["path"],
                    endpoint=endpoint,
                    status=outcome,
                    http_status=status,
                    latency_ms=round(elapsed * 1e3, 3),
                )
                if endpoint is None:
                    log.debug("http request finished")
                elif outcome in ("timeout", "rate_limited"):
                    log.warning("http request finished")
                elif outcome == "error":
                    log.error("http request finished")
                else:
                    log.info("http request finished")

    def _record(self, route: str, endpoint: str, outcome: str, elapsed: float) -> None:
        m = self.metrics
        m.requests.labels(route, outcome).inc()
        m.request_duration.labels(route).observe(elapsed)
        if outcome == "timeout":
            m.timeouts.labels(endpoint).inc()
        m.concurrent.dec()

    def refuse_size(self, size: int) -> HttpError:
        self.metrics.size_rejections.labels("unknown").inc()
        return too_large(
            f"request body is {size} bytes; the limit is {self.max_body_bytes} bytes",
            {"limit_bytes": self.max_body_bytes},
        )

    async def _buffered(self, headers: Headers, receive: Receive) -> Receive:
        """Read the whole body within the limit; a receive() that replays it."""
        declared = headers.get("content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                raise bad_request(f"invalid Content-Length: {declared[:40]!r}") from None
            if size > self.max_body_bytes:
                raise self.refuse_size(size)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise self.refuse_size(size)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay
