"""``kronos-client``: predict from a CSV, backtest the model on one, show model info, probe
health, or load-test a server.

Credentials for predict/info come from --container and --key/--key-file, else from
KRONOS_CLIENT_CONTAINER / KRONOS_CLIENT_KEY; the server from --target, else
KRONOS_CLIENT_TARGET, else localhost:50051 (every command, health included).
Exit status: 0 success, 2 the caller's mistake (a bad flag or file, a call the server refused
as invalid, unauthenticated or not permitted), 1 anything else; health keeps
grpc_health_probe's codes.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from kronos_client import probe
from kronos_client._version import __version__
from kronos_client.backtest import BacktestResult, build_backtest_request
from kronos_client.client import KronosClient
from kronos_client.config import DEFAULT_TARGET, ENV_TARGET, ClientConfig, default_target
from kronos_client.continuation import FREQ_HELP, continue_history, parse_freq
from kronos_client.csvinput import CandleTable, read_candles, read_timestamps
from kronos_client.errors import KronosClientError
from kronos_client.frames import PROB_COLUMN, quantile_column
from kronos_client.loadtest import command as loadtest
from kronos_client.messages import build_request
from kronos_client.results import FIELDS, Forecast
from kronos_client.timestamps import from_epoch_ms, series_offset, to_epoch_ms

ENV_CONTAINER = "KRONOS_CLIENT_CONTAINER"
ENV_KEY = "KRONOS_CLIENT_KEY"

# the exit status, as kronos-serve's: 0 ok, 2 the caller's mistake, 1 anything else
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
# refusals the caller fixes by changing the call (the input, the credentials, the method);
# RESOURCE_EXHAUSTED is one only when the server sent no retry-after (too large, not busy)
CALLER_MISTAKES = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.OUT_OF_RANGE,
    }
)


def _sampling(args: argparse.Namespace) -> dict[str, Any]:
    """The sampling flags predict and backtest share, as build_request keywords."""
    return {
        "temperature": args.temperature,
        "top_k": args.top_k,
        "top_p": args.top_p,
        "sample_count": args.sample_count,
        "seed": args.seed,
        "quantiles": args.quantiles,
    }


def exit_code(exc: KronosClientError) -> int:
    """2 when the server refused the call as the caller's mistake, else 1 (unavailable, internal, busy)."""
    if exc.code in CALLER_MISTAKES:
        return EXIT_USAGE
    if exc.code == grpc.StatusCode.RESOURCE_EXHAUSTED and exc.retry_after is None:
        return EXIT_USAGE
    return EXIT_FAILURE


