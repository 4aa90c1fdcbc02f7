"""POST /v1/predict/single and /v1/predict/batch: parse JSON -> the dataplane -> JSON.

The body was read (within the size limit) by the middleware; the request JSON is the shape
of the service we replace, parsed by the shared codec (:mod:`kronos_server.forecast.json_codec`)
into the domain's ``SeriesInput``, forecast by the dataplane (in-process, or remote in the
standalone bridge) and encoded by the same codec. The call is admitted by the gate
(authentication, rate limit) once the body is parsed, so that a batch costs its series.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute

from kronos_bridge.errors import HttpError, http_error, item_error_body
from kronos_bridge.middleware import ClientGone, RequestInfo, info_of
from kronos_bridge.routes.responses import CREDENTIALS, FastJSONResponse, errors
from kronos_bridge.schemas import BatchItemError, PredictResponseBody
from kronos_bridge.state import BridgeState
from kronos_bridge.translate import check_ranges
from kronos_server.errors import InvalidInputError, KronosError, MalformedRequestError
from kronos_server.forecast.json_codec import forecast_to_response, series_from_request
from kronos_server.forecast.types import Forecast, SeriesInput
from kronos_server.gate import Call


class DirectRoute(APIRoute):
    """A route documented as FastAPI documents any other, whose endpoint takes the Request and
    returns its Response: called as it is, without FastAPI's parameter solving and response
    validation (the hottest routes parse and encode their bodies themselves)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint: Callable[[Request], Coroutine[Any, Any, Response]] = self.endpoint
        return endpoint


router = APIRouter(prefix="/v1/predict", tags=["predict"], route_class=DirectRoute)
T = TypeVar("T")
ERRORS = errors(400, 401, 403, 413, 415, 422, 429, 499, 500, 503, 504)
BATCH_KEYS = frozenset({"items"})


def _body(schema: str) -> dict[str, Any]:
    # the schema is documented from schemas.py; the body itself is parsed by the legacy parser
    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


def _check_media_type(request: Request) -> None:
    """JSON, or no Content-Type at all (as the replaced service accepted); anything else is 415."""
    declared = request.headers.get("content-type")
    if declared is None:
        return
    media = declared.split(";", 1)[0].strip().lower()
    if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
        return
    raise HttpError(
        415,
        "unsupported_media_type",
        f"Content-Type: the body must be application/json, got {declared[:60]!r}",
        "invalid",
        {"field": "Content-Type"},
    )


async def _json(request: Request) -> object:
    _check_media_type(request)
    return parse_json(await request.body())


# every byte to "0" if a digit, else " ": a run of 19 digits is then one substring search
_DIGITS = bytes(48 if chr(b).isdigit() and b < 128 else 32 for b in range(256))
_LONG_RUN = b"0" * 19


