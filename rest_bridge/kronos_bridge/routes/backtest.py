"""POST /v1/backtest: parse JSON -> the dataplane's backtest -> JSON.

The body mirrors ``BacktestRequest`` with the history as the predict body writes it
(:mod:`kronos_bridge.backtest_json`). The call is admitted by the gate once the body is
parsed, charged its origins against the caller's rate limit (as gRPC charges them,
:func:`kronos_server.backtest.origins.charged_origins`), and the backtest runs under the
dataplane's deadline (KRONOS_INFERENCE_TIMEOUT); a client that goes away cancels every origin.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request

from kronos_bridge.backtest_json import backtest_from_request, backtest_to_response
from kronos_bridge.routes.predict import ERRORS, DirectRoute, _body, _json, _state, _unless_gone
from kronos_bridge.routes.responses import CREDENTIALS, FastJSONResponse
from kronos_bridge.schemas import BacktestResponseBody
from kronos_bridge.translate import check_ranges
from kronos_server.backtest.origins import charged_origins
from kronos_server.backtest.types import BacktestInput

router = APIRouter(prefix="/v1", tags=["backtest"], route_class=DirectRoute)


def _units(backtest: BacktestInput, request: Request) -> int:
    bridge, _ = _state(request)
    return charged_origins(
        rows=len(backtest.series.timestamps),
        horizon=backtest.horizon,
        context=backtest.context,
        origins=backtest.origins,
        origin_step=backtest.origin_step,
        limits=bridge.settings.limits(),
    )


@router.post(
    "/backtest",
    response_model=None,
    responses={200: {"model": BacktestResponseBody}, **ERRORS},
    openapi_extra={**_body("BacktestRequestBody"), **CREDENTIALS},
)
async def backtest(request: Request) -> FastJSONResponse:
    """Score the model on the series' own history: forecasts from many past origins at once,
    compared with what happened, beside the naive, drift and volatility baselines."""
    bridge, info = _state(request)
    backtest = backtest_from_request(await _json(request))
    check_ranges(backtest.series)
    call = info.call
    call.rate_units = _units(backtest, request)
    series = backtest.series
    call.log_fields.update(
        series_id=series.series_id, rows=len(series.close), horizon=backtest.horizon, origins=backtest.origins
    )
    plane = bridge.connected()
    with bridge.gate.admitted(call, size=False):
        started = time.perf_counter()
        try:
            result = await _unless_gone(request, plane.backtest(backtest, request_id=call.request_id))
        except BaseException:
            bridge.metrics.observe_forecast(call.method, [len(series.close)], None)
            raise
        bridge.metrics.observe_forecast(call.method, [len(series.close)], time.perf_counter() - started)
    return FastJSONResponse(backtest_to_response(result))
