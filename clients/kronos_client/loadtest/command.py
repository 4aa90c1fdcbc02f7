"""The ``kronos-client loadtest`` command line: flags, the sweep, the outputs."""

from __future__ import annotations

import argparse
import ssl
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from google.protobuf.json_format import MessageToDict

from kronos_client.channel import split_host_port
from kronos_client.client import KronosClient
from kronos_client.config import ClientConfig
from kronos_client.errors import KronosClientError
from kronos_client.loadtest import report, serverstats
from kronos_client.loadtest.runner import (
    CallerFactory,
    GrpcCaller,
    LevelRecord,
    Progress,
    RestCaller,
    rest_headers,
    run_level,
)
from kronos_client.loadtest.workload import SHAPES, Pool, build_pool, load_table, make_shape

TRANSPORTS = ("grpc", "rest")
DEFAULT_REST_PORT = 8000

DESCRIPTION = """\
Closed-loop load sweep against a running server. For each transport (gRPC, REST), shape and
concurrency level, N workers each send their next call as soon as the previous one answered,
for --duration seconds (or --requests calls) after a warm-up; then p50/p95/p99 latency,
calls/s, series/s, forecast rows/s, errors by status (gRPC code names, HTTP statuses) and,
from the server's /v1/metrics, mean rows per engine step and queue wait.

Shapes (windows of the CSV at sliding offsets, so no two concurrent requests are identical):
  single  PredictSingle (REST /v1/predict/single), 400 candles -> 120 steps
  batch   PredictBatch (REST /v1/predict/batch), 8 series of 200 -> 60
  stream  PredictStream (gRPC only), 400 -> 120; also time to the first event
--history, --pred-len, --batch-size, --sample-count and --seed override every shape.

Calls are not retried (--retries 0) so that refusals show as errors. The server's default
rate limit (KRONOS_RATE_LIMIT=100/minute) refuses most of a sweep: raise it for the run.
Python client overhead (the GIL, protobuf and JSON work) limits what one process can drive:
client_cpu_pct near 100 per core in the JSON means the client, not the server, is the limit;
run several loadtest processes (or a compiled load tool) to go further. Server figures cover
everything the server did in each window, other callers' traffic included.
"""


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected integers >= 1, got {text!r}")
    return values


def _names(choices: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        names = [v.strip() for v in text.split(",") if v.strip()]
        bad = [n for n in names if n not in choices]
        if bad or not names:
            raise argparse.ArgumentTypeError(f"expected some of {','.join(choices)}, got {text!r}")
        return list(dict.fromkeys(names))

    return parse


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The loadtest flags (the connection flags are added by the caller, as for predict)."""
    p.description = DESCRIPTION
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.set_defaults(retries=0)
    g = p.add_argument_group("sweep")
    g.add_argument(
        "--transports", type=_names(TRANSPORTS), default=list(TRANSPORTS), help="default grpc,rest"
    )
    g.add_argument(
        "--shapes", type=_names(tuple(SHAPES)), default=list(SHAPES), help="default single,batch,stream"
    )
    g.add_argument("--concurrency", type=_ints, default=[1, 4, 16, 64], help="levels, default 1,4,16,64")
    g.add_argument("--duration", type=float, default=30.0, help="seconds measured per level (default 30)")
    g.add_argument("--requests", type=int, help="instead of --duration: exactly N calls measured per level")
    g.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        help="seconds per level before measuring, and until every worker has had an answer "
        "(default 2; 0 = none)",
    )
    w = p.add_argument_group("workload")
    w.add_argument("--csv", help="candle CSV (default: the sample shipped with the server package)")
    w.add_argument("--history", type=int, help="history candles per series (default per shape)")
    w.add_argument("--pred-len", type=int, help="steps to forecast (default per shape)")
    w.add_argument("--batch-size", type=int, help="series per batch call (default 8)")
    w.add_argument("--sample-count", type=int, help="sample paths per series (default: the server's)")
    w.add_argument("--seed", type=int, help="seed of the first series, +1 per series (default: unseeded)")
    o = p.add_argument_group("endpoints and output")
    o.add_argument("--rest-url", help=f"REST base URL (default http://HOST:{DEFAULT_REST_PORT} of --target)")
    o.add_argument("--metrics-url", help="Prometheus endpoint (default REST_URL/v1/metrics; 'none' to skip)")
    o.add_argument("--json", help="write every figure, the command and machine info to this file")
    o.add_argument("--plot", help="draw p50/p95/p99 latency vs concurrency to this PNG (needs matplotlib)")


def _rest_url(args: argparse.Namespace, config: ClientConfig | None) -> str | None:
    if args.rest_url:
        return str(args.rest_url).rstrip("/")
    if config is None:
        return None
    parts = split_host_port(config.target_list()[0])
    if parts is None:
        return None
    host = parts[0]
    host = f"[{host}]" if ":" in host else host
    scheme = "https" if config.uses_tls else "http"
    return f"{scheme}://{host}:{DEFAULT_REST_PORT}"


def _ssl_context(config: ClientConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(config.ca_cert) if config.ca_cert else None)
    if config.client_cert and config.client_key:
        context.load_cert_chain(str(config.client_cert), str(config.client_key))
    return context


def _grpc_factory(client: KronosClient, pool: Pool) -> CallerFactory:
    return lambda: GrpcCaller(client, pool)


def _rest_factory(
    url: str, pool: Pool, headers: dict[str, str], timeout: float, context: ssl.SSLContext | None
) -> CallerFactory:
    return lambda: RestCaller(url, pool, headers, timeout, context)


def _level(
    args: argparse.Namespace,
    factory: CallerFactory,
    concurrency: int,
    metrics_url: str | None,
    progress: Progress,
    label: str,
) -> tuple[LevelRecord, dict[str, float | None] | None]:
    """One level, and the server's engine figures over its measured window (None: n/a)."""
    snapshots: list[serverstats.Samples | None] = []

    def scrape() -> None:
        snapshots.append(serverstats.scrape(metrics_url) if metrics_url else None)

    record = run_level(
        factory,
        concurrency,
        duration=args.duration,
        requests=args.requests,
        warmup=args.warmup,
        on_measure=scrape,
        on_end=scrape,
        progress=progress,
        label=label,
    )
    if len(snapshots) < 2:
        return record, None
    return record, serverstats.engine_delta(snapshots[0], snapshots[1])


def run(
    args: argparse.Namespace,
    env: Mapping[str, str],
    argv: Sequence[str],
    make_config: Callable[[argparse.Namespace, Mapping[str, str]], ClientConfig],
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """The sweep; 0 when it completed (errors are figures in the report), 130 on Ctrl-C."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    started = datetime.now(UTC)
    if args.requests is not None and args.requests < 1:
        raise ValueError(f"--requests must be >= 1, got {args.requests}")
    if args.duration <= 0 or args.warmup < 0:
        raise ValueError("--duration must be > 0 and --warmup >= 0")
    transports: list[str] = args.transports
    if not args.target and "grpc" not in transports and args.rest_url and not env.get("KRONOS_CLIENT_TARGET"):
        args.target = ["rest-only:0"]  # the config then only carries the credentials
    config = make_config(args, env)
    rest_url = _rest_url(args, config)
    if "rest" in transports and rest_url is None:
        raise ValueError("--rest-url is required when --target is not HOST:PORT")
    metrics_url: str | None = args.metrics_url
    if metrics_url is None and rest_url is not None:
        metrics_url = rest_url + "/v1/metrics"
    if metrics_url in ("", "none"):
        metrics_url = None

    table = load_table(args.csv)
    pools: dict[str, Pool] = {}
    for name in args.shapes:
        shape = make_shape(
            name,
            history=args.history,
            pred_len=args.pred_len,
            batch_size=args.batch_size,
            sample_count=args.sample_count,
            seed=args.seed,
        )
        pools[name] = build_pool(table, shape)

    client = KronosClient(config) if "grpc" in transports else None
    server: dict[str, Any] = {
        "grpc_target": config.target_list() if client is not None else None,
        "rest_url": rest_url if "rest" in transports else None,
        "metrics_url": metrics_url,
        "model": None,
    }
    if client is not None:
        try:
            info = client.model_info()
            server["model"] = MessageToDict(info, preserving_proto_field_name=True)
        except KronosClientError as exc:
            err.write(f"GetModelInfo failed ({exc.code_name}); running the sweep anyway\n")
    if metrics_url is not None and serverstats.scrape(metrics_url) is None:
        err.write(f"server metrics unreadable at {metrics_url}: server columns will be n/a\n")

    headers = rest_headers(config.auth_metadata())
    context = _ssl_context(config) if rest_url and rest_url.startswith("https:") else None
    progress = Progress(err)
    levels: list[dict[str, Any]] = []
    interrupted = False
    try:
        for transport in transports:
            for name, pool in pools.items():
                if transport == "rest" and pool.shape.grpc_only:
                    err.write(f"skipping rest {name}: PredictStream is gRPC only\n")
                    continue
                for concurrency in args.concurrency:
                    if transport == "grpc":
                        assert client is not None
                        factory = _grpc_factory(client, pool)
                    else:
                        assert rest_url is not None
                        factory = _rest_factory(rest_url, pool, headers, config.timeout, context)
                    label = f"[{transport} {name} {pool.shape.describe()} c={concurrency}]"
                    level, stopped = _level(args, factory, concurrency, metrics_url, progress, label)
                    levels.append(report.summarise(transport, pool.shape, level, stopped))
                    if level.interrupted:
                        raise KeyboardInterrupt
    except KeyboardInterrupt:
        interrupted = True
        err.write("interrupted: reporting the levels done so far\n")
    finally:
        if client is not None:
            client.close()

    out.write(report.format_table(levels))
    out.flush()
    if args.json:
        options = {k: v for k, v in vars(args).items() if k != "command"}
        doc = report.document(argv, options, levels, server, started)
        err.write(f"report written to {report.write_json(args.json, doc)}\n")
    if args.plot:
        from kronos_client.loadtest.plot import plot_latency

        err.write(f"plot written to {plot_latency(args.plot, levels)}\n")
    return 130 if interrupted else 0
