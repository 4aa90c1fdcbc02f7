"""Request id (x-request-id, generated if absent, echoed back) and the per-call log line."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from grpc.aio import ServicerContext
from loguru import logger

from kronos_server.rpc import context as call
from kronos_server.rpc.interceptors.base import ScopeInterceptor, metadata
from kronos_server.rpc.interceptors.metrics import code_name, final_status

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:/-]{1,128}$")


def request_id_from(value: str | None) -> str:
    """The caller's id when it is a sane token, else a fresh one (ids reach logs verbatim)."""
    return value if value and _SAFE_ID.match(value) else uuid.uuid4().hex


class RequestContextInterceptor(ScopeInterceptor):
    @asynccontextmanager
    async def scope(self, method: str, request: Any, context: ServicerContext) -> AsyncIterator[None]:
        state = call.current() or call.CallState(*call.route_of(method))
        state.request_id = request_id_from(metadata(context).get("x-request-id"))
        await context.send_initial_metadata((("x-request-id", state.request_id),))
        started = time.perf_counter()
        code = "OK"
        with logger.contextualize(request_id=state.request_id, endpoint=state.method or method):
            try:
                yield
                code = code_name(context)
            except asyncio.CancelledError:
                code = "CANCELLED"
                raise
            except grpc.aio.AbortError:
                code = code_name(context)
                raise
            except BaseException:
                code = "INTERNAL"
                raise
            finally:
                status = final_status(state, code)
                latency_ms = round((time.perf_counter() - started) * 1000, 3)
                log = logger.bind(
                    container=state.container,
                    status=status,
                    latency_ms=latency_ms,
                    code=code,
                    **state.log_fields,
                )
                if status in ("timeout", "rate_limited"):
                    log.warning("request finished")
                elif status == "error":
                    log.error("request finished")
                else:
                    log.info("request finished")
