"""What the sync and async clients share: config, retry policy, metadata, request shapes."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypedDict

from kronos.v1 import predictor_pb2 as pb
from kronos_client.config import ClientConfig
from kronos_client.messages import Column, build_request
from kronos_client.retry import RetryPolicy, new_request_id

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


def progress(step: int, total: int) -> None:
    """predict_df(verbose=True): a one-line progress counter on stderr, like tqdm."""
    sys.stderr.write(f"\rkronos: step {step}/{total}")
    if step >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()
