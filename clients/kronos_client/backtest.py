"""Backtests from the client: the request, its typed result, a table and a DataFrame of it.

``client.backtest(timestamps, open, high, low, close, horizon=12, origins=32, ...)`` asks the
server to forecast the series from many of its own past origins at once and to score the
forecasts of the close beside three baselines (``naive``, ``drift``, ``volatility``); the
answer is a :class:`BacktestResult` (the protobuf stays on ``.raw``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypedDict

import numpy as np
from numpy.typing import NDArray

from kronos.v1 import predictor_pb2 as pb
from kronos_client.messages import Column, build_history, pack_sampling
from kronos_client.results import Columns
from kronos_client.timestamps import format_iso

#: the forecasters of every backtest, in the server's order
FORECASTERS = ("model", "naive", "drift", "volatility")
#: the point scores, as the table and the DataFrame name them
POINT_SCORES = ("mae", "rmse", "mape", "mase", "direction_accuracy", "crps", "brier_up")
SKILLS = ("mae_skill", "rmse_skill", "crps_skill")


class BacktestOptions(TypedDict, total=False):
    """backtest() keywords besides the history columns and the horizon (see build_backtest_request)."""

    volume: Column | None
    amount: Column | None
    context: int | None
    origins: int | None
    origin_step: int | None
    temperature: float | None
    top_k: int | None
    top_p: float | None
    sample_count: int | None
    seed: int | None
    quantiles: Iterable[float]
    timezone: str
    series_id: str
    return_forecasts: bool


def build_backtest_request(
    timestamps: Iterable[Any],
    open: Column,
    high: Column,
    low: Column,
    close: Column,
    *,
    horizon: int,
    volume: Column | None = None,
    amount: Column | None = None,
    context: int | None = None,
    origins: int | None = None,
    origin_step: int | None = None,
    temperature: float | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
    sample_count: int | None = None,
    seed: int | None = None,
    quantiles: Iterable[float] = (),
    timezone: str = "",
    series_id: str = "",
    return_forecasts: bool = False,
) -> pb.BacktestRequest:
    """One series' whole history as a BacktestRequest; unset fields take the server's defaults
    (context min(256, max_context - horizon), as many origins as fit, origin_step = horizon,
    8 sample paths, quantiles 0.05 ... 0.95)."""
    history = build_history(
        timestamps, open, high, low, close, volume=volume, amount=amount, timezone=timezone
    )
    request = pb.BacktestRequest(
        series_id=series_id,
        history=history,
        horizon=int(horizon),
        timezone=timezone,
        return_forecasts=bool(return_forecasts),
    )
    for name, value in (("context", context), ("origins", origins), ("origin_step", origin_step)):
        if value is not None:
            setattr(request, name, int(value))
    given = {
        "temperature": temperature,
        "top_k": top_k,
        "top_p": top_p,
        "sample_count": sample_count,
        "seed": seed,
        "quantiles": quantiles,
    }
    pack_sampling(request.sampling, given)
    return request


def _optional(msg: Any, name: str) -> float | None:
    return float(getattr(msg, name)) if msg.HasField(name) else None


@dataclass(frozen=True)
class Scores:
    """One forecaster's scores of the close, at one horizon step or overall.

    ``pinball`` maps each quantile level to its loss and ``coverage`` each central interval's
    nominal mass (0.8 for q0.1-q0.9) to the fraction of actual closes inside it; both are
    empty for the point forecasters (naive, drift), as are ``brier_up`` and ``crps`` where
    unset. Skills are 1 - score / naive's (> 0: better than naive).
    """

    mae: float
    rmse: float
    mape: float
    mase: float
    direction_accuracy: float
    crps: float | None
    pinball: dict[float, float]
    coverage: dict[float, float]
    brier_up: float | None
    mae_skill: float | None
    rmse_skill: float | None
    crps_skill: float | None

    @classmethod
    def from_pb(cls, msg: pb.Scores) -> Scores:
        return cls(
            mae=msg.mae,
            rmse=msg.rmse,
            mape=msg.mape,
            mase=msg.mase,
            direction_accuracy=msg.direction_accuracy,
            crps=_optional(msg, "crps"),
            pinball={p.q: p.loss for p in msg.pinball},
            coverage={c.level: c.coverage for c in msg.coverage},
            brier_up=_optional(msg, "brier_up"),
            mae_skill=_optional(msg, "mae_skill"),
            rmse_skill=_optional(msg, "rmse_skill"),
            crps_skill=_optional(msg, "crps_skill"),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, in the proto's names (pinball and coverage as lists of pairs)."""
        out: dict[str, Any] = {name: getattr(self, name) for name in (*POINT_SCORES, *SKILLS)}
        out["pinball"] = [{"q": q, "loss": loss} for q, loss in self.pinball.items()]
        out["coverage"] = [{"level": level, "coverage": c} for level, c in self.coverage.items()]
        return out

    def flat(self) -> dict[str, float | None]:
        """One value per column: the scores, ``pinball_q0.1``, ``coverage_0.8``, the skills."""
        out: dict[str, float | None] = {name: getattr(self, name) for name in POINT_SCORES}
        out.update({f"pinball_q{q!r}": loss for q, loss in self.pinball.items()})
        out.update({f"coverage_{level!r}": c for level, c in self.coverage.items()})
        out.update({name: getattr(self, name) for name in SKILLS})
        return out


