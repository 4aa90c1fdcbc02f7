"""Dimensions and hyper-parameters of the default model and of its training run."""

from __future__ import annotations

from dataclasses import dataclass

from kronos_server.model.config import PredictorConfig, TokenizerConfig

DEFAULT_TOKENIZER = TokenizerConfig(
    d_in=6,
    d_model=64,
    n_heads=4,
    ff_dim=128,
    n_enc_layers=3,
    n_dec_layers=3,
    s1_bits=8,
    s2_bits=8,
    group_size=4,
)

DEFAULT_PREDICTOR = PredictorConfig(
    s1_bits=8,
    s2_bits=8,
    n_layers=4,
    d_model=128,
    n_heads=4,
    ff_dim=256,
)


@dataclass(frozen=True)
class PhaseSettings:
    """Optimiser and batching settings of one training phase."""

    steps: int
    time_budget_s: float
    lr: float
    weight_decay: float = 0.01
    warmup_steps: int = 50
    grad_clip: float = 1.0
    tokens_per_batch: int = 4096
    min_len: int = 64
    max_len: int = 256
    log_every: int = 50


@dataclass(frozen=True)
class DataSettings:
    """Which rows are held out and how much synthetic data is mixed in."""

    holdout_rows: int = 300
    synthetic_series: int = 16
    synthetic_fraction: float = 0.5
    clip: float = 5.0
