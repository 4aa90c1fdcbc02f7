"""pandas helpers behind predict_df(): DataFrame in, DataFrame out. pandas stays optional.

The frame's columns: the six fields (the mean over the sample paths, as Kronos returns
them); then, for each requested quantile level q (ascending), the six fields' q quantiles
named ``{field}_q{q}`` (``close_q0.1``, ``close_q0.9``; q written as Python writes the
float); then ``prob_close_up`` when asked for (the fraction of sample paths whose close lies
above the history's last close, per step).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from kronos.v1 import predictor_pb2 as pb
from kronos_client.messages import build_request

if TYPE_CHECKING:
    from kronos_client.results import Forecast

PRICE_COLUMNS = ("open", "high", "low", "close")
OUTPUT_COLUMNS = ("open", "high", "low", "close", "volume", "amount")
PROB_COLUMN = "prob_close_up"


def quantile_column(field: str, q: float) -> str:
    """The column of one field's q quantile: ``close_q0.1``."""
    return f"{field}_q{q!r}"


def require_pandas() -> Any:
    """Import pandas, or explain how to get it (it is an optional dependency)."""
    try:
        return importlib.import_module("pandas")
    except ImportError as exc:
        raise ImportError(
            "this needs pandas, an optional dependency of kronos-client: "
            "pip install pandas (the 'pandas' extra of kronos-client, 'client-extras' of kronos-serve)"
        ) from exc


def frame_request(
    df: Any,
    x_timestamp: Any,
    y_timestamp: Any,
    pred_len: int,
    T: float,
    top_k: int,
    top_p: float,
    sample_count: int,
    seed: int | None = None,
    timezone: str = "",
    series_id: str = "",
    quantiles: Iterable[float] = (),
) -> pb.PredictRequest:
    """Kronos ``KronosPredictor.predict`` arguments (in its order) -> PredictRequest."""
    require_pandas()
    missing = [c for c in PRICE_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"price columns {missing} not found in the DataFrame")
    optional = {c: df[c].to_numpy() for c in ("volume", "amount") if c in df.columns}
    return build_request(
        x_timestamp,
        *(df[c].to_numpy() for c in PRICE_COLUMNS),
        volume=optional.get("volume"),
        amount=optional.get("amount"),
        pred_len=pred_len,
        prediction_timestamps=y_timestamp,
        temperature=T,
        top_k=top_k,
        top_p=top_p,
        sample_count=sample_count,
        seed=seed,
        quantiles=quantiles,
        timezone=timezone,
        series_id=series_id,
    )


def frame_columns(forecast: Forecast, *, prob_close_up: bool) -> dict[str, Any]:
    """The six fields, each quantile's six fields, and ``prob_close_up`` if asked for (and
    sent: a server older than the field sends none)."""
    out: dict[str, Any] = {c: getattr(forecast, c) for c in OUTPUT_COLUMNS}
    for q, columns in sorted(forecast.quantiles.items()):
        out.update({quantile_column(c, q): getattr(columns, c) for c in OUTPUT_COLUMNS})
    if prob_close_up and forecast.prob_close_up.size == len(forecast):
        out[PROB_COLUMN] = forecast.prob_close_up
    return out


def frame_result(forecast: Forecast, y_timestamp: Any, *, prob_close_up: bool = False) -> Any:
    """The forecast's columns indexed by ``y_timestamp``: the six Kronos returns, plus any
    quantiles requested and ``prob_close_up`` if asked for."""
    pd = require_pandas()
    index = pd.Index(y_timestamp)
    return pd.DataFrame(frame_columns(forecast, prob_close_up=prob_close_up), index=index)


def forecast_frame(forecast: Forecast) -> Any:
    """The forecast's six columns, its quantiles' and ``prob_close_up``, indexed by its
    timestamps (local time of its zone)."""
    pd = require_pandas()
    index = pd.DatetimeIndex(forecast.timestamps, name="timestamp")
    return pd.DataFrame(frame_columns(forecast, prob_close_up=True), index=index)
