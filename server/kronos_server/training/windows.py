"""Random training windows, normalised exactly as at inference (spec §4)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from kronos_server.forecast import calendar
from kronos_server.forecast.prepare import normalize
from kronos_server.training.data import Candles


@dataclass(frozen=True)
class Batch:
    x: Tensor  # float32 [B, L, 6], per-window z-scores clipped at ``clip``
    stamps: Tensor  # int64 [B, L, 5] minute, hour, weekday, day, month


def window(values32: np.ndarray, stamps: np.ndarray, start: int, length: int, clip: float) -> Batch:
    """One window as a batch of one."""
    z, _, _ = normalize(values32[start : start + length], clip)
    return Batch(
        torch.from_numpy(z).unsqueeze(0), torch.from_numpy(stamps[start : start + length]).unsqueeze(0)
    )


def mirror(x: Tensor) -> Tensor:
    """The windows of the price-mirrored series (price -> const - price), in z-space.

    Negating a z-score is the z-score of the negated column, and mirroring swaps high and
    low; volume and amount stay. A mirrored random walk is still a random walk, so mirroring
    half the real windows removes their up-trend's bias without changing anything else.
    """
    o, h, lo, c, rest = x[..., 0:1], x[..., 1:2], x[..., 2:3], x[..., 3:4], x[..., 4:]
    return torch.cat((-o, -lo, -h, -c, rest), dim=-1)


def stack(batches: Sequence[Batch]) -> Batch:
    return Batch(torch.cat([b.x for b in batches]), torch.cat([b.stamps for b in batches]))


class WindowSampler:
    """Draws batches of equal-length windows; the length is drawn per batch.

    The batch size is ``tokens_per_batch // length`` so that every batch costs about the
    same. A window comes from a ``primary`` series with probability ``1 - other_fraction``
    and otherwise from a uniformly chosen ``other`` (synthetic) series; the primary series
    is chosen uniformly too, whatever its length. Each window is price-mirrored
    (:func:`mirror`) with probability ``mirror_fraction``.
    """

    def __init__(
        self,
        primary: Sequence[Candles],
        others: Sequence[Candles],
        *,
        other_fraction: float,
        min_len: int,
        max_len: int,
        tokens_per_batch: int,
        clip: float,
        rng: np.random.Generator,
        mirror_fraction: float = 0.0,
    ):
        shortest = min(len(c) for c in (*primary, *others))
        if not 2 <= min_len <= max_len <= shortest:
            raise ValueError(f"need 2 <= min_len <= max_len <= {shortest}, got {min_len}, {max_len}")
        self._primary = [self._prepare(c) for c in primary]
        self._others = [self._prepare(c) for c in others]
        self._other_fraction = other_fraction if self._others else 0.0
        self._min_len, self._max_len = min_len, max_len
        self._tokens = tokens_per_batch
        self._clip = clip
        self._rng = rng
        self._mirror = mirror_fraction

    @staticmethod
    def _prepare(c: Candles) -> tuple[np.ndarray, np.ndarray]:
        return c.values.astype(np.float32), calendar.stamps(c.timestamps, "UTC")

    def sample(self) -> Batch:
        rng = self._rng
        length = int(rng.integers(self._min_len, self._max_len + 1))
        size = max(1, self._tokens // length)
        parts = []
        for _ in range(size):
            pool = self._others if rng.random() < self._other_fraction else self._primary
            values, stamps = pool[int(rng.integers(len(pool)))]
            start = int(rng.integers(values.shape[0] - length + 1))
            part = window(values, stamps, start, length, self._clip)
            if self._mirror > 0 and rng.random() < self._mirror:
                part = Batch(mirror(part.x), part.stamps)
            parts.append(part)
        return stack(parts)