def package_version() -> str:
    """The one version of kronos-client and kronos-serve (the same in either distribution)."""
    return __version__


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _connection_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("connection")
    g.add_argument(
        "--target",
        action="append",
        metavar="HOST:PORT",
        help=f"server address; repeat or comma-separate for several "
        f"(default: ${ENV_TARGET}, else {DEFAULT_TARGET})",
    )
    g.add_argument("--container", help=f"caller's container name (env {ENV_CONTAINER})")
    g.add_argument("--key", help=f"API key (env {ENV_KEY})")
    g.add_argument("--key-file", help="file holding the API key")
    g.add_argument("--tls", action="store_true", help="use TLS")
    g.add_argument("--ca-cert", help="CA bundle to verify the server (implies --tls)")
    g.add_argument("--client-cert", help="client certificate for mTLS (implies --tls)")
    g.add_argument("--client-key", help="client private key for mTLS")
    g.add_argument("--server-name", help="name to verify in the server certificate")
    g.add_argument("--timeout", type=float, default=60.0, help="overall deadline per call, seconds")
    g.add_argument("--retries", type=int, default=3, help="retries on UNAVAILABLE / RESOURCE_EXHAUSTED")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kronos-client", description=__doc__.replace("``", ""))
    p.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="{predict,backtest,info,health,loadtest}")
    pr = sub.add_parser("predict", help="forecast the series in a CSV file")
    _connection_flags(pr)
    pr.add_argument(
        "--csv",
        required=True,
        help="CSV: a timestamp column (Date, Datetime, Time, timestamp(s)), open, high, low, close"
        "[, volume, amount]",
    )
    pr.add_argument("--pred-len", type=int, help="steps to forecast (or give --prediction-timestamps)")
    pr.add_argument("--tail", type=int, help="use only the last N rows of the CSV")
    pr.add_argument("--sample-count", type=int)
    pr.add_argument("--seed", type=int)
    pr.add_argument("--temperature", type=float)
    pr.add_argument("--top-k", type=int)
    pr.add_argument("--top-p", type=float)
    pr.add_argument("--quantiles", type=_floats, default=[], help="e.g. 0.1,0.5,0.9")
    pr.add_argument("--timezone", default="", help="IANA zone of the CSV's naive timestamps (default UTC)")
    pr.add_argument("--series-id", default="")
    pr.add_argument("--freq", type=_freq, metavar="FREQ", help=f"continue at this frequency: {FREQ_HELP}")
    pr.add_argument(
        "--calendar", metavar="MIC", help="continue through this exchange's sessions (XSHG, XNYS, ...)"
    )
    pr.add_argument(
        "--prediction-timestamps", metavar="FILE", help="forecast timestamps: one per line, or a CSV"
    )
    pr.add_argument(
        "--return-paths",
        action="store_true",
        help='also return the sample paths (JSON: "paths"; at most the server\'s max_return_paths)',
    )
    pr.add_argument(
        "--format",
        choices=("json", "table", "csv"),
        default="json",
        help="json (default), an aligned table, or CSV: timestamp, the six fields, each quantile's "
        "six fields ({field}_q{q}, e.g. close_q0.1) and prob_close_up",
    )
    pr.add_argument("--plot", help="also draw history, forecast and quantile band to this PNG")
    _backtest_parser(sub)
    info = sub.add_parser("info", help="print the served model's ModelInfo as JSON")
    _connection_flags(info)
    sub.add_parser("health", help="grpc_health_probe-compatible check (see: health -h)", add_help=False)
    lt = sub.add_parser("loadtest", help="closed-loop load sweep over gRPC and REST (see: loadtest -h)")
    _connection_flags(lt)
    loadtest.add_arguments(lt)
    return p


def _backtest_parser(sub: Any) -> None:
    bt = sub.add_parser(
        "backtest",
        help="score the model on a CSV's own history, beside the naive, drift and volatility baselines",
    )
    _connection_flags(bt)
    bt.add_argument("--csv", required=True, help="CSV of candles, as for predict: the whole history")
    bt.add_argument("--horizon", type=int, required=True, help="steps forecast at each origin")
    bt.add_argument("--context", type=int, help="candles seen before each origin (default: the server's)")
    bt.add_argument("--origins", type=int, help="number of origins (default: as many as fit)")
    bt.add_argument("--origin-step", type=int, help="rows between origins (default: the horizon)")
    bt.add_argument("--tail", type=int, help="use only the last N rows of the CSV")
    bt.add_argument("--sample-count", type=int, help="sample paths per origin (server default 8)")
    bt.add_argument("--seed", type=int, help="origin o is sampled with seed + o: reproducible")
    bt.add_argument("--temperature", type=float)
    bt.add_argument("--top-k", type=int)
    bt.add_argument("--top-p", type=float)
    bt.add_argument("--quantiles", type=_floats, default=[], help="levels scored (default 0.05,...,0.95)")
    bt.add_argument("--timezone", default="", help="IANA zone of the CSV's naive timestamps (default UTC)")
    bt.add_argument("--series-id", default="")
    bt.add_argument(
        "--json", metavar="OUT", help="also write the whole result as JSON to OUT ('-': stdout only)"
    )
    bt.add_argument(
        "--plot", metavar="FILE.png", help="fan charts of three origins and the MAE-by-step curves"
    )


