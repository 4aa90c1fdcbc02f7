"""The continuous-batching inference engine.

One engine owns the model and its device and runs every torch call on its own thread.
Scheduling is iteration-level: at each step boundary new requests are prefilled and join,
finished or cancelled ones leave, and every running row (a sample path of a series)
advances by one token. Rows still inside the context window take the KV-cached one-token
path; rows whose window slides are recomputed over the full window, as exactness requires
(spec §7).
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from loguru import logger
from torch import Tensor

from kronos_server.engine.cache import KVCache
from kronos_server.engine.cost import CostModel, Estimate, engine_plan
from kronos_server.engine.job import Job
from kronos_server.engine.passes import StreamDecoder, decode_pass, s2_logits, window_pass
from kronos_server.engine.sampling import draw, filter_logits
from kronos_server.engine.stats import EngineObserver, EngineStats, NullObserver
from kronos_server.engine.ticket import Ticket
from kronos_server.errors import (
    DeadlineExceededError,
    InternalError,
    InvalidInputError,
    KronosError,
    OverloadedError,
    UnavailableError,
)
from kronos_server.forecast.types import Forecast, PreparedSeries
from kronos_server.model.bundle import ModelBundle


@dataclass(frozen=True)
class EngineConfig:
    max_queued_rows: int = 256  # queued + running rows; past it submit() fails fast
    max_batch_rows: int = 64  # rows advanced together in one step
    torch_threads: int = 0  # 0 = leave torch's default


CALIBRATION_ROWS = 4  # the larger of the two full-window passes timed at start (rows x max_context)


class Engine:
    def __init__(self, bundle: ModelBundle, config: EngineConfig, observer: EngineObserver | None = None):
        self.bundle = bundle
        self.config = config
        self.observer: EngineObserver = observer or NullObserver()
        self._cv = threading.Condition()
        self._pending: deque[Job] = deque()
        self._active: list[Job] = []
        self._owner: list[tuple[Job, int]] = []  # slot -> (job, sample index)
        self._queued_rows = 0
        self._running_rows = 0
        self._accepting = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._cache = KVCache(bundle.predictor, bundle.max_context, bundle.device)
        self._steps = 0
        self._completed = 0
        self._rejected = 0
        self._torch_threads = 0
        self.costs = CostModel()  # measured pass times, for estimating a request before it runs

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._accepting = True
        self._thread = threading.Thread(target=self._run, name="kronos-engine", daemon=True)
        self._thread.start()

    def stop(self, grace: float | None = None) -> None:
        """Refuse new work, let running and queued work finish for ``grace`` seconds, then fail it."""
        with self._cv:
            self._accepting = False
        deadline = None if grace is None else time.monotonic() + grace
        with self._cv:
            while self._pending or self._active:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._cv.wait(timeout=0.05 if left is None else min(left, 0.05))
            self._stopping = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    # -- submission ------------------------------------------------------------------------
    def submit(
        self,
        series: PreparedSeries,
        *,
        timeout: float | None = None,
        stream: bool = False,
        request_id: str | None = None,
    ) -> Ticket:
        """Queue one prepared series; fails fast with OverloadedError past the admission limit.

        ``stream=True`` must be called from a running asyncio loop (steps are delivered to it).
        """
        return self.submit_group([series], timeout=timeout, stream=stream, request_ids=[request_id])[0]

    def submit_group(
        self,
        group: Sequence[PreparedSeries],
        *,
        timeout: float | None = None,
        stream: bool = False,
        request_ids: Sequence[str | None] | None = None,
    ) -> list[Ticket]:
        """Queue several prepared series at once, all or none (a backtest's origins): their rows
        count together against the admission limit, so the group is refused with one
        OverloadedError while it does not fit, and never half admitted. The engine then batches
        them like any requests that arrive together (rows of the same steps)."""
        ids = list(request_ids) if request_ids is not None else [None] * len(group)
        if len(ids) != len(group):
            raise ValueError(f"{len(group)} series but {len(ids)} request ids")
        for series in group:
            rows = series.sampling.sample_count
            if rows > self.config.max_batch_rows:
                raise InvalidInputError(
                    f"sample_count {rows} exceeds the engine's batch limit {self.config.max_batch_rows}",
                    field="sample_count",
                )
            if series.pred_len > self.bundle.max_context:
                raise InvalidInputError(
                    f"pred_len {series.pred_len} exceeds max_context {self.bundle.max_context}",
                    field="pred_len",
                )
        tickets = [
            Ticket(rid or uuid.uuid4().hex, series.series_id, series.sampling.sample_count, stream)
            for series, rid in zip(group, ids, strict=True)
        ]
        rows = sum(t.rows for t in tickets)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cv:
            if not self._accepting:
                raise UnavailableError(
                    "the inference engine is not accepting requests (starting or draining)"
                )
            if self._queued_rows + self._running_rows + rows > self.config.max_queued_rows:
                self._rejected += 1
                self.observer.rejected("overloaded")
                raise OverloadedError(
                    f"server overloaded: {self._queued_rows + self._running_rows} rows queued or running, "
                    f"limit {self.config.max_queued_rows}"
                    + (f", this call needs {rows}" if len(group) > 1 else ""),
                    details={"limit_rows": self.config.max_queued_rows},
                )
            self._pending.extend(
                Job(ticket, series, deadline) for ticket, series in zip(tickets, group, strict=True)
            )
            self._queued_rows += rows
            self._cv.notify_all()
        return tickets

    def estimate(self, series: PreparedSeries) -> Estimate:
        """The time ``series`` would take alone on this engine, from the passes measured so far."""
        plan = engine_plan(
            series.rows, series.pred_len, series.sampling.sample_count, self.bundle.max_context
        )
        return self.costs.estimate(plan)

    def estimate_group(self, group: Sequence[PreparedSeries]) -> Estimate:
        """The time ``group`` would take submitted together on an idle engine (every series
        prefilled, their steps shared in batches of at most max_batch_rows rows)."""
        m = self.bundle.max_context
        plans = [engine_plan(s.rows, s.pred_len, s.sampling.sample_count, m) for s in group]
        return self.costs.estimate_group(plans, self.config.max_batch_rows)

    def stats(self) -> EngineStats:
        with self._cv:
            return EngineStats(
                queued_requests=len(self._pending),
                queued_rows=self._queued_rows,
                running_requests=len(self._active),
                running_rows=self._running_rows,
                steps_total=self._steps,
                completed_total=self._completed,
                rejected_total=self._rejected,
                cache_capacity_rows=self._cache.capacity,
                cache_bytes_per_row=self._cache.bytes_per_row(),
                torch_threads=self._torch_threads,
            )

    # -- the engine thread -----------------------------------------------------------------
    def _run(self) -> None:
        if self.config.torch_threads:
            torch.set_num_threads(self.config.torch_threads)  # per thread under OpenMP: set it here
        self._torch_threads = torch.get_num_threads()
        with torch.inference_mode():
            try:
                self._calibrate()
            except Exception:  # estimates then wait for real traffic; serving goes on
                logger.exception("engine calibration failed")
            while True:
                with self._cv:
                    while not self._stopping and not self._pending and not self._active:
                        self._cv.wait()
                    if self._stopping:
                        break
                try:
                    self._step()
                except Exception:  # a fault of ours: fail what is running, keep serving
                    ids = [job.ticket.request_id for job in self._active]
                    logger.bind(request_ids=ids).exception("engine step failed")
                    for job in list(self._active):
                        self._finish(job, InternalError("inference failed"))
        self._abort_all(UnavailableError("the server is shutting down"))

    def _calibrate(self) -> None:
        """Time full-window passes of 1 and a few rows, so that the cost of the first long
        request is estimated from this machine (the warm-up runs a short prefill and decode)."""
        m, dev = self.bundle.max_context, self.bundle.device
        rows = max(1, min(CALIBRATION_ROWS, self.config.max_batch_rows))
        self._cache.ensure(rows)
        try:
            for r in sorted({1, rows}):
                ids = torch.zeros(r, m, dtype=torch.int64, device=dev)
                stamps = torch.zeros(r, m, 5, dtype=torch.int64, device=dev)
                slots = torch.arange(r)
                best = float("inf")
                for _ in range(2):  # the first run pays one-off allocations: keep the faster
                    started = time.monotonic()
                    window_pass(self.bundle.predictor, ids, ids, stamps, self._cache, slots, False)
                    best = min(best, time.monotonic() - started)
                self.costs.add_window(r * m, best)
        finally:
            self._cache.release()

    def _abort_all(self, error: KronosError) -> None:
        for job in list(self._active):
            self._finish(job, error)
        with self._cv:
            pending = list(self._pending)
            self._pending.clear()
            self._queued_rows = 0
        for job in pending:
            job.ticket.fail(error)

    def _step(self) -> None:
        started = time.monotonic()
        self._drop_abandoned(started)
        fresh = self._admit()
        rows = len(self._owner)
        if not rows:
            return
        h_last = torch.empty(rows, self.bundle.predictor.config.d_model, device=self.bundle.device)
        carried = [job for job in self._active if job not in fresh]
        self._forward_carried(carried, h_last)
        for job in fresh:
            self._prefill(job, h_last)
        heads_started = time.monotonic()
        self._heads(h_last)
        self._steps += 1
        for job in [j for j in self._active if j.done]:
            self._finish(job, None)
        now = time.monotonic()
        self.costs.add_heads(rows, now - heads_started)
        self.observer.step(rows, now - started)

    def _drop_abandoned(self, now: float) -> None:
        for job in list(self._active):
            if job.ticket.cancel_requested:
                self._finish(job, "cancelled")
            elif job.expired(now):
                self._finish(job, DeadlineExceededError("inference timed out", details={"stage": "decode"}))
        with self._cv:
            keep: deque[Job] = deque()
            dropped: list[tuple[Job, KronosError | None]] = []
            for job in self._pending:
                if job.ticket.cancel_requested:
                    dropped.append((job, None))
                elif job.expired(now):
                    dropped.append(
                        (job, DeadlineExceededError("timed out in queue", details={"stage": "queue"}))
                    )
                else:
                    keep.append(job)
            self._pending = keep
            for job, _ in dropped:
                self._queued_rows -= job.samples
            if dropped:
                self._cv.notify_all()
        for job, err in dropped:
            if err is None:
                job.ticket.fail_cancelled()
            else:
                job.ticket.fail(err)

    def _admit(self) -> list[Job]:
        fresh: list[Job] = []
        with self._cv:
            while (
                self._pending and self._running_rows + self._pending[0].samples <= self.config.max_batch_rows
            ):
                job = self._pending.popleft()
                self._queued_rows -= job.samples
                self._running_rows += job.samples
                fresh.append(job)
        now = time.monotonic()
        if fresh:  # grow once for the whole admission: one copy, no intermediate capacity
            self._cache.ensure(len(self._owner) + sum(job.samples for job in fresh))
        for job in fresh:
            self.observer.queue_wait(now - job.enqueued_at)
            job.slots = list(range(len(self._owner), len(self._owner) + job.samples))
            self._owner.extend((job, i) for i in range(job.samples))
            self._active.append(job)
        return fresh

    def _prefill(self, job: Job, h_last: Tensor) -> None:
        """Tokenise the whole history, run the first window once and share it across samples."""
        started = time.monotonic()
        dev, m = self.bundle.device, self.bundle.max_context
        x = torch.from_numpy(job.series.x_norm).to(dev).unsqueeze(0)
        s1, s2 = self.bundle.tokenizer.encode(x)
        job.setup_tokens(s1, s2, dev)
        start = max(0, job.n - m)
        slots = torch.tensor(job.slots)
        keep_kv = job.n < m and job.pred_len > 1  # later steps grow the window only if n < M
        h = window_pass(
            self.bundle.predictor,
            job.s1[:1, start : job.n],
            job.s2[:1, start : job.n],
            job.stamps[start : job.n].unsqueeze(0),
            self._cache,
            slots,
            keep_kv,
        )
        h_last[job.slots] = h
        seconds = time.monotonic() - started
        self.costs.add_window(job.n - start, seconds)
        self.observer.prefill(job.samples, job.n - start, seconds)

    def _forward_carried(self, jobs: list[Job], h_last: Tensor) -> None:
        """Feed each carried row its newest token: cached decode, or full window when sliding."""
        m = self.bundle.max_context
        growing = [j for j in jobs if j.known <= m]
        sliding = [j for j in jobs if j.known > m]
        predictor = self.bundle.predictor
        if growing:
            started = time.monotonic()
            slots = list(itertools.chain.from_iterable(j.slots for j in growing))
            pos = [j.known - 1 for j in growing for _ in j.slots]
            s1 = torch.cat([j.s1[:, j.known - 1] for j in growing])
            s2 = torch.cat([j.s2[:, j.known - 1] for j in growing])
            stamps = torch.stack([j.stamps[p] for j, p in zip(self._expand(growing), pos, strict=True)])
            h_last[slots] = decode_pass(predictor, s1, s2, stamps, self._cache, torch.tensor(slots))
            seconds = time.monotonic() - started
            self.costs.add_decode(len(slots), seconds)
            self.observer.decode(len(slots), seconds)
        if sliding:
            started = time.monotonic()
            slots = list(itertools.chain.from_iterable(j.slots for j in sliding))
            s1 = torch.cat([j.s1[:, j.known - m : j.known] for j in sliding])
            s2 = torch.cat([j.s2[:, j.known - m : j.known] for j in sliding])
            stamps = torch.cat([j.stamps[j.known - m : j.known].expand(j.samples, -1, -1) for j in sliding])
            h_last[slots] = window_pass(predictor, s1, s2, stamps, self._cache, torch.tensor(slots), False)
            seconds = time.monotonic() - started
            self.costs.add_window(len(slots) * m, seconds)
            self.observer.slide(len(slots), seconds)

    @staticmethod
    def _expand(jobs: list[Job]) -> list[Job]:
        return [j for j in jobs for _ in j.slots]

    def _heads(self, h_last: Tensor) -> None:
        """Sample s1, then s2 conditioned on it, for every running row; append the tokens."""
        predictor = self.bundle.predictor
        dev = h_last.device
        owners = self._owner
        temp = torch.tensor([j.series.sampling.temperature for j, _ in owners], device=dev)
        top_k = torch.tensor([j.series.sampling.top_k for j, _ in owners], device=dev)
        top_p = torch.tensor([j.series.sampling.top_p for j, _ in owners], device=dev)
        logits1 = filter_logits(predictor.s1_logits(h_last), temp, top_k, top_p)
        s1 = torch.empty(len(owners), dtype=torch.int64, device=dev)
        for job in self._active:
            s1[job.slots] = draw(logits1[job.slots], job.generator)
        logits2 = filter_logits(
            s2_logits(predictor, s1, h_last, self._cache, len(owners)), temp, top_k, top_p
        )
        s2 = torch.empty_like(s1)
        for job in self._active:
            s2[job.slots] = draw(logits2[job.slots], job.generator)
        for job in self._active:
            job.append(s1[job.slots], s2[job.slots])
            if job.ticket.streaming:
                self._publish_step(job)

    def _publish_step(self, job: Job) -> None:
        """Decode the newest position; the causal decoder makes this the final value."""
        if job.stream_decoder is None:
            d0 = job.decode_start(self.bundle.max_context)
            capacity = job.n + job.pred_len - d0
            tokenizer, device = self.bundle.tokenizer, self.bundle.device
            job.stream_decoder = StreamDecoder(tokenizer, job.samples, capacity, device)
            decoded = job.stream_decoder.extend(job.s1[:, d0 : job.known], job.s2[:, d0 : job.known])
        else:
            new = slice(job.known - 1, job.known)
            decoded = job.stream_decoder.extend(job.s1[:, new], job.s2[:, new])
        job.ticket.publish(job.step_update(decoded[:, -1]))

    def _finish(self, job: Job, error: KronosError | str | None) -> None:
        """Release the job's slots (keeping active slots compact) and answer its ticket."""
        self._release_slots(job)
        self._active.remove(job)
        with self._cv:
            self._running_rows -= job.samples
            self._completed += error is None
            self._cv.notify_all()
            waiting = bool(self._pending)
        if not self._owner and not waiting:
            # idle: back to the minimum footprint. With requests queued (the next wave of a
            # backtest's origins) the next step admits them into the cache as it is, instead
            # of allocating and zeroing it again
            self._cache.release()
        if error == "cancelled":
            job.ticket.fail_cancelled()
        elif isinstance(error, KronosError):
            job.ticket.fail(error)
        else:
            try:
                job.ticket.resolve(self._final(job))
            except Exception:
                t = job.ticket
                logger.bind(request_id=t.request_id, series_id=t.series_id).exception("final decode failed")
                job.ticket.fail(InternalError("inference failed"))

    def _final(self, job: Job) -> Forecast:
        if job.ticket.streaming:  # what the steps said, not a second (full-window) decode
            return job.streamed_forecast()
        d0 = job.decode_start(self.bundle.max_context)
        end = job.n + job.pred_len
        decoded = self.bundle.tokenizer.decode(job.s1[:, d0:end], job.s2[:, d0:end])
        return job.forecast(decoded[:, -job.pred_len :])

    def _release_slots(self, job: Job) -> None:
        for slot in sorted(job.slots, reverse=True):
            last = len(self._owner) - 1
            if slot != last:
                other, sample = self._owner[last]
                self._cache.move(last, slot)
                self._owner[slot] = (other, sample)
                other.slots[sample] = slot
            self._owner.pop()
        job.slots = []