def parse_json(body: bytes) -> object:
    """The body's JSON value: orjson's (about 4x faster here) when it reads the body and no
    integer might be beyond 64 bits (orjson reads those as floats); else the standard
    library's, which accepts what orjson refuses (NaN, UTF-16, a BOM) and words the errors.
    Both give the same value for any other text both read."""
    if _LONG_RUN not in body.translate(_DIGITS):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise MalformedRequestError("the request body is not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, too many digits, too deep
        raise MalformedRequestError(f"the request body is not valid JSON: {exc}") from None


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _unless_gone(request: Request, work: Awaitable[T]) -> T:
    """``work``'s result; cancelled (freeing the engine's rows) if the client goes away.

    The work runs in this task (a task of its own and asyncio.wait cost more than the rest of
    the route); a watcher cancels this task when the client disconnects."""
    task = asyncio.current_task()
    assert task is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        await _disconnected(request)
        gone = True
        task.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if not gone:
            raise
        task.uncancel()  # the cancellation was ours: the caller sees ClientGone instead
        raise ClientGone from None
    finally:
        watcher.cancel()


@router.post(
    "/single",
    response_model=None,
    responses={200: {"model": PredictResponseBody}, **ERRORS},
    openapi_extra={**_body("PredictRequestBody"), **CREDENTIALS},
)
async def predict_single(request: Request) -> FastJSONResponse:
    """Forecast one series."""
    bridge, info = _state(request)
    series = _series(await _json(request))
    call = info.call
    _annotate(call, series)
    plane = bridge.connected()
    with bridge.gate.admitted(call, size=False):
        started = time.perf_counter()
        try:
            forecast = await _unless_gone(request, plane.predict(series, request_id=call.request_id))
        except BaseException:
            bridge.metrics.observe_forecast(call.method, [len(series.close)], None)
            raise
        bridge.metrics.observe_forecast(call.method, [len(series.close)], time.perf_counter() - started)
    return FastJSONResponse(_encode(bridge, forecast))


def _state(request: Request) -> tuple[BridgeState, RequestInfo]:
    # read directly, not as dependencies: FastAPI's dependency solving costs more than the lookup
    # on the hottest routes
    return request.app.state.bridge, info_of(request)


def _series(payload: object) -> SeriesInput:
    """A request body as the domain's series; InvalidInputError names the REST field."""
    series = series_from_request(payload)
    check_ranges(series)
    return series


def _annotate(call: Call, series: SeriesInput) -> None:
    """Rows, pred_len and series_id of a single-series call, for its access-log line."""
    pred_len = series.pred_len
    if pred_len is None and series.prediction_timestamps is not None:
        pred_len = len(series.prediction_timestamps)
    call.log_fields.update(series_id=series.series_id, rows=len(series.close), pred_len=pred_len)


def _encode(bridge: BridgeState, forecast: Forecast) -> dict[str, Any]:
    model_version, tokenizer_version = bridge.connected().versions_of(forecast)
    return forecast_to_response(forecast, model_version=model_version, tokenizer_version=tokenizer_version)


def _items(payload: object) -> list[Any]:
    if not isinstance(payload, dict):
        kind = "null" if payload is None else type(payload).__name__
        raise InvalidInputError(f"request: must be a JSON object, got {kind}", field="request")
    for key in payload:
        if key not in BATCH_KEYS:
            raise InvalidInputError(f"{key}: unknown field; allowed: items", field=str(key))
    items = payload.get("items")
    if not isinstance(items, list):
        raise InvalidInputError("items: must be a list of request objects", field="items")
    return items


def _series_id(item: object, position: int) -> str:
    """The item's own series_id, else one naming its position (series-0, series-1, ...)."""
    value = item.get("series_id") if isinstance(item, dict) else None
    return value if isinstance(value, str) else f"series-{position}"


@router.post(
    "/batch",
    response_model=None,
    responses={
        200: {
            "model": list[PredictResponseBody | BatchItemError],
            "description": "One slot per item, in order: a forecast, or the item's error "
            "(error, message, details, request_id, series_id, status)",
        },
        **ERRORS,
    },
    openapi_extra={**_body("BatchRequestBody"), **CREDENTIALS},
)
async def predict_batch(request: Request) -> FastJSONResponse:
    """Forecast many series, each with its own settings; an item that fails has its error in its slot."""
    bridge, info = _state(request)
    items = _items(await _json(request))
    call = info.call
    call.batch_items = len(items)
    bridge.gate.check_size(call)  # too many series: refused before anything is parsed further
    slots: list[dict[str, Any] | None] = [None] * len(items)
    sent: list[tuple[int, SeriesInput]] = []
    for i, item in enumerate(items):
        series_id = _series_id(item, i)
        try:
            series = _series(item)
        except InvalidInputError as exc:
            slots[i] = item_error_body(http_error(exc), series_id, call.request_id)
            continue
        sent.append((i, dataclasses.replace(series, series_id=series_id)))
    plane = bridge.connected()
    rows = [len(s.close) for _, s in sent]
    # admitted even when every item failed here: credentials and rate limits apply to every call
    with bridge.gate.admitted(call, size=False):
        started = time.perf_counter()
        try:
            outcomes = await _unless_gone(
                request, plane.predict_batch([s for _, s in sent], request_id=call.request_id)
            )
        except BaseException:
            bridge.metrics.observe_forecast(call.method, rows, None)
            raise
        bridge.metrics.observe_forecast(call.method, rows, time.perf_counter() - started)
    for (i, series), outcome in zip(sent, outcomes, strict=True):
        if isinstance(outcome, KronosError):
            slots[i] = item_error_body(http_error(outcome), series.series_id, call.request_id)
        else:
            slots[i] = _encode(bridge, outcome)
    return FastJSONResponse(slots)
