"""``kronos-client``: predict from a CSV, show model info, probe health, or load-test a server.

Credentials for predict/info come from --container and --key/--key-file, else from
KRONOS_CLIENT_CONTAINER / KRONOS_CLIENT_KEY (and the target from KRONOS_CLIENT_TARGET).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence

from google.protobuf.json_format import MessageToDict

from kronos_client import probe
from kronos_client.client import KronosClient
from kronos_client.config import ClientConfig
from kronos_client.csvinput import read_candles
from kronos_client.errors import KronosClientError
from kronos_client.loadtest import command as loadtest
from kronos_client.messages import build_request
from kronos_client.results import FIELDS, Forecast
from kronos_client.timestamps import from_epoch_ms

ENV_TARGET = "KRONOS_CLIENT_TARGET"
ENV_CONTAINER = "KRONOS_CLIENT_CONTAINER"
ENV_KEY = "KRONOS_CLIENT_KEY"


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _connection_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("connection")
    g.add_argument("--target", action="append", help="host:port (repeat or comma-separate for several)")
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
    sub = p.add_subparsers(dest="command", required=True, metavar="{predict,info,health,loadtest}")
    pr = sub.add_parser("predict", help="forecast the series in a CSV file")
    _connection_flags(pr)
    pr.add_argument("--csv", required=True, help="CSV with timestamps,open,high,low,close[,volume,amount]")
    pr.add_argument("--pred-len", type=int, required=True, help="steps to forecast")
    pr.add_argument("--tail", type=int, help="use only the last N rows of the CSV")
    pr.add_argument("--sample-count", type=int)
    pr.add_argument("--seed", type=int)
    pr.add_argument("--temperature", type=float)
    pr.add_argument("--top-k", type=int)
    pr.add_argument("--top-p", type=float)
    pr.add_argument("--quantiles", type=_floats, default=[], help="e.g. 0.1,0.5,0.9")
    pr.add_argument("--timezone", default="", help="IANA zone of the CSV's naive timestamps (default UTC)")
    pr.add_argument("--series-id", default="")
    pr.add_argument("--format", choices=("json", "table"), default="json")
    pr.add_argument("--plot", help="also draw history, forecast and quantile band to this PNG")
    info = sub.add_parser("info", help="print the served model's ModelInfo as JSON")
    _connection_flags(info)
    sub.add_parser("health", help="grpc_health_probe-compatible check (see: health -h)", add_help=False)
    lt = sub.add_parser("loadtest", help="closed-loop load sweep over gRPC and REST (see: loadtest -h)")
    _connection_flags(lt)
    loadtest.add_arguments(lt)
    return p


def client_config(args: argparse.Namespace, env: Mapping[str, str]) -> ClientConfig:
    targets = args.target or ([env[ENV_TARGET]] if env.get(ENV_TARGET) else None)
    if not targets:
        raise ValueError(f"--target HOST:PORT is required (or set {ENV_TARGET})")
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
    return "\n".join(lines) + "\n"


def cmd_predict(args: argparse.Namespace, config: ClientConfig) -> int:
    table = read_candles(args.csv).tail(args.tail)
    request = build_request(
        table.timestamps,
        *(table.columns[c] for c in ("open", "high", "low", "close")),
        volume=table.columns.get("volume"),
        amount=table.columns.get("amount"),
        pred_len=args.pred_len,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        sample_count=args.sample_count,
        seed=args.seed,
        quantiles=args.quantiles,
        timezone=args.timezone,
        series_id=args.series_id,
    )
    with KronosClient(config) as client:
        forecast = client.predict_request(request)
    if args.format == "table":
        sys.stdout.write(format_table(forecast))
    else:
        sys.stdout.write(json.dumps(forecast.to_dict(), indent=2) + "\n")
    if args.plot:
        from kronos_client.plot import plot_forecast

        times = [t.replace(tzinfo=None) for t in from_epoch_ms(request.history.timestamps_ms, args.timezone)]
        out = plot_forecast(args.plot, times, table.columns["close"], forecast)
        sys.stderr.write(f"plot written to {out}\n")
    return 0


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
        return probe.main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        if args.command == "loadtest":
            return loadtest.run(args, env, argv, client_config)
        config = client_config(args, env)
        if args.command == "predict":
            return cmd_predict(args, config)
        return cmd_info(config)
    except KronosClientError as exc:
        where = f" (field {exc.field})" if exc.field else ""
        rid = f" [request id {exc.request_id}]" if exc.request_id else ""
        sys.stderr.write(f"error: {exc.code_name}: {exc.message}{where}{rid}\n")
        return 1
    except (ValueError, OSError, ImportError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
