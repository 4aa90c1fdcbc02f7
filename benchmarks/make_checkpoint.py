#!/usr/bin/env python
"""Write the engine benchmark's random-weight model as checkpoints a real server loads.

Run from the repository root::

    python benchmarks/make_checkpoint.py OUT_DIR [--dims small|tiny] [--seed N]

writes ``OUT_DIR/predictor`` and ``OUT_DIR/tokenizer`` in the hub format the server's loader
accepts (``config.json`` + ``model.safetensors``) and prints their content versions. The
weights are those of ``bench_engine.py`` (same dimensions, initialisation and seed, from
``randomweights.py``): ``small`` is the Kronos-small predictor with Kronos-Tokenizer-base,
``tiny`` the quick mode's. Serve them with::

    KRONOS_MODEL_PATH=OUT_DIR/predictor KRONOS_TOKENIZER_PATH=OUT_DIR/tokenizer \\
        KRONOS_MAX_CONTEXT=512 kronos-serve serve
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kronos_server.model.checkpoint import save_checkpoint
from randomweights import DIMS, MODEL_SEED, random_models


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, metavar="OUT_DIR", help="gets predictor/ and tokenizer/")
    parser.add_argument("--dims", choices=sorted(DIMS), default="small", help="model dimensions")
    parser.add_argument("--seed", type=int, default=MODEL_SEED, help="weight seed (default: the benchmark's)")
    args = parser.parse_args(argv)
    dims = DIMS[args.dims]
    tokenizer, predictor = random_models(dims.predictor, dims.tokenizer, args.seed)
    out: Path = args.out
    versions = {
        "predictor": save_checkpoint(predictor, out / "predictor"),
        "tokenizer": save_checkpoint(tokenizer, out / "tokenizer"),
    }
    for name, version in versions.items():
        print(f"{name} {out / name} {version}")
    print(
        f"serve: KRONOS_MODEL_PATH={out / 'predictor'} KRONOS_TOKENIZER_PATH={out / 'tokenizer'} "
        f"KRONOS_MAX_CONTEXT={dims.max_context} kronos-serve serve"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
