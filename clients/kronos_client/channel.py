"""Channels for one or several servers, plain or TLS/mTLS.

How several targets are balanced (client-side, per call):

* all IPv4 (or all IPv6) ``host:port`` literals -> ONE channel on an ``ipv4:a:p,b:q`` /
  ``ipv6:[a]:p,[b]:q`` target with the ``round_robin`` load-balancing policy: gRPC keeps a
  subchannel to each server and spreads calls over the ready ones.
* anything else (host names, mixed families, URIs such as ``dns:///name:port``) -> one
  channel per target, and the client rotates through them call by call; a retry goes
  to the next channel, so a dead server costs one attempt.

A single target gets one channel with ``round_robin`` too, so ``dns:///name:port``
spreads over every address the name resolves to (for one address it is pick-first).
"""

from __future__ import annotations

import ipaddress
import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import grpc

from kronos_client.config import ClientConfig

ROUND_ROBIN = ("grpc.lb_policy_name", "round_robin")
ChannelOptions = tuple[tuple[str, Any], ...]
T = TypeVar("T")


def split_host_port(target: str) -> tuple[str, str] | None:
    """``host:port`` / ``[v6]:port`` -> (host, port); None for URIs and malformed targets."""
    if "://" in target or target.startswith(("ipv4:", "ipv6:", "unix:", "dns:")):
        return None
    if target.startswith("["):
        host, sep, port = target[1:].partition("]:")
    else:
        host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    return host, port


def ip_family(host: str) -> int | None:
    try:
        return ipaddress.ip_address(host).version
    except ValueError:
        return None


@dataclass(frozen=True)
class ChannelPlan:
    """The channel targets to open (rotated per call when several) and their options."""

    targets: tuple[str, ...]
    options: ChannelOptions


def plan_channels(config: ClientConfig) -> ChannelPlan:
    targets = config.target_list()
    options: ChannelOptions = (ROUND_ROBIN,)
    if config.server_name:
        options += (("grpc.ssl_target_name_override", config.server_name),)
    if len(targets) == 1:
        return ChannelPlan((targets[0],), options)
    parts = [split_host_port(t) for t in targets]
    pairs = [p for p in parts if p is not None]
    families = {ip_family(host) for host, _ in pairs} if len(pairs) == len(parts) else set()
    if families == {4}:
        return ChannelPlan(("ipv4:" + ",".join(f"{h}:{p}" for h, p in pairs),), options)
    if families == {6}:
        return ChannelPlan(("ipv6:" + ",".join(f"[{h}]:{p}" for h, p in pairs),), options)
    return ChannelPlan(tuple(targets), options)


def _read(path: str | Path | None) -> bytes | None:
    return Path(path).read_bytes() if path is not None else None


def channel_credentials(config: ClientConfig) -> grpc.ChannelCredentials | None:
    """TLS (server verified against ``ca_cert`` or the system roots), mTLS with a client pair."""
    if not config.uses_tls:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=_read(config.ca_cert),
        private_key=_read(config.client_key),
        certificate_chain=_read(config.client_cert),
    )


def sync_channel(target: str, creds: grpc.ChannelCredentials | None, options: ChannelOptions) -> grpc.Channel:
    if creds is None:
        return grpc.insecure_channel(target, options=options)
    return grpc.secure_channel(target, creds, options=options)


def aio_channel(
    target: str, creds: grpc.ChannelCredentials | None, options: ChannelOptions
) -> grpc.aio.Channel:
    if creds is None:
        return grpc.aio.insecure_channel(target, options=options)
    return grpc.aio.secure_channel(target, creds, options=options)


class Rotation(Generic[T]):
    """Round-robin over a fixed list (thread-safe); a single item is always returned."""

    def __init__(self, items: Sequence[T]) -> None:
        if not items:
            raise ValueError("nothing to rotate over")
        self.items = list(items)
        self._cycle = itertools.cycle(self.items)
        self._lock = threading.Lock()

    def next(self) -> T:
        with self._lock:
            return next(self._cycle)


def open_channels(
    config: ClientConfig,
    factory: Callable[[str, grpc.ChannelCredentials | None, ChannelOptions], T],
) -> list[T]:
    plan = plan_channels(config)
    creds = channel_credentials(config)
    return [factory(target, creds, plan.options) for target in plan.targets]
