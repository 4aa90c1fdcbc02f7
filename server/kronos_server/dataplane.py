"""The transport-neutral service: validate, submit to the engine, await, report errors.

The gRPC servicer, the REST routes and the CLI all call this; it knows nothing of any
transport. :class:`ForecastPlane` is the part of its interface a transport front needs, which
the standalone REST bridge's remote dataplane (over a gRPC channel) implements too. Importing
this module loads no torch: the engine and the model are imported when one is opened.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from kronos_server.backtest.run import run_backtest
from kronos_server.backtest.types import BacktestInput, BacktestResult
from kronos_server.engine.cost import refuse_group_past_deadline, refuse_past_deadline
from kronos_server.engine.stats import EngineObserver
from kronos_server.engine.ticket import Ticket
from kronos_server.errors import DeadlineExceededError, KronosError, OverloadedError
from kronos_server.forecast.limits import Limits
from kronos_server.forecast.prepare import prepare
from kronos_server.forecast.types import Forecast, PreparedSeries, SeriesInput, StepUpdate
from kronos_server.settings import Settings

if TYPE_CHECKING:
    from kronos_server.engine.engine import Engine
    from kronos_server.model.bundle import ModelBundle


@dataclass(frozen=True)
class ModelInfo:
    model_name: str
    model_version: str
    tokenizer_name: str
    tokenizer_version: str
    max_context: int
    device: str
    d_model: int
    n_layers: int
    n_heads: int
    vocab_s1: int
    vocab_s2: int
    limits: Limits
    max_request_bytes: int = 0  # the serving process's message limit; 0 where not known here


class ForecastPlane(Protocol):
    """What a transport front calls: the in-process :class:`Dataplane` or a remote one.

    Errors are the project's (:class:`~kronos_server.errors.KronosError`), fields named in
    the domain's terms; ``timeout`` is the caller's deadline in seconds (None: the server's).
    """

    async def predict(
        self, series: SeriesInput, *, timeout: float | None = None, request_id: str | None = None
    ) -> Forecast: ...

    async def predict_batch(
        self, items: list[SeriesInput], *, timeout: float | None = None, request_id: str | None = None
    ) -> list[Forecast | KronosError]: ...

    async def backtest(
        self, request: BacktestInput, *, timeout: float | None = None, request_id: str | None = None
    ) -> BacktestResult:
        """Forecast the series from many past origins at once and score model and baselines."""
        ...

    async def model_info(self) -> ModelInfo:
        """The model served (UnavailableError while it loads)."""
        ...

    async def ready(self) -> bool:
        """Loaded, warm and not draining."""
        ...

    def versions_of(self, forecast: Forecast) -> tuple[str, str]:
        """The (model, tokenizer) versions that made ``forecast``."""
        ...


def _consume(future: asyncio.Future[Forecast]) -> None:
    if not future.cancelled():
        future.exception()


class Dataplane:
    def __init__(self, bundle: ModelBundle, engine: Engine, limits: Limits, default_timeout: float | None):
        self.bundle = bundle
        self.engine = engine
        self.limits = limits
        self.default_timeout = default_timeout
        self.model_name = bundle.predictor_info.name
        self.model_version = bundle.predictor_info.version
        self.tokenizer_name = bundle.tokenizer_info.name
        self.tokenizer_version = bundle.tokenizer_info.version
        self.max_context = bundle.max_context

    def info(self) -> ModelInfo:
        cfg = self.bundle.predictor.config
        return ModelInfo(
            self.model_name,
            self.model_version,
            self.tokenizer_name,
            self.tokenizer_version,
            self.max_context,
            str(self.bundle.device),
            cfg.d_model,
            cfg.n_layers,
            cfg.n_heads,
            2**cfg.s1_bits,
            2**cfg.s2_bits,
            self.limits,
        )

    async def model_info(self) -> ModelInfo:
        return self.info()

    async def ready(self) -> bool:
        return True  # a dataplane exists once its model is loaded and warm

    def versions_of(self, forecast: Forecast) -> tuple[str, str]:
        return self.model_version, self.tokenizer_version

    def _timeout(self, timeout: float | None) -> float | None:
        if timeout is None:
            return self.default_timeout
        if self.default_timeout is None:
            return timeout
        return min(timeout, self.default_timeout)

    def submit(
        self,
        series: SeriesInput,
        *,
        timeout: float | None = None,
        stream: bool = False,
        request_id: str | None = None,
    ) -> Ticket:
        """Validate and enqueue; raises InvalidInputError (also for a unary request estimated to
        run far past its deadline) / OverloadedError / UnavailableError at once."""
        prepared = prepare(series, self.limits)
        limit = self._timeout(timeout)
        if not stream:  # a stream delivers its steps as they exist: worth running to the deadline
            refuse_past_deadline(self.engine.estimate(prepared), limit, prepared)
        return self.engine.submit(prepared, timeout=limit, stream=stream, request_id=request_id)

    async def _await(self, ticket: Ticket, timeout: float | None) -> Forecast:
        result = asyncio.wrap_future(ticket.future)
        result.add_done_callback(_consume)  # an abandoned result must not warn when it fails later
        try:
            return await asyncio.wait_for(asyncio.shield(result), timeout)
        except TimeoutError:
            ticket.cancel()
            raise DeadlineExceededError("inference timed out", details={"timeout_s": timeout}) from None
        except asyncio.CancelledError:
            ticket.cancel()  # the caller went away: free the rows at the next step
            raise

    async def warm_up(self, series: SeriesInput) -> Forecast:
        """One forecast before serving, without the requests' deadline: a slow first pass (a
        cold or busy machine) delays readiness rather than failing start-up."""
        ticket = self.engine.submit(prepare(series, self.limits), timeout=None, request_id="warmup")
        return await self._await(ticket, None)

    async def predict(
        self, series: SeriesInput, *, timeout: float | None = None, request_id: str | None = None
    ) -> Forecast:
        limit = self._timeout(timeout)
        ticket = self.submit(series, timeout=limit, request_id=request_id)
        return await self._await(ticket, limit)

    async def predict_batch(
        self, items: list[SeriesInput], *, timeout: float | None = None, request_id: str | None = None
    ) -> list[Forecast | KronosError]:
        """Every series is its own engine request; errors are reported per series, in order.

        When the engine admits none of the series because it is full, the call itself fails
        with OverloadedError (and its retry-after)."""
        limit = self._timeout(timeout)
        tickets: list[Ticket | KronosError] = []
        for i, item in enumerate(items):
            try:
                tickets.append(self.submit(item, timeout=limit, request_id=f"{request_id or 'batch'}/{i}"))
            except KronosError as exc:
                tickets.append(exc)
        if tickets and all(isinstance(t, OverloadedError) for t in tickets):
            # nothing admitted: refuse the call itself, so that callers see the retry-after
            # (and back off) instead of an OK whose every slot says "overloaded"
            raise tickets[0]  # type: ignore[misc]

        async def one(t: Ticket | KronosError) -> Forecast | KronosError:
            if isinstance(t, KronosError):
                return t
            try:
                return await self._await(t, limit)
            except KronosError as exc:
                return exc

        try:
            return list(await asyncio.gather(*(one(t) for t in tickets)))
        except asyncio.CancelledError:
            for t in tickets:
                if isinstance(t, Ticket):
                    t.cancel()
            raise

    def _submit_origins(
        self, group: Sequence[PreparedSeries], timeout: float | None, request_id: str | None
    ) -> list[Ticket]:
        """A backtest's origins, all or none; refused at once (naming ``origins``) when the
        engine's estimate of the whole group is clearly past the deadline."""
        samples = group[0].sampling.sample_count if group else 0
        estimate = self.engine.estimate_group(group)
        refuse_group_past_deadline(
            estimate, timeout, requests=len(group), sample_count=samples, what="origins", field="origins"
        )
        base = request_id or "backtest"
        ids = [f"{base}/{i}" for i in range(len(group))]
        return self.engine.submit_group(group, timeout=timeout, request_ids=ids)

    async def backtest(
        self, request: BacktestInput, *, timeout: float | None = None, request_id: str | None = None
    ) -> BacktestResult:
        """Every origin submitted at once (rows of the engine's shared steps, counted origins x
        sample_count against its admission), awaited under one deadline, then scored. Raises
        InvalidInputError naming the field, OverloadedError while the engine has no room for
        the whole group, DeadlineExceededError; cancelling the call cancels every origin."""
        limit = self._timeout(timeout)
        return await run_backtest(
            request,
            self.limits,
            lambda group, t: self._submit_origins(group, t, request_id),
            timeout=limit,
            max_rows=self.engine.config.max_queued_rows,
            model_version=self.model_version,
            tokenizer_version=self.tokenizer_version,
        )

    async def stream(
        self, series: SeriesInput, *, timeout: float | None = None, request_id: str | None = None
    ) -> AsyncIterator[StepUpdate | Forecast]:
        """Each generated step as it exists, then the final forecast."""
        limit = self._timeout(timeout)
        ticket = self.submit(series, timeout=limit, stream=True, request_id=request_id)
        try:
            async with asyncio.timeout(limit):
                async for update in ticket.steps():
                    yield update
                yield await ticket.result()
        except TimeoutError:
            ticket.cancel()
            raise DeadlineExceededError("inference timed out", details={"timeout_s": limit}) from None
        finally:
            if not ticket.future.done():
                ticket.cancel()

    async def close(self, grace: float | None = None) -> None:
        await asyncio.to_thread(self.engine.stop, grace)


def open_dataplane(settings: Settings, observer: EngineObserver | None = None) -> Dataplane:
    """Load the model bundle (embedded default where no path is set) and start the engine;
    ``observer`` receives the engine's timings (monitoring). KRONOS_ENGINE_MODE=recompute
    serves with the reference algorithm instead (for comparisons)."""
    from kronos_server.engine.engine import Engine, EngineConfig
    from kronos_server.engine.reference import ReferenceEngine
    from kronos_server.model.bundle import load_bundle

    bundle = load_bundle(settings.model_path, settings.tokenizer_path, settings.max_context, settings.device)
    engine_class = ReferenceEngine if settings.engine_mode == "recompute" else Engine
    engine = engine_class(
        bundle,
        EngineConfig(
            max_queued_rows=settings.max_queued_rows,
            max_batch_rows=settings.max_batch_rows,
            torch_threads=settings.torch_threads,
        ),
        observer=observer,
    )
    engine.start()
    return Dataplane(bundle, engine, settings.limits(), settings.inference_timeout)
