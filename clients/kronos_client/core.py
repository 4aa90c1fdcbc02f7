"""What the sync and async clients share: config, the per-call attempt state (deadline, metadata,
request id, retry waits), the requests they build and the health check. They differ only in
how they wait (``time.sleep`` / ``await``) and iterate."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypedDict

import grpc
from grpc_health.v1 import health_pb2

from kronos.v1 import predictor_pb2 as pb
from kronos_client.config import ClientConfig
from kronos_client.errors import KronosClientError, metadata_dict
from kronos_client.frames import frame_result
from kronos_client.messages import Column, build_request
from kronos_client.results import Forecast, StreamEvent
from kronos_client.retry import Deadline, RetryPolicy, new_request_id

HEALTH_SERVICE = "kronos.v1.KronosPredictor"  # readiness; "" is liveness

#: a batch item: a ready PredictRequest, or build_request()'s keyword arguments
BatchItem = pb.PredictRequest | Mapping[str, Any]


class PredictOptions(TypedDict, total=False):
    """predict()/stream() keywords besides the history columns (see build_request)."""

    volume: Column | None
    amount: Column | None
    pred_len: int | None
    prediction_timestamps: Iterable[Any] | None
    temperature: float | None
    top_k: int | None
    top_p: float | None
    sample_count: int | None
    seed: int | None
    quantiles: Iterable[float]
    timezone: str
    series_id: str
    return_paths: bool


def resolve_config(
    config: ClientConfig | str | Sequence[str], container: str | None, key: str | None
) -> ClientConfig:
    if not isinstance(config, ClientConfig):
        return ClientConfig(config, container=container, key=key)
    if container is None and key is None:
        return config
    from dataclasses import replace

    return replace(
        config,
        container=container if container is not None else config.container,
        key=key if key is not None else config.key,
        key_file=None if key is not None else config.key_file,
    )


def as_request(item: BatchItem) -> pb.PredictRequest:
    return item if isinstance(item, pb.PredictRequest) else build_request(**item)


def batch_request(items: Sequence[BatchItem]) -> tuple[pb.PredictBatchRequest, list[str]]:
    """The PredictBatch message, and each item's time zone (its result is read in it)."""
    requests = [as_request(item) for item in items]
    return pb.PredictBatchRequest(items=requests), [r.timezone for r in requests]


def df_progress(
    event: StreamEvent, y_timestamp: Any, pred_len: int, *, prob_close_up: bool = False
) -> Any | None:
    """One event of a verbose predict_df(): the final Forecast's DataFrame, else None (a step:
    the progress counter moves)."""
    if isinstance(event, Forecast):
        return frame_result(event, y_timestamp, prob_close_up=prob_close_up)
    progress(event.step + 1, pred_len)
    return None


def no_final_forecast() -> KronosClientError:
    return KronosClientError(grpc.StatusCode.INTERNAL, "the stream ended without a final forecast")


def health_request(service: str) -> health_pb2.HealthCheckRequest:
    return health_pb2.HealthCheckRequest(service=service)


def serving_status(response: health_pb2.HealthCheckResponse) -> str:
    """grpc.health.v1 status name ("SERVING", "NOT_SERVING", ...)."""
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))


class Attempts:
    """One call's attempts: one deadline over all of them, one request id, the retry waits."""

    def __init__(self, core: ClientCore, timeout: float | None, request_id: str | None) -> None:
        self.deadline = Deadline(core.timeout(timeout))
        self.request_id = core.request_id(request_id)
        self._core = core
        self._attempt = 0

    def options(self) -> dict[str, Any]:
        """An attempt's ``timeout`` (what is left of the deadline) and ``metadata``."""
        return {"timeout": self.deadline.remaining(), "metadata": self._core.metadata(self.request_id)}

    def answered(self, initial_metadata: Any) -> str:
        """The request id the server echoed (else ours); later errors of the call carry it."""
        self.request_id = metadata_dict(initial_metadata).get("x-request-id", self.request_id)
        return self.request_id

    def error(self, exc: grpc.RpcError) -> KronosClientError:
        return KronosClientError.from_rpc_error(exc, self.request_id)

    def wait(self, error: KronosClientError) -> float:
        """Seconds to wait before the next attempt; raises ``error`` when there is none."""
        wait = self._core.policy.delay(self._attempt, error, self.deadline.remaining())
        if wait is None:
            raise error
        self._attempt += 1
        return wait


class ClientCore:
    def __init__(
        self, config: ClientConfig | str | Sequence[str], container: str | None, key: str | None
    ) -> None:
        self.config = resolve_config(config, container, key)
        self.policy = RetryPolicy.from_config(self.config)
        self._auth = self.config.auth_metadata()

    def metadata(self, request_id: str) -> tuple[tuple[str, str], ...]:
        """Credentials + ``x-request-id``: the same on every attempt of one call."""
        return (*self._auth, ("x-request-id", request_id))

    def timeout(self, timeout: float | None) -> float:
        return self.config.timeout if timeout is None else timeout

    @staticmethod
    def request_id(request_id: str | None) -> str:
        return request_id or new_request_id()

    def attempts(self, timeout: float | None, request_id: str | None) -> Attempts:
        return Attempts(self, timeout, request_id)


def progress(step: int, total: int) -> None:
    """predict_df(verbose=True): a one-line progress counter on stderr, like tqdm."""
    sys.stderr.write(f"\rkronos: step {step}/{total}")
    if step >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()
