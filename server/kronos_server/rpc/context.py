"""Per-call state shared by the interceptors of one RPC (they all run in the call's task)."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Any

SERVICE = "kronos.v1.KronosPredictor"
# the RPCs of our service; anything else (health, reflection) is infrastructure
METHODS = ("PredictSingle", "PredictBatch", "PredictStream", "GetModelInfo")
ROUTES = tuple(f"/{SERVICE}/{m}" for m in METHODS)
OTHER_ROUTE = "other"


@dataclass
class CallState:
    route: str
    method: str  # short name, e.g. "PredictSingle"
    request_id: str = ""
    container: str = "unknown"  # a configured container name, else "unknown" (bounded label)
    outcome: str | None = None  # set by whoever rejects the call, read by metrics
    identity: Any = None  # security.auth.Identity once authenticated
    log_fields: dict[str, Any] = field(default_factory=dict)  # extra fields of the access-log line


_current: contextvars.ContextVar[CallState | None] = contextvars.ContextVar("kronos_call", default=None)


def current() -> CallState | None:
    return _current.get()


def begin(state: CallState) -> contextvars.Token[CallState | None]:
    return _current.set(state)


def end(token: contextvars.Token[CallState | None]) -> None:
    _current.reset(token)


def route_of(method_path: str) -> tuple[str, str]:
    """Full method path -> (bounded route label, short method name)."""
    if method_path in ROUTES:
        return method_path, method_path.rsplit("/", 1)[-1]
    return OTHER_ROUTE, ""


def is_infrastructure(method_path: str) -> bool:
    """Health and reflection: always reachable, never authenticated or rate limited."""
    return method_path.startswith(("/grpc.health.v1.", "/grpc.reflection."))
