"""What a training run produced, for the caller and for the model card."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kronos_server.model.config import PredictorConfig, TokenizerConfig
from kronos_server.training.config import DataSettings, PhaseSettings
from kronos_server.training.evaluate import ForecastEval, HoldoutLosses
from kronos_server.training.heldout import HeldoutEval
from kronos_server.training.loop import PhaseResult


@dataclass(frozen=True)
class SeriesSummary:
    """A further real training series, used whole."""

    file: str
    rows: int
    first_timestamp: str
    last_timestamp: str
    source: str


@dataclass(frozen=True)
class DataSummary:
    source: str
    total_rows: int
    training_rows: int
    holdout_rows: int
    first_timestamp: str
    holdout_first_timestamp: str
    last_timestamp: str
    settings: DataSettings
    extras: tuple[SeriesSummary, ...] = ()


@dataclass(frozen=True)
class TrainReport:
    out_dir: Path
    seed: int
    threads: int
    torch_version: str
    data: DataSummary
    tokenizer_config: TokenizerConfig
    predictor_config: PredictorConfig
    tokenizer_params: int
    predictor_params: int
    tokenizer_settings: PhaseSettings
    predictor_settings: PhaseSettings
    tokenizer_phase: PhaseResult
    predictor_phase: PhaseResult
    tokenizer_version: str
    predictor_version: str
    holdout: HoldoutLosses | None
    forecast: ForecastEval | None
    eval_wall_s: float
    heldout: HeldoutEval | None = None
    heldout_note: str = ""  # why the held-out backtest did not run, when it did not

    @property
    def training_wall_s(self) -> float:
        return self.tokenizer_phase.wall_s + self.predictor_phase.wall_s
