"""The one typed settings object, built once in the entry point and passed down.

Every field reads the environment variable ``KRONOS_<FIELD>`` (e.g. KRONOS_MAX_CONTEXT);
command-line flags override the environment. Nothing here runs at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kronos_server.forecast.limits import Limits
from kronos_server.security.keys import validate_container_name
from kronos_server.security.ratelimit import RateSpec


class SettingsError(ValueError):
    """Start-up refused: the message names the offending KRONOS_ variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KRONOS_", extra="ignore", frozen=True)

    # network
    host: str = Field("0.0.0.0", description="Address the servers bind")
    grpc_port: int = Field(50051, ge=0, le=65535, description="gRPC port (0 = pick a free one)")
    http_port: int = Field(8000, ge=0, le=65535, description="REST bridge HTTP port (0 = pick a free one)")
    shutdown_grace: float = Field(30.0, ge=0, description="Seconds in-flight calls get to finish on SIGTERM")
    drain_delay: float = Field(
        0.0,
        ge=0,
        description="Seconds between SIGTERM and the drain: readiness already reports NOT_SERVING "
        "(/v1/readyz 503) while both ports still accept and serve calls, so load balancers polling "
        "readiness stop routing here before the listeners close; a second signal ends it early",
    )
    max_connection_age: float = Field(
        0.0,
        ge=0,
        description="Seconds before a client connection is asked to reconnect (GOAWAY), so clients "
        "re-resolve and spread over new replicas; in-flight calls get KRONOS_INFERENCE_TIMEOUT to "
        "finish (0 = never)",
    )
    max_request_size_mb: float = Field(16.0, gt=0, le=1024, description="Largest request message, MiB")
    max_batch_items: int = Field(256, ge=1, description="Most series in one PredictBatch call")
    tls_cert_file: Path | None = Field(None, description="Server certificate (PEM); enables TLS")
    tls_key_file: Path | None = Field(None, description="Server private key (PEM)")
    tls_client_ca_file: Path | None = Field(None, description="CA for client certificates; enables mTLS")
    # model
    model_path: Path | None = Field(
        None, description="Predictor checkpoint directory (default: embedded model)"
    )
    tokenizer_path: Path | None = Field(
        None, description="Tokenizer checkpoint directory (default: embedded)"
    )
    max_context: int = Field(512, ge=1, le=8192, description="Predictor window; 512 small/base, 2048 mini")
    device: str = Field("cpu", description="torch device: cpu, cuda, cuda:N")
    torch_threads: int = Field(0, ge=0, le=256, description="torch intra-op threads (0 = torch default)")
    # engine
    max_queued_rows: int = Field(256, ge=1, description="Admission limit: queued + running rows")
    max_batch_rows: int = Field(64, ge=1, description="Rows decoded together in one step")
    inference_timeout: float = Field(60.0, gt=0, description="Seconds a forecast may take end to end")
    engine_mode: Literal["batched", "recompute"] = Field(
        "batched",
        description="batched: continuous batching with a KV cache; recompute: the reference algorithm, "
        "one request at a time, full window recomputed every step (for comparisons, not production)",
    )
    # input limits and sampling defaults
    min_history: int = Field(2, ge=1, description="Fewest history rows accepted")
    max_history: int = Field(8192, ge=1, description="Most history rows accepted")
    max_sample_count: int = Field(64, ge=1, le=1024, description="Largest sample_count accepted")
    default_temperature: float = Field(1.0, gt=0)
    default_top_k: int = Field(0, ge=0)
    default_top_p: float = Field(0.9, gt=0, le=1)
    default_sample_count: int = Field(1, ge=1)
    # logging
    log_level: Literal["TRACE", "DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    # security
    api_keys_file: Path | None = Field(None, description="JSON file of container key hashes, limits, methods")
    trusted_containers: str = Field("", description="Comma-separated containers accepted by name alone")
    rate_limit: str = Field("100/minute", description="Default per-container rate, e.g. 100/minute")
    dev_keys_dir: Path = Field(Path(".kronos"), description="Where a local dev key is made if unconfigured")
    # standalone REST bridge (kronos-serve bridge): its own credentials for GetModelInfo
    bridge_container: str | None = Field(
        None, description="Container the standalone bridge reads model info as (readyz versions)"
    )
    bridge_key_file: Path | None = Field(None, description="File holding the bridge container's API key")

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if value != "cpu" and not value.startswith("cuda"):
            raise ValueError("must be cpu, cuda or cuda:N")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("KRONOS_TLS_CERT_FILE and KRONOS_TLS_KEY_FILE must be set together")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError(
                "KRONOS_TLS_CLIENT_CA_FILE (mTLS) needs KRONOS_TLS_CERT_FILE and KRONOS_TLS_KEY_FILE"
            )
        return self

    @property
    def max_request_bytes(self) -> int:
        return int(self.max_request_size_mb * 1024 * 1024)

    @field_validator("trusted_containers")
    @classmethod
    def _container_names(cls, value: str) -> str:
        for name in _split_names(value):
            validate_container_name(name)
        return value

    @field_validator("bridge_container")
    @classmethod
    def _bridge_container(cls, value: str | None) -> str | None:
        if value is not None:
            validate_container_name(value)
        return value

    @field_validator("rate_limit")
    @classmethod
    def _rate(cls, value: str) -> str:
        RateSpec.parse(value)
        return value

    def trusted_container_set(self) -> frozenset[str]:
        return frozenset(_split_names(self.trusted_containers))

    def rate_limit_spec(self) -> RateSpec:
        return RateSpec.parse(self.rate_limit)

    def limits(self) -> Limits:
        return Limits(
            max_context=self.max_context,
            min_history=self.min_history,
            max_history=self.max_history,
            max_sample_count=self.max_sample_count,
            default_temperature=self.default_temperature,
            default_top_k=self.default_top_k,
            default_top_p=self.default_top_p,
            default_sample_count=min(self.default_sample_count, self.max_sample_count),
        )


def _split_names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment plus explicit overrides (None values are ignored)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            if err["loc"]:
                problems.append(f"KRONOS_{str(err['loc'][0]).upper()}: {err['msg']}")
            else:  # a cross-field rule: its message names the variables
                problems.append(str(err["msg"]).removeprefix("Value error, "))
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
