"""pandas helpers behind predict_df(): DataFrame in, DataFrame out. pandas stays optional."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from kronos.v1 import predictor_pb2 as pb
from kronos_client.messages import build_request

if TYPE_CHECKING:
    from kronos_client.results import Forecast

PRICE_COLUMNS = ("open", "high", "low", "close")
OUTPUT_COLUMNS = ("open", "high", "low", "close", "volume", "amount")


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
        timezone=timezone,
        series_id=series_id,
    )


def frame_result(forecast: Forecast, y_timestamp: Any) -> Any:
    """The forecast's six columns indexed by ``y_timestamp``, as Kronos returns them."""
    pd = require_pandas()
    index = pd.Index(y_timestamp)
    return pd.DataFrame({c: getattr(forecast, c) for c in OUTPUT_COLUMNS}, index=index)


def forecast_frame(forecast: Forecast) -> Any:
    """The forecast's six columns indexed by its timestamps (local time of its zone)."""
    pd = require_pandas()
    index = pd.DatetimeIndex(forecast.timestamps, name="timestamp")
    return pd.DataFrame({c: getattr(forecast, c) for c in OUTPUT_COLUMNS}, index=index)
