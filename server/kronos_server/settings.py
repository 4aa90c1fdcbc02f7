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
    grpc_port: int = Field(
        50051,
        ge=0,
        le=65535,
        description='gRPC port (0 = any free port; the log line "gRPC listening on" names it)',
    )
    http_port: int = Field(
        8000,
        ge=0,
        le=65535,
        description='REST API port (0 = any free port; the log line "HTTP listening on" names it)',
    )
    shutdown_grace: float = Field(
        30.0,
        ge=0,
        description=(
            "Seconds in-flight calls (gRPC and REST) get to finish after SIGTERM/SIGINT before they are"
            " cancelled"
        ),
    )
    drain_delay: float = Field(
        0.0,
        ge=0,
        description=(
            "Seconds after SIGTERM/SIGINT during which readiness is already NOT_SERVING (/v1/readyz "
            "503) but both ports still accept and serve calls, so a load balancer polling readiness "
            "stops routing here before the listeners close; the KRONOS_SHUTDOWN_GRACE drain starts "
            "after it (a second signal starts it at once)"
        ),
    )
    max_connection_age: float = Field(
        0.0,
        ge=0,
        description=(
            "Seconds before the server asks a client connection to reconnect (GOAWAY; running calls get"
            " KRONOS_INFERENCE_TIMEOUT to finish), so round-robin clients re-resolve DNS and reach "
            "replicas added by a scale-out; 0 = never (docs/DEPLOYMENT.md)"
        ),
    )
    max_request_size_mb: float = Field(
        16.0,
        gt=0,
        le=1024,
        description=(
            "Largest request message in MiB; larger ones get RESOURCE_EXHAUSTED (too large), larger "
            "REST bodies 413"
        ),
    )
    max_batch_items: int = Field(
        256,
        ge=1,
        description=(
            "Most series in one PredictBatch call (or REST batch); more get RESOURCE_EXHAUSTED (too "
            "large), 413"
        ),
    )
    tls_cert_file: Path | None = Field(
        None, description="Server certificate (PEM); with KRONOS_TLS_KEY_FILE it turns TLS on"
    )
    tls_key_file: Path | None = Field(None, description="Server private key (PEM)")
    tls_client_ca_file: Path | None = Field(
        None,
        description=(
            "CA that signs client certificates: turns on mTLS, the certificate's common name is the container"
        ),
    )
    # model
    model_path: Path | None = Field(
        None, description="Predictor checkpoint directory; none = the embedded default model"
    )
    tokenizer_path: Path | None = Field(
        None, description="Tokenizer checkpoint directory; none = the embedded default tokenizer"
    )
    max_context: int = Field(
        512,
        ge=1,
        le=8192,
        description="Predictor window in rows (1–8192): 512 for Kronos-small/base, 2048 for mini",
    )
    device: str = Field(
        "cpu", description="Torch device: cpu, cuda or cuda:N", json_schema_extra={"metavar": "DEVICE"}
    )
    torch_threads: int = Field(0, ge=0, le=256, description="Torch intra-op threads (0 = torch's default)")
    # engine
    max_queued_rows: int = Field(
        256,
        ge=1,
        description=(
            "Admission limit: queued plus running rows (series × samples); beyond it requests are refused"
        ),
    )
    max_batch_rows: int = Field(64, ge=1, description="Rows decoded together in one engine step")
    inference_timeout: float = Field(60.0, gt=0, description="Seconds a forecast may take end to end")
    engine_mode: Literal["batched", "recompute"] = Field(
        "batched",
        description=(
            "batched: continuous batching with a KV cache. recompute: the reference Kronos algorithm, "
            "one request at a time with the full window recomputed at every step (same API, same seeded"
            " results); for comparisons (docs/PERFORMANCE.md), not production"
        ),
    )
    # input limits and sampling defaults
    min_history: int = Field(2, ge=1, description="Fewest history rows accepted")
    max_history: int = Field(8192, ge=1, description="Most history rows accepted")
    max_sample_count: int = Field(64, ge=1, le=1024, description="Largest sample_count accepted (1–1024)")
    max_return_paths: int = Field(
        64, ge=1, le=1024, description="Most sample paths a request with return_paths may ask for (1–1024)"
    )
    max_backtest_origins: int = Field(
        256, ge=1, le=4096, description="Most origins one backtest may ask for (1–4096)"
    )
    # the sampling defaults are the embedded model's best held-out CRPS (its MODEL_CARD.md grid)
    default_temperature: float = Field(
        0.6, gt=0, description="Sampling temperature when a request gives none (> 0)"
    )
    default_top_k: int = Field(
        0, ge=0, description="Top-k when a request gives none (0 = off; top-k > 0 disables top-p)"
    )
    default_top_p: float = Field(
        0.9, gt=0, le=1, description="Nucleus top-p when a request gives none, in (0, 1]"
    )
    default_sample_count: int = Field(
        32, ge=1, description="Samples averaged when a request gives none (capped at the maximum)"
    )
    # logging
    log_level: Literal["TRACE", "DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level: TRACE, DEBUG, INFO, WARNING or ERROR"
    )
    log_format: Literal["json", "text"] = Field(
        "json", description="Log format: json (one JSON object per line) or text"
    )
    # security
    api_keys_file: Path | None = Field(
        None,
        description=(
            "JSON file of per-container API key hashes, rate limits and allowed methods (manage it with"
            " kronos-serve keys); its containers must send authorization: Bearer <key>; none = the "
            "local file in KRONOS_DEV_KEYS_DIR (unless trusted containers are set)"
        ),
    )
    trusted_containers: str = Field(
        "",
        description=(
            "Comma-separated containers accepted by their x-container-name alone (trusted network); a "
            "container also in the keys file still needs its key"
        ),
        json_schema_extra={"metavar": "NAME,..."},
    )
    rate_limit: str = Field(
        "100/minute",
        description=(
            "Default per-container rate: N/second, minute, hour or day (also s, m, h, d, N/30s); a "
            "keys-file entry may set its own"
        ),
        json_schema_extra={"metavar": "N/UNIT"},
    )
    dev_keys_dir: Path = Field(
        Path(".kronos"),
        description=(
            "With neither keys file nor trusted containers, serve reads the local keys file "
            "api-keys.json here, made on first use with a dev key for container dev (key in "
            "dev-key.txt); kronos-serve keys add writes to the same file"
        ),
    )
    # standalone REST bridge (kronos-serve bridge): its own credentials for GetModelInfo
    bridge_container: str | None = Field(
        None,
        description=(
            "kronos-serve bridge only: the container it calls GetModelInfo as, for the model versions "
            "in /v1/readyz (none = readyz omits them)"
        ),
        json_schema_extra={"metavar": "NAME"},
    )
    bridge_key_file: Path | None = Field(
        None,
        description=(
            "kronos-serve bridge only: file holding that container's API key (none for a trusted container)"
        ),
    )
    bridge_tls_ca_file: Path | None = Field(
        None,
        description=(
            "kronos-serve bridge only: CA (PEM) that signs the gRPC server's certificate; turns TLS on "
            "for the bridge's channel (none = plaintext)"
        ),
    )
    bridge_tls_client_cert_file: Path | None = Field(
        None,
        description=(
            "kronos-serve bridge only: the bridge's client certificate (PEM) for a server that requires "
            "mTLS; with KRONOS_BRIDGE_TLS_CLIENT_KEY_FILE"
        ),
    )
    bridge_tls_client_key_file: Path | None = Field(
        None, description="kronos-serve bridge only: the private key (PEM) of that client certificate"
    )

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
        if (self.bridge_tls_client_cert_file is None) != (self.bridge_tls_client_key_file is None):
            raise ValueError(
                "KRONOS_BRIDGE_TLS_CLIENT_CERT_FILE and KRONOS_BRIDGE_TLS_CLIENT_KEY_FILE must be set "
                "together"
            )
        if self.bridge_tls_client_cert_file is not None and self.bridge_tls_ca_file is None:
            raise ValueError("KRONOS_BRIDGE_TLS_CLIENT_CERT_FILE (mTLS) needs KRONOS_BRIDGE_TLS_CA_FILE")
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
            max_return_paths=self.max_return_paths,
            max_backtest_origins=self.max_backtest_origins,
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
