"""The service's method paths, and the call being served (the gate's :class:`Call`, which the
servicer reads for the request id and annotates for the access log)."""

from __future__ import annotations

from kronos_server.gate.call import METHODS, Call, begin, current, end

__all__ = ["METHODS", "OTHER_ROUTE", "ROUTES", "SERVICE", "Call", "begin", "current", "end"]

SERVICE = "kronos.v1.KronosPredictor"
# the RPCs of our service (METHODS); anything else (health, reflection) is infrastructure
ROUTES = tuple(f"/{SERVICE}/{m}" for m in METHODS)
OTHER_ROUTE = "other"


def route_of(method_path: str) -> tuple[str, str]:
    """Full method path -> (bounded route label, short method name)."""
    if method_path in ROUTES:
        return method_path, method_path.rsplit("/", 1)[-1]
    return OTHER_ROUTE, ""


def is_infrastructure(method_path: str) -> bool:
    """Health and reflection: always reachable, never authenticated or rate limited."""
    return method_path.startswith(("/grpc.health.v1.", "/grpc.reflection."))
