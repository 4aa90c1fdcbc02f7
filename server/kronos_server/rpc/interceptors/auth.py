"""Authentication and authorisation: every caller is a container (key, allow-list or mTLS)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from grpc.aio import ServicerContext
from loguru import logger

from kronos_server.errors import KronosError, PermissionDeniedError, UnauthenticatedError
from kronos_server.observability.metrics import Metrics
from kronos_server.rpc import context as call
from kronos_server.rpc.interceptors.base import ScopeInterceptor, metadata
from kronos_server.rpc.status import abort
from kronos_server.security.auth import Authenticator, Identity

CREDENTIAL_METADATA = ("x-container-name", "authorization")


def client_cert_name(context: ServicerContext) -> str | None:
    """The verified client certificate's common name (mTLS), if any."""
    names = (context.auth_context() or {}).get("x509_common_name") or []
    return names[0].decode("utf-8", "replace") if names else None


def repeated_credentials(context: ServicerContext) -> list[str]:
    """The credential metadata keys sent more than once.

    A repeated ``x-container-name`` or ``authorization`` is ambiguous: picking one of the
    values (the first, the last) lets two parsers on the way disagree on who is calling.
    """
    seen = Counter(key.lower() for key, _ in context.invocation_metadata() or ())
    return [key for key in CREDENTIAL_METADATA if seen[key] > 1]


class AuthInterceptor(ScopeInterceptor):
    def __init__(self, authenticator: Authenticator, metrics: Metrics, mtls: bool):
        self.authenticator = authenticator
        self.metrics = metrics
        self.mtls = mtls

    def label(self, container: str | None) -> str:
        """Bounded label: configured containers by name, anything else 'unknown'."""
        auth = self.authenticator
        if container and (
            container in auth.trusted_containers or (auth.keys is not None and container in auth.keys)
        ):
            return container
        return "unknown"

    def claimed(self, context: ServicerContext) -> str | None:
        """Who the caller says it is: the client certificate's name under mTLS, else the header."""
        cert_name = client_cert_name(context) if self.mtls else None
        return cert_name if cert_name is not None else metadata(context).get("x-container-name")

    def identify(self, context: ServicerContext, method: str) -> Identity:
        cert_name = client_cert_name(context) if self.mtls else None
        if cert_name is not None:
            return self.authenticator.authenticate_mtls(cert_name, method)
        repeated = repeated_credentials(context)
        if repeated:
            raise UnauthenticatedError(f"ambiguous credentials: {' and '.join(repeated)} sent more than once")
        md = metadata(context)
        return self.authenticator.authenticate(md.get("x-container-name"), md.get("authorization"), method)

    @asynccontextmanager
    async def scope(self, method: str, request: Any, context: ServicerContext) -> AsyncIterator[None]:
        state = call.current() or call.CallState(*call.route_of(method))
        try:
            identity = self.identify(context, state.method)
        except KronosError as exc:
            label = self.label(self.claimed(context))
            denied = isinstance(exc, PermissionDeniedError)
            state.outcome = "forbidden" if denied else "unauthorized"
            state.container = label
            self.metrics.security_events.labels("blocked" if denied else "unauthorized", label).inc()
            # never log the authorization value; the claimed name only when configured
            logger.bind(container=label).warning("{} call refused: {}", state.method, exc.message)
            await abort(context, exc)
        state.container = identity.container
        state.identity = identity
        with logger.contextualize(container=identity.container):
            yield
