"""Streams the client cancels after their first event end as ``cancelled``, at once.

Found by the soak: the interceptors wrapped PredictStream in an async generator, and a call
cancelled while grpc was sending a message left that generator suspended until the garbage
collector closed it in another task. Such a call was counted as ``error`` (INTERNAL), its
engine rows decoded on, and resetting the call's context variables in the foreign task
raised "Task exception was never retrieved" on the event loop.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import grpc
import pytest

from kronos.v1 import predictor_pb2_grpc as pb_grpc
from tests.rpc.helpers import request
from tests.servers import start_server

ROUTE = "/kronos.v1.KronosPredictor/PredictStream"
CALLS = 150


def test_cancelled_streams_are_counted_as_cancelled_and_closed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    running = start_server(tmp_path, torch_threads=1)  # no OpenMP spinning on a busy machine
    try:
        stub = pb_grpc.KronosPredictorStub(grpc.insecure_channel(running.target))
        for i in range(CALLS):
            call = stub.PredictStream(
                request(40, 30, start=i, seed=i, sample_count=2), metadata=running.auth_metadata
            )
            next(call)
            call.cancel()
        dp = running.server.dataplane
        assert dp is not None

        def count(status: str) -> float:
            labels = {"route": ROUTE, "status": status}
            return running.metrics.registry.get_sample_value("kronos_requests_total", labels) or 0.0

        end = time.monotonic() + 10
        while count("cancelled") + count("error") + count("success") < CALLS and time.monotonic() < end:
            time.sleep(0.02)
        assert (count("cancelled"), count("error")) == (CALLS, 0)
        stats = dp.engine.stats()
        assert stats.running_rows == stats.queued_rows == 0  # freed when cancelled, not when collected
        loop_errors = [r for r in caplog.records if r.name == "asyncio" and r.levelno >= logging.ERROR]
        assert not loop_errors, loop_errors[0].getMessage()
    finally:
        running.stop()
