"""The ``kronos-serve`` command line: wiring only (parse, build settings, call, print).

Exit codes: 0 success, 2 the caller's mistake (invalid input, bad flag or setting),
1 anything else. Heavy modules (torch, the engine) are imported inside the commands.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kronos_server.errors import InvalidInputError, KronosError
from kronos_server.settings import Settings, SettingsError, load_settings
from kronos_server.settings_flags import add_settings_flags, flag_name

if TYPE_CHECKING:
    from kronos_server.forecast.types import SeriesInput

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def package_version() -> str:
    """The installed distribution's version (``unknown`` when run from an uninstalled tree)."""
    try:
        return metadata.version("kronos-serve")
    except metadata.PackageNotFoundError:
        return "unknown"


class UsageError(Exception):
    """A mistake of the caller outside the request itself (a flag, an unreadable file)."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _quantiles(text: str) -> tuple[float, ...]:
    from kronos_server.forecast.csv_input import quantiles_from_text

    try:
        return quantiles_from_text(text)
    except InvalidInputError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def _settings_flags(parser: argparse.ArgumentParser) -> None:
    """The settings a one-off forecast uses, as flags generated from the Settings table."""
    add_settings_flags(parser, SETTINGS_FLAGS)


SETTINGS_FLAGS = ("model_path", "tokenizer_path", "max_context", "device", "log_level", "log_format")


def _forecast_parser(sub: Any) -> None:
    p = sub.add_parser(
        "forecast",
        help="forecast one series and print the JSON response",
        description="Forecast one series (a legacy JSON request or a CSV file) and print the JSON response.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--request", metavar="FILE", help="legacy JSON request ('-' reads stdin)")
    source.add_argument(
        "--csv", metavar="FILE", help="CSV of candles: timestamps, open, high, low, close[, volume, amount]"
    )
    csv_opts = p.add_argument_group("with --csv")
    csv_opts.add_argument(
        "--pred-len", type=_positive_int, metavar="N", help="steps to forecast (required with --csv)"
    )
    csv_opts.add_argument("--tail", type=_positive_int, metavar="N", help="use only the last N rows")
    csv_opts.add_argument("--timezone", help="IANA zone of the CSV's naive timestamps (default UTC)")
    csv_opts.add_argument("--series-id", help="series id in the response (default: the file name)")
    csv_opts.add_argument("--sample-count", type=int)
    csv_opts.add_argument("--seed", type=int)
    csv_opts.add_argument("--temperature", type=float)
    csv_opts.add_argument("--top-k", type=int)
    csv_opts.add_argument("--top-p", type=float)
    csv_opts.add_argument("--quantiles", type=_quantiles, metavar="Q,Q,...", help="e.g. 0.1,0.5,0.9")
    _future_flags(csv_opts)
    _settings_flags(p)
    # stdout carries the forecast itself, so logs go to stderr
    p.set_defaults(handler=_cmd_forecast, log_to_stderr=True)


def _freq(text: str) -> str:
    from kronos_client.continuation import ContinuationError, parse_freq

    try:
        parse_freq(text)
    except ContinuationError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None
    return text


def _future_flags(group: Any) -> None:
    """Where the forecast's timestamps come from (default: the history's own interval)."""
    group.add_argument(
        "--freq",
        type=_freq,
        metavar="FREQ",
        help="continue at this frequency instead of the history's interval: 5min, 1h, 1D, "
        "B (business days, skipping weekends)",
    )
    group.add_argument(
        "--calendar",
        metavar="MIC",
        help="continue through this exchange's trading sessions (XSHG, XNYS, ...), skipping breaks "
        "and holidays; needs the 'calendars' extra (exchange_calendars)",
    )
    group.add_argument(
        "--prediction-timestamps",
        metavar="FILE",
        help="the forecast's timestamps, used verbatim: one ISO 8601 value per line, or a CSV "
        "with a timestamp column",
    )


CSV_ONLY = (
    "freq",
    "calendar",
    "prediction_timestamps",
    "pred_len",
    "tail",
    "timezone",
    "series_id",
    "sample_count",
    "seed",
    "temperature",
    "top_k",
    "top_p",
)


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _backtest_parser(sub: Any) -> None:
    p = sub.add_parser(
        "backtest",
        help="judge the model on a CSV's own history: forecasts from many past origins, scored",
        description="Forecast a CSV series from many of its own past origins at once (no server: the "
        "model is loaded here, as for forecast) and score the close of model and baselines (naive, "
        "drift, volatility random walk): MAE, RMSE, MAPE, MASE, CRPS, pinball, interval coverage, "
        "direction accuracy, Brier score of P(close up), skill against naive. Prints a table.",
    )
    p.add_argument(
        "--csv",
        required=True,
        metavar="FILE",
        help="CSV of candles: timestamps, open, high, low, close[, volume, amount]",
    )
    p.add_argument(
        "--horizon", type=_positive_int, required=True, metavar="N", help="steps forecast at each origin"
    )
    p.add_argument(
        "--context", type=int, metavar="N", help="candles seen before each origin (default min(256, ...))"
    )
    p.add_argument("--origins", type=int, metavar="N", help="number of origins (default: as many as fit)")
    p.add_argument("--origin-step", type=int, metavar="N", help="rows between origins (default: the horizon)")
    p.add_argument("--sample-count", type=int, metavar="N", help="sample paths per origin (default 8)")
    p.add_argument("--temperature", type=float)
    p.add_argument("--top-p", type=float)
    p.add_argument("--top-k", type=int)
    p.add_argument("--seed", type=_seed, help="origin o is sampled with seed + o (reproducible)")
    p.add_argument(
        "--quantiles", type=_quantiles, metavar="Q,Q,...", help="default 0.05,0.1,0.25,0.5,0.75,0.9,0.95"
    )
    p.add_argument("--timezone", help="IANA zone of the CSV's naive timestamps (default UTC)")
    p.add_argument("--series-id", help="series id in the result (default: the file name)")
    p.add_argument("--json", metavar="OUT", help="also write the full result as JSON ('-': stdout, no table)")
    p.add_argument(
        "--plot",
        metavar="FILE.png",
        help="fan charts of a few origins and the error-by-horizon curves (matplotlib)",
    )
    _settings_flags(p)
    p.set_defaults(handler=_cmd_backtest, log_to_stderr=True)


def _train_parser(sub: Any) -> None:
    # the training module owns its flags; they are parsed in _cmd_train so the CLI does not
    # import it (or torch) for other commands, and works while it is absent
    p = sub.add_parser(
        "train",
        help="train a model into a new directory (see 'kronos-serve train --help')",
        add_help=False,
    )
    p.set_defaults(handler=_cmd_train, passthrough=True)


def _keys_parser(sub: Any) -> None:
    p = sub.add_parser(
        "keys",
        help="manage the API keys file (add or rotate a container's key, list containers)",
        description="Manage the API keys file: only key hashes are stored; a new key is shown once.",
    )
    actions = p.add_subparsers(dest="keys_action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add a container (or rotate its key with --replace)")
    add.add_argument("name", help="container name, sent as x-container-name")
    add.add_argument("--rate-limit", metavar="N/UNIT", help="e.g. 10/second (default: KRONOS_RATE_LIMIT)")
    add.add_argument("--methods", metavar="M,M,...", help="allowed RPCs, e.g. PredictSingle,GetModelInfo")
    add.add_argument("--replace", action="store_true", help="rotate an existing container's key")
    listing = actions.add_parser("list", help="list containers, rate limits and methods (no hashes)")
    for action in (add, listing):
        action.add_argument(
            "--file",
            type=Path,
            help="keys file (default: KRONOS_API_KEYS_FILE, else the local KRONOS_DEV_KEYS_DIR/api-keys.json "
            "that serve reads when no keys file is configured)",
        )
        # stdout carries the key (or the listing), so logs go to stderr
        action.set_defaults(handler=_cmd_keys, log_to_stderr=True)


def _cmd_keys(args: argparse.Namespace, settings: Settings) -> int:
    from kronos_server.security.keys import KeysFileError, add_key, load_keys
    from kronos_server.security_setup import local_keys_file

    path = Path(args.file or settings.api_keys_file or local_keys_file(settings))
    try:
        if args.keys_action == "list":
            for entry in load_keys(path).containers.values():
                allowed = "*" if entry.methods is None else ",".join(sorted(entry.methods))
                limit = str(entry.rate_limit) if entry.rate_limit else f"default ({settings.rate_limit})"
                sys.stdout.write(f"{entry.name}\trate_limit={limit}\tmethods={allowed}\n")
            return EXIT_OK
        methods = args.methods.split(",") if args.methods is not None else None
        key = add_key(path, args.name, rate_limit=args.rate_limit, methods=methods, replace=args.replace)
    except KeysFileError as exc:
        raise UsageError(str(exc)) from None
    sys.stdout.write(key + "\n")
    # the hint goes to stderr so that KEY=$(kronos-serve keys add NAME) captures the key alone
    sys.stderr.write(
        f"stored only its hash in {path}; this key is not shown again. Send the metadata "
        f"'x-container-name: {args.name}' and 'authorization: Bearer <key>'\n{_served_hint(path, settings)}\n"
    )
    return EXIT_OK


def _served_hint(path: Path, settings: Settings) -> str:
    """Whether ``kronos-serve serve``, with these settings, reads the keys file just written."""
    from kronos_server.security_setup import served_keys_file

    served = served_keys_file(settings)
    if served is not None and served.resolve() == path.resolve():
        if settings.api_keys_file is None:
            return (
                "kronos-serve serve reads this local keys file (beside the dev key) while "
                "KRONOS_API_KEYS_FILE and KRONOS_TRUSTED_CONTAINERS are unset: restart it to accept the key"
            )
        return "kronos-serve serve reads this file (KRONOS_API_KEYS_FILE): restart it to accept the key"
    now = f"it reads {served}" if served is not None else "KRONOS_TRUSTED_CONTAINERS is set, so it reads none"
    return f"kronos-serve serve does not read this file ({now}); to use it, set KRONOS_API_KEYS_FILE={path}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kronos-serve", description="Kronos Serve: forecasts from the Kronos candlestick model."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _forecast_parser(sub)
    _backtest_parser(sub)
    _train_parser(sub)
    _keys_parser(sub)
    _serve_parser(sub)
    _bridge_parser(sub)
    return parser


# the settings the standalone REST bridge reads
BRIDGE_SETTINGS = (
    "host",
    "http_port",
    "shutdown_grace",
    "max_request_size_mb",
    "max_batch_items",
    "log_level",
    "log_format",
    "bridge_container",
    "bridge_key_file",
    "bridge_tls_ca_file",
    "bridge_tls_client_cert_file",
    "bridge_tls_client_key_file",
)


def _serve_parser(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="run the gRPC server (health, reflection, KronosPredictor) and the REST API until SIGTERM",
        description="gRPC on KRONOS_GRPC_PORT and the /v1 REST API on KRONOS_HTTP_PORT, one process. "
        "Every KRONOS_* setting has a matching flag; flags override the environment.",
    )
    add_settings_flags(p)
    p.set_defaults(handler=_cmd_serve)


def _bridge_parser(sub: Any) -> None:
    p = sub.add_parser(
        "bridge",
        help="run the /v1 REST API alone, in front of a gRPC server elsewhere",
        description="The REST bridge on KRONOS_HTTP_PORT, calling the gRPC service at --grpc-target.",
    )
    p.add_argument("--grpc-target", required=True, metavar="HOST:PORT", help="the gRPC server to call")
    add_settings_flags(p, BRIDGE_SETTINGS)
    p.set_defaults(handler=_cmd_bridge)


def _check_checkpoint_dirs(args: argparse.Namespace, settings: Settings) -> None:
    """A checkpoint path that is absent or holds no checkpoint is the caller's mistake (exit 2),
    named as it was given; a checkpoint whose files are there but corrupt fails later (exit 1)."""
    from kronos_server.model.checkpoint import CONFIG_FILE, WEIGHTS_FILE
    from kronos_server.model.location import resolve_checkpoint_dir

    for name in ("model_path", "tokenizer_path"):
        path: Path | None = getattr(settings, name)
        if path is None:
            continue
        given = flag_name(name) if getattr(args, name, None) is not None else f"KRONOS_{name.upper()}"
        try:
            directory = resolve_checkpoint_dir(path)
        except KronosError as exc:
            raise UsageError(f"{given}: {exc.message}") from None
        if not directory.exists():
            raise UsageError(f"{given}: {path} does not exist")
        if not directory.is_dir():
            raise UsageError(f"{given}: {path} is not a directory")
        absent = [f for f in (CONFIG_FILE, WEIGHTS_FILE) if not (directory / f).exists()]
        if absent:
            raise UsageError(f"{given}: {path} is not a checkpoint directory ({', '.join(absent)} missing)")


def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from kronos_server.app import serve

    _check_checkpoint_dirs(args, settings)
    return asyncio.run(serve(settings))


def _cmd_bridge(args: argparse.Namespace, settings: Settings) -> int:
    from kronos_bridge.server import run_bridge

    try:
        return asyncio.run(run_bridge(settings, args.grpc_target))
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        return _fail(f"cannot start the HTTP server on port {settings.http_port}: {exc}", EXIT_FAILURE)


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(**{name: getattr(args, name, None) for name in Settings.model_fields})


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"error: {message}\n")
    return code


def _read_request(path: str) -> SeriesInput:
    from kronos_server.forecast.json_codec import series_from_request

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read request {path}: {exc.strerror or exc}") from None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"request is not valid JSON: {exc}", field="request") from None
    return series_from_request(payload)


def _series(args: argparse.Namespace) -> SeriesInput:
    from kronos_server.forecast.continuation import continue_series, prediction_timestamps_file
    from kronos_server.forecast.csv_input import series_from_csv
    from kronos_server.forecast.types import SamplingParams

    if args.request is not None:
        given = [name for name in CSV_ONLY if getattr(args, name) is not None]
        if given or args.quantiles is not None:
            flag = "--" + (given[0] if given else "quantiles").replace("_", "-")
            raise UsageError(f"{flag} goes with --csv; a --request file sets it in its overrides")
        return _read_request(args.request)
    future = None
    if args.prediction_timestamps is not None:
        if args.freq is not None or args.calendar is not None:
            raise UsageError("--prediction-timestamps gives the timestamps; drop --freq / --calendar")
        future = prediction_timestamps_file(args.prediction_timestamps)
    elif args.pred_len is None:
        raise UsageError("--csv needs --pred-len (or --prediction-timestamps)")
    sampling = SamplingParams(
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        sample_count=args.sample_count,
        seed=args.seed,
        quantiles=args.quantiles or (),
    )
    series = series_from_csv(
        args.csv,
        series_id=args.series_id,
        pred_len=args.pred_len,
        timezone=args.timezone,
        sampling=sampling,
        tail=args.tail,
        prediction_timestamps=future,
    )
    if args.freq is None and args.calendar is None:
        return series
    return continue_series(series, freq=args.freq, exchange=args.calendar)


async def forecast_once(settings: Settings, series: SeriesInput) -> dict[str, Any]:
    """Open the dataplane, forecast one series, close it; the legacy JSON response."""
    from kronos_server.dataplane import open_dataplane
    from kronos_server.forecast.json_codec import forecast_to_response

    dataplane = open_dataplane(settings)
    try:
        forecast = await dataplane.predict(series)
        return forecast_to_response(
            forecast, model_version=dataplane.model_version, tokenizer_version=dataplane.tokenizer_version
        )
    finally:
        await dataplane.close()


def _cmd_forecast(args: argparse.Namespace, settings: Settings) -> int:
    from kronos_server.forecast.json_codec import relabel

    _check_checkpoint_dirs(args, settings)
    series = _series(args)
    try:
        response = asyncio.run(forecast_once(settings, series))
    except KronosError as exc:
        # a request file's errors name its own fields (candles[3].close, overrides.top_p)
        raise (relabel(exc) if args.request is not None else exc) from None
    sys.stdout.write(json.dumps(response, indent=2) + "\n")
    return EXIT_OK


def _cmd_backtest(args: argparse.Namespace, settings: Settings) -> int:
    from kronos_server.backtest.cli import run_backtest_command

    _check_checkpoint_dirs(args, settings)
    return run_backtest_command(args, settings)


def _cmd_train(args: argparse.Namespace, settings: Settings, extra: Sequence[str]) -> int:
    try:
        training = importlib.import_module("kronos_server.training.run")
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name.startswith("kronos_server.training"):
            return _fail("training is not available in this build", EXIT_FAILURE)
        raise
    description = getattr(training, "DESCRIPTION", None)
    parser = argparse.ArgumentParser(prog="kronos-serve train", description=description)
    training.add_arguments(parser)
    return int(training.run(parser.parse_args(list(extra))))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kronos-serve`` console script; returns the exit code."""
    # OpenMP worker threads that spin while idle steal the CPU from the event loop and from
    # each other on a shared host (measured: 8-12 ms stalls per parallel region, see
    # docs/PERFORMANCE.md); must be set before torch loads, so here and not in settings
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    passthrough = getattr(args, "passthrough", False)
    if extra and not passthrough:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        settings = _settings(args)
    except SettingsError as exc:
        return _fail(str(exc), EXIT_USAGE)

    from kronos_server.logs import configure_logging

    stream = sys.stderr if getattr(args, "log_to_stderr", False) else sys.stdout
    configure_logging(settings.log_level, settings.log_format, stream)
    try:
        if passthrough:
            return int(args.handler(args, settings, extra))
        return int(args.handler(args, settings))
    except InvalidInputError as exc:
        return _fail(exc.message, EXIT_USAGE)
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except KronosError as exc:
        return _fail(exc.message, EXIT_FAILURE)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as exc:
        from loguru import logger

        logger.exception("unexpected failure")
        return _fail(f"{type(exc).__name__}: {exc}", EXIT_FAILURE)


if __name__ == "__main__":
    sys.exit(main())
