"""ClientConfig: where the servers are, who we are, and how patiently we call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PathLike = str | Path

# where the command line looks for the server when no --target is given (the library itself
# reads no environment): the variable, else kronos-serve's own default gRPC address
ENV_TARGET = "KRONOS_CLIENT_TARGET"
DEFAULT_TARGET = "localhost:50051"


def default_target(env: Mapping[str, str]) -> str:
    """``$KRONOS_CLIENT_TARGET`` if set and not empty, else ``localhost:50051``."""
    return env.get(ENV_TARGET, "").strip() or DEFAULT_TARGET


@dataclass(frozen=True)
class ClientConfig:
    """Everything a client needs; nothing is read from the environment here.

    ``targets`` is one ``host:port`` (or any gRPC target URI such as ``dns:///name:port``),
    a comma-separated list, or a list; see :mod:`kronos_client.channel` for how several
    targets are balanced. ``timeout`` is the overall deadline of one call, retries included.
    """

    targets: Sequence[str] | str
    container: str | None = None
    key: str | None = None
    key_file: PathLike | None = None
    tls: bool = False
    ca_cert: PathLike | None = None
    client_cert: PathLike | None = None
    client_key: PathLike | None = None
    server_name: str | None = None
    timeout: float = 60.0
    retries: int = 3
    backoff_base: float = 0.25
    backoff_max: float = 10.0

    def __post_init__(self) -> None:
        if not self.target_list():
            raise ValueError("targets: at least one host:port is required")
        if self.timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {self.timeout}")
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")
        if self.backoff_base < 0 or self.backoff_max < 0:
            raise ValueError("backoff_base and backoff_max must be >= 0")
        if self.key is not None and self.key_file is not None:
            raise ValueError("give key or key_file, not both")
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("client_cert and client_key go together (mTLS)")

    def target_list(self) -> list[str]:
        raw = [self.targets] if isinstance(self.targets, str) else list(self.targets)
        return [t.strip() for item in raw for t in item.split(",") if t.strip()]

    @property
    def uses_tls(self) -> bool:
        """TLS is on when asked for, or implied by any certificate setting."""
        return self.tls or any(p is not None for p in (self.ca_cert, self.client_cert, self.client_key))

    def resolved_key(self) -> str | None:
        if self.key_file is not None:
            return Path(self.key_file).read_text(encoding="utf-8").strip() or None
        return self.key

    def auth_metadata(self) -> tuple[tuple[str, str], ...]:
        """``x-container-name`` and ``authorization: Bearer <key>``, for whichever are set."""
        out: list[tuple[str, str]] = []
        if self.container:
            out.append(("x-container-name", self.container))
        key = self.resolved_key()
        if key:
            out.append(("authorization", f"Bearer {key}"))
        return tuple(out)
