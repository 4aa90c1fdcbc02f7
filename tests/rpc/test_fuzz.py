"""Property-based fuzzing of the gRPC API against ONE real server (tiny parity model).

Every example goes over the wire to the same server, which must stay healthy and correct
throughout. Hostile input covered:

* values: NaN, +-inf, +-1e308, 1e30 and 3e38 (float32 statistics overflow), subnormals,
  zero and negative prices, high < low, whole columns scaled into the extremes;
* shapes: empty histories, 1-row histories, mismatched column lengths, a missing volume or
  amount, 100,000-row histories (over max_history) and messages over the size limits;
* timestamps: unsorted, duplicated, out of the int64-nanosecond range (before 1677 or after
  2262), prediction timestamps before the history;
* sampling: temperature 0 / negative / subnormal / huge / NaN, top_k negative / huge,
  top_p 0 / > 1 / NaN, sample_count 0 / huge, pred_len 0 / negative / huge, seeds up to
  2^64 - 1 (all accepted), too many or out-of-range quantiles, unknown and path-like time zones;
* the wire: random bytes and mutated valid messages as the request (raw generic calls),
  unknown fields. The proto has no enums, so there are no unknown enum values to send;
* metadata: authorization without Bearer, huge values (past grpc's 8 KiB soft limit),
  binary ``-bin`` headers, duplicated x-container-name / authorization / x-request-id,
  unsafe x-request-id values (grpc clients refuse to send control characters at all; the
  REST bridge's handling of them is in tests/rest_bridge/test_errors.py);
* PredictBatch mixing good and bad items.

The oracle for a request is the server's own decoding and validation run locally
(``convert.series_from_pb`` + ``prepare``): an invalid request must come back with exactly
that error's code, message and ``kronos-error-field`` (the proto path of the field), and a
valid one must be forecast, with finite numbers and the right lengths and timestamps. Nothing
may ever be INTERNAL or UNKNOWN. The last test checks that, after all of it, the server is
SERVING with an idle engine, has counted no ``error`` outcome, and answers a seeded request
exactly as it did before the fuzzing.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from kronos.v1 import predictor_pb2 as pb
from kronos.v1 import predictor_pb2_grpc as pb_grpc
from kronos_server.errors import KronosError
from kronos_server.forecast.prepare import prepare
from kronos_server.forecast.types import FEATURES, PreparedSeries
from kronos_server.rpc import convert
from kronos_server.rpc.context import SERVICE
from tests.rpc.helpers import request
from tests.servers import RunningServer, start_server

FIELD_TRAILER = "kronos-error-field"
# what a hostile caller may get back; never INTERNAL or UNKNOWN
REFUSALS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
}
SAFE_ID = re.compile(r"^[A-Za-z0-9._:/-]{1,128}$")
TIMEOUT = 60
FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI is reproducible
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

INT32 = (-(2**31), -1, 0, 1, 2**31 - 1)
INT64 = (-(2**63), -(2**62), -1, 0, 2**62, 2**63 - 1)
HOSTILE_FLOATS = (
    math.nan,
    -math.nan,
    math.inf,
    -math.inf,
    1e308,
    -1e308,
    5e-324,  # the smallest subnormal
    2.2e-308,
    1e-40,  # subnormal in float32
    0.0,
    -0.0,
    -1.0,
    1e30,
    3e38,
    3.5e38,  # past float32's largest
)
floats = st.one_of(st.sampled_from(HOSTILE_FLOATS), st.floats(allow_nan=True, allow_infinity=True))
int32s = st.one_of(st.sampled_from(INT32), st.integers(-(2**31), 2**31 - 1))
int64s = st.one_of(st.sampled_from(INT64), st.integers(-(2**63), 2**63 - 1))
ZONES = (
    "",
    "UTC",
    "Z",
    "America/New_York",
    "Asia/Shanghai",
    "Mars/Olympus",
    "../../etc/passwd",
    "\x00",
    "a" * 300,
)


# -- the server and its checks ----------------------------------------------------------


class Fuzzed:
    """The one server, a stub, a raw channel, and the forecast it gave before the fuzzing."""

    KNOWN_GOOD = request(40, 4, start=100, sample_count=4, seed=7)

    def __init__(self, running: RunningServer):
        self.running = running
        self.channel = grpc.insecure_channel(running.target)
        self.stub = pb_grpc.KronosPredictorStub(self.channel)
        self.md = running.auth_metadata
        dp = running.server.dataplane
        assert dp is not None
        self.dp = dp
        self.baseline = self.stub.PredictSingle(self.KNOWN_GOOD, metadata=self.md, timeout=TIMEOUT)

    def raw(self, method: str) -> Any:
        path = f"/{SERVICE}/{method}"
        if method == "PredictStream":
            return self.channel.unary_stream(path, request_serializer=bytes, response_deserializer=bytes)
        return self.channel.unary_unary(path, request_serializer=bytes, response_deserializer=bytes)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    # one torch thread: the parity model is tiny, and OpenMP workers waiting on each other crawl
    # when the CI machine is busy
    running = start_server(tmp_path_factory.mktemp("fuzz"), torch_threads=1)
    try:
        yield Fuzzed(running)
    finally:
        running.stop()


def resolves(path: str, descriptor: Descriptor = pb.PredictRequest.DESCRIPTOR) -> bool:
    """True when ``path`` ("history.close[17]", "sampling.top_p", "request") names a field."""
    if path == "request":
        return True
    for i, part in enumerate(path.split(".")):
        name, _, index = part.partition("[")
        field = descriptor.fields_by_name.get(name)
        if field is None or (index and not field.is_repeated):
            return False
        if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
            descriptor = field.message_type
        elif i != path.count("."):
            return False
    return True


def leaf(path: str) -> str:
    """The field's own name as messages use it: history.timestamps_ms[3] -> timestamps."""
    return path.rsplit(".", 1)[-1].split("[")[0].removesuffix("_ms")


