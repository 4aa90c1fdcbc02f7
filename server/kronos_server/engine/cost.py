"""What a request will cost: measured pass times turned into an estimate from its shape.

The engine times every pass it runs (calibration at start, the warm-up, then real traffic)
and feeds the times here. Each kind of pass is modelled as ``seconds = fixed + per_unit * x``
(x = row-positions for a full-window pass, rows for a one-token decode or the heads), fitted
by least squares over exponentially decaying statistics so that the model follows the
machine. Where the measurements cannot separate the two terms (every pass of one size),
the estimate is the lower bound such a line allows, so a refusal built on it stays
conservative. The engine knows the request's plan (how many passes of each kind); nothing
here knows about deadlines or transports.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from kronos_server.errors import InvalidInputError
from kronos_server.forecast.types import PreparedSeries

DECAY = 0.9  # weight kept by the older measurements at each new one (~10-pass memory)


class LinearCost:
    """seconds ~ fixed + per_unit * x, from decaying sums of the measurements."""

    def __init__(self) -> None:
        self._w = self._x = self._xx = self._y = self._xy = 0.0

    def add(self, x: float, seconds: float) -> None:
        d = DECAY
        self._w = d * self._w + 1.0
        self._x = d * self._x + x
        self._xx = d * self._xx + x * x
        self._y = d * self._y + seconds
        self._xy = d * self._xy + x * seconds

    @property
    def measured(self) -> bool:
        return self._w > 0

    def seconds(self, x: float) -> float:
        """The time of one pass of size ``x``; 0 before any measurement."""
        if not self._w:
            return 0.0
        mx, my = self._x / self._w, self._y / self._w
        var = self._xx / self._w - mx * mx
        if var <= 1e-9 * max(1.0, mx * mx):
            # one size seen: any line with fixed, per_unit >= 0 through it costs at least this
            return my * min(1.0, x / mx) if mx > 0 else my
        per_unit = max(0.0, (self._xy / self._w - mx * my) / var)
        fixed = max(0.0, my - per_unit * mx)
        if fixed == 0.0 and mx > 0:
            per_unit = my / mx  # keep the clamped line through the mean
        return fixed + per_unit * x


@dataclass(frozen=True)
class Plan:
    """The passes one request needs, run alone."""

    prefill_positions: int  # the first window (one row, shared by the samples)
    rows: int  # sample rows advanced at every step
    decode_steps: int  # steps on the KV-cached one-token path
    slide_steps: int  # steps whose window slides: a full pass over window positions per row
    window: int  # positions of each sliding pass (max_context)
    steps: int  # all steps (= pred_len): each also runs the heads over every row

    @property
    def slide_row_positions(self) -> int:
        return self.rows * self.window


@dataclass(frozen=True)
class Estimate:
    seconds: float  # the request run alone on an idle engine; queueing and sharing only add
    slide_steps: int  # steps that recompute the whole window (history + pred_len > max_context)
    max_context: int
    measured: bool  # False until every pass kind the plan needs has been timed at least once


def engine_plan(history: int, pred_len: int, samples: int, max_context: int) -> Plan:
    """The KV-cached engine: step i (1..pred_len-1) knows history + i tokens; past max_context it slides."""
    carried = max(0, pred_len - 1)
    slides = max(0, min(carried, history + carried - max_context))
    return Plan(
        prefill_positions=min(history, max_context),
        rows=samples,
        decode_steps=carried - slides,
        slide_steps=slides,
        window=max_context,
        steps=pred_len,
    )


class CostModel:
    """Measured pass times; the engine thread adds, any thread estimates."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.window = LinearCost()  # x = rows * positions of a full-window pass
        self.decode = LinearCost()  # x = rows of a one-token decode pass
        self.heads = LinearCost()  # x = rows: sampling, heads and bookkeeping of one step

    def add_window(self, row_positions: int, seconds: float) -> None:
        with self._lock:
            self.window.add(row_positions, seconds)

    def add_decode(self, rows: int, seconds: float) -> None:
        with self._lock:
            self.decode.add(rows, seconds)

    def add_heads(self, rows: int, seconds: float) -> None:
        with self._lock:
            self.heads.add(rows, seconds)

    def estimate(self, plan: Plan) -> Estimate:
        with self._lock:
            seconds = (
                self.window.seconds(plan.prefill_positions)
                + plan.slide_steps * self.window.seconds(plan.slide_row_positions)
                + plan.decode_steps * self.decode.seconds(plan.rows)
                + plan.steps * self.heads.seconds(plan.rows)
            )
            measured = self.window.measured and (plan.decode_steps == 0 or self.decode.measured)
        return Estimate(seconds, plan.slide_steps, plan.window, measured)

    def estimate_group(self, plans: Sequence[Plan], max_batch_rows: int) -> Estimate:
        """Requests submitted together: every prefill, then their steps in waves, each wave as
        many requests (in order) as max_batch_rows holds, running for its longest request's
        steps with all its rows in every pass (a little pessimistic where a wave's requests
        differ in length: the engine admits the next one as soon as rows free up)."""
        waves: list[list[Plan]] = []
        rows = 0
        for plan in plans:
            if not waves or rows + plan.rows > max_batch_rows:
                waves.append([])
                rows = 0
            waves[-1].append(plan)
            rows += plan.rows
        with self._lock:
            seconds = sum(self.window.seconds(p.prefill_positions) for p in plans)
            for wave in waves:
                wave_rows = sum(p.rows for p in wave)
                seconds += max(p.decode_steps for p in wave) * self.decode.seconds(wave_rows)
                seconds += max(p.steps for p in wave) * self.heads.seconds(wave_rows)
                seconds += sum(p.slide_steps * self.window.seconds(p.slide_row_positions) for p in wave)
            measured = self.window.measured and (
                all(p.decode_steps == 0 for p in plans) or self.decode.measured
            )
        slides = max((p.slide_steps for p in plans), default=0)
        window = plans[0].window if plans else 0
        return Estimate(seconds, slides, window, measured)


