"""Retries: only UNAVAILABLE / RESOURCE_EXHAUSTED, backoff honouring retry-after, one request id."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

from kronos.v1 import predictor_pb2 as pb
from kronos.v1 import predictor_pb2_grpc as pb_grpc
from kronos_client import AsyncKronosClient, ClientConfig, KronosClient, KronosClientError
from kronos_client.retry import RetryPolicy, retryable
from tests.servers import start_server

# -- against the real server's rate limiter -------------------------------------------


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    running = start_server(tmp_path_factory.mktemp("limited"), rate_limit="2/minute")
    yield running
    running.stop()


def test_rate_limit_then_give_up_within_the_deadline(limited: Any) -> None:
    config = ClientConfig(limited.target, container=limited.container, key=limited.key, retries=0)
    with KronosClient(config) as client:
        client.model_info()
        client.model_info()
        with pytest.raises(KronosClientError) as info:
            client.model_info()
    err = info.value
    assert err.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert err.retry_after is not None and err.retry_after > 0
    assert err.trailers["x-ratelimit-limit"] == "2"
    assert err.trailers["x-ratelimit-remaining"] == "0"

    # with retries left but retry-after (~30 s) beyond a 2 s deadline, it gives up at once
    patient = ClientConfig(limited.target, container=limited.container, key=limited.key, retries=5, timeout=2)
    with KronosClient(patient) as client:
        started = time.monotonic()
        with pytest.raises(KronosClientError) as info:
            client.model_info()
        assert time.monotonic() - started < 2.0
    assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED


# -- against a scripted server ----------------------------------------------------------


class Scripted(pb_grpc.KronosPredictorServicer):
    """Fails the first calls as scripted, records every call's x-request-id."""

    def __init__(self) -> None:
        self.script: list[tuple[grpc.StatusCode, tuple[tuple[str, str], ...]]] = []
        self.request_ids: list[str] = []
        self.lock = threading.Lock()

    def GetModelInfo(self, request: Any, context: grpc.ServicerContext) -> pb.ModelInfo:
        md = dict(context.invocation_metadata())
        with self.lock:
            self.request_ids.append(str(md.get("x-request-id")))
            step = self.script.pop(0) if self.script else None
        if step is not None:
            code, trailers = step
            context.set_trailing_metadata(trailers)
            context.abort(code, f"scripted {code.name}")
        return pb.ModelInfo(model_name="scripted", max_context=7)


@pytest.fixture(scope="module")
def scripted_server() -> Iterator[tuple[str, Scripted]]:
    servicer = Scripted()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_KronosPredictorServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", servicer
    server.stop(None)


@pytest.fixture
def scripted(scripted_server: tuple[str, Scripted]) -> tuple[str, Scripted]:
    target, servicer = scripted_server
    servicer.script.clear()
    servicer.request_ids.clear()
    return target, servicer


def fast(target: str, **overrides: Any) -> ClientConfig:
    values: dict[str, Any] = {"retries": 3, "backoff_base": 0.01, "backoff_max": 0.05, "timeout": 10}
    values.update(overrides)
    return ClientConfig(target, **values)


UNAVAILABLE = (grpc.StatusCode.UNAVAILABLE, ())


def test_unavailable_is_retried_with_the_same_request_id(scripted: tuple[str, Scripted]) -> None:
    target, servicer = scripted
    servicer.script.extend([UNAVAILABLE, UNAVAILABLE])
    with KronosClient(fast(target)) as client:
        assert client.model_info().model_name == "scripted"
    assert len(servicer.request_ids) == 3
    assert len(set(servicer.request_ids)) == 1 and servicer.request_ids[0] != "None"


def test_async_retries_too(scripted: tuple[str, Scripted]) -> None:
    target, servicer = scripted
    servicer.script.extend([UNAVAILABLE, UNAVAILABLE])

    async def scenario() -> str:
        async with AsyncKronosClient(fast(target)) as client:
            return (await client.model_info()).model_name

    assert asyncio.run(scenario()) == "scripted"
    assert len(servicer.request_ids) == 3 and len(set(servicer.request_ids)) == 1


