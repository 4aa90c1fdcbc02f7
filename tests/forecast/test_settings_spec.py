"""The sampling settings are declared once (types.SamplingParams' field metadata) and every
codec, schema and check follows that declaration: a setting added to the declaration, and
nowhere else, is accepted, copied, documented and range-checked everywhere."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from kronos.v1 import predictor_pb2 as pb
from kronos_bridge import schemas, translate
from kronos_client import InvalidInputError as ClientInputError
from kronos_client.messages import pack_sampling
from kronos_server.errors import InvalidInputError
from kronos_server.forecast import fields, json_codec, prepare
from kronos_server.forecast.limits import Limits
from kronos_server.forecast.types import OVERRIDES, SAMPLING, ResolvedSampling, SamplingParams
from kronos_server.rpc import convert

NAMES = [s.name for s in SAMPLING]


def test_the_declaration_is_the_proto_message_and_the_resolved_type() -> None:
    assert [f.name for f in pb.SamplingParams.DESCRIPTOR.fields] == NAMES
    assert [f.name for f in dataclasses.fields(ResolvedSampling)] == NAMES
    for setting in SAMPLING:
        proto = pb.SamplingParams.DESCRIPTOR.fields_by_name[setting.name]
        assert proto.is_repeated == setting.repeated, setting.name
        assert setting.repeated or proto.has_presence, f"{setting.name}: unset must be distinguishable"


def test_everything_downstream_names_exactly_the_declared_settings() -> None:
    assert list(fields.SAMPLING_FIELDS) == NAMES
    assert {s.name for s in OVERRIDES} == json_codec.OVERRIDE_KEYS
    assert list(schemas.Overrides.model_fields) == [s.name for s in OVERRIDES]
    assert {f"overrides.{n}" for n in NAMES} <= set(fields.REST_TO_PROTO)


def test_a_value_for_every_setting_survives_every_hop() -> None:
    """REST JSON -> domain -> protobuf -> domain, and the client's packing, keep each value."""
    chosen: dict[str, Any] = {"top_k": 3, "seed": 2**64 - 1, "quantiles": [0.2, 0.8]}
    # a setting not chosen here gets a value of its declared type: a new one needs no edit
    overrides = {
        s.name: chosen.get(s.name, [0.25] if s.repeated else s.kind(2 if s.kind is int else 0.5))
        for s in SAMPLING
    }
    body = {"candles": [{"open": 1, "high": 1, "low": 1, "close": 1}] * 2, "overrides": overrides}
    body["timestamps"] = ["2024-01-01T00:00:00", "2024-01-01T00:01:00"]
    series = json_codec.series_from_request(body)
    message = translate.series_to_pb(series)
    back = convert.sampling_from_pb(message.sampling)
    assert back == series.sampling
    expected = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    assert dataclasses.asdict(back) == expected
    packed = pb.SamplingParams()
    pack_sampling(packed, overrides)
    assert packed == message.sampling
    assert convert.sampling_from_pb(pb.SamplingParams()) == SamplingParams()  # unset stays unset


@pytest.mark.parametrize(
    ("name", "bad"),
    [("temperature", 0.0), ("top_k", -1), ("top_p", 1.5), ("sample_count", 65), ("seed", 2**64)],
)
def test_each_declared_rule_is_checked(name: str, bad: Any) -> None:
    with pytest.raises(InvalidInputError) as info:
        prepare.resolve_sampling(SamplingParams(**{name: bad}), Limits())
    assert info.value.field == name
    assert str(bad) in info.value.message


def test_a_repeated_setting_is_checked_per_element_and_in_length() -> None:
    with pytest.raises(InvalidInputError) as info:
        prepare.resolve_sampling(SamplingParams(quantiles=(0.5, 1.0)), Limits())
    assert info.value.field == "quantiles[1]"
    with pytest.raises(InvalidInputError) as info:
        prepare.resolve_sampling(SamplingParams(quantiles=(0.5,) * 3), Limits(max_quantiles=2))
    assert info.value.field == "quantiles"


def test_unset_settings_take_the_declared_defaults() -> None:
    limits = Limits(default_temperature=0.3, default_top_k=4, default_top_p=0.6, default_sample_count=5)
    assert prepare.resolve_sampling(SamplingParams(), limits) == ResolvedSampling(0.3, 4, 0.6, 5, None, ())


def test_the_client_refuses_what_the_proto_type_cannot_hold() -> None:
    with pytest.raises(ClientInputError) as info:
        pack_sampling(pb.SamplingParams(), {"top_k": 2**31})
    assert info.value.field == "sampling.top_k"
