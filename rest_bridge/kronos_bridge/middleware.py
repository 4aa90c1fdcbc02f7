"""The ASGI adapter of the call gate, for every HTTP request.

* Request id: ``X-Request-ID``, the caller's when it is a sane token, else a fresh one, on
  every response.
* The routes that call the service (``COUNTED_ROUTES``) run inside the gate's scope
  (:meth:`kronos_server.gate.Gate.scope`): counted once under their REST path, with the
  same status values as gRPC calls, the refusals here included, and one access-log line
  ("request finished"). The route admits the call (authentication, rate limit) once it has
  parsed the body.
* Header limit: the service's routes refuse headers over gRPC's metadata limit (413).
* Body limit: ``Content-Length`` over KRONOS_MAX_REQUEST_SIZE_MB is refused (413) before a
  byte is read; a body without one is read up to the limit and refused when it passes it
  (the gate's size check, so also counted). The body is then replayed to the route.
* Errors: a :class:`~kronos_server.errors.KronosError` from below becomes its HTTP answer
  (:func:`kronos_bridge.errors.http_error`), an :class:`HttpError` is answered as it is,
  anything else is a 500 with a generic message and a logged traceback.
* Every request also gets an "http request finished" line (method, path, HTTP status).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass

from loguru import logger
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kronos_bridge.errors import GENERIC_INTERNAL, HttpError, error_response, http_error
from kronos_server.errors import InternalError, KronosError, MalformedRequestError
from kronos_server.gate import Call, Gate, request_id_from
from kronos_server.gate import Headers as CallHeaders
from kronos_server.gate.gate import access_line

SCOPE_KEY = "kronos"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# (method, REST path) -> the KronosPredictor method it calls (the endpoint label)
COUNTED_ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/v1/predict/single"): "PredictSingle",
    ("POST", "/v1/predict/batch"): "PredictBatch",
    ("GET", "/v1/models"): "GetModelInfo",
    ("POST", "/v1/backtest"): "Backtest",
}
# HTTP status -> status label of the log line, for requests outside the gate
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
    call: Call  # the gate's view of the call (counted only on COUNTED_ROUTES)


class ClientGone(Exception):
    """The client disconnected before the answer was ready."""


def info_of(request: Request) -> RequestInfo:
    info: RequestInfo = request.scope[SCOPE_KEY]
    return info


def outcome_of(status: int) -> str:
    if status < 400:
        return "success"
    return _OUTCOME_BY_HTTP.get(status, "error")


def _answered(exc: BaseException) -> str | None:
    """The outcome of an exception the REST layer answers itself."""
    if isinstance(exc, HttpError):
        return exc.outcome
    if isinstance(exc, ClientGone):
        return "cancelled"
    return None


def describe(scope: Scope, headers: Headers) -> Call:
    """The gate's view of an HTTP request."""
    return Call(
        method=COUNTED_ROUTES.get((scope["method"], scope["path"]), ""),
        route=scope["path"],
        headers=CallHeaders(headers.items()),
        size_subject="request body",
        answered=_answered,
    )


# a route's endpoint that takes the Request and returns its Response (routes.predict.DirectRoute)
Endpoint = Callable[[Request], Awaitable[Response]]


class GateMiddleware:
    """The gate around every HTTP request; ``direct`` (method, path) -> endpoint: the hottest
    routes, called here at once rather than through the router and FastAPI's own layers
    (they raise nothing those layers would handle)."""

    def __init__(self, app: ASGIApp, *, gate: Gate, direct: Mapping[tuple[str, str], Endpoint] | None = None):
        self.app = app
        self.gate = gate
        self.direct = dict(direct or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        call = describe(scope, headers)
        counted = bool(call.method)
        started = time.perf_counter()
        status = 500
        response_started = False
        error: HttpError | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = int(message["status"])
                MutableHeaders(scope=message).append("x-request-id", call.request_id)
            await send(message)

        gated: AbstractAsyncContextManager[object] = self.gate.scope(call) if counted else nullcontext()
        try:
            async with gated:
                if not counted:
                    call.request_id = request_id_from(headers.get("x-request-id"))
                scope[SCOPE_KEY] = RequestInfo(call.request_id, call)
                if counted:
                    call.header_bytes = sum(len(k) + len(v) for k, v in scope["headers"])
                    self.gate.check_size(call)
                body_receive = receive
                if scope["method"] in BODY_METHODS:
                    body_receive = await self._buffered(call, headers, receive)
                endpoint = self.direct.get((scope["method"], scope["path"]))
                if endpoint is None:
                    await self.app(scope, body_receive, send_with_id)
                else:
                    response = await endpoint(Request(scope, body_receive, send_with_id))
                    await response(scope, body_receive, send_with_id)
        except HttpError as exc:
            error = exc
        except KronosError as exc:
            error = http_error(exc)
        except ClientGone:
            call.outcome, status = "cancelled", 499
        except Exception:  # outside the gate (uncounted routes): the gate logs its own
            logger.exception("unhandled error in {} {}", scope["method"], scope["path"])
            error = http_error(InternalError(GENERIC_INTERNAL))
        with logger.contextualize(request_id=call.request_id):
            if error is not None:
                call.outcome = call.outcome or error.outcome
                if not response_started:
                    await error_response(error, call.request_id)(scope, receive, send_with_id)
            self._log(scope, call, status, time.perf_counter() - started)

    @staticmethod
    def _log(scope: Scope, call: Call, status: int, elapsed: float) -> None:
        outcome = call.outcome or outcome_of(status)
        log = logger.bind(
            method=scope["method"],
            path=scope["path"],
            endpoint=call.method or None,
            status=outcome,
            http_status=status,
            latency_ms=round(elapsed * 1e3, 3),
        )
        if not call.method:
            log.debug("http request finished")
        else:
            access_line(log, outcome, "http request finished")

    def _check_size(self, call: Call, size: int) -> None:
        call.size_bytes = size
        self.gate.check_size(call)

    async def _buffered(self, call: Call, headers: Headers, receive: Receive) -> Receive:
        """Read the whole body within the limit; a receive() that replays it."""
        declared = headers.get("content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                raise MalformedRequestError(f"invalid Content-Length: {declared[:40]!r}") from None
            self._check_size(call, size)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.gate.max_request_bytes:
                self._check_size(call, size)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        call.size_bytes = size
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay
