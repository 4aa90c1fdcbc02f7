"""End-to-end load: `kronos-client loadtest` against real servers, our engine vs the original algorithm.

    python benchmarks/bench_load.py [--quick] [--only NAME[,NAME]] [--out DIR]

Each configuration starts one `kronos-serve serve` subprocess on loopback (free ports, a keys
file, the rate limit raised out of the way), waits until it is ready, runs the exact
`kronos-client loadtest` command it prints in a separate process, and stops the server. The
same workload is run with KRONOS_ENGINE_MODE=batched (continuous batching, KV cache) and
KRONOS_ENGINE_MODE=recompute (the reference algorithm: one request at a time, the full window
recomputed every step), in the same run, so the two are compared on the same machine state.

Configurations (models: the embedded default model, and random weights at Kronos-small
dimensions written by benchmarks/make_checkpoint.py):

    default-batched    embedded model, gRPC + REST, single/batch/stream, concurrency 1,4,16,64
    default-recompute  embedded model, gRPC single, concurrency 1,4,16,64
    default-batch-rows-8  as default-batched's gRPC single at 16 and 64, KRONOS_MAX_BATCH_ROWS=8
    default-threads-1  as default-batched's gRPC single at 1 and 16, KRONOS_TORCH_THREADS=1
    small-batched-c1   Kronos-small dims, gRPC single 400 -> 120, concurrency 1, 3 calls
    small-batched      the same at concurrency 4 and 16, 16 calls each
    small-recompute    the same at concurrency 1, 2 calls (about a minute each)

Each loadtest JSON goes to OUT/load-<name>.json; a combined summary to OUT/load-summary.json.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import ROOT, use_checkout, write_json

use_checkout()

from tests.processes import ServerProcess, make_keys  # noqa: E402

from kronos_client.loadtest.report import format_table  # noqa: E402

SCRIPTS = Path(sys.executable).parent


@dataclass(frozen=True)
class Config:
    name: str
    model: str  # "default" or "small"
    mode: str  # KRONOS_ENGINE_MODE
    sweep: tuple[str, ...]  # loadtest arguments
    env: dict[str, str] = field(default_factory=dict)


def configs(quick: bool) -> list[Config]:
    tiny = ("--history", "64", "--pred-len", "4") if quick else ()
    timed = ("--duration", "3" if quick else "20", "--warmup", "1" if quick else "2", *tiny)
    levels = "1,4" if quick else "1,4,16,64"

    def single(concurrency: str, *rest: str) -> tuple[str, ...]:
        return ("--transports", "grpc", "--shapes", "single", "--concurrency", concurrency, *rest)

    def counted(concurrency: str, calls: str) -> tuple[str, ...]:
        # exact call counts at Kronos-small dims: a call takes seconds, a fixed window would see few
        return single(concurrency, "--requests", "1" if quick else calls, "--warmup", "0", *tiny)

    rows_8, threads_1 = {"KRONOS_MAX_BATCH_ROWS": "8"}, {"KRONOS_TORCH_THREADS": "1"}
    every_shape = ("--transports", "grpc,rest", "--shapes", "single,batch,stream", "--concurrency", levels)
    return [
        Config("default-batched", "default", "batched", (*every_shape, *timed)),
        Config("default-recompute", "default", "recompute", single(levels, *timed)),
        # two tuning knobs against default-batched's gRPC single rows
        Config("default-batch-rows-8", "default", "batched", single("16,64", *timed), rows_8),
        Config("default-threads-1", "default", "batched", single("1,16", *timed), threads_1),
        Config("small-batched-c1", "small", "batched", counted("1", "3")),
        Config("small-batched", "small", "batched", counted("2" if quick else "4,16", "16")),
        Config("small-recompute", "small", "recompute", counted("1", "2")),
    ]


def small_checkpoint(out: Path, quick: bool) -> Path:
    target = out / ("ckpt-tiny" if quick else "ckpt-small")
    if not (target / "predictor" / "model.safetensors").is_file():
        dims = "tiny" if quick else "small"
        subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "make_checkpoint.py"), str(target), "--dims", dims],
            check=True,
        )
    return target


def run_config(config: Config, out: Path, ckpt: Path | None, tmp: Path) -> dict[str, Any]:
    keys, key = make_keys(Path(tempfile.mkdtemp(dir=tmp)), "bench")
    key_file = tmp / f"{config.name}.key"
    key_file.write_text(key)
    env = {
        "KRONOS_HOST": "127.0.0.1",
        "KRONOS_GRPC_PORT": "0",
        "KRONOS_HTTP_PORT": "0",
        "KRONOS_API_KEYS_FILE": str(keys),
        "KRONOS_RATE_LIMIT": "100000000/minute",
        "KRONOS_ENGINE_MODE": config.mode,
        "KRONOS_LOG_LEVEL": "INFO",
        **config.env,
    }
    if config.model == "small":
        assert ckpt is not None
        env |= {
            "KRONOS_MODEL_PATH": str(ckpt / "predictor"),
            "KRONOS_TOKENIZER_PATH": str(ckpt / "tokenizer"),
            "KRONOS_MAX_CONTEXT": "512",
        }
    server = ServerProcess("serve", env=env)
    try:
        server.wait_ready(timeout=300)
        result = out / f"load-{config.name}.json"
        command = [
            str(SCRIPTS / "kronos-client"),
            "loadtest",
            "--target",
            server.target,
            "--rest-url",
            f"http://127.0.0.1:{server.port('HTTP')}",
            "--container",
            "bench",
            "--key-file",
            str(key_file),
            "--timeout",
            "300",
            *config.sweep,
            "--json",
            str(result),
        ]
        shown = " ".join(shlex.quote(c) for c in command)
        print(
            f"\n## {config.name}: KRONOS_ENGINE_MODE={config.mode}, model {config.model}\n$ {shown}",
            flush=True,
        )
        started = time.monotonic()
        subprocess.run(command, check=True)
        print(f"({time.monotonic() - started:.0f} s)", flush=True)
        return {
            "config": config.name,
            "mode": config.mode,
            "model": config.model,
            "command": shown,
            "result": json.loads(result.read_text()),
        }
    finally:
        server.stop()


def print_report(runs: list[dict[str, Any]]) -> None:
    """Every configuration's levels as one table each, with the command that measured them."""
    for run in runs:
        print(f"\n### {run['config']} (KRONOS_ENGINE_MODE={run['mode']}, model {run['model']})\n")
        print(format_table(run["result"]["levels"]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="tiny model and short levels (a smoke run)")
    parser.add_argument("--only", default="", help="comma-separated configuration names")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-out")
    parser.add_argument("--report", type=Path, help="print the tables of a load-summary.json and exit")
    args = parser.parse_args()
    if args.report:
        print_report(json.loads(args.report.read_text()))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    chosen = [c for c in configs(args.quick) if not args.only or c.name in args.only.split(",")]
    ckpt = small_checkpoint(args.out, args.quick) if any(c.model == "small" for c in chosen) else None
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for config in chosen:
            runs.append(run_config(config, args.out, ckpt, Path(tmp)))
    write_json(args.out / "load-summary.json", runs)
    print_report(runs)
    print(f"\nwrote {args.out / 'load-summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
