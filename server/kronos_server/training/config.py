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


#: where each further real series of the default model's data/ folder comes from (for the card)
SERIES_SOURCES: dict[str, str] = {
    "sp500.csv": (
        "S&P 500 index, daily OHLCV: PyPI `arch` 8.0.0, file `arch/data/sp500/sp500.csv.gz` "
        "(University of Illinois/NCSA Open Source licence, `data/LICENSE-arch.md`)"
    ),
    "nasdaq.csv": (
        "NASDAQ Composite index, daily OHLCV: PyPI `arch` 8.0.0, file `arch/data/nasdaq/nasdaq.csv.gz` "
        "(University of Illinois/NCSA Open Source licence, `data/LICENSE-arch.md`)"
    ),
}


@dataclass(frozen=True)
class DataSettings:
    """Which rows are held out, which other real series join, how much synthetic data is mixed in."""

    holdout_rows: int = 300
    # further real series (CSV file names in the default model's data/ folder), trained on whole
    extra_series: tuple[str, ...] = ("sp500.csv", "nasdaq.csv")
    synthetic_series: int = 48
    synthetic_fraction: float = 0.5
    hourly_rows: int = 5000  # length of the synthetic hourly calendar
    mirror_fraction: float = 0.5
    clip: float = 5.0
    # tokenizer reconstruction weights of open, high, low, close, volume, amount: the scores are
    # about the close, and volume spikes would otherwise take much of the code
    recon_weights: tuple[float, ...] = (1.5, 1.5, 1.5, 3.0, 0.5, 0.5)