def client_config(args: argparse.Namespace, env: Mapping[str, str]) -> ClientConfig:
    targets = args.target or [default_target(env)]
    key = args.key if args.key is not None else (None if args.key_file else env.get(ENV_KEY))
    return ClientConfig(
        targets,
        container=args.container or env.get(ENV_CONTAINER),
        key=key,
        key_file=args.key_file,
        tls=args.tls,
        ca_cert=args.ca_cert,
        client_cert=args.client_cert,
        client_key=args.client_key,
        server_name=args.server_name,
        timeout=args.timeout,
        retries=args.retries,
    )


def format_table(forecast: Forecast) -> str:
    rows = forecast.rows()
    header = ["timestamp", *FIELDS]
    cells = [[r["timestamp"], *(f"{r[f]:.6g}" for f in FIELDS)] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(cell, widths, strict=True)) for cell in cells]
    for q, cols in sorted(forecast.quantiles.items()):
        lines.append(f"q{q:g} close: " + " ".join(f"{v:.6g}" for v in cols.close))
    if forecast.prob_close_up.size and forecast.sample_count > 1:  # one path: 0 or 1, says nothing new
        lines.append("P(close up): " + " ".join(f"{v:.3g}" for v in forecast.prob_close_up))
    return "\n".join(lines) + "\n"


def format_csv(forecast: Forecast) -> str:
    """One row per step: timestamp, the six fields (mean), each quantile's six fields
    (``close_q0.1``, as predict_df names them) and prob_close_up."""
    columns: dict[str, Any] = {name: getattr(forecast, name) for name in FIELDS}
    for q, cols in sorted(forecast.quantiles.items()):
        columns.update({quantile_column(name, q): getattr(cols, name) for name in FIELDS})
    if forecast.prob_close_up.size == len(forecast):
        columns[PROB_COLUMN] = forecast.prob_close_up
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["timestamp", *columns])
    for i, row in enumerate(forecast.rows()):
        writer.writerow([row["timestamp"], *(repr(float(v[i])) for v in columns.values())])
    return out.getvalue()


