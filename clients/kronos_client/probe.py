"""``kronos-client health``: a drop-in for grpc_health_probe (same flags, output, exit codes).

The server is --target (grpc_health_probe's -addr works too), else KRONOS_CLIENT_TARGET,
else localhost:50051.

Exit codes: 0 SERVING, 1 bad flags, 2 connection failure, 3 RPC failure, 4 not SERVING.
The status line goes to stdout, diagnostics to stderr.
"""

from __future__ import annotations

import argparse
import re
import ssl
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kronos_client.channel import split_host_port
from kronos_client.config import DEFAULT_TARGET, ENV_TARGET, default_target

OK, INVALID_ARGUMENTS, CONNECTION_FAILURE, RPC_FAILURE, UNHEALTHY = 0, 1, 2, 3, 4

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class FlagError(Exception):
    pass


def parse_duration(text: str) -> float:
    """Go durations ("1s", "250ms", "1m30s") or plain seconds ("2.5") -> seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (e.g. 1s, 250ms)")
    return total


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise FlagError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="kronos-client health", description=__doc__.replace("``", ""), allow_abbrev=False)

    # single-dash long flags, as grpc_health_probe (Go's flag package); double dash works too
    def flag(name: str, **kwargs: Any) -> None:
        p.add_argument(f"-{name}", f"--{name}", dest=name.replace("-", "_"), **kwargs)

    p.add_argument(
        "--target",
        "-target",
        dest="addr",
        default=None,
        metavar="HOST:PORT",
        help=f"tcp host:port to connect (default: ${ENV_TARGET}, else {DEFAULT_TARGET})",
    )
    # grpc_health_probe's spelling, kept for drop-in use (the image's HEALTHCHECK uses it)
    p.add_argument("-addr", "--addr", dest="addr", default=None, help=argparse.SUPPRESS)
    flag("service", default="", help='service name to check (default: "")')
    flag("connect-timeout", type=parse_duration, default=1.0, help="timeout for establishing connection")
    flag("rpc-timeout", type=parse_duration, default=1.0, help="timeout for health check rpc")
    flag("tls", action="store_true", help="use TLS (default: plaintext)")
    flag("tls-no-verify", action="store_true", help="(with -tls) don't verify the server certificate")
    flag("tls-ca-cert", default="", help="(with -tls) trusted certificates for verifying the server")
    flag("tls-client-cert", default="", help="(with -tls) client certificate (requires -tls-client-key)")
    flag("tls-client-key", default="", help="(with -tls) client private key (requires -tls-client-cert)")
    flag("tls-server-name", default="", help="(with -tls) override the hostname used to verify the server")
    flag("user-agent", default="grpc_health_probe", help="user-agent header value of the health check")
    flag("rpc-header", action="append", default=[], help="'key: value' metadata to send (repeatable)")
    flag("v", action="store_true", help="verbose logs")
    return p


@dataclass(frozen=True)
class ProbeArgs:
    addr: str
    service: str
    connect_timeout: float
    rpc_timeout: float
    tls: bool
    tls_no_verify: bool
    tls_ca_cert: str
    tls_client_cert: str
    tls_client_key: str
    tls_server_name: str
    user_agent: str
    rpc_header: list[str]
    v: bool


def parse_args(argv: Sequence[str], env: Mapping[str, str] | None = None) -> ProbeArgs:
    """The probe's flags; without --target (or -addr), $KRONOS_CLIENT_TARGET or localhost:50051."""
    parsed = vars(build_parser().parse_args(list(argv)))
    if parsed["addr"] is None:
        parsed["addr"] = default_target({} if env is None else env)
    a = ProbeArgs(**parsed)
    checks = [
        (not a.addr.strip(), "--target (-addr) is empty"),
        (a.connect_timeout <= 0, f"-connect-timeout must be greater than zero (got {a.connect_timeout}s)"),
        (a.rpc_timeout <= 0, f"-rpc-timeout must be greater than zero (got {a.rpc_timeout}s)"),
        (not a.tls and a.tls_no_verify, "specified -tls-no-verify without specifying -tls"),
        (not a.tls and bool(a.tls_ca_cert), "specified -tls-ca-cert without specifying -tls"),
        (not a.tls and bool(a.tls_client_cert), "specified -tls-client-cert without specifying -tls"),
        (not a.tls and bool(a.tls_server_name), "specified -tls-server-name without specifying -tls"),
        (bool(a.tls_client_cert) and not a.tls_client_key, "-tls-client-cert without -tls-client-key"),
        (not a.tls_client_cert and bool(a.tls_client_key), "-tls-client-key without -tls-client-cert"),
        (a.tls_no_verify and bool(a.tls_ca_cert), "cannot specify -tls-ca-cert with -tls-no-verify"),
        (a.tls_no_verify and bool(a.tls_server_name), "cannot specify -tls-server-name with -tls-no-verify"),
    ]
    for failed, message in checks:
        if failed:
            raise FlagError(message)
    for header in a.rpc_header:
        if ":" not in header:
            raise FlagError(f"-rpc-header {header!r}: expected 'key: value'")
    return a


