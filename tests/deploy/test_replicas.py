"""Three replicas behind the client's round robin: SIGTERM one and SIGKILL another under load.

Every call must end in exactly one correct result, directly or after the client's retry of a
retriable status: zero lost, zero duplicated, zero mixed up (each forecast is compared with the
one the same seeded request gives on a quiet server).
"""

from __future__ import annotations

import itertools
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from kronos.v1 import predictor_pb2 as pb
from kronos_client import ClientConfig, KronosClient
from kronos_client.errors import KronosClientError
from kronos_client.retry import RetryPolicy
from tests.processes import ServerProcess, make_keys, parity_env
from tests.rpc.helpers import request

INPUTS = 8  # distinct seeded requests, cycled through by the load
CALLERS = 6


def _inputs() -> list[pb.PredictRequest]:
    return [request(40, 6, start=i * 25, seed=1000 + i, sample_count=2) for i in range(INPUTS)]


@dataclass(frozen=True)
class CountingPolicy(RetryPolicy):
    """The client's retry policy, recording the status of every failed attempt it saw."""

    seen: list[str] = field(default_factory=list, compare=False)

    def delay(self, attempt: int, error: KronosClientError, remaining: float) -> float | None:
        self.seen.append(error.code.name)
        return super().delay(attempt, error, remaining)


class Load:
    """CALLERS threads calling PredictSingle back to back until stopped; every outcome recorded."""

    def __init__(self, client: KronosClient, inputs: list[pb.PredictRequest]) -> None:
        self.client, self.inputs = client, inputs
        self.numbers = itertools.count()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.issued: list[int] = []
        self.results: dict[int, list[tuple[str, str | None, np.ndarray]]] = {}
        self.errors: list[tuple[int, KronosClientError]] = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(CALLERS)]

    def _run(self) -> None:
        while not self.stop.is_set():
            n = next(self.numbers)
            req = pb.PredictRequest()
            req.CopyFrom(self.inputs[n % INPUTS])
            req.series_id = f"call-{n}"
            with self.lock:
                self.issued.append(n)
            try:
                forecast = self.client.predict_request(req, request_id=f"rid-{n:06d}")
            except KronosClientError as exc:
                with self.lock:
                    self.errors.append((n, exc))
                continue
            with self.lock:
                entry = (forecast.series_id, forecast.request_id, forecast.close)
                self.results.setdefault(n, []).append(entry)

    def done(self) -> int:
        with self.lock:
            return len(self.results) + len(self.errors)

    def wait_for(self, more: int, timeout: float = 60) -> None:
        target = self.done() + more
        end = time.monotonic() + timeout
        while self.done() < target:
            assert time.monotonic() < end, f"load stalled at {self.done()} calls (errors: {self.errors[:3]})"
            time.sleep(0.01)

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(90)


def _served(process: ServerProcess) -> Counter[str]:
    """Request ids this replica's access log reports as served successfully."""
    return Counter(
        line["request_id"]
        for line in process.json_lines()
        if line.get("endpoint") == "PredictSingle" and line.get("status") == "success"
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sigterm_and_sigkill_under_load_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    keys, key = make_keys(tmp_path)
    env = {**parity_env(keys), "KRONOS_TORCH_THREADS": "1", "KRONOS_RATE_LIMIT": "1000000/minute"}
    replicas = [ServerProcess("serve", env=env) for _ in range(3)]
    try:
        for replica in replicas:
            replica.wait_ready()
        config = ClientConfig(
            [r.target for r in replicas],
            container="tester",
            key=key,
            timeout=60,
            retries=8,
            backoff_base=0.05,
            backoff_max=1.0,
        )
        inputs = _inputs()
        # the expected forecast of every input, from a quiet replica (seeded: batch-independent)
        with KronosClient(replicas[2].target, container="tester", key=key) as solo:
            expected = [solo.predict_request(r).close for r in inputs]
        before = {i: sum(_served(r).values()) for i, r in enumerate(replicas)}

        policy = CountingPolicy(config.retries, config.backoff_base, config.backoff_max)
        client = KronosClient(config)
        client.policy = policy
        with client, Load(client, inputs) as load:
            load.wait_for(60)
            replicas[0].signal(signal.SIGTERM)  # drains: in-flight calls finish, new ones go elsewhere
            load.wait_for(60)
            replicas[1].signal(signal.SIGKILL)  # dies: its in-flight calls fail UNAVAILABLE, retried
            load.wait_for(60)
        assert replicas[0].proc.wait(60) == 0, "".join(replicas[0].lines[-20:])
        assert replicas[1].proc.wait(10) == -signal.SIGKILL

        assert load.errors == [], load.errors[:5]
        # the faults did hit calls in flight: the client retried them (and nothing else failed)
        assert "UNAVAILABLE" in policy.seen and set(policy.seen) <= {"UNAVAILABLE"}, policy.seen
        assert sorted(load.results) == sorted(load.issued), "calls without exactly one outcome"
        assert all(len(outcomes) == 1 for outcomes in load.results.values()), "a call returned twice"
        for n, [(series_id, request_id, close)] in load.results.items():
            assert series_id == f"call-{n}" and request_id == f"rid-{n:06d}"
            np.testing.assert_allclose(close, expected[n % INPUTS], rtol=1e-6, atol=0)

        # every replica took part, and the two that stayed up (one drained, one survivor)
        # served each request at most once between them
        served = [_served(r) for r in replicas]
        assert all(sum(s.values()) > before[i] for i, s in enumerate(served)), served
        survivors = served[0] + served[2]
        assert max(survivors.values()) == 1, survivors.most_common(3)
        print(
            f"{len(load.results)} calls, {len(policy.seen)} retried attempts, "
            f"served per replica {[sum(s.values()) for s in served]}"
        )
        ids = {f"rid-{n:06d}" for n in load.results}
        logged = set(survivors) | set(served[1])
        assert ids <= logged, f"{len(ids - logged)} delivered results no replica logged"
    finally:
        for replica in replicas:
            replica.stop()
