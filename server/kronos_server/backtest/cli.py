"""``kronos-serve backtest``: a backtest of a CSV series offline (the model loaded here).

No server and no other caller: the engine's admission is sized to the backtest and there is
no deadline. The table goes to stdout; ``--json`` writes the full result, ``--plot`` a PNG.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from kronos_server.backtest.types import BacktestInput, BacktestResult
from kronos_server.forecast.types import SamplingParams
from kronos_server.settings import Settings

#: no deadline offline: a backtest runs as long as it takes
OFFLINE_TIMEOUT_S = 365 * 24 * 3600.0


def request_from_args(args: argparse.Namespace) -> BacktestInput:
    from kronos_server.forecast.csv_input import series_from_csv

    sampling = SamplingParams(
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        sample_count=args.sample_count,
        seed=args.seed,
        quantiles=args.quantiles or (),
    )
    series = series_from_csv(args.csv, series_id=args.series_id, timezone=args.timezone, sampling=sampling)
    return BacktestInput(
        series,
        horizon=args.horizon,
        context=args.context,
        origins=args.origins,
        origin_step=args.origin_step,
        return_forecasts=args.plot is not None or args.json is not None,
    )


def offline_settings(settings: Settings) -> Settings:
    """Room in the engine for the largest backtest the limits allow, and no deadline."""
    rows = settings.max_backtest_origins * settings.max_sample_count
    return settings.model_copy(
        update={
            "max_queued_rows": max(settings.max_queued_rows, rows),
            "inference_timeout": OFFLINE_TIMEOUT_S,
        }
    )


async def backtest_once(settings: Settings, request: BacktestInput) -> BacktestResult:
    """Open the dataplane, run the backtest, close it."""
    from kronos_server.dataplane import open_dataplane

    dataplane = open_dataplane(offline_settings(settings))
    try:
        return await dataplane.backtest(request)
    finally:
        await dataplane.close()


def run_backtest_command(args: argparse.Namespace, settings: Settings) -> int:
    from kronos_server.backtest.report import plot, result_to_json, scores_table
    from kronos_server.cli import UsageError

    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError("--plot needs matplotlib (pip install matplotlib)") from None
    request = request_from_args(args)
    result = asyncio.run(backtest_once(settings, request))
    if args.json != "-":
        sys.stdout.write(scores_table(result, request.series.timezone or "UTC") + "\n")
    if args.json is not None:
        text = json.dumps(result_to_json(result), indent=2) + "\n"
        if args.json == "-":
            sys.stdout.write(text)
        else:
            try:
                Path(args.json).write_text(text, encoding="utf-8")
            except OSError as exc:
                raise UsageError(f"--json: cannot write {args.json}: {exc.strerror or exc}") from None
    if args.plot is not None:
        try:
            shown = plot(result, request.series, args.plot)
        except OSError as exc:
            raise UsageError(f"--plot: cannot write {args.plot}: {exc.strerror or exc}") from None
        sys.stderr.write(f"plot of origins {', '.join(map(str, shown))} written to {args.plot}\n")
    return 0
