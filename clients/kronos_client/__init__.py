"""Python client for Kronos Serve (gRPC API ``kronos.v1``).

>>> from kronos_client import KronosClient
>>> with KronosClient("localhost:50051", container="me", key="...") as client:
...     forecast = client.predict(timestamps, open, high, low, close, pred_len=12, seed=1)
"""

from kronos_client.aio import AsyncKronosClient
from kronos_client.backtest import BacktestResult, build_backtest_request
from kronos_client.client import KronosClient
from kronos_client.config import ClientConfig
from kronos_client.errors import InvalidInputError, KronosClientError
from kronos_client.messages import build_request
from kronos_client.results import Columns, Forecast, ItemError, Step

__all__ = [
    "AsyncKronosClient",
    "BacktestResult",
    "ClientConfig",
    "Columns",
    "Forecast",
    "InvalidInputError",
    "ItemError",
    "KronosClient",
    "KronosClientError",
    "Step",
    "build_backtest_request",
    "build_request",
]
