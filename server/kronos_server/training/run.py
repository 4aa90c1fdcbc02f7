"""Entry points: ``train_default`` and the ``train`` CLI subcommand's arguments and runner."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
from loguru import logger

from kronos_server.forecast import calendar
from kronos_server.model.checkpoint import save_checkpoint
from kronos_server.model.config import PredictorConfig, TokenizerConfig
from kronos_server.model.predictor import KronosPredictor
from kronos_server.model.tokenizer import KronosTokenizer
from kronos_server.training import heldout
from kronos_server.training.card import render
from kronos_server.training.config import (
    DEFAULT_PREDICTOR,
    DEFAULT_TOKENIZER,
    SERIES_SOURCES,
    DataSettings,
    PhaseSettings,
)
from kronos_server.training.data import load_csv, split_holdout
from kronos_server.training.evaluate import forecast_eval, holdout_losses
from kronos_server.training.phases import train_predictor, train_tokenizer
from kronos_server.training.report import DataSummary, SeriesSummary, TrainReport
from kronos_server.training.synthetic import hourly_weekdays, synthetic_set
from kronos_server.training.windows import WindowSampler

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "default_model"
DEFAULT_DATA = DEFAULT_MODEL_DIR / "data" / "regression_input.csv"
CARD_FILE = "MODEL_CARD.md"

DEFAULT_TOKENIZER_STEPS = 2000
DEFAULT_PREDICTOR_STEPS = 8000
DEFAULT_TIME_BUDGET_S = 1680.0  # both phases together: 28 minutes
TOKENIZER_SHARE = 0.3  # of the time budget
HOURLY_START_NS = 1_262_563_200_000_000_000  # 2010-01-04 00:00 UTC, a Monday


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _iso(ts: np.ndarray, i: int) -> str:
    return calendar.format_timestamps(ts[i : i + 1], "UTC")[0].replace("T", " ")


def train_default(
    out_dir: Path,
    *,
    tokenizer_steps: int,
    predictor_steps: int,
    seed: int,
    threads: int,
    log_every: int,
    time_budget_s: float = DEFAULT_TIME_BUDGET_S,
    data_path: Path = DEFAULT_DATA,
    data_settings: DataSettings | None = None,
    tokenizer_config: TokenizerConfig = DEFAULT_TOKENIZER,
    predictor_config: PredictorConfig = DEFAULT_PREDICTOR,
    evaluate: bool = True,
    heldout_cache: Path = heldout.DEFAULT_CACHE,
) -> TrainReport:
    """Train tokenizer then predictor from scratch, save both and the model card to ``out_dir``."""
    ds = data_settings or DataSettings()
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    candles = load_csv(data_path)
    train_rows, holdout = split_holdout(candles, ds.holdout_rows)
    extras = [load_csv(DEFAULT_MODEL_DIR / "data" / name) for name in ds.extra_series]
    calendars = [train_rows.timestamps, *(e.timestamps for e in extras)]
    calendars.append(hourly_weekdays(HOURLY_START_NS, ds.hourly_rows))
    synthetic = synthetic_set(rng, calendars, ds.synthetic_series)
    logger.info(
        f"data: {len(candles)} rows, training {len(train_rows)}, holdout {len(holdout)}, "
        f"{len(extras)} further real series, {len(synthetic)} synthetic series"
    )

    tok_settings = PhaseSettings(
        steps=tokenizer_steps,
        time_budget_s=time_budget_s * TOKENIZER_SHARE,
        lr=2e-3,
        tokens_per_batch=2048,
        log_every=log_every,
    )
    pred_settings = PhaseSettings(
        steps=predictor_steps,
        time_budget_s=time_budget_s * (1 - TOKENIZER_SHARE),
        lr=2e-3,
        warmup_steps=100,
        tokens_per_batch=2048,
        min_len=32,
        log_every=log_every,
    )

    def sampler(s: PhaseSettings) -> WindowSampler:
        return WindowSampler(
            [train_rows, *extras],
            synthetic,
            other_fraction=ds.synthetic_fraction,
            mirror_fraction=ds.mirror_fraction,
            min_len=s.min_len,
            max_len=s.max_len,
            tokens_per_batch=s.tokens_per_batch,
            clip=ds.clip,
            rng=rng,
        )

    tokenizer = KronosTokenizer(tokenizer_config)
    tok_phase = train_tokenizer(
        tokenizer, sampler(tok_settings), tok_settings, column_weights=ds.recon_weights
    )
    # the tokenizer's elapsed time is not carried over: the predictor gets its own share
    predictor = KronosPredictor(predictor_config)
    pred_phase = train_predictor(predictor, tokenizer, sampler(pred_settings), pred_settings)
    tokenizer.requires_grad_(False)
    predictor.requires_grad_(False)
    tok_version = save_checkpoint(tokenizer, out_dir / "tokenizer")
    pred_version = save_checkpoint(predictor, out_dir / "predictor")
    logger.info(f"saved tokenizer {tok_version} and predictor {pred_version} to {out_dir}")

    start = time.perf_counter()
    hold = fc = None
    if evaluate:
        hold = holdout_losses(tokenizer, predictor, holdout, ds.clip)
        logger.info(f"holdout losses: {hold}")
        fc = forecast_eval(tokenizer, predictor, candles, ds.holdout_rows, seed=seed)
        for s in fc.scores:
            logger.info(f"holdout forecast {s.label}: close MAE {s.mae['close']:.5f}")
    held: heldout.HeldoutEval | None = None
    held_note = "" if evaluate else "--no-eval"
    if evaluate:
        try:
            with heldout.engine_backtester(out_dir, threads=threads) as backtester:
                held = heldout.evaluate_heldout(tokenizer, backtester, cache_dir=heldout_cache, clip=ds.clip)
            logger.info(f"held-out default sampling by CRPS: {held.chosen.label}")
        except heldout.HeldoutUnavailable as exc:
            held_note = str(exc)
            logger.warning(f"held-out backtest skipped: {exc}")
    eval_wall = time.perf_counter() - start

    try:
        source = str(data_path.resolve().relative_to(out_dir.resolve()))
    except ValueError:
        source = data_path.name
    summary = DataSummary(
        source=source,
        total_rows=len(candles),
        training_rows=len(train_rows),
        holdout_rows=len(holdout),
        first_timestamp=_iso(candles.timestamps, 0),
        holdout_first_timestamp=_iso(holdout.timestamps, 0),
        last_timestamp=_iso(candles.timestamps, len(candles) - 1),
        settings=ds,
        extras=tuple(
            SeriesSummary(
                file=name,
                rows=len(e),
                first_timestamp=_iso(e.timestamps, 0),
                last_timestamp=_iso(e.timestamps, len(e) - 1),
                source=SERIES_SOURCES.get(name, "see data/README.md"),
            )
            for name, e in zip(ds.extra_series, extras, strict=True)
        ),
    )
    report = TrainReport(
        out_dir=out_dir,
        seed=seed,
        threads=threads,
        torch_version=torch.__version__,
        data=summary,
        tokenizer_config=tokenizer_config,
        predictor_config=predictor_config,
        tokenizer_params=_count(tokenizer),
        predictor_params=_count(predictor),
        tokenizer_settings=tok_settings,
        predictor_settings=pred_settings,
        tokenizer_phase=tok_phase,
        predictor_phase=pred_phase,
        tokenizer_version=tok_version,
        predictor_version=pred_version,
        holdout=hold,
        forecast=fc,
        eval_wall_s=eval_wall,
        heldout=held,
        heldout_note=held_note,
    )
    (out_dir / CARD_FILE).write_text(render(report))
    logger.info(f"training took {report.training_wall_s:.0f}s, evaluation {eval_wall:.0f}s")
    return report


DESCRIPTION = (
    "Train a tokenizer and predictor from scratch on a candle CSV (by default the embedded "
    "model's data) and write both checkpoints and a model card to --out. --out defaults to a "
    "new directory runs/train-YYYYmmdd-HHMMSS; an existing non-empty directory, and always the "
    "package's own default_model/, is refused without --force."
)
RUNS_DIR = Path("runs")
EXIT_USAGE = 2


class OutDirError(ValueError):
    """--out names a directory training must not write into; the message names the path."""


def default_out_dir(now: datetime | None = None) -> Path:
    """A fresh directory per run, so a second run never meets the first one's files."""
    return RUNS_DIR / f"train-{(now or datetime.now()):%Y%m%d-%H%M%S}"