# A request is refused up front only when its estimate is clearly past its deadline: the
# estimate may be off on a busy machine, and refusing a request that would have finished is
# worse than a late timeout. Under MIN_REFUSED_DEADLINE the wait a refusal saves is short and
# the estimate is as noisy as the deadline itself, so such calls simply time out.
DEADLINE_MARGIN = 2.0
MIN_REFUSED_DEADLINE = 1.0


def refuse_past_deadline(estimate: Estimate, deadline: float | None, series: PreparedSeries) -> None:
    """Raise InvalidInputError naming pred_len when ``estimate`` cannot finish inside ``deadline``."""
    if deadline is None or deadline < MIN_REFUSED_DEADLINE or not estimate.measured:
        return
    if estimate.seconds <= DEADLINE_MARGIN * deadline:
        return
    why = ""
    if estimate.slide_steps:
        why = (
            f" (history + pred_len exceeds max_context {estimate.max_context}, so "
            f"{estimate.slide_steps} steps recompute the whole window)"
        )
    raise InvalidInputError(
        f"pred_len: {series.pred_len} steps with {series.rows} history rows and sample_count "
        f"{series.sampling.sample_count} are estimated to take {estimate.seconds:.3g} s{why}, past the "
        f"{deadline:.3g} s deadline; lower pred_len or sample_count, or shorten the history",
        field="pred_len",
        details={"estimated_s": round(estimate.seconds, 3), "deadline_s": deadline},
    )


def refuse_group_past_deadline(
    estimate: Estimate, deadline: float | None, *, requests: int, sample_count: int, what: str, field: str
) -> None:
    """Raise InvalidInputError naming ``field`` when a group of ``requests`` requests (``what``,
    e.g. "origins") is estimated to run clearly past ``deadline``, as for one request."""
    if deadline is None or deadline < MIN_REFUSED_DEADLINE or not estimate.measured:
        return
    if estimate.seconds <= DEADLINE_MARGIN * deadline:
        return
    raise InvalidInputError(
        f"{field}: {requests} {what} with sample_count {sample_count} are estimated to take "
        f"{estimate.seconds:.3g} s together, past the {deadline:.3g} s deadline; ask for fewer "
        f"{what} or samples, a shorter horizon or context, or a longer deadline",
        field=field,
        details={"estimated_s": round(estimate.seconds, 3), "deadline_s": deadline},
    )
