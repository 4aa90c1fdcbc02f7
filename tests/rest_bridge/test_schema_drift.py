"""No schema drift: every proto request field has a REST counterpart and the reverse."""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from pydantic import BaseModel

from kronos.v1 import predictor_pb2 as pb
from kronos_bridge import schemas
from kronos_bridge.translate import FIELD_MAP
from kronos_server.forecast import json_codec


def proto_paths(descriptor: Descriptor, prefix: str = "") -> set[str]:
    """Every field path of a message, nested messages (Candles, SamplingParams) included."""
    out = set()
    for field in descriptor.fields:
        path = prefix + field.name
        out.add(path)
        if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
            out |= proto_paths(field.message_type, path + ".")
    return out


def rest_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every field path of a REST body model; list items of models are written ``name[]``."""
    out = set()
    for name, info in model.model_fields.items():
        path = prefix + name
        out.add(path)
        nested = _model_in(info.annotation)
        if nested is not None:
            is_list = "list[" in str(info.annotation)
            out |= rest_paths(nested, path + ("[]." if is_list else "."))
    return out


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def test_every_proto_request_field_has_a_rest_counterpart() -> None:
    missing = proto_paths(pb.PredictRequest.DESCRIPTOR) - set(FIELD_MAP.values())
    assert not missing, (
        f"PredictRequest fields without a REST field in translate.FIELD_MAP: {sorted(missing)}"
    )


def test_every_mapped_proto_path_exists() -> None:
    unknown = set(FIELD_MAP.values()) - proto_paths(pb.PredictRequest.DESCRIPTOR)
    assert not unknown, f"FIELD_MAP names proto fields that do not exist: {sorted(unknown)}"


def test_every_rest_field_is_mapped_and_the_reverse() -> None:
    documented = rest_paths(schemas.PredictRequestBody)
    assert documented == set(FIELD_MAP), (
        f"REST fields without a proto mapping: {sorted(documented - set(FIELD_MAP))}; "
        f"mapped fields the REST schema lacks: {sorted(set(FIELD_MAP) - documented)}"
    )


def test_the_documented_schema_is_the_parsed_one() -> None:
    """schemas.py documents exactly the keys the legacy parser accepts."""
    assert set(schemas.PredictRequestBody.model_fields) == json_codec.REQUEST_KEYS
    assert set(schemas.Candle.model_fields) == json_codec.CANDLE_KEYS
    assert set(schemas.Overrides.model_fields) == json_codec.OVERRIDE_KEYS


def test_the_mapping_is_one_to_one() -> None:
    assert len(set(FIELD_MAP.values())) == len(FIELD_MAP)


def test_model_info_body_is_derived_from_the_proto() -> None:
    assert rest_paths(schemas.ModelInfoBody) == proto_paths(pb.ModelInfo.DESCRIPTOR)
