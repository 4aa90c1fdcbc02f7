"""Domain types shared by transports, the engine and the CLI."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from kronos_server.forecast.limits import Limits

FEATURES = ("open", "high", "low", "close", "volume", "amount")
PRICE_FIELDS = FEATURES[:4]


@dataclass(frozen=True)
class Setting:
    """One per-request setting, declared once as the metadata of its field.

    The JSON codec's accepted overrides and their types, the REST schema (``Overrides``),
    protobuf -> domain copying, the REST -> protobuf packing, the field vocabulary and the
    range checks of :func:`kronos_server.forecast.prepare.resolve_sampling` all read it.
    """

    kind: type[int] | type[float]  # the value's type (a repeated setting: its elements')
    doc: str  # its description in the REST schema
    rule: str = ""  # the range as an error says it: "lie in [1, {max_sample_count}]" (Limits)
    ok: Callable[[Any, Limits], bool] = lambda value, limits: True
    default: str | float | None = None  # a Limits attribute (the server's default), a value, or None
    most: str | None = None  # a repeated setting: the Limits attribute bounding its length
    schema: Mapping[str, Any] = field(default_factory=dict)  # JSON-schema bounds for REST
    repeated: bool = False
    name: str = ""  # filled in from the field it annotates


def _setting(setting: Setting) -> dict[str, Setting]:
    return {"setting": setting}


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings of one request; None means "server default" until resolved.

    A new sampling setting is one field here (its :class:`Setting` says how it is checked
    and documented), the same field in :class:`ResolvedSampling`, and one in the proto's
    ``SamplingParams`` message.
    """

    temperature: float | None = field(
        default=None,
        metadata=_setting(
            Setting(
                float,
                "Softmax temperature, > 0",
                "be a finite number > 0",
                lambda v, _: math.isfinite(v) and v > 0,
                "default_temperature",
            )
        ),
    )
    top_k: int | None = field(
        default=None,
        metadata=_setting(
            Setting(
                int,
                "Keep the k most likely tokens; 0 = off (then top_p applies)",
                "be >= 0 (0 disables it)",
                lambda v, _: v >= 0,
                "default_top_k",
            )
        ),
    )
    top_p: float | None = field(
        default=None,
        metadata=_setting(
            Setting(
                float,
                "Nucleus sampling mass in (0, 1]",
                "lie in (0, 1]",
                lambda v, _: math.isfinite(v) and 0 < v <= 1,
                "default_top_p",
            )
        ),
    )
    sample_count: int | None = field(
        default=None,
        metadata=_setting(
            Setting(
                int,
                "Sample paths averaged, 1..the server maximum",
                "lie in [1, {max_sample_count}]",
                lambda v, lim: 1 <= v <= lim.max_sample_count,
                "default_sample_count",
            )
        ),
    )
    seed: int | None = field(
        default=None,
        metadata=_setting(
            Setting(
                int,
                "Makes the forecast reproducible; any uint64, 0 to 2^64 - 1 (the low 32 bits seed the"
                " sampler); absent = random",
                "lie in [0, 2^64)",  # the proto's uint64, whole
                lambda v, _: 0 <= v < 2**64,
                schema={"ge": 0, "le": 2**64 - 1},
            )
        ),
    )
    quantiles: tuple[float, ...] = field(
        default=(),
        metadata=_setting(
            Setting(
                float,
                "Quantile levels in (0, 1) to report over the sample paths",
                "lie in (0, 1)",
                lambda v, _: math.isfinite(v) and 0 < v < 1,
                most="max_quantiles",
                repeated=True,
            )
        ),
    )


@dataclass(frozen=True)
class ResolvedSampling:
    """Sampling settings after defaults were applied and validated."""

    temperature: float
    top_k: int
    top_p: float
    sample_count: int
    seed: int | None
    quantiles: tuple[float, ...]


#: every sampling setting, in declaration order (the proto's and the REST schema's)
SAMPLING: tuple[Setting, ...] = tuple(
    replace(f.metadata["setting"], name=f.name) for f in fields(SamplingParams)
)

#: pred_len travels with the sampling overrides in REST; prepare checks it with the timestamps
PRED_LEN = Setting(int, "Steps to predict, 1..max_context", name="pred_len")

#: the REST body's ``overrides``, in the order the schema lists them
OVERRIDES: tuple[Setting, ...] = (PRED_LEN, *SAMPLING)


@dataclass(frozen=True)
class SeriesInput:
    """One series as a client sent it.

    ``timestamps`` are UTC instants in epoch nanoseconds (int64); ``timezone`` (IANA name,
    default UTC) says which local wall-clock time gives the calendar features.
    """

    series_id: str
    timestamps: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray | None = None
    amount: np.ndarray | None = None
    prediction_timestamps: np.ndarray | None = None
    pred_len: int | None = None
    timezone: str | None = None
    sampling: SamplingParams = field(default_factory=SamplingParams)
    return_paths: bool = False  # also answer the sample paths (Forecast.paths)


@dataclass(frozen=True)
class PreparedSeries:
    """A validated, normalised series: exactly what the engine consumes."""

    series_id: str
    x_norm: np.ndarray  # float32 [n, 6], normalised and clipped
    mean: np.ndarray  # float32 [6]
    std: np.ndarray  # float32 [6], population std (before + 1e-5)
    x_stamps: np.ndarray  # int64 [n, 5] minute, hour, weekday, day, month
    y_stamps: np.ndarray  # int64 [P, 5]
    y_timestamps: np.ndarray  # int64 epoch ns [P]
    timezone: str
    sampling: ResolvedSampling
    return_paths: bool = False
    last_close: float = float("nan")  # the history's last close (float32 value), price space

    @property
    def pred_len(self) -> int:
        return int(self.y_stamps.shape[0])

    @property
    def rows(self) -> int:
        return int(self.x_norm.shape[0])


@dataclass(frozen=True)
class Forecast:
    """The answer for one series, in price space."""

    series_id: str
    timestamps: np.ndarray  # int64 epoch ns [P]
    timezone: str
    mean: np.ndarray  # float32 [P, 6], columns FEATURES
    quantiles: dict[float, np.ndarray]  # q -> float32 [P, 6]
    sample_count: int
    seed: int | None
    # per step, the fraction of sample paths whose close lies above the history's last close
    prob_close_up: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float64))
    paths: np.ndarray | None = None  # float32 [S, P, 6] price space, when return_paths was set


@dataclass(frozen=True)
class StepUpdate:
    """One generated step of a streaming forecast (mean over samples, price space)."""

    series_id: str
    step: int
    timestamp: int  # epoch ns
    values: np.ndarray  # float32 [6]
