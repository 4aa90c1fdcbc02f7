"""POST /v1/predict/single and /v1/predict/batch: parse JSON -> PredictRequest -> gRPC -> JSON.

The body was read (within the size limit) by the middleware; the request JSON is the
shape of the service we replace, parsed by the shared legacy parser in translate.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from kronos.v1 import predictor_pb2 as pb
from kronos_bridge import translate
from kronos_bridge.errors import HttpError, bad_request, invalid, item_error, item_error_body, too_large
from kronos_bridge.middleware import ClientGone
from kronos_bridge.routes.responses import CREDENTIALS, errors
from kronos_bridge.schemas import BatchItemError, PredictResponseBody
from kronos_bridge.state import Bridge, Info
from kronos_server.errors import InvalidInputError

router = APIRouter(prefix="/v1/predict", tags=["predict"])
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
    body = await request.body()
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise bad_request("the request body is not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, too many digits, too deep
        raise bad_request(f"the request body is not valid JSON: {exc}") from None


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _unless_gone(request: Request, work: Awaitable[T]) -> T:
    """``work``'s result; cancelled (freeing the engine's rows) if the client goes away."""
    call = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait({call, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if call in done:
        return call.result()
    call.cancel()
    raise ClientGone


@router.post(
    "/single",
    response_model=None,
    responses={200: {"model": PredictResponseBody}, **ERRORS},
    openapi_extra={**_body("PredictRequestBody"), **CREDENTIALS},
)
async def predict_single(request: Request, bridge: Bridge, info: Info) -> JSONResponse:
    """Forecast one series."""
    upstream = bridge.connected()
    try:
        translated = translate.request_to_pb(await _json(request))
    except InvalidInputError as exc:
        raise invalid(exc) from None
    md = upstream.metadata(info.request_id, request.headers)
    reply = await _unless_gone(
        request, upstream.call(upstream.predictor.PredictSingle, translated.message, md)
    )
    return JSONResponse(translate.response_to_json(reply, translated.timezone))


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
async def predict_batch(request: Request, bridge: Bridge, info: Info) -> JSONResponse:
    """Forecast many series, each with its own settings; an item that fails has its error in its slot."""
    upstream = bridge.connected()
    try:
        items = _items(await _json(request))
    except InvalidInputError as exc:
        raise invalid(exc) from None
    limit = bridge.settings.max_batch_items
    if len(items) > limit:
        bridge.metrics.size_rejections.labels("unknown").inc()
        message = f"items: {len(items)} series in one batch; the limit is {limit}"
        raise too_large(message, {"limit_items": limit, "field": "items"})
    slots: list[dict[str, Any] | None] = [None] * len(items)
    sent: list[tuple[int, translate.Translated]] = []
    for i, item in enumerate(items):
        try:
            translated = translate.request_to_pb(item)
        except InvalidInputError as exc:
            slots[i] = item_error_body(invalid(exc), _series_id(item, i), info.request_id)
            continue
        translated.message.series_id = _series_id(item, i)
        sent.append((i, translated))
    # called even when every item failed here: credentials and rate limits are the service's
    batch = pb.PredictBatchRequest(items=[t.message for _, t in sent])
    md = upstream.metadata(info.request_id, request.headers)
    reply = await _unless_gone(request, upstream.call(upstream.predictor.PredictBatch, batch, md))
    for (i, translated), result in zip(sent, reply.results, strict=True):
        if result.HasField("forecast"):
            slots[i] = translate.response_to_json(result.forecast, translated.timezone)
        else:
            e = result.error
            slots[i] = item_error(e.code, e.message, e.field, translated.message.series_id, info.request_id)
    return JSONResponse(slots)