def test_retries_are_bounded(scripted: tuple[str, Scripted]) -> None:
    target, servicer = scripted
    servicer.script.extend([UNAVAILABLE] * 10)
    with KronosClient(fast(target, retries=2)) as client, pytest.raises(KronosClientError) as info:
        client.model_info()
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    assert len(servicer.request_ids) == 3


def test_retry_after_is_honoured(scripted: tuple[str, Scripted]) -> None:
    target, servicer = scripted
    servicer.script.append((grpc.StatusCode.RESOURCE_EXHAUSTED, (("retry-after", "1"),)))
    with KronosClient(fast(target)) as client:
        started = time.monotonic()
        assert client.model_info().max_context == 7
        assert time.monotonic() - started >= 1.0
    assert len(servicer.request_ids) == 2


@pytest.mark.parametrize(
    "failure",
    [
        (grpc.StatusCode.INVALID_ARGUMENT, (("kronos-error-field", "pred_len"),)),
        (grpc.StatusCode.UNAUTHENTICATED, ()),
        (grpc.StatusCode.INTERNAL, ()),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, ()),  # too large: no retry-after, retrying cannot help
    ],
)
def test_other_failures_are_final(
    scripted: tuple[str, Scripted], failure: tuple[grpc.StatusCode, tuple[tuple[str, str], ...]]
) -> None:
    target, servicer = scripted
    servicer.script.append(failure)
    with KronosClient(fast(target)) as client, pytest.raises(KronosClientError) as info:
        client.model_info()
    assert info.value.code == failure[0]
    assert len(servicer.request_ids) == 1
    if failure[1] and failure[1][0][0] == "kronos-error-field":
        assert info.value.field == "pred_len"


def test_the_overall_deadline_bounds_all_attempts(scripted: tuple[str, Scripted]) -> None:
    target, servicer = scripted
    servicer.script.extend([UNAVAILABLE] * 1000)
    config = fast(target, retries=1000, backoff_base=0.05, backoff_max=0.2, timeout=0.8)
    with KronosClient(config) as client:
        started = time.monotonic()
        with pytest.raises(KronosClientError) as info:
            client.model_info()
        elapsed = time.monotonic() - started
    assert info.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    assert elapsed < 1.5
    assert len(servicer.request_ids) > 1


def test_an_unreachable_server_is_unavailable(tmp_path: Path) -> None:
    from tests.clients.conftest import free_port

    config = fast(f"127.0.0.1:{free_port()}", retries=1, timeout=3)
    with KronosClient(config) as client, pytest.raises(KronosClientError) as info:
        client.model_info()
    assert info.value.code == grpc.StatusCode.UNAVAILABLE


# -- the policy itself ------------------------------------------------------------------


def test_backoff_is_exponential_jittered_and_capped() -> None:
    policy = RetryPolicy(retries=10, base=0.5, cap=3.0, rng=random.Random(0))
    for attempt in range(10):
        bound = min(3.0, 0.5 * 2**attempt)
        delays = [policy.backoff(attempt) for _ in range(200)]
        assert all(0 <= d <= bound for d in delays)
        assert max(delays) > bound * 0.8  # full jitter spreads over the whole range


def test_delay_waits_at_least_retry_after_and_respects_deadline() -> None:
    policy = RetryPolicy(retries=3, base=0.01, cap=0.02)
    limited = KronosClientError(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down", retry_after=2.0)
    assert policy.delay(0, limited, remaining=10.0) == 2.0
    assert policy.delay(0, limited, remaining=1.0) is None
    assert policy.delay(3, limited, remaining=10.0) is None  # retries spent
    too_large = KronosClientError(grpc.StatusCode.RESOURCE_EXHAUSTED, "too large")
    assert not retryable(too_large)
    assert retryable(KronosClientError(grpc.StatusCode.UNAVAILABLE, "down"))
    assert not retryable(KronosClientError(grpc.StatusCode.INVALID_ARGUMENT, "bad"))