def _freq(text: str) -> str:
    try:
        parse_freq(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _future(args: argparse.Namespace, table: CandleTable, timezone: str) -> list[Any] | None:
    """The prediction timestamps the flags ask for (None: the server continues the history)."""
    if args.prediction_timestamps is not None:
        if args.freq is not None or args.calendar is not None:
            raise ValueError("--prediction-timestamps gives the timestamps; drop --freq / --calendar")
        return list(read_timestamps(args.prediction_timestamps))
    if args.pred_len is None:
        raise ValueError("--pred-len is required (or give --prediction-timestamps)")
    if args.freq is None and args.calendar is None:
        return None
    history = from_epoch_ms(to_epoch_ms(table.timestamps, timezone, "timestamps"), timezone)
    return list(continue_history(history, args.pred_len, freq=args.freq, calendar=args.calendar))


def cmd_predict(args: argparse.Namespace, config: ClientConfig) -> int:
    table = read_candles(args.csv, tail=args.tail)
    # without --timezone, the UTC offset the timestamps carry is the series' zone (as on the server)
    timezone = args.timezone or series_offset(table.timestamps)
    future = _future(args, table, timezone)
    request = build_request(
        table.timestamps,
        *(table.columns[c] for c in ("open", "high", "low", "close")),
        volume=table.columns.get("volume"),
        amount=table.columns.get("amount"),
        pred_len=args.pred_len,
        prediction_timestamps=future,
        **_sampling(args),
        timezone=timezone,
        series_id=args.series_id,
        return_paths=args.return_paths,
    )
    with KronosClient(config) as client:
        forecast = client.predict_request(request)
    if args.format == "table":
        sys.stdout.write(format_table(forecast))
    elif args.format == "csv":
        sys.stdout.write(format_csv(forecast))
    else:
        sys.stdout.write(json.dumps(forecast.to_dict(), indent=2) + "\n")
    if args.plot:
        from kronos_client.plot import plot_forecast

        times = [t.replace(tzinfo=None) for t in from_epoch_ms(request.history.timestamps_ms, timezone)]
        out = plot_forecast(args.plot, times, table.columns["close"], forecast)
        sys.stderr.write(f"plot written to {out}\n")
    return 0


def cmd_backtest(args: argparse.Namespace, config: ClientConfig) -> int:
    table = read_candles(args.csv, tail=args.tail)
    timezone = args.timezone or series_offset(table.timestamps)
    request = build_backtest_request(
        table.timestamps,
        *(table.columns[c] for c in ("open", "high", "low", "close")),
        volume=table.columns.get("volume"),
        amount=table.columns.get("amount"),
        horizon=args.horizon,
        context=args.context,
        origins=args.origins,
        origin_step=args.origin_step,
        **_sampling(args),
        timezone=timezone,
        series_id=args.series_id,
        return_forecasts=bool(args.plot),  # the fans are drawn from the forecasts
    )
    with KronosClient(config) as client:
        result = client.backtest_request(request)
    body = json.dumps(result.to_dict(), indent=2) + "\n"
    if args.json == "-":
        sys.stdout.write(body)
    else:
        sys.stdout.write(result.table() + "\n")
        if args.json:
            with open(args.json, "w", encoding="utf-8") as fh:
                fh.write(body)
    if args.plot:
        out = _plot_backtest(args.plot, result, table.columns["close"])
        sys.stderr.write(f"plot written to {out}\n")
    return 0


def _plot_backtest(path: str, result: BacktestResult, close: Any) -> Any:
    from kronos_client.plot import Fan, plot_backtest, spread

    fans = []
    for i in spread(len(result.forecasts)):
        forecast = result.forecasts[i]
        low = min(forecast.quantiles, default=None)
        high = max(forecast.quantiles, default=None)
        fans.append(
            Fan(
                forecast.origin,
                forecast.mean.close.tolist(),
                forecast.quantiles[low].close.tolist() if low is not None and low != high else None,
                forecast.quantiles[high].close.tolist() if high is not None and low != high else None,
            )
        )
    levels = sorted(result.forecasts[0].quantiles) if result.forecasts else []
    band = f"q{levels[0]:g}-q{levels[-1]:g}" if len(levels) > 1 else ""
    title = (
        f"backtest of {result.series_id or 'the series'}: {result.origins.size} origins, "
        f"horizon {result.horizon}, {result.sample_count} paths ({result.model_version[:19]})"
    )
    curves = {name: s.curve("mae") for name, s in result.scores.items()}
    return plot_backtest(path, close=list(close), fans=fans, curves=curves, title=title, band=band)


def cmd_info(config: ClientConfig) -> int:
    with KronosClient(config) as client:
        info = client.model_info()
    body = MessageToDict(info, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    sys.stdout.write(json.dumps(body, indent=2) + "\n")
    return 0


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    env = os.environ if env is None else env
    if argv and argv[0] == "health":
        return probe.main(argv[1:], env)
    args = build_parser().parse_args(argv)
    try:
        if args.command == "loadtest":
            return loadtest.run(args, env, argv, client_config)
        config = client_config(args, env)
        if args.command == "predict":
            return cmd_predict(args, config)
        if args.command == "backtest":
            return cmd_backtest(args, config)
        return cmd_info(config)
    except KronosClientError as exc:
        where = f" (field {exc.field})" if exc.field else ""
        rid = f" [request id {exc.request_id}]" if exc.request_id else ""
        sys.stderr.write(f"error: {exc.code_name}: {exc.message}{where}{rid}\n")
        return exit_code(exc)
    except (ValueError, OSError) as exc:  # a bad flag value, an unreadable or invalid file
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_USAGE
    except ImportError as exc:  # an optional extra that is not installed
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
