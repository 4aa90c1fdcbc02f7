"""The call gate: request id, authentication, rate limit, size limits, outcome accounting
and error mapping, written once for every transport.

A transport adapter describes the call (:class:`~kronos_server.gate.call.Call`) and runs
its handler inside :meth:`Gate.scope`, the outermost step: it assigns the request id, counts
and times the call (kronos_requests_total and the rest, with the same route and status
labels for gRPC and REST), writes the access-log line, and maps what the handler raised to
the one error vocabulary (:mod:`kronos_server.errors`): a project error passes on as it is,
a fault becomes :class:`~kronos_server.errors.InternalError` with its traceback logged. The
adapter then answers the error in its own terms.

Within the scope, :meth:`Gate.admitted` authenticates the caller, charges its rate limit
and checks the size limits (:meth:`Gate.check_size`). gRPC admits a call at once, the
message having arrived whole. REST checks the body's size while reading it, before it is
parsed, and admits the call once the body is parsed, so that a batch costs its series.

A gate without an authenticator (the standalone REST bridge) leaves authentication and
rate limits to the gRPC server it forwards the credentials to.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING

from loguru import logger

from kronos_server.errors import (
    InternalError,
    KronosError,
    PermissionDeniedError,
    TooLargeError,
    UnauthenticatedError,
)
from kronos_server.gate import call as calls
from kronos_server.gate.call import Call
from kronos_server.observability.metrics import Metrics
from kronos_server.security.auth import Authenticator, Identity
from kronos_server.security.ratelimit import RateLimiter

if TYPE_CHECKING:
    from loguru import Logger

GENERIC_INTERNAL = "internal error; the server logged the details"
# the headers' size limit: gRPC's own (its core refuses larger metadata before the gate runs),
# so that a REST caller has the same limit
MAX_HEADER_BYTES = 16 * 1024
CREDENTIAL_HEADERS = ("x-container-name", "authorization")


def deadline_slack(budget: float) -> float:
    """How close to its deadline a cancellation counts as the deadline passing.

    The client's deadline fires first: it started the clock before sending, the server only
    on receipt. Its cancellation then reaches the server a little before the server's own
    deadline, and would be counted as a client cancel instead of a timeout.
    """
    return min(1.0, max(0.05, 0.1 * budget))


def access_line(log: Logger, status: str, message: str) -> None:
    """An access-log line at its status's level: WARNING for a timeout or a rate limit, ERROR
    for a fault of ours, INFO otherwise."""
    if status in ("timeout", "rate_limited"):
        log.warning(message)
    elif status == "error":
        log.error(message)
    else:
        log.info(message)


def repeated_credentials(call: Call) -> list[str]:
    """The credential headers sent more than once.

    A repeated ``x-container-name`` or ``authorization`` is ambiguous: picking one of the
    values (the first, the last) lets two parsers on the way disagree on who is calling.
    """
    return [name for name in CREDENTIAL_HEADERS if call.headers.count(name) > 1]


class Gate:
    def __init__(
        self,
        metrics: Metrics,
        *,
        authenticator: Authenticator | None,
        limiter: RateLimiter | None,
        max_request_bytes: int,
        max_batch_items: int,
        mtls: bool = False,
    ):
        self.metrics = metrics
        self.authenticator = authenticator
        self.limiter = limiter
        self.max_request_bytes = max_request_bytes
        self.max_batch_items = max_batch_items
        self.mtls = mtls

    # --- the outermost step: request id, accounting, access log, error mapping -------------

    @asynccontextmanager
    async def scope(self, call: Call) -> AsyncIterator[Call]:
        """Serve ``call`` within: ``call.request_id`` is set on entry, the call counted on exit."""
        call.request_id = calls.request_id_from(call.headers.get("x-request-id"))
        token = calls.begin(call)
        m = self.metrics
        m.concurrent.inc()
        started = time.perf_counter()
        budget = call.time_remaining()
        try:
            with logger.contextualize(request_id=call.request_id, endpoint=call.method or call.route):
                try:
                    yield call
                    call.outcome = call.outcome or "success"
                    call.code = call.code or "OK"
                except KronosError as exc:
                    self._settle(call, exc.cause.outcome, exc.cause.grpc_code)
                    if exc.cause.name == "internal":
                        logger.opt(exception=exc).error("internal error")
                    raise
                except asyncio.CancelledError:
                    remaining = call.time_remaining()
                    near = (
                        budget is not None and remaining is not None and remaining <= deadline_slack(budget)
                    )
                    self._settle(call, "timeout" if near else "cancelled", "CANCELLED")
                    raise
                except Exception as exc:
                    answered = call.answered(exc)
                    if answered is not None:
                        self._settle(call, answered, call.code or "UNKNOWN")
                        raise
                    logger.exception("unhandled error")
                    self._settle(call, "error", "INTERNAL", force=True)
                    raise InternalError(GENERIC_INTERNAL) from exc
                finally:
                    self._access_log(call, time.perf_counter() - started)
        finally:
            self._count(call, time.perf_counter() - started)
            m.concurrent.dec()
            calls.end(token)

    @staticmethod
    def _settle(call: Call, outcome: str, code: str, force: bool = False) -> None:
        """The call's outcome, unless a step that refused it has set it already."""
        if force or call.outcome is None:
            call.outcome = outcome
        call.code = call.code or code

    def _count(self, call: Call, seconds: float) -> None:
        m = self.metrics
        status = call.outcome or "error"
        m.child(m.requests, call.route, status).inc()
        m.child(m.request_duration, call.route).observe(seconds)
        if status == "timeout":
            m.timeouts.labels(call.method or call.route).inc()

    @staticmethod
    def _access_log(call: Call, seconds: float) -> None:
        status = call.outcome or "error"
        log = logger.bind(
            container=call.container,
            status=status,
            latency_ms=round(seconds * 1000, 3),
            code=call.code or "UNKNOWN",
            **call.log_fields,
        )
        access_line(log, status, "request finished")

    # --- admission: who calls, its rate limit, the size limits -----------------------------

    @contextmanager
    def admitted(self, call: Call, *, size: bool = True) -> Iterator[None]:
        """Authenticate and rate-limit ``call`` (and check its size unless ``size`` is False);
        log lines within name the caller's container. Raises the refusal's KronosError."""
        if self.authenticator is not None:
            self.authenticate(call)
            self.rate_limit(call)
        if size:
            self.check_size(call)
        with logger.contextualize(container=call.container):
            yield

    def label(self, container: str | None) -> str:
        """Bounded label: configured containers by name, anything else 'unknown'."""
        auth = self.authenticator
        if (
            auth is not None
            and container
            and (container in auth.trusted_containers or (auth.keys is not None and container in auth.keys))
        ):
            return container
        return "unknown"

    def _cert_name(self, call: Call) -> str | None:
        return call.peer_common_name if self.mtls else None

    def identify(self, call: Call) -> Identity:
        assert self.authenticator is not None
        cert_name = self._cert_name(call)
        if cert_name is not None:
            return self.authenticator.authenticate_mtls(cert_name, call.method)
        repeated = repeated_credentials(call)
        if repeated:
            raise UnauthenticatedError(f"ambiguous credentials: {' and '.join(repeated)} sent more than once")
        headers = call.headers
        return self.authenticator.authenticate(
            headers.get("x-container-name"), headers.get("authorization"), call.method
        )

    def authenticate(self, call: Call) -> None:
        try:
            identity = self.identify(call)
        except KronosError as exc:
            cert_name = self._cert_name(call)
            label = self.label(cert_name if cert_name is not None else call.headers.get("x-container-name"))
            denied = isinstance(exc, PermissionDeniedError)
            call.outcome = "forbidden" if denied else "unauthorized"
            call.container = label
            self.metrics.security_events.labels("blocked" if denied else "unauthorized", label).inc()
            # never log the authorization value; the claimed name only when configured
            logger.bind(container=label).warning("{} call refused: {}", call.method, exc.message)
            raise
        call.container = identity.container
        call.identity = identity

    def rate_limit(self, call: Call) -> None:
        """Charge the caller's bucket: a batch costs its number of series, a backtest its
        origins (``call.rate_units``), any other call one."""
        identity = call.identity
        if self.limiter is None or identity is None:
            return
        units = call.rate_units if call.rate_units is not None else call.batch_items
        cost = max(1, units or 0)
        decision = self.limiter.try_acquire(identity.container, cost, identity.rate_limit)
        if not decision.allowed:
            call.outcome = "rate_limited"
            self.metrics.rate_limit_hits.labels(identity.container).inc()
            error = decision.error(identity.container)
            logger.warning("rate limit hit: {}", error.message)
            raise error

    def check_size(self, call: Call) -> None:
        """The request's headers and bytes and a batch's series against the limits (TooLargeError)."""
        problem: TooLargeError | None = None
        if call.header_bytes is not None and call.header_bytes > MAX_HEADER_BYTES:
            problem = TooLargeError(
                f"request headers are {call.header_bytes} bytes; the limit is {MAX_HEADER_BYTES} bytes",
                details={"limit_header_bytes": MAX_HEADER_BYTES},
            )
        size, limit = call.size_bytes, self.max_request_bytes
        if problem is None and size is not None and size > limit:
            problem = TooLargeError(
                f"{call.size_subject} is {size} bytes; the limit is {limit} bytes",
                details={"limit_bytes": limit},
            )
        items, most = call.batch_items, self.max_batch_items
        if problem is None and items is not None and items > most:
            problem = TooLargeError(
                f"items: {items} series in one batch; the limit is {most}",
                field="items",
                details={"limit_items": most},
            )
        if problem is not None:
            call.outcome = "too_large"
            self.metrics.size_rejections.labels(call.container).inc()
            logger.warning("request too large: {}", problem.message)
            raise problem
