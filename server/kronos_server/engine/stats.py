"""What the engine reports to monitoring: a snapshot and a per-event observer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class EngineStats:
    queued_requests: int
    queued_rows: int
    running_requests: int
    running_rows: int
    steps_total: int
    completed_total: int
    rejected_total: int
    cache_capacity_rows: int
    cache_bytes_per_row: int
    torch_threads: int  # intra-op threads of the engine thread


class EngineObserver(Protocol):
    """Receives timings from the engine thread; implementations must be cheap and thread-safe."""

    def step(self, rows: int, seconds: float) -> None: ...
    def prefill(self, rows: int, positions: int, seconds: float) -> None: ...
    def decode(self, rows: int, seconds: float) -> None: ...
    def slide(self, rows: int, seconds: float) -> None: ...
    def queue_wait(self, seconds: float) -> None: ...
    def rejected(self, reason: str) -> None: ...


class NullObserver:
    def step(self, rows: int, seconds: float) -> None:
        pass

    def prefill(self, rows: int, positions: int, seconds: float) -> None:
        pass

    def decode(self, rows: int, seconds: float) -> None:
        pass

    def slide(self, rows: int, seconds: float) -> None:
        pass

    def queue_wait(self, seconds: float) -> None:
        pass

    def rejected(self, reason: str) -> None:
        pass