@dataclass(frozen=True)
class ForecasterScores:
    """A forecaster's scores: ``overall`` and one per horizon step (``by_step[0]`` is step 1)."""

    name: str
    overall: Scores
    by_step: tuple[Scores, ...]

    @classmethod
    def from_pb(cls, msg: pb.ForecasterScores) -> ForecasterScores:
        return cls(msg.forecaster, Scores.from_pb(msg.overall), tuple(Scores.from_pb(s) for s in msg.by_step))

    def curve(self, score: str = "mae") -> list[float | None]:
        """One score per horizon step (the error-by-horizon curve)."""
        return [getattr(s, score) for s in self.by_step]


@dataclass(frozen=True, eq=False)
class BacktestForecast:
    """What the model forecast from one origin (with ``return_forecasts``)."""

    origin: int
    timestamps_ms: NDArray[np.int64]
    mean: Columns
    quantiles: dict[float, Columns]

    @classmethod
    def from_pb(cls, msg: pb.BacktestForecast) -> BacktestForecast:
        return cls(
            origin=msg.origin,
            timestamps_ms=np.asarray(msg.forecast.timestamps_ms, dtype=np.int64),
            mean=Columns.from_pb(msg.forecast),
            quantiles={q.q: Columns.from_pb(q.values) for q in msg.quantiles},
        )


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """A backtest's answer: ``scores`` by forecaster name (model first), the origins scored
    (row indices of the history sent, ascending), the settings used (defaults filled in)."""

    series_id: str
    scores: dict[str, ForecasterScores]
    origins: NDArray[np.int64]
    origin_timestamps_ms: NDArray[np.int64]
    horizon: int
    context: int
    origin_step: int
    sample_count: int
    seed: int | None
    model_version: str
    tokenizer_version: str
    forecasts: tuple[BacktestForecast, ...] = ()
    timezone: str = ""
    request_id: str | None = None
    raw: pb.BacktestResponse = field(default_factory=pb.BacktestResponse, repr=False)

    @classmethod
    def from_pb(
        cls, msg: pb.BacktestResponse, timezone: str = "", request_id: str | None = None
    ) -> BacktestResult:
        return cls(
            series_id=msg.series_id,
            scores={s.forecaster: ForecasterScores.from_pb(s) for s in msg.scores},
            origins=np.asarray(msg.origins, dtype=np.int64),
            origin_timestamps_ms=np.asarray(msg.origin_timestamps_ms, dtype=np.int64),
            horizon=msg.horizon,
            context=msg.context,
            origin_step=msg.origin_step,
            sample_count=msg.sample_count,
            seed=msg.seed if msg.HasField("seed") else None,
            model_version=msg.model_version,
            tokenizer_version=msg.tokenizer_version,
            forecasts=tuple(BacktestForecast.from_pb(f) for f in msg.forecasts),
            timezone=timezone,
            request_id=request_id,
            raw=msg,
        )

    @property
    def model(self) -> ForecasterScores:
        return self.scores["model"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, in the proto's names; origin timestamps as ISO 8601 in the series' zone."""
        out: dict[str, Any] = {
            "series_id": self.series_id,
            "model_version": self.model_version,
            "tokenizer_version": self.tokenizer_version,
            "horizon": self.horizon,
            "context": self.context,
            "origin_step": self.origin_step,
            "sample_count": self.sample_count,
            "seed": self.seed,
            "origins": self.origins.tolist(),
            "origin_timestamps": format_iso(self.origin_timestamps_ms.tolist(), self.timezone),
            "scores": [
                {
                    "forecaster": s.name,
                    "overall": s.overall.to_dict(),
                    "by_step": [step.to_dict() for step in s.by_step],
                }
                for s in self.scores.values()
            ],
        }
        if self.forecasts:
            out["forecasts"] = [
                {
                    "origin": f.origin,
                    "timestamps": format_iso(f.timestamps_ms.tolist(), self.timezone),
                    "close": f.mean.close.tolist(),
                    "quantiles": {repr(q): c.close.tolist() for q, c in sorted(f.quantiles.items())},
                }
                for f in self.forecasts
            ]
        return out

    def to_dataframe(self, by_step: bool = False) -> Any:
        """The scores as a pandas DataFrame (needs pandas): one row per forecaster (overall),
        or with ``by_step`` one per (forecaster, step), steps from 1; columns as
        :meth:`Scores.flat` names them."""
        from kronos_client.frames import require_pandas

        pd = require_pandas()
        if not by_step:
            rows = {name: s.overall.flat() for name, s in self.scores.items()}
            return pd.DataFrame.from_dict(rows, orient="index").rename_axis("forecaster")
        index = [(name, h + 1) for name, s in self.scores.items() for h in range(len(s.by_step))]
        data = [step.flat() for s in self.scores.values() for step in s.by_step]
        return pd.DataFrame(data, index=pd.MultiIndex.from_tuples(index, names=["forecaster", "step"]))

    def table(self) -> str:
        """The overall scores of model and baselines, one row each, under a line on the run."""
        first, last = (
            format_iso([int(self.origin_timestamps_ms[0]), int(self.origin_timestamps_ms[-1])], self.timezone)
            if self.origins.size
            else ["-", "-"]
        )
        head = (
            f"backtest of {self.series_id or 'the series'}: {self.origins.size} origins "
            f"({first} .. {last}, every {self.origin_step} rows), context {self.context}, "
            f"horizon {self.horizon}, {self.sample_count} sample paths"
            + ("" if self.seed is None else f", seed {self.seed}")
        )
        levels = sorted({level for s in self.scores.values() for level in s.overall.coverage})
        header = ["forecaster", "MAE", "RMSE", "MAPE%", "MASE", "CRPS", "dir acc", "Brier up"]
        header += [f"cov {100 * level:g}%" for level in levels] + ["MAE skill", "CRPS skill"]
        rows = []
        for name, s in self.scores.items():
            o = s.overall
            cells = [o.mae, o.rmse, o.mape, o.mase, o.crps, o.direction_accuracy, o.brier_up]
            cells += [o.coverage.get(level) for level in levels] + [o.mae_skill, o.crps_skill]
            rows.append([name, *(_cell(v) for v in cells)])
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        lines = [head, "  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))]
        lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
        return "\n".join(lines)


def _cell(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4g}"
