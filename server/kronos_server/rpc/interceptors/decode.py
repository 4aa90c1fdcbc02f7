"""A request message that does not parse (random bytes, a string field with bad UTF-8) is
answered INVALID_ARGUMENT by the gate's adapter; without this, grpc answers UNKNOWN before
any interceptor has seen the call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError


@dataclass(frozen=True)
class Undecodable:
    """Stands in for a request message that does not parse, so the gate can answer it."""

    message: str


def tolerant(deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """``deserializer``, but a message that does not parse becomes :class:`Undecodable`."""
    descriptor = getattr(getattr(deserializer, "__self__", None), "DESCRIPTOR", None)
    type_name = getattr(descriptor, "full_name", "protobuf")

    def decode(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError as exc:
            return Undecodable(f"request: not a valid {type_name} message ({exc})")

    return decode
