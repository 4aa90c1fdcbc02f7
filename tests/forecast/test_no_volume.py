"""Without input volume, every output (stream steps, mean, quantiles) forecasts exactly 0
volume and amount (issue 11 item 6), over a real gRPC server."""

from __future__ import annotations

from typing import Any

from kronos_client import KronosClient, Step
from tests.clients.conftest import make_series


def test_stream_mean_and_quantiles_have_zero_volume(grpc_server: Any) -> None:
    series = make_series(60)
    del series["volume"]
    with KronosClient(grpc_server.target, container=grpc_server.container, key=grpc_server.key) as client:
        events = list(client.stream(**series, pred_len=4, sample_count=3, seed=5, quantiles=[0.1, 0.9]))
    steps = [e for e in events if isinstance(e, Step)]
    final = events[-1]
    assert len(steps) == 4 and not isinstance(final, Step)
    assert all(s.volume == 0 and s.amount == 0 for s in steps)
    for columns in (final.mean, *final.quantiles.values()):
        assert (columns.volume == 0).all() and (columns.amount == 0).all()
        assert (columns.close > 0).all()