def check_out_dir(out: Path, *, force: bool) -> None:
    """Refuse the shipped model and non-empty directories unless ``force``; OutDirError names --out."""
    if force:
        return
    if out.resolve() == DEFAULT_MODEL_DIR.resolve():
        raise OutDirError(
            f"--out {out} is the package's embedded default model; pass --force to overwrite it "
            "(make train-default does)"
        )
    if out.exists() and not out.is_dir():
        raise OutDirError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        raise OutDirError(f"--out {out} is not empty; choose a new directory or pass --force to overwrite")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``kronos-serve train``."""
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="output model directory (default: a new runs/train-YYYYmmdd-HHMMSS)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty --out, or over the embedded default model",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        metavar="CSV",
        help="training CSV (default: the embedded data)",
    )
    parser.add_argument(
        "--tokenizer-steps",
        type=int,
        default=DEFAULT_TOKENIZER_STEPS,
        metavar="N",
        help="tokenizer optimiser steps (default: %(default)s)",
    )
    parser.add_argument(
        "--predictor-steps",
        type=int,
        default=DEFAULT_PREDICTOR_STEPS,
        metavar="N",
        help="predictor optimiser steps (default: %(default)s)",
    )
    parser.add_argument(
        "--time-budget",
        type=float,
        default=DEFAULT_TIME_BUDGET_S,
        metavar="SECONDS",
        help="seconds for both phases together (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="random seed (default: %(default)s)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        metavar="N",
        help="torch threads (default: %(default)s; on a CPU shared with other work more threads "
        "can be much slower)",
    )
    parser.add_argument(
        "--log-every",
        type=int,
        default=50,
        metavar="N",
        help="log the losses every N steps (default: %(default)s)",
    )
    parser.add_argument("--no-eval", action="store_true", help="skip the held-out evaluation")
    parser.add_argument(
        "--heldout-cache",
        type=Path,
        default=heldout.DEFAULT_CACHE,
        metavar="DIR",
        help="where the held-out instruments' wheel is downloaded and kept (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``kronos-serve train``; returns the process exit code (2: --out refused)."""
    out = Path(args.out) if args.out is not None else default_out_dir()
    try:
        check_out_dir(out, force=bool(args.force))
    except OutDirError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_USAGE
    train_default(
        out,
        tokenizer_steps=int(args.tokenizer_steps),
        predictor_steps=int(args.predictor_steps),
        seed=int(args.seed),
        threads=int(args.threads),
        log_every=int(args.log_every),
        time_budget_s=float(args.time_budget),
        data_path=Path(args.data),
        evaluate=not bool(args.no_eval),
        heldout_cache=Path(args.heldout_cache),
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m kronos_server.training.run``: the same as ``kronos-serve train``."""
    parser = argparse.ArgumentParser(prog="kronos-serve train", description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