def presented_certificate(addr: str, timeout: float) -> tuple[bytes, str | None]:
    """-tls-no-verify: the server's own certificate (to trust as-is) and a name it carries.

    Python's gRPC cannot switch verification off, so we pin what the server presents.
    That covers self-signed certificates (the usual reason for -tls-no-verify); a chain
    whose root the server does not send still fails to verify.
    """
    parts = split_host_port(addr)
    if parts is None:
        raise ValueError(f"-addr {addr!r}: -tls-no-verify needs host:port")
    host, port = parts
    pem = ssl.get_server_certificate((host, int(port)), timeout=timeout)
    return pem.encode(), certificate_name(pem)


def certificate_name(pem: str) -> str | None:
    """A DNS/IP subjectAltName or the common name of a PEM certificate, if readable."""
    import tempfile

    decode = getattr(getattr(ssl, "_ssl", None), "_test_decode_cert", None)
    if decode is None:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as fh:
        fh.write(pem)
    try:
        info = decode(fh.name)
    except (ssl.SSLError, ValueError):
        return None
    finally:
        Path(fh.name).unlink(missing_ok=True)
    for kind, value in info.get("subjectAltName", ()):
        if kind in ("DNS", "IP Address") and "*" not in value:
            return str(value)
    for rdn in info.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def open_channel(a: ProbeArgs) -> grpc.Channel:
    options: list[tuple[str, Any]] = [("grpc.primary_user_agent", a.user_agent)]
    if not a.tls:
        return grpc.insecure_channel(a.addr, options=options)
    root: bytes | None = None
    name = a.tls_server_name or None
    if a.tls_no_verify:
        root, name = presented_certificate(a.addr, a.connect_timeout)
    elif a.tls_ca_cert:
        root = Path(a.tls_ca_cert).read_bytes()
    key = Path(a.tls_client_key).read_bytes() if a.tls_client_key else None
    chain = Path(a.tls_client_cert).read_bytes() if a.tls_client_cert else None
    if name:
        options.append(("grpc.ssl_target_name_override", name))
    creds = grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=chain)
    return grpc.secure_channel(a.addr, creds, options=options)


def _log(message: str) -> None:
    sys.stderr.write(message + "\n")


def run(a: ProbeArgs) -> int:
    try:
        channel = open_channel(a)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError):
            _log(f"failed to initialize tls credentials. error={exc}")
            return INVALID_ARGUMENTS
        _log(f"error: failed to connect service at {a.addr!r}: {exc}")
        return CONNECTION_FAILURE
    except ValueError as exc:
        _log(f"error: {exc}")
        return INVALID_ARGUMENTS
    with channel:
        if a.v:
            _log("establishing connection")
        try:
            grpc.channel_ready_future(channel).result(timeout=a.connect_timeout)
        except grpc.FutureTimeoutError:
            _log(f"timeout: failed to connect service {a.addr!r} within {a.connect_timeout:g}s")
            return CONNECTION_FAILURE
        metadata = tuple(
            (k.strip().lower(), v.strip()) for k, _, v in (h.partition(":") for h in a.rpc_header)
        )
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            response = stub.Check(
                health_pb2.HealthCheckRequest(service=a.service), timeout=a.rpc_timeout, metadata=metadata
            )
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            if code == grpc.StatusCode.UNIMPLEMENTED:
                _log("error: this server does not implement the grpc health protocol (grpc.health.v1.Health)")
            elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
                _log(f"timeout: health rpc did not complete within {a.rpc_timeout:g}s")
            else:
                details = exc.details() if hasattr(exc, "details") else str(exc)
                _log(f"error: health rpc failed: code = {getattr(code, 'name', code)} desc = {details}")
            return RPC_FAILURE
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    if response.status != health_pb2.HealthCheckResponse.SERVING:
        _log(f"service unhealthy (responded with {status!r})")
        return UNHEALTHY
    sys.stdout.write(f"status: {status}\n")
    return OK


def main(argv: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    try:
        args = parse_args(argv, env)
    except FlagError as exc:
        _log(f"error: {exc}")
        return INVALID_ARGUMENTS
    except SystemExit as exc:  # -h / --help
        return int(exc.code or 0) if isinstance(exc.code, int) else INVALID_ARGUMENTS
    return run(args)
