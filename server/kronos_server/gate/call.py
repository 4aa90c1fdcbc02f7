"""What the gate knows of one call, whatever transport carried it.

A transport adapter (the gRPC interceptor, the REST middleware) describes each call of the
service as a :class:`Call`: which method, the caller's headers / metadata, the verified
client certificate's name, the request's size. The gate then fills in what it decides (the
request id, the caller's container, the outcome) and the handler adds log fields. The call
being served is also the context variable :func:`current`, so code below the transport (the
servicer, a remote dataplane forwarding credentials) can read it.
"""

from __future__ import annotations

import contextvars
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

# the RPCs of the service, by their short names (the permission names of the keys file)
METHODS = ("PredictSingle", "PredictBatch", "PredictStream", "GetModelInfo", "Backtest")

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:/-]{1,128}$")


def request_id_from(value: str | None) -> str:
    """The caller's id when it is a sane token, else a fresh one (ids reach logs verbatim)."""
    return value if value and _SAFE_ID.match(value) else uuid.uuid4().hex


class Headers:
    """Case-insensitive, possibly repeated headers (HTTP) or metadata keys (gRPC).

    Only text values are kept: binary gRPC metadata carries no credential of ours.
    """

    def __init__(self, items: Iterable[tuple[str, Any]] = ()):
        self._items = [(key.lower(), value) for key, value in items if isinstance(value, str)]

    def get(self, name: str) -> str | None:
        """The first value of ``name``, if any."""
        name = name.lower()
        return next((value for key, value in self._items if key == name), None)

    def getlist(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self._items if key == name]

    def count(self, name: str) -> int:
        return len(self.getlist(name))


@dataclass
class Call:
    """One call of the service; the adapter sets the first block, the gate the second."""

    method: str  # short RPC name ("PredictSingle", ...)
    route: str  # the kronos_requests_total route label: gRPC method path or REST path
    headers: Headers = field(default_factory=Headers)
    peer_common_name: str | None = None  # the verified client certificate's name (mTLS)
    size_bytes: int | None = None  # the encoded request, when known
    header_bytes: int | None = None  # headers / metadata, names and values (where the transport lets them in)
    batch_items: int | None = None  # series in a batch call, when known
    # what the call costs against the caller's rate limit when not one unit or batch_items:
    # a backtest's origins (kronos_server.backtest.origins.charged_origins)
    rate_units: int | None = None
    size_subject: str = "request"  # how a size refusal names what was too large
    # seconds left before the caller's deadline (None: no deadline), asked at the start and
    # on a cancellation, to tell a deadline passing from a caller going away
    time_remaining: Callable[[], float | None] = lambda: None
    # the outcome label of an exception the transport has answered itself (an abort), else None
    answered: Callable[[BaseException], str | None] = lambda exc: None

    request_id: str = ""
    container: str = "unknown"  # a configured container name, else "unknown" (bounded label)
    identity: Any = None  # security.auth.Identity once authenticated
    outcome: str | None = None  # the kronos_requests_total status label, once decided
    code: str | None = None  # the status code name the call ended with (for the access log)
    log_fields: dict[str, Any] = field(default_factory=dict)  # extra fields of the access-log line


_current: contextvars.ContextVar[Call | None] = contextvars.ContextVar("kronos_call", default=None)


def current() -> Call | None:
    """The call being served in this task, if any."""
    return _current.get()


def begin(call: Call) -> contextvars.Token[Call | None]:
    return _current.set(call)


def end(token: contextvars.Token[Call | None]) -> None:
    _current.reset(token)
