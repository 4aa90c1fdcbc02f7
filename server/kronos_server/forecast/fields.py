"""The one field vocabulary: each request field's name in the domain, the proto and REST.

The domain (``prepare``, the engine) names fields by their own names (``close[3]``,
``top_p``, ``timestamps[2]``); a ``PredictRequest`` nests them (``history.close[3]``,
``sampling.top_p``, ``history.timestamps_ms[2]``); the REST/legacy JSON body has its own
nesting (``candles[3].close``, ``overrides.top_p``, ``timestamps[2]``). :data:`FIELDS` lists
each field once; every translation of an error's field, in every direction, reads it.
A new request field is one row here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kronos_server.forecast.types import FEATURES, SAMPLING

SAMPLING_FIELDS = tuple(s.name for s in SAMPLING)  # declared once, in types.SamplingParams


@dataclass(frozen=True)
class Field:
    """One request field. ``rest`` holds ``[]`` where the index of a row goes (one candle
    object per row in REST, one packed column per field in the proto)."""

    proto: str
    rest: str
    domain: str | None = None  # None: the domain never names it (a container of fields)


FIELDS: tuple[Field, ...] = (
    Field("series_id", "series_id", "series_id"),
    Field("history", "candles"),
    *(Field(f"history.{name}", f"candles[].{name}", name) for name in FEATURES),
    Field("history.timestamps_ms", "timestamps", "timestamps"),
    Field("prediction_timestamps_ms", "prediction_timestamps", "prediction_timestamps"),
    Field("timezone", "timezone", "timezone"),
    Field("return_paths", "return_paths", "return_paths"),
    Field("sampling", "overrides"),
    Field("pred_len", "overrides.pred_len", "pred_len"),
    *(Field(f"sampling.{name}", f"overrides.{name}", name) for name in SAMPLING_FIELDS),
)

#: REST field path -> PredictRequest field path (``candles[]`` is the list of candle objects)
REST_TO_PROTO: dict[str, str] = {f.rest: f.proto for f in FIELDS}
_BY_PROTO = {f.proto: f for f in FIELDS}
_BY_DOMAIN = {f.domain: f for f in FIELDS if f.domain is not None}
_PATH = re.compile(r"^([^\[\]]+)(\[\d+\])?(.*)$", re.DOTALL)


def _split(path: str) -> tuple[str, str]:
    """``close[3].x`` -> (``close``, ``[3].x``)."""
    root, bracket, rest = path.partition("[")
    return root, bracket + rest


def _rest_of(known: str, index: str, tail: str) -> str:
    """A REST path from its row, the index (``[3]`` or empty) and what follows."""
    if "[]" in known:
        return known.replace("[]", index or "[*]", 1) + tail
    return known + index + tail


def proto_path(field: str) -> str:
    """A domain field name as its ``PredictRequest`` path (``close[17]`` -> ``history.close[17]``)."""
    root, rest = _split(field)
    known = _BY_DOMAIN.get(root)
    return known.proto + rest if known is not None else field


def rest_path(field: str) -> str:
    """A domain field name as its REST path (``close[3]`` -> ``candles[3].close``); a name the
    domain does not have is read as a ``PredictRequest`` path (:func:`rest_from_proto`), so a
    REST path, which is neither, is returned unchanged."""
    match = _PATH.match(field)
    if match is None:
        return field
    known = _BY_DOMAIN.get(match.group(1))
    if known is None:
        return rest_from_proto(field)
    return _rest_of(known.rest, match.group(2) or "", match.group(3))


def domain_path(proto: str) -> str:
    """A ``PredictRequest`` path as the domain names it (``sampling.top_p`` -> ``top_p``);
    a path the domain has no name for is returned unchanged."""
    match = _PATH.match(proto)
    if match is None:
        return proto
    known = _BY_PROTO.get(match.group(1))
    if known is None or known.domain is None:
        return proto
    return known.domain + (match.group(2) or "") + match.group(3)


def rest_from_proto(proto: str) -> str:
    """A ``PredictRequest`` path in REST terms (``history.close[17]`` -> ``candles[17].close``);
    the longest known prefix is translated, unknown paths are returned unchanged."""
    match = _PATH.match(proto)
    if match is None:
        return proto
    parts, index, after = match.group(1).split("."), match.group(2) or "", match.group(3)
    for k in range(len(parts), 0, -1):
        known = _BY_PROTO.get(".".join(parts[:k]))
        if known is None:
            continue
        tail = "".join(f".{p}" for p in parts[k:])
        if tail:  # a sub-field of a known field: its index follows the sub-field
            return known.rest.replace("[]", "[*]") + tail + index + after
        return _rest_of(known.rest, index, after)
    return proto


def relabel_message(message: str, field: str) -> str:
    """A message naming its field first (``close[17]: ...``) with ``field`` instead."""
    head, colon, tail = message.partition(":")
    if colon and head and " " not in head:
        return field + colon + tail
    return message
