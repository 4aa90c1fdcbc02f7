"""Per-request generation state held by the engine thread."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from kronos_server.engine.passes import StreamDecoder
from kronos_server.engine.ticket import Ticket
from kronos_server.forecast.prepare import denormalize
from kronos_server.forecast.types import Forecast, PreparedSeries, StepUpdate


@dataclass(eq=False)
class Job:
    ticket: Ticket
    series: PreparedSeries
    deadline: float | None
    enqueued_at: float = field(default_factory=time.monotonic)
    generator: torch.Generator = field(init=False)
    s1: Tensor = field(init=False)  # [S, n + P]
    s2: Tensor = field(init=False)
    stamps: Tensor = field(init=False)  # [n + P, 5]
    slots: list[int] = field(default_factory=list)  # slot of each sample row, in sample order
    generated: int = 0
    stream_decoder: StreamDecoder | None = None  # incremental decode of published steps
    # what each published step was made from: its decoded rows [S, 6] (normalised) and the
    # price-space mean it sent; the stream's final forecast is built from exactly these
    streamed_rows: list[Tensor] = field(default_factory=list)
    streamed_means: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        seed = self.series.sampling.seed
        self.generator = torch.Generator()
        self.generator.manual_seed(seed if seed is not None else random.SystemRandom().getrandbits(63))

    @property
    def n(self) -> int:
        return self.series.rows

    @property
    def pred_len(self) -> int:
        return self.series.pred_len

    @property
    def samples(self) -> int:
        return self.series.sampling.sample_count

    @property
    def known(self) -> int:
        """Tokens known so far (c in the spec)."""
        return self.n + self.generated

    @property
    def done(self) -> bool:
        return self.generated >= self.pred_len

    def expired(self, now: float) -> bool:
        return self.deadline is not None and now > self.deadline

    def setup_tokens(self, s1: Tensor, s2: Tensor, device: torch.device) -> None:
        """Input ids [1, n] -> per-sample token buffers with room for the forecast."""
        total = self.n + self.pred_len
        self.s1 = torch.zeros(self.samples, total, dtype=torch.int64, device=device)
        self.s2 = torch.zeros_like(self.s1)
        self.s1[:, : self.n] = s1[0]
        self.s2[:, : self.n] = s2[0]
        stamps = np.concatenate([self.series.x_stamps, self.series.y_stamps])
        self.stamps = torch.from_numpy(stamps).to(device)

    def append(self, s1: Tensor, s2: Tensor) -> None:
        pos = self.known
        self.s1[:, pos] = s1
        self.s2[:, pos] = s2
        self.generated += 1

    def decode_start(self, max_context: int) -> int:
        return max(0, self.n + self.pred_len - max_context)

    def step_update(self, decoded_last: Tensor) -> StepUpdate:
        """decoded_last [S, 6] normalised values of the newest position; kept for the final."""
        mean = decoded_last.mean(dim=0).cpu().numpy()
        values = denormalize(mean, self.series.mean, self.series.std)
        self.streamed_rows.append(decoded_last)
        self.streamed_means.append(values)
        step = self.generated - 1
        return StepUpdate(self.series.series_id, step, int(self.series.y_timestamps[step]), values)

    def streamed_forecast(self) -> Forecast:
        """A stream's final forecast from the rows its steps were decoded from: its mean is the
        steps' values bit for bit, its quantiles come from the same sample paths."""
        if len(self.streamed_means) != self.pred_len:
            raise RuntimeError(f"{len(self.streamed_means)} of {self.pred_len} steps were published")
        return self.forecast(torch.stack(self.streamed_rows, dim=1), mean=np.stack(self.streamed_means))

    def forecast(self, samples: Tensor, mean: np.ndarray | None = None) -> Forecast:
        """samples [S, P, 6] normalised -> price-space forecast with optional quantiles;
        ``mean`` (price space [P, 6]) when already computed, else the samples' mean."""
        s = self.series
        if mean is None:
            mean = denormalize(samples.mean(dim=0).cpu().numpy(), s.mean, s.std)
        paths = denormalize(samples.cpu().numpy(), s.mean, s.std)  # float32 [S, P, 6]
        quantiles: dict[float, np.ndarray] = {}
        if s.sampling.quantiles:
            wide = paths.astype(np.float64)
            for q in s.sampling.quantiles:
                quantiles[q] = np.quantile(wide, q, axis=0).astype(np.float32)
        return Forecast(
            series_id=s.series_id,
            timestamps=s.y_timestamps,
            timezone=s.timezone,
            mean=mean,
            quantiles=quantiles,
            sample_count=s.sampling.sample_count,
            seed=s.sampling.seed,
            prob_close_up=(paths[:, :, 3] > np.float32(s.last_close)).mean(axis=0, dtype=np.float64),
            paths=paths if s.return_paths else None,
        )
