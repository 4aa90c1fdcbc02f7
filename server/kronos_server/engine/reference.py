"""The original algorithm behind the engine's interface (KRONOS_ENGINE_MODE=recompute).

:class:`ReferenceEngine` serves exactly what :class:`~kronos_server.engine.engine.Engine`
serves (submit, tickets, streaming, cancel, deadlines, admission, stats, drain) but decodes
the way the reference Kronos implementation does: one request at a time, its history
tokenised once per sample row, and at every step the predictor run over the whole window
from scratch (:func:`kronos_server.engine.recompute.generate`, step for step). It exists to
compare the two on the same server workload; it is not meant for production.

Lifecycle, admission, cancellation and deadlines are the engine's own (this is a subclass);
only the scheduling (one request at a time, FIFO) and the step (a full-window pass) differ.
Cancel and deadlines are honoured between steps. Seeded requests draw from the same
per-request generator in the same order as the engine, so they pick the same tokens.
Timings go to the observer as ``prefill`` (tokenise + first window) and ``slide`` (every
later step: a full-window recompute) plus ``step``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from loguru import logger
from torch import Tensor

from kronos_server.engine.cache import KVCache
from kronos_server.engine.cost import Estimate, engine_plan
from kronos_server.engine.engine import CALIBRATION_ROWS, Engine, EngineConfig
from kronos_server.engine.job import Job
from kronos_server.engine.sampling import draw, filter_logits
from kronos_server.engine.stats import EngineObserver
from kronos_server.forecast.types import PreparedSeries
from kronos_server.model.bundle import ModelBundle


class _NoCache(KVCache):
    """The recompute path keeps no keys or values: nothing allocated, capacity 0."""

    def __init__(self) -> None:  # deliberately no KVCache.__init__: it would allocate
        self.capacity = 0

    def bytes_per_row(self) -> int:
        return 0

    def release(self) -> None:
        pass


@dataclass
class _Rows:
    """Per-row tensors of the running request, as recompute.generate builds them."""

    stamps: Tensor  # [S, n + P, 5]
    temperature: Tensor  # [S]
    top_k: Tensor
    top_p: Tensor


class ReferenceEngine(Engine):
    """One request at a time, full window recomputed at every step (the reference algorithm)."""

    def __init__(self, bundle: ModelBundle, config: EngineConfig, observer: EngineObserver | None = None):
        super().__init__(bundle, config, observer)
        self._cache = _NoCache()
        self._rows: _Rows | None = None

    def start(self) -> None:
        if self._thread is None:
            logger.warning(
                "engine mode recompute: one request at a time, full window recomputed every step "
                "(the reference algorithm, for comparisons; use batched in production)"
            )
        super().start()

    # -- scheduling: the oldest queued request, only when nothing runs -----------------------
    def _admit(self) -> list[Job]:
        if self._active:
            return []
        with self._cv:
            if not self._pending:
                return []
            job = self._pending.popleft()
            self._queued_rows -= job.samples
            self._running_rows += job.samples
        self.observer.queue_wait(time.monotonic() - job.enqueued_at)
        self._active.append(job)
        return [job]

    def _step(self) -> None:
        started = time.monotonic()
        self._drop_abandoned(started)  # cancel / deadline of the running and the queued requests
        fresh = self._admit()
        if not self._active:
            self._rows = None
            return
        job = self._active[0]
        if fresh:
            self._rows = self._tokenise(job)
        assert self._rows is not None
        window = self._advance(job, self._rows)
        seconds = time.monotonic() - started
        self.costs.add_window(job.samples * window, seconds)
        if fresh:
            self.observer.prefill(job.samples, window, seconds)
        else:
            self.observer.slide(job.samples, seconds)
        self._steps += 1
        if job.done:
            self._finish(job, None)
            self._rows = None
        self.observer.step(job.samples, seconds)

    # -- cost: every step is one full pass over its window, for every sample row -----------
    def estimate(self, series: PreparedSeries) -> Estimate:
        n, m, rows = series.rows, self.bundle.max_context, series.sampling.sample_count
        window = self.costs.window
        seconds = sum(window.seconds(rows * min(n + i, m)) for i in range(series.pred_len))
        slides = engine_plan(n, series.pred_len, rows, m).slide_steps  # past max_context, as in the engine
        return Estimate(seconds, slides, m, window.measured)

    def estimate_group(self, group: Sequence[PreparedSeries]) -> Estimate:
        """One request at a time: the sum of their estimates."""
        estimates = [self.estimate(series) for series in group]
        return Estimate(
            sum(e.seconds for e in estimates),
            max((e.slide_steps for e in estimates), default=0),
            self.bundle.max_context,
            all(e.measured for e in estimates),
        )

    def _calibrate(self) -> None:
        m, dev = self.bundle.max_context, self.bundle.device
        for r in sorted({1, max(1, min(CALIBRATION_ROWS, self.config.max_batch_rows))}):
            ids = torch.zeros(r, m, dtype=torch.int64, device=dev)
            stamps = torch.zeros(r, m, 5, dtype=torch.int64, device=dev)
            best = float("inf")
            for _ in range(2):
                started = time.monotonic()
                self.bundle.predictor.hidden(ids, ids, stamps)
                best = min(best, time.monotonic() - started)
            self.costs.add_window(r * m, best)

    # -- the original algorithm, one step per call -------------------------------------------
    def _tokenise(self, job: Job) -> _Rows:
        """Every sample row gets its own copy of the history, tokenised together (as the original)."""
        dev, rows = self.bundle.device, job.samples
        x = torch.from_numpy(job.series.x_norm).to(dev).unsqueeze(0).repeat(rows, 1, 1)
        s1, s2 = self.bundle.tokenizer.encode(x)
        job.setup_tokens(s1, s2, dev)
        job.s1[:, : job.n] = s1
        job.s2[:, : job.n] = s2
        sp = job.series.sampling
        return _Rows(
            stamps=job.stamps.unsqueeze(0).repeat(rows, 1, 1),
            temperature=torch.full((rows,), sp.temperature, device=dev),
            top_k=torch.full((rows,), sp.top_k, dtype=torch.int64, device=dev),
            top_p=torch.full((rows,), sp.top_p, device=dev),
        )

    def _advance(self, job: Job, rows: _Rows) -> int:
        """One step: the predictor over the whole window, then s1 and s2 drawn; returns the window."""
        predictor = self.bundle.predictor
        c = job.known
        start = max(0, c - self.bundle.max_context)
        h = predictor.hidden(job.s1[:, start:c], job.s2[:, start:c], rows.stamps[:, start:c])
        logits1 = predictor.s1_logits(h[:, -1])
        s1 = draw(filter_logits(logits1, rows.temperature, rows.top_k, rows.top_p), job.generator)
        logits2 = predictor.s2_logits_full(s1, h)
        s2 = draw(filter_logits(logits2, rows.temperature, rows.top_k, rows.top_p), job.generator)
        job.append(s1, s2)
        if job.ticket.streaming:
            self._publish_step(job)
        return c - start