def check_refusal(err: grpc.RpcError, descriptor: Descriptor = pb.PredictRequest.DESCRIPTOR) -> None:
    """A refusal of the taxonomy, with a message; INVALID_ARGUMENT names a real field (of the
    request message ``descriptor``)."""
    code = err.code()
    assert code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), err
    assert code in REFUSALS, err
    assert err.details(), err
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        field = dict(err.trailing_metadata() or ()).get(FIELD_TRAILER, "")
        assert field and resolves(field, descriptor), (field, err.details())
        assert leaf(field) in err.details(), (field, err.details())


def expect(fuzzed: Fuzzed, req: pb.PredictRequest) -> PreparedSeries | KronosError:
    """The oracle: the server's decoding and validation, run here."""
    try:
        return prepare(convert.series_from_pb(req), fuzzed.dp.limits)
    except KronosError as exc:
        return exc


def check_forecast(response: pb.PredictResponse, prepared: PreparedSeries, req: pb.PredictRequest) -> None:
    n = len(prepared.y_timestamps)
    f = response.forecast
    assert list(f.timestamps_ms) == (prepared.y_timestamps // convert.NS_PER_MS).tolist()
    for name in FEATURES:
        values = list(getattr(f, name))
        assert len(values) == n, name
        assert all(math.isfinite(v) for v in values), (name, values)
    assert response.series_id == req.series_id
    assert response.sample_count == prepared.sampling.sample_count
    assert [q.q for q in response.quantiles] == sorted(set(prepared.sampling.quantiles))
    for q in response.quantiles:
        assert all(len(getattr(q.values, name)) == n for name in FEATURES)
        assert all(math.isfinite(v) for name in FEATURES for v in getattr(q.values, name))


def _event(text: str) -> None:
    """Counted in --hypothesis-show-statistics (when called from a property)."""
    if currently_in_test_context():
        event(text)


def check_answer(
    fuzzed: Fuzzed, req: pb.PredictRequest, call: Callable[[], pb.PredictResponse]
) -> pb.PredictResponse | None:
    """Call; the answer must be exactly what the oracle says."""
    want = expect(fuzzed, req)
    try:
        response = call()
    except grpc.RpcError as err:
        _event(f"refused {err.code().name}")
        check_refusal(err)
        assert isinstance(want, KronosError), f"a valid request was refused: {err}"
        assert err.code() == grpc.StatusCode[want.code]
        assert err.details() == want.message
        trailers = dict(err.trailing_metadata() or ())
        assert trailers.get(FIELD_TRAILER) == (convert.proto_field(want.field) if want.field else None)
        return None
    assert not isinstance(want, KronosError), f"accepted, but invalid: {want.message}"
    _event("forecast")
    check_forecast(response, want, req)
    return response


# -- drawing hostile requests -----------------------------------------------------------


def _mutate(draw: Any, req: pb.PredictRequest, kind: str) -> None:
    h = req.history
    n = len(h.timestamps_ms)
    if kind == "value" and n:
        column = getattr(h, draw(st.sampled_from(FEATURES)))
        if len(column):
            column[draw(st.integers(0, len(column) - 1))] = draw(floats)
    elif kind == "scale":
        factor = draw(st.sampled_from((1e-300, 1e-40, 1e30, 1e36, 1e300, -1.0, 0.0)))
        for name in draw(st.sets(st.sampled_from(FEATURES), min_size=1)):
            column = getattr(h, name)
            column[:] = [v * factor for v in column]
    elif kind == "high_below_low" and n:
        i = draw(st.integers(0, n - 1))
        h.high[i], h.low[i] = h.low[i], h.high[i] * 0.9
    elif kind == "ts_swap" and n >= 2:
        i = draw(st.integers(0, n - 2))
        h.timestamps_ms[i], h.timestamps_ms[i + 1] = h.timestamps_ms[i + 1], h.timestamps_ms[i]
    elif kind == "ts_duplicate" and n >= 2:
        i = draw(st.integers(1, n - 1))
        h.timestamps_ms[i] = h.timestamps_ms[i - 1]
    elif kind == "ts_value" and n:
        h.timestamps_ms[draw(st.integers(0, n - 1))] = draw(int64s)
    elif kind == "length":
        name = draw(st.sampled_from((*FEATURES, "timestamps_ms")))
        column = getattr(h, name)
        if draw(st.booleans()) and len(column):
            del column[-1]
        else:
            column.append(column[-1] if len(column) else (1 if name == "timestamps_ms" else 1.0))
    elif kind == "drop":
        h.ClearField(draw(st.sampled_from(FEATURES)))  # type: ignore[arg-type]
    elif kind == "sampling":
        s = req.sampling
        name = draw(st.sampled_from(("temperature", "top_k", "top_p", "sample_count", "seed", "quantiles")))
        if name in ("temperature", "top_p"):
            setattr(s, name, draw(floats))
        elif name == "top_k":
            s.top_k = draw(int32s)
        elif name == "sample_count":
            s.sample_count = draw(st.one_of(st.sampled_from((*INT32, 64, 65)), st.integers(-3, 70)))
        elif name == "seed":
            s.seed = draw(st.sampled_from((0, 1, 2**63 - 1, 2**63, 2**64 - 1)))
        else:
            s.quantiles[:] = draw(st.lists(st.one_of(floats, st.floats(0.01, 0.99)), max_size=20))
    elif kind == "pred_len":
        if draw(st.booleans()):
            req.pred_len = draw(st.one_of(st.sampled_from((*INT32, 64, 65)), st.integers(-3, 70)))
        else:
            req.ClearField("pred_len")
    elif kind == "future":
        last = h.timestamps_ms[-1] if n else 0
        steps = draw(st.lists(st.one_of(int64s, st.integers(-600_000, 600_000)), max_size=8))
        req.prediction_timestamps_ms[:] = [
            s if abs(s) > 600_000 else min(max(last + s, -(2**63)), 2**63 - 1) for s in steps
        ]
        if draw(st.booleans()):
            req.ClearField("pred_len")
    elif kind == "timezone":
        req.timezone = draw(st.one_of(st.sampled_from(ZONES), st.text(max_size=40)))
    elif kind == "series_id":
        req.series_id = draw(st.text(max_size=200))


MUTATIONS = (
    "value",
    "scale",
    "high_below_low",
    "ts_swap",
    "ts_duplicate",
    "ts_value",
    "length",
    "drop",
    "sampling",
    "pred_len",
    "future",
    "timezone",
    "series_id",
)


def hostile_request(draw: Any) -> pb.PredictRequest:
    n = draw(st.sampled_from((0, 1, 2, 3, 17, 40)))
    req = request(n, draw(st.integers(1, 6)), start=draw(st.integers(0, 300)), seed=draw(st.integers(0, 9)))
    for kind in draw(st.lists(st.sampled_from(MUTATIONS), max_size=4)):
        _mutate(draw, req, kind)
    return req


# -- the properties -----------------------------------------------------------------------


@FUZZ
@given(data=st.data())
def test_predict_single_answers_hostile_requests_as_validated(fuzzed: Fuzzed, data: st.DataObject) -> None:
    req = hostile_request(data.draw)
    check_answer(fuzzed, req, lambda: fuzzed.stub.PredictSingle(req, metadata=fuzzed.md, timeout=TIMEOUT))


@settings(FUZZ, max_examples=150)
@given(data=st.data())
def test_predict_stream_answers_hostile_requests_as_validated(fuzzed: Fuzzed, data: st.DataObject) -> None:
    req = hostile_request(data.draw)
    steps: list[pb.PredictStep] = []

    def call() -> pb.PredictResponse:
        events = list(fuzzed.stub.PredictStream(req, metadata=fuzzed.md, timeout=TIMEOUT))
        assert events and events[-1].HasField("final")
        assert all(e.HasField("step") for e in events[:-1])
        steps.extend(e.step for e in events[:-1])
        return events[-1].final

    response = check_answer(fuzzed, req, call)
    if response is not None:  # the steps are the final forecast, in order
        assert [s.step for s in steps] == list(range(len(response.forecast.close)))
        assert [s.close for s in steps] == list(response.forecast.close)
        assert [s.timestamp_ms for s in steps] == list(response.forecast.timestamps_ms)


BAD_ITEMS: dict[str, Callable[[pb.PredictRequest], None]] = {
    "nan close": lambda r: r.history.close.__setitem__(3, math.nan),
    "top_p > 1": lambda r: setattr(r.sampling, "top_p", 1.5),
    "timestamp past 2262": lambda r: r.history.timestamps_ms.__setitem__(0, 2**62),
    "pred_len 0": lambda r: setattr(r, "pred_len", 0),
    "unknown zone": lambda r: setattr(r, "timezone", "Mars/Olympus"),
    "short volume": lambda r: r.history.volume.__delitem__(-1),
    "sample_count 0": lambda r: setattr(r.sampling, "sample_count", 0),
    "duplicate timestamp": lambda r: r.history.timestamps_ms.__setitem__(5, r.history.timestamps_ms[4]),
    "future in the past": lambda r: r.prediction_timestamps_ms.extend([0] * r.pred_len),
}


@settings(FUZZ, max_examples=100)
@given(
    items=st.lists(
        st.tuples(
            st.one_of(st.none(), st.sampled_from(sorted(BAD_ITEMS))),
            st.integers(0, 300),
            st.integers(1, 4),
            st.integers(0, 3),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_predict_batch_answers_each_item_and_loses_no_good_one(
    fuzzed: Fuzzed, items: list[tuple[str | None, int, int, int]]
) -> None:
    batch = pb.PredictBatchRequest()
    for bad, start, pred_len, seed in items:
        item = request(20, pred_len, start=start, seed=seed, sample_count=2)
        if bad is not None:
            BAD_ITEMS[bad](item)
        batch.items.append(item)
    response = fuzzed.stub.PredictBatch(batch, metadata=fuzzed.md, timeout=TIMEOUT)
    assert len(response.results) == len(items)
    for (bad, *_), item, result in zip(items, batch.items, response.results, strict=True):
        want = expect(fuzzed, item)
        if bad is None:
            assert result.HasField("forecast"), result.error
            assert isinstance(want, PreparedSeries)
            check_forecast(result.forecast, want, item)
            # seeded: the same forecast as alone, whatever shares the batch
            alone = fuzzed.stub.PredictSingle(item, metadata=fuzzed.md, timeout=TIMEOUT)
            assert result.forecast.forecast == alone.forecast
        else:
            assert result.HasField("error"), bad
            assert isinstance(want, KronosError)
            e = result.error
            assert (e.code, e.message) == ("INVALID_ARGUMENT", want.message)
            assert e.field == convert.proto_field(want.field or "") and resolves(e.field)
            assert leaf(e.field) in e.message


METHODS = ("PredictSingle", "PredictBatch", "PredictStream", "GetModelInfo", "Backtest")
REQUESTS = {"PredictBatch": pb.PredictBatchRequest.DESCRIPTOR, "Backtest": pb.BacktestRequest.DESCRIPTOR}


def _mutated_bytes() -> st.SearchStrategy[bytes]:
    good = request(8, 2).SerializeToString()

    @st.composite
    def mutate(draw: Any) -> bytes:
        data = bytearray(good)
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(data) - 1))
            op = draw(st.sampled_from(("flip", "insert", "delete", "truncate")))
            if op == "flip":
                data[i] ^= 1 << draw(st.integers(0, 7))
            elif op == "insert":
                data[i:i] = draw(st.binary(min_size=1, max_size=8))
            elif op == "delete" and len(data) > 1:
                del data[i]
            else:
                del data[i:]
                if not data:
                    data = bytearray(b"\x0a")
        return bytes(data)

    return mutate()


@settings(FUZZ, max_examples=200)
@given(
    method=st.sampled_from(METHODS),
    payload=st.one_of(st.binary(max_size=512), _mutated_bytes()),
)
def test_random_bytes_as_the_request_are_refused_cleanly(fuzzed: Fuzzed, method: str, payload: bytes) -> None:
    call = fuzzed.raw(method)
    try:
        answer = call(payload, metadata=fuzzed.md, timeout=TIMEOUT)
        if method == "PredictStream":
            answer = list(answer)
    except grpc.RpcError as err:
        event(f"refused {err.code().name}")
        check_refusal(err, REQUESTS.get(method, pb.PredictRequest.DESCRIPTOR))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err
        return
    event("parsed and answered")
    # it parsed: the answer is a real message of the method's response type
    if method == "PredictSingle":
        pb.PredictResponse.FromString(answer)
    elif method == "PredictBatch":
        parsed = pb.PredictBatchResponse.FromString(answer)
        for result in parsed.results:
            assert result.HasField("forecast") or (result.error.code and result.error.message)
    elif method == "PredictStream":
        assert answer and pb.PredictStreamEvent.FromString(answer[-1]).HasField("final")
    elif method == "Backtest":
        assert pb.BacktestResponse.FromString(answer).scores[0].forecaster == "model"
    else:
        assert pb.ModelInfo.FromString(answer).max_context == 64


KEYS = (
    "authorization",
    "x-container-name",
    "x-request-id",
    "x-other",
    "authorization-bin",
    "x-container-name-bin",
    "x-request-id-bin",
)
printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200)


@settings(FUZZ, max_examples=150)
@given(data=st.data())
def test_garbage_metadata_is_refused_or_served_never_faulted(fuzzed: Fuzzed, data: st.DataObject) -> None:
    md: list[tuple[str, str | bytes]] = []
    if data.draw(st.booleans()):
        md += list(fuzzed.md)
    for _ in range(data.draw(st.integers(0, 4))):
        key = data.draw(st.sampled_from(KEYS))
        if key.endswith("-bin"):
            md.append((key, data.draw(st.binary(max_size=64))))
            continue
        value = data.draw(
            st.one_of(
                printable,
                st.sampled_from(
                    (
                        fuzzed.running.key,  # the key without "Bearer "
                        f"bearer {fuzzed.running.key}",
                        "Bearer ",
                        "Basic dGVzdGVyOmtleQ==",
                        fuzzed.running.container,
                        "x" * 10_000,  # past grpc's 8 KiB soft metadata limit
                        "id with spaces",
                        "../../etc/passwd",
                    )
                ),
            )
        )
        md.insert(data.draw(st.integers(0, len(md))), (key, value))
    sent = {
        k: [v for key, v in md if key == k] for k in ("x-container-name", "authorization", "x-request-id")
    }
    valid = sent["x-container-name"] == [fuzzed.running.container] and sent["authorization"] == [
        f"Bearer {fuzzed.running.key}"
    ]
    try:
        response, call = fuzzed.stub.PredictSingle.with_call(
            request(20, 2, seed=1), metadata=tuple(md), timeout=TIMEOUT
        )
    except grpc.RpcError as err:
        event(f"refused {err.code().name}")
        check_refusal(err)
        if err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:  # grpc's own metadata size limit
            assert sum(len(k) + len(v) for k, v in md) > 8 * 1024, err
        else:
            assert err.code() == grpc.StatusCode.UNAUTHENTICATED and not valid, err
            assert fuzzed.running.key not in err.details()
        return
    event("served")
    assert valid, md
    assert len(response.forecast.close) == 2
    echoed = dict(call.initial_metadata())["x-request-id"]
    ids = sent["x-request-id"]
    if ids and SAFE_ID.match(str(ids[-1])):
        assert echoed == ids[-1]
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", str(echoed)), echoed


# -- explicit extremes --------------------------------------------------------------------


def _long(rows: int, columns: tuple[str, ...] = FEATURES) -> pb.PredictRequest:
    req = pb.PredictRequest(pred_len=1)
    req.history.timestamps_ms.extend(range(1_600_000_000_000, 1_600_000_000_000 + 60_000 * rows, 60_000))
    for name in columns:
        getattr(req.history, name).extend([10.0] * rows)
    return req


def test_huge_histories_are_refused_by_field_or_by_size(fuzzed: Fuzzed) -> None:
    limits = fuzzed.dp.limits
    max_bytes = fuzzed.running.settings.max_request_bytes
    # 100,000 rows (5.4 MB, within the size limit): INVALID_ARGUMENT naming the field
    req = _long(100_000)
    assert req.ByteSize() < max_bytes
    err = _refused(fuzzed, req)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(err.trailing_metadata())[FIELD_TRAILER] == "history.timestamps_ms"
    assert f"at most {limits.max_history} rows, got 100000" in err.details()
    # mismatched lengths at that size name the short column
    del req.history.low[-1]
    req.history.timestamps_ms[:] = req.history.timestamps_ms[: limits.max_history]
    for name in FEATURES:
        column = getattr(req.history, name)
        column[:] = column[: limits.max_history - (name == "low")]
    err = _refused(fuzzed, req)
    assert dict(err.trailing_metadata())[FIELD_TRAILER] == "history.low"
    # past max_request_bytes: RESOURCE_EXHAUSTED naming the limit, before any parsing of values
    req = _long(400_000)
    assert max_bytes < req.ByteSize() < 2 * max_bytes
    err = _refused(fuzzed, req)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"the limit is {max_bytes} bytes" in err.details()
    # far past it, grpc itself refuses the message (still RESOURCE_EXHAUSTED, nothing allocated)
    req = _long(700_000)
    assert req.ByteSize() > 2 * max_bytes
    assert _refused(fuzzed, req).code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # a batch of items each over max_history: every one its own error
    batch = pb.PredictBatchRequest(
        items=[_long(limits.max_history + 1, ("open", "high", "low", "close"))] * 3
    )
    results = fuzzed.stub.PredictBatch(batch, metadata=fuzzed.md, timeout=TIMEOUT).results
    assert [r.error.field for r in results] == ["history.timestamps_ms"] * 3


@pytest.mark.parametrize("rows", [0, 1])
def test_empty_and_single_row_histories_name_the_field(fuzzed: Fuzzed, rows: int) -> None:
    err = _refused(fuzzed, request(rows, 2))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(err.trailing_metadata())[FIELD_TRAILER] == "history.timestamps_ms"
    assert f"got {rows}" in err.details()


def _set_history(req: pb.PredictRequest, ms: list[int]) -> None:
    req.history.timestamps_ms[:] = ms
    for name in FEATURES:
        getattr(req.history, name)[:] = getattr(req.history, name)[: len(ms)]


# what the fuzzing found (each was INTERNAL, a wrong forecast or an inf forecast), kept as
# fixed examples: the change, and the field of the refusal (None: it must be forecast)
FOUND: dict[str, tuple[Callable[[pb.PredictRequest], None], str | None]] = {
    "temperature 1e-300 (0 in float32)": (lambda r: setattr(r.sampling, "temperature", 1e-300), None),
    "temperature 5e-324": (lambda r: setattr(r.sampling, "temperature", 5e-324), None),
    "temperature 1e-38": (lambda r: setattr(r.sampling, "temperature", 1e-38), None),
    "timezone of 300 characters": (lambda r: setattr(r, "timezone", "a" * 300), "timezone"),
    "history timestamp 2^62 ms": (
        lambda r: r.history.timestamps_ms.__setitem__(0, 2**62),
        "history.timestamps_ms[0]",
    ),
    "prediction timestamp -2^62 ms": (
        lambda r: (r.ClearField("pred_len"), r.prediction_timestamps_ms.append(-(2**62))),
        "prediction_timestamps_ms[0]",
    ),
    "rows 570 years apart": (lambda r: _set_history(r, [-9_000_000_000_000, 9_000_000_000_000]), "pred_len"),
    "prices around 1e30": (
        lambda r: [
            getattr(r.history, k).__setitem__(slice(None), [v * 1e30 for v in getattr(r.history, k)])
            for k in ("open", "high", "low", "close")
        ],
        "history.open",
    ),
    "volume near float32's largest": (
        lambda r: r.history.volume.__setitem__(slice(None), [3e38 if i % 2 else 1e37 for i in range(30)]),
        "history.volume",
    ),
}


@pytest.mark.parametrize("name", sorted(FOUND))
def test_what_the_fuzzing_found_stays_fixed(fuzzed: Fuzzed, name: str) -> None:
    change, field = FOUND[name]
    req = request(30, 3, seed=2, sample_count=2)
    change(req)
    response = check_answer(
        fuzzed, req, lambda: fuzzed.stub.PredictSingle(req, metadata=fuzzed.md, timeout=TIMEOUT)
    )
    if field is None:
        assert response is not None
    else:
        err = _refused(fuzzed, req)
        assert dict(err.trailing_metadata())[FIELD_TRAILER] == field


def test_a_tiny_temperature_does_not_fail_its_batch_mates(fuzzed: Fuzzed) -> None:
    """They share the engine's decode steps: one row's NaN softmax used to fail them all."""
    good = [request(30, 3, start=50 * i, seed=i, sample_count=2) for i in range(3)]
    tiny = request(30, 3, start=20, seed=9, sample_count=2, temperature=5e-324)
    response = fuzzed.stub.PredictBatch(
        pb.PredictBatchRequest(items=[good[0], tiny, good[1], good[2]]), metadata=fuzzed.md, timeout=TIMEOUT
    )
    assert all(r.HasField("forecast") for r in response.results), response
    for item, result in zip(good, [response.results[0], *response.results[2:]], strict=True):
        assert result.forecast.forecast == fuzzed.stub.PredictSingle(item, metadata=fuzzed.md).forecast


def _refused(fuzzed: Fuzzed, req: pb.PredictRequest) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        fuzzed.stub.PredictSingle(req, metadata=fuzzed.md, timeout=TIMEOUT)
    check_refusal(caught.value)
    return caught.value


# -- Backtest: its own fields, hostile, against the plan run here ---------------------------

small_ints = st.one_of(st.sampled_from((-(2**31), -1, 0, 1, 2, 3, 64, 2**31 - 1)), st.integers(-3, 70))


@settings(FUZZ, max_examples=80)
@given(
    rows=st.one_of(st.integers(0, 90), st.integers(60, 90)),
    horizon=st.one_of(st.integers(1, 8), small_ints),
    context=st.one_of(st.none(), st.integers(2, 40), small_ints),
    origins=st.one_of(st.none(), st.integers(1, 8), small_ints),
    origin_step=st.one_of(st.none(), st.integers(1, 5), small_ints),
    sample_count=st.one_of(st.none(), st.integers(1, 4), st.sampled_from((-1, 0, 10**6))),
    top_p=st.one_of(st.none(), st.none(), floats),
    bad_close=st.one_of(st.none(), st.none(), st.tuples(st.integers(0, 89), floats)),
    zone=st.one_of(st.just(""), st.sampled_from(ZONES)),
)
def test_backtest_fields_are_planned_or_refused_as_the_plan_says(
    fuzzed: Fuzzed,
    rows: int,
    horizon: int,
    context: int | None,
    origins: int | None,
    origin_step: int | None,
    sample_count: int | None,
    top_p: float | None,
    bad_close: tuple[int, float] | None,
    zone: str,
) -> None:
    from kronos_server.backtest.origins import plan_backtest
    from tests.rpc.helpers import history

    req = pb.BacktestRequest(history=history(rows, 100), horizon=horizon, timezone=zone, series_id="fz")
    for name, value in (("context", context), ("origins", origins), ("origin_step", origin_step)):
        if value is not None:
            setattr(req, name, value)
    if sample_count is not None:
        req.sampling.sample_count = sample_count
    if top_p is not None:
        req.sampling.top_p = top_p
    if bad_close is not None and bad_close[0] < rows:
        req.history.close[bad_close[0]] = bad_close[1]
    try:
        plan = plan_backtest(
            convert.backtest_from_pb(req), fuzzed.dp.limits, max_rows=fuzzed.dp.engine.config.max_queued_rows
        )
        want: Any = plan
    except KronosError as exc:
        want = exc
    try:
        response = fuzzed.stub.Backtest(req, metadata=fuzzed.md, timeout=TIMEOUT)
    except grpc.RpcError as err:
        event(f"refused {err.code().name}")
        check_refusal(err, pb.BacktestRequest.DESCRIPTOR)
        assert isinstance(want, KronosError), (err.details(), want)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.details() == want.message
        assert dict(err.trailing_metadata())[FIELD_TRAILER] == convert.proto_field(want.field or "")
        return
    event("backtested")
    assert not isinstance(want, KronosError), want
    assert list(response.origins) == want.origins.tolist()
    assert [s.forecaster for s in response.scores] == ["model", "naive", "drift", "volatility"]
    for scores in response.scores:
        assert len(scores.by_step) == want.horizon
        overall = scores.overall
        assert all(math.isfinite(v) for v in (overall.mae, overall.rmse, overall.mape, overall.mase))
        assert 0 <= overall.direction_accuracy <= 1


# -- afterwards: healthy, idle, no faults counted, and the same answer ------------------------


def _poll(check: Callable[[], bool], timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.02)


def _requests_by_status(fuzzed: Fuzzed) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in fuzzed.running.metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "kronos_requests_total":
                status = sample.labels["status"]
                out[status] = out.get(status, 0.0) + sample.value
    return out


def test_after_the_fuzzing_the_server_is_healthy_and_unchanged(fuzzed: Fuzzed) -> None:
    health = health_pb2_grpc.HealthStub(fuzzed.channel)
    for service in ("", SERVICE):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    engine = fuzzed.dp.engine
    _poll(lambda: engine.stats().running_rows == 0 and engine.stats().queued_rows == 0)
    assert engine.stats().running_requests == 0 and engine.stats().queued_requests == 0
    again = fuzzed.stub.PredictSingle(Fuzzed.KNOWN_GOOD, metadata=fuzzed.md, timeout=TIMEOUT)
    assert again.forecast == fuzzed.baseline.forecast
    counts = _requests_by_status(fuzzed)
    assert counts.get("error", 0) == 0, counts
    assert counts.get("timeout", 0) == 0, counts
    assert counts.get("success", 0) >= 2 and counts.get("invalid", 0) >= 1, counts
