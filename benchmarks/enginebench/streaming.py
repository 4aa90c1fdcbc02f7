"""Section 7: streaming (every step published) against plain requests."""

from __future__ import annotations

import asyncio
import time

from enginebench.workload import REQUEST_SEED, Candles, Plan, SumObserver, make_series
from harness import Report, fmt_s, section, summary, table
from kronos_server.engine.engine import Engine
from kronos_server.forecast.types import PreparedSeries


def bench_streaming(report: Report, engine: Engine, obs: SumObserver, candles: Candles, plan: Plan) -> None:
    title = (
        f"7. Streaming (submit(stream=True), every step published) vs plain, {plan.n}->{plan.grow_len}, "
        "one request at a time"
    )
    with section(report, "streaming", title) as out:

        async def one(series: PreparedSeries, stream: bool) -> tuple[float, int]:
            t0 = time.perf_counter()
            ticket = engine.submit(series, stream=stream)
            updates = 0
            if stream:
                async for _ in ticket.steps():
                    updates += 1
            await ticket.result()
            return time.perf_counter() - t0, updates

        rows = []
        for samples in (1, plan.samples):
            series = make_series(candles, plan, 0, plan.grow_len, samples, REQUEST_SEED, f"stream{samples}")
            times: dict[bool, list[float]] = {False: [], True: []}
            steps_s: dict[bool, list[float]] = {False: [], True: []}
            updates = 0
            asyncio.run(one(series, True))  # warm-up
            for _ in range(plan.concurrency_repeats):
                for stream in (False, True):  # interleaved
                    obs.reset()
                    dt, n = asyncio.run(one(series, stream))
                    times[stream].append(dt)
                    steps_s[stream].append(obs.snapshot()["seconds"]["step"])
                    updates = max(updates, n)
            plain, streamed = summary(times[False]), summary(times[True])
            slowdown = streamed["median"] / plain["median"]
            out[f"sample_count_{samples}"] = {
                "plain_s": plain,
                "stream_s": streamed,
                "engine_step_s": {str(k): summary(v) for k, v in steps_s.items()},
                "updates": updates,
                "stream_over_plain": slowdown,
            }
            rows.append([str(samples), fmt_s(plain), fmt_s(streamed), str(updates), f"{slowdown:.2f}x"])
        table(
            [
                "sample_count",
                "plain s  min / med / max",
                "stream s  min / med / max",
                "updates",
                "stream/plain",
            ],
            rows,
        )
        print(
            "   (engine-thread time: each step update re-decodes the job's whole window with the tokenizer)"
        )
