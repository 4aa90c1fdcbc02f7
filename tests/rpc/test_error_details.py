"""Every error cause, provoked on a real server, decoded with nothing but the standard protos.

A Go or Java caller reads ``grpc-status-details-bin`` as a ``google.rpc.Status``; so do these
tests (``google.rpc.status_pb2`` / ``error_details_pb2`` only, no project code) for the
reason and domain of ``ErrorInfo``, the ``BadRequest`` field violation, ``RetryInfo`` and
``QuotaFailure``. The last tests decode the same errors back into the server's errors, as the
standalone REST bridge does (:func:`kronos_server.rpc.status.error_from_rpc`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from kronos.v1 import predictor_pb2 as pb
from kronos.v1 import predictor_pb2_grpc as pb_grpc
from kronos_server import errors
from kronos_server.rpc.status import error_from_rpc
from kronos_server.security.keys import add_key
from tests.rpc.helpers import request
from tests.servers import RunningServer, start_server

DOMAIN = "kronos.v1"


def _refused(call: Any, *args: Any, **kwargs: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call(*args, **kwargs)
    return err.value


def _status(err: grpc.RpcError) -> status_pb2.Status:
    trailers = dict(err.trailing_metadata() or ())
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    assert status.code == err.code().value[0]
    assert status.message == err.details()
    return status


def _detail(status: status_pb2.Status, kind: type[Message]) -> Any:
    found = [d for d in status.details if d.Is(kind.DESCRIPTOR)]
    if not found:
        return None
    assert len(found) == 1, status
    out = kind()
    found[0].Unpack(out)
    return out


def _info(err: grpc.RpcError, reason: str) -> error_details_pb2.ErrorInfo:
    info = _detail(_status(err), error_details_pb2.ErrorInfo)
    assert info is not None, "no ErrorInfo"
    assert (info.reason, info.domain) == (reason, DOMAIN)
    return info


def _stub(running: RunningServer) -> pb_grpc.KronosPredictorStub:
    return pb_grpc.KronosPredictorStub(grpc.insecure_channel(running.target))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("details")
    keys = tmp / "keys.json"
    key = add_key(keys, "alpha")
    info_key = add_key(keys, "infoonly", methods=["GetModelInfo"])  # the server reads keys at start
    running = start_server(
        tmp, api_keys_file=keys, max_request_size_mb=0.01, max_batch_items=2, max_queued_rows=4
    )
    running.container, running.key = "alpha", key
    running.info_key = info_key
    yield running
    running.stop()


def test_invalid_argument_names_the_field_as_a_proto_path(server: RunningServer) -> None:
    bad = request(sample_count=4, top_p=1.5)
    err = _refused(_stub(server).PredictSingle, bad, metadata=server.auth_metadata)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = _info(err, "INVALID_ARGUMENT")
    assert info.metadata["field"] == "sampling.top_p"
    assert len(info.metadata["request_id"]) >= 8
    violations = _detail(_status(err), error_details_pb2.BadRequest).field_violations
    assert [(v.field, v.description) for v in violations] == [("sampling.top_p", err.details())]
    assert _detail(_status(err), error_details_pb2.RetryInfo) is None  # retrying cannot help
    # the deprecated trailer still says the same, for clients of earlier releases
    assert dict(err.trailing_metadata())["kronos-error-field"] == "sampling.top_p"


def test_an_indexed_candle_field(server: RunningServer) -> None:
    bad = request()
    bad.history.close[3] = float("nan")
    err = _refused(_stub(server).PredictSingle, bad, metadata=server.auth_metadata)
    violations = _detail(_status(err), error_details_pb2.BadRequest).field_violations
    assert violations[0].field == "history.close[3]"


def test_undecodable_request_is_a_violation_of_the_request(server: RunningServer) -> None:
    channel = grpc.insecure_channel(server.target)
    raw = channel.unary_unary("/kronos.v1.KronosPredictor/PredictSingle")
    err = _refused(raw, b"\xff\xff\xff", metadata=server.auth_metadata)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _info(err, "INVALID_ARGUMENT").metadata["field"] == "request"
    assert _detail(_status(err), error_details_pb2.BadRequest).field_violations[0].field == "request"


def test_unauthenticated(server: RunningServer) -> None:
    err = _refused(_stub(server).PredictSingle, request(), metadata=(("x-container-name", "alpha"),))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    info = _info(err, "UNAUTHENTICATED")
    assert "field" not in info.metadata


def test_permission_denied(server: RunningServer) -> None:
    md = (("x-container-name", "infoonly"), ("authorization", f"Bearer {server.info_key}"))
    err = _refused(_stub(server).PredictSingle, request(), metadata=md)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    _info(err, "PERMISSION_DENIED")


def test_too_large_bytes_and_items(server: RunningServer) -> None:
    stub = _stub(server)
    err = _refused(stub.PredictSingle, request(400, 4), metadata=server.auth_metadata)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _info(err, "TOO_LARGE").metadata["limit_bytes"] == str(int(0.01 * 1024 * 1024))
    assert _detail(_status(err), error_details_pb2.RetryInfo) is None  # the same request never fits
    batch = pb.PredictBatchRequest(items=[request(20), request(20), request(20)])
    err = _refused(stub.PredictBatch, batch, metadata=server.auth_metadata)
    assert _info(err, "TOO_LARGE").metadata["limit_items"] == "2"
    assert _detail(_status(err), error_details_pb2.BadRequest).field_violations[0].field == "items"


def test_overloaded_says_when_to_retry(server: RunningServer) -> None:
    # 8 rows (series x samples) against an admission limit of 4: refused at once
    err = _refused(_stub(server).PredictSingle, request(sample_count=8), metadata=server.auth_metadata)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _info(err, "OVERLOADED").metadata["limit_rows"] == "4"
    retry = _detail(_status(err), error_details_pb2.RetryInfo)
    assert retry.retry_delay.seconds == 1
    assert _detail(_status(err), error_details_pb2.QuotaFailure) is None  # not the caller's quota


def test_rate_limited_names_the_quota_and_the_wait(tmp_path: Path) -> None:
    running = start_server(tmp_path, rate_limit="2/minute")
    try:
        stub = _stub(running)
        for _ in range(2):
            stub.GetModelInfo(pb.GetModelInfoRequest(), metadata=running.auth_metadata)
        err = _refused(stub.GetModelInfo, pb.GetModelInfoRequest(), metadata=running.auth_metadata)
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        info = _info(err, "RATE_LIMITED")
        assert (info.metadata["limit"], info.metadata["remaining"]) == ("2", "0")
        retry = _detail(_status(err), error_details_pb2.RetryInfo)
        wait = retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9
        assert 0 < wait <= 30  # one token of 2 per minute
        quota = _detail(_status(err), error_details_pb2.QuotaFailure)
        assert [v.subject for v in quota.violations] == [f"container:{running.container}"]
        assert "2 calls" in quota.violations[0].description
        # the deprecated trailers, rounded up to whole seconds as before
        trailers = dict(err.trailing_metadata())
        assert int(trailers["retry-after"]) >= wait and trailers["x-ratelimit-limit"] == "2"

        decoded = error_from_rpc(err)
        assert isinstance(decoded, errors.RateLimitedError)
        assert (decoded.limit, decoded.remaining, decoded.container) == (2, 0, running.container)
        assert decoded.retry_after == pytest.approx(wait)
    finally:
        running.stop()


def test_unavailable_before_the_model_is_loaded(tmp_path: Path) -> None:
    running = start_server(tmp_path, load=False)
    try:
        err = _refused(_stub(running).PredictSingle, request(), metadata=running.auth_metadata)
        assert err.code() == grpc.StatusCode.UNAVAILABLE
        _info(err, "UNAVAILABLE")
        assert _detail(_status(err), error_details_pb2.RetryInfo).retry_delay.seconds == 1
    finally:
        running.stop()


@pytest.mark.parametrize(
    ("raised", "code", "reason"),
    [
        (
            errors.DeadlineExceededError("inference timed out"),
            grpc.StatusCode.DEADLINE_EXCEEDED,
            "DEADLINE_EXCEEDED",
        ),
        (errors.CancelledError("cancelled"), grpc.StatusCode.CANCELLED, "CANCELLED"),
        (RuntimeError("secret /etc/passwd"), grpc.StatusCode.INTERNAL, "INTERNAL"),
    ],
)
def test_errors_the_dataplane_raises(
    server: RunningServer,
    monkeypatch: pytest.MonkeyPatch,
    raised: Exception,
    code: grpc.StatusCode,
    reason: str,
) -> None:
    async def fail(*args: object, **kwargs: object) -> object:
        raise raised

    plane = server.server.dataplane
    assert plane is not None
    monkeypatch.setattr(plane, "predict", fail)
    err = _refused(_stub(server).PredictSingle, request(), metadata=server.auth_metadata)
    assert err.code() == code
    info = _info(err, reason)
    if reason == "INTERNAL":
        assert "secret" not in err.details() and set(info.metadata) == {"request_id"}


def test_the_bridge_decodes_each_error_into_the_one_the_server_raised(server: RunningServer) -> None:
    stub = _stub(server)
    md = server.auth_metadata
    bad = request()
    bad.history.close[3] = float("nan")
    cases: list[tuple[grpc.RpcError, type[errors.KronosError], str | None]] = [
        (_refused(stub.PredictSingle, bad, metadata=md), errors.InvalidInputError, "close[3]"),
        (_refused(stub.PredictSingle, request(sample_count=8), metadata=md), errors.OverloadedError, None),
        (_refused(stub.PredictSingle, request(400, 4), metadata=md), errors.TooLargeError, None),
        (_refused(stub.PredictSingle, request(), metadata=()), errors.UnauthenticatedError, None),
    ]
    for err, kind, field in cases:
        decoded = error_from_rpc(err)
        assert type(decoded) is kind, (err, decoded)
        assert decoded.field == field and decoded.message == err.details()
    assert error_from_rpc(cases[1][0]).retry_after_s == 1.0
    assert error_from_rpc(cases[1][0]).details["limit_rows"] == 4
