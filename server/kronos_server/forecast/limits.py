"""Input limits and sampling defaults, built from settings and passed to validation."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_context: int = 512
    min_history: int = 2
    max_history: int = 8192
    max_sample_count: int = 64
    max_quantiles: int = 16
    max_return_paths: int = 64
    max_backtest_origins: int = 256
    clip: float = 5.0
    # sampling defaults: those of the original predictor API (spec §6)
    default_temperature: float = 1.0
    default_top_k: int = 0
    default_top_p: float = 0.9
    default_sample_count: int = 1
