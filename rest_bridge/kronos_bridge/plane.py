"""What the REST routes call: a :class:`~kronos_server.dataplane.ForecastPlane` (the server's
own dataplane in-process, a remote one in the standalone bridge) plus the model versions
readyz reports. Importing this loads no torch and no engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from kronos_server.dataplane import ForecastPlane, ModelInfo


@dataclass(frozen=True)
class ModelVersions:
    """What readyz reports about the model being served."""

    model_name: str
    model_version: str
    tokenizer_name: str
    tokenizer_version: str
    device: str

    @classmethod
    def of(cls, info: ModelInfo) -> ModelVersions:
        return cls(
            info.model_name, info.model_version, info.tokenizer_name, info.tokenizer_version, info.device
        )


class RestPlane(ForecastPlane, Protocol):
    async def versions(self) -> ModelVersions | None:
        """The served model's versions for readyz, None where they cannot be read."""
        ...
