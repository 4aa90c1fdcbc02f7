"""The client reads the standard error details, and the old trailers from older servers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from kronos.v1 import predictor_pb2 as pb
from kronos.v1 import predictor_pb2_grpc as pb_grpc
from kronos_client.errors import KronosClientError, status_details
from kronos_client.retry import retryable
from tests.rpc.helpers import request
from tests.servers import RunningServer, start_server


class FakeError(grpc.RpcError):
    """What a server of another make (or an older one of ours) could answer."""

    def __init__(self, code: grpc.StatusCode, message: str, trailers: tuple[tuple[str, Any], ...]):
        self._code, self._message, self._trailers = code, message, trailers

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._message

    def trailing_metadata(self) -> tuple[tuple[str, Any], ...]:
        return self._trailers


def _details_bin(code: grpc.StatusCode, message: str, *details: Any) -> bytes:
    packed = []
    for detail in details:
        one = any_pb2.Any()
        one.Pack(detail)
        packed.append(one)
    return status_pb2.Status(code=code.value[0], message=message, details=packed).SerializeToString()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("client-details"), max_queued_rows=4, max_request_size_mb=0.01
    )
    yield running
    running.stop()


def _refused(running: RunningServer, req: pb.PredictRequest) -> KronosClientError:
    stub = pb_grpc.KronosPredictorStub(grpc.insecure_channel(running.target))
    with pytest.raises(grpc.RpcError) as err:
        stub.PredictSingle(req, metadata=running.auth_metadata)
    return KronosClientError.from_rpc_error(err.value)


def test_field_reason_and_request_id_from_a_real_server(server: RunningServer) -> None:
    error = _refused(server, request(top_p=1.5))
    assert (error.code, error.field, error.reason) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "sampling.top_p",
        "INVALID_ARGUMENT",
    )
    assert error.request_id and error.retry_after is None and not retryable(error)


def test_overload_is_retried_after_the_servers_wait(server: RunningServer) -> None:
    error = _refused(server, request(sample_count=8))  # 8 rows > the admission limit of 4
    assert (error.reason, error.retry_after) == ("OVERLOADED", 1.0) and retryable(error)


def test_too_large_is_not_retried(server: RunningServer) -> None:
    error = _refused(server, request(400, 4))
    assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED and error.reason == "TOO_LARGE"
    assert error.retry_after is None and not retryable(error)


def test_details_win_over_the_old_trailers() -> None:
    blob = _details_bin(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "slow down",
        error_details_pb2.ErrorInfo(reason="RATE_LIMITED", domain="kronos.v1"),
        error_details_pb2.RetryInfo(retry_delay={"seconds": 2, "nanos": 500_000_000}),
    )
    trailers = (("retry-after", "3"), ("grpc-status-details-bin", blob))
    error = KronosClientError.from_rpc_error(
        FakeError(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down", trailers)
    )
    assert (error.reason, error.retry_after) == ("RATE_LIMITED", 2.5)


def test_field_from_the_violation_or_the_error_info() -> None:
    violation = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field="history.low[2]", description="x")
        ]
    )
    blob = _details_bin(grpc.StatusCode.INVALID_ARGUMENT, "x", violation)
    assert status_details((("grpc-status-details-bin", blob),)).field == "history.low[2]"
    info = error_details_pb2.ErrorInfo(
        reason="INVALID_ARGUMENT", domain="kronos.v1", metadata={"field": "pred_len"}
    )
    blob = _details_bin(grpc.StatusCode.INVALID_ARGUMENT, "x", info)
    assert status_details((("grpc-status-details-bin", blob),)).field == "pred_len"


def test_an_older_server_is_read_from_its_trailers() -> None:
    trailers = (("kronos-error-field", "history.close[3]"),)
    error = KronosClientError.from_rpc_error(FakeError(grpc.StatusCode.INVALID_ARGUMENT, "bad", trailers))
    assert (error.field, error.reason) == ("history.close[3]", None)
    old = KronosClientError.from_rpc_error(
        FakeError(grpc.StatusCode.RESOURCE_EXHAUSTED, "full", (("retry-after", "1"),))
    )
    assert old.retry_after == 1.0 and retryable(old)


def test_a_corrupt_details_blob_leaves_the_error_readable() -> None:
    trailers = (("grpc-status-details-bin", b"\xff\x00garbage"), ("retry-after", "4"))
    error = KronosClientError.from_rpc_error(FakeError(grpc.StatusCode.UNAVAILABLE, "down", trailers))
    assert (error.code, error.message, error.retry_after, error.reason) == (
        grpc.StatusCode.UNAVAILABLE,
        "down",
        4.0,
        None,
    )
