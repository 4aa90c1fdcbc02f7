"""The handle a caller gets for a submitted forecast: awaitable result, step stream, cancel."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator

from kronos_server.errors import CancelledError, KronosError
from kronos_server.forecast.types import Forecast, StepUpdate

_END = object()


class Ticket:
    """Thread-safe bridge between the engine thread and the caller (sync or asyncio)."""

    def __init__(self, request_id: str, series_id: str, rows: int, stream: bool):
        self.request_id = request_id
        self.series_id = series_id
        self.rows = rows
        self.future: concurrent.futures.Future[Forecast] = concurrent.futures.Future()
        self._cancelled = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[object] | None = None
        if stream:
            self._loop = asyncio.get_running_loop()
            self._queue = asyncio.Queue()

    @property
    def streaming(self) -> bool:
        return self._queue is not None

    # -- caller side -----------------------------------------------------------------------
    def cancel(self) -> None:
        """Ask the engine to drop this request's rows at the next step boundary."""
        self._cancelled.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancelled.is_set()

    def wait(self, timeout: float | None = None) -> Forecast:
        """Block until the forecast is ready (for synchronous callers such as the CLI)."""
        return self.future.result(timeout)

    async def result(self) -> Forecast:
        return await asyncio.wrap_future(self.future)

    async def steps(self) -> AsyncIterator[StepUpdate]:
        """Each generated step as soon as it exists; ends when the forecast is complete."""
        if self._queue is None:
            raise RuntimeError("submit(..., stream=True) to receive steps")
        while True:
            item = await self._queue.get()
            if item is _END:
                return
            assert isinstance(item, StepUpdate)
            yield item

    # -- engine side -----------------------------------------------------------------------
    def publish(self, update: StepUpdate) -> None:
        if self._loop is not None and self._queue is not None:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, update)

    def _close_stream(self) -> None:
        if self._loop is not None and self._queue is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._queue.put_nowait, _END)

    def resolve(self, forecast: Forecast) -> None:
        if not self.future.done():
            self.future.set_result(forecast)
        self._close_stream()

    def fail(self, error: KronosError) -> None:
        if not self.future.done():
            self.future.set_exception(error)
        self._close_stream()

    def fail_cancelled(self) -> None:
        self.fail(CancelledError("request cancelled", details={"request_id": self.request_id}))
